/**
 * The one place where sharedprop runs other programs. Arguments are always arrays, never shell
 * strings, and a failure carries the command line and its stderr.
 */
import { execa } from 'execa';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    const detail = stderr.trim() || `exit code ${exitCode ?? 'unknown'}`;
    super(`${[command, ...args].join(' ')} failed: ${detail}`);
    this.name = 'CommandError';
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Milliseconds before the command is killed. */
  timeout?: number;
  env?: Record<string, string>;
}

export async function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await execa(command, args, {
    reject: false,
    timeout: options.timeout ?? 60_000,
    env: options.env,
    stdin: 'ignore',
  });
  if (result.failed) {
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    throw new CommandError(
      command,
      args,
      result.exitCode,
      stderr || (result.timedOut ? 'timed out' : (result.shortMessage ?? 'failed')),
    );
  }
  return { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}
