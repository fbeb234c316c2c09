/**
 * Reads a runc command line the way runc (urfave/cli v1 over Go's flag package) does, to learn
 * the subcommand, the bundle directory and runc's own log file. Nothing here touches the disk.
 */
import { resolve } from 'node:path';

export interface RuncInvocation {
  /** The first argument that is neither a global flag nor a global flag's value. */
  subcommand: string | undefined;
  /** The bundle directory of `create`, absolute (the current directory when none is given). */
  bundle: string | undefined;
  /** runc's `--log` file, absolute, when given. */
  logFile: string | undefined;
  /** runc's `--log-format` (`text` when not given, as in runc). */
  logFormat: string;
}

/** runc's global flags that take a value; every other global flag is a boolean. */
const GLOBAL_VALUE_FLAGS = new Set(['root', 'log', 'log-format', 'log-level', 'criu', 'rootless']);

/** `runc create` flags that take a value. */
const CREATE_VALUE_FLAGS = new Set(['bundle', 'b', 'console-socket', 'pid-file', 'preserve-fds']);

interface Flag {
  name: string;
  /** The value written as `--name=value`, if it was. */
  inline: string | undefined;
}

/** `-x`, `--x`, `-x=v` and `--x=v` are flags; `-`, `--` and everything else are not. */
function asFlag(arg: string): Flag | undefined {
  if (arg === '-' || arg === '--' || !arg.startsWith('-')) return undefined;
  const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
  const eq = body.indexOf('=');
  return eq < 0
    ? { name: body, inline: undefined }
    : { name: body.slice(0, eq), inline: body.slice(eq + 1) };
}

/**
 * Parses `args` (the command line without the program name). `cwd` is the directory relative
 * paths are resolved against, as runc resolves them.
 */
export function parseRuncArgs(args: readonly string[], cwd: string): RuncInvocation {
  const globals = new Map<string, string>();
  let index = 0;
  let subcommand: string | undefined;
  while (index < args.length) {
    const arg = args[index] as string;
    index++;
    if (arg === '--') {
      subcommand = args[index];
      index++;
      break;
    }
    const flag = asFlag(arg);
    if (!flag) {
      subcommand = arg;
      break;
    }
    if (GLOBAL_VALUE_FLAGS.has(flag.name)) {
      const value = flag.inline ?? args[index];
      if (flag.inline === undefined) index++;
      if (value !== undefined) globals.set(flag.name, value);
    }
  }

  const logFile = globals.get('log');
  const invocation: RuncInvocation = {
    subcommand,
    bundle: undefined,
    logFile: logFile ? resolve(cwd, logFile) : undefined,
    logFormat: globals.get('log-format') ?? 'text',
  };
  if (subcommand !== 'create') return invocation;

  // urfave/cli v1 moves a command's flags ahead of its arguments, so flags may follow the
  // container id; `--` ends them. The last `--bundle` wins, as with Go's flag package.
  let bundle: string | undefined;
  while (index < args.length) {
    const arg = args[index] as string;
    index++;
    if (arg === '--') break;
    const flag = asFlag(arg);
    if (!flag || !CREATE_VALUE_FLAGS.has(flag.name)) continue;
    const value = flag.inline ?? args[index];
    if (flag.inline === undefined) index++;
    if (flag.name === 'bundle' || flag.name === 'b') bundle = value;
  }
  invocation.bundle = bundle ? resolve(cwd, bundle) : cwd;
  return invocation;
}
