/**
 * The one place where sharedprop runs other programs. Arguments are always arrays, never shell
 * strings, and a failure carries the command line, its exit code and its stderr. Children run in
 * the C locale, and callers decide from exit codes and the mount table, never from the text of
 * stderr (it is translated, and it belongs in the log).
 */
import { execa, type Options } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';

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
  /** An open file descriptor the child gets as its fd 3 (it shares the open file description). */
  fd3?: number;
}

/** Always set for children: messages and formats do not depend on the host's locale. */
export const CHILD_LOCALE = { LC_ALL: 'C', LANG: 'C', LANGUAGE: 'C' } as const;

export async function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await execa(command, args, {
    reject: false,
    timeout: options.timeout ?? 60_000,
    env: { ...options.env, ...CHILD_LOCALE },
    // execa passes a number in the stdio array on as that descriptor; its types only say so for
    // the first three.
    stdio: (options.fd3 === undefined
      ? ['ignore', 'pipe', 'pipe']
      : ['ignore', 'pipe', 'pipe', options.fd3]) as Options['stdio'],
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

export type ServerProcess = ChildProcess;

/**
 * A long-lived child that serves requests on its standard input and answers on its standard
 * output (its stderr is discarded: it answers there). Its lifetime is the caller's to manage.
 */
export function startServer(command: string, args: readonly string[]): ServerProcess {
  return spawn(command, [...args], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...CHILD_LOCALE } });
}
