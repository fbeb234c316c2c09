/**
 * Becomes runc: a real execve(2) through libc, so runc keeps this process's pid, stdio, other
 * file descriptors, signal mask and parent, and its exit code is the wrapper's. Only when
 * execve is not possible (no glibc to load, or execve refused) does the wrapper run runc as a
 * child instead, with inherited stdio, signals passed on, and its exit status passed back.
 */
import { dlopen, ptr } from 'bun:ffi';
import { bun } from './host.js';

/**
 * Bun ignores SIGPIPE (13) and SIGXFSZ (25) for itself; runc would inherit that through execve,
 * so they go back to their default first. (Linux numbers; node:os would cost startup time.)
 */
const BUN_IGNORED_SIGNALS = [13, 25];

/** Signals passed on to runc when it runs as a child. */
const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGTERM',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
  'SIGALRM',
];

type Env = Readonly<Record<string, string | undefined>>;

const cString = (text: string) => Buffer.from(`${text}\0`, 'utf8');

/** A NULL-terminated array of pointers to `strings` (which must outlive its use). */
function pointerArray(strings: Buffer[]): BigUint64Array {
  const table = new BigUint64Array(strings.length + 1);
  strings.forEach((s, i) => (table[i] = BigInt(ptr(s))));
  return table;
}

/** execve(file, [file, ...args], env). Returns only if it failed. */
function execve(file: string, args: readonly string[], env: Env): void {
  let libc;
  try {
    libc = dlopen('libc.so.6', {
      execve: { args: ['ptr', 'ptr', 'ptr'], returns: 'i32' },
      signal: { args: ['i32', 'ptr'], returns: 'ptr' },
    });
  } catch {
    return; // not glibc: run runc as a child
  }
  const path = cString(file);
  const argv = [file, ...args].map(cString);
  const envp = Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => cString(`${key}=${value}`));
  const argvTable = pointerArray(argv);
  const envTable = pointerArray(envp);
  const previous = BUN_IGNORED_SIGNALS.map((signal) => libc.symbols.signal(signal, null));
  libc.symbols.execve(path, argvTable, envTable);
  // Still here: execve failed. Put Bun's dispositions back for the fallback.
  BUN_IGNORED_SIGNALS.forEach((signal, i) => libc.symbols.signal(signal, previous[i] ?? null));
  void [path, argv, envp]; // the buffers the tables point into stay alive up to here
}

/** Runs runc as a child and ends this process the way runc ended. */
async function spawnAndWait(file: string, args: readonly string[], env: Env): Promise<never> {
  const child = bun().spawn([file, ...args], { stdio: ['inherit', 'inherit', 'inherit'], env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  const code = await child.exited;
  for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
  const signal = child.signalCode;
  if (signal) {
    process.kill(process.pid, signal); // die of the same signal, if it is not ignored
    const { constants } = await import('node:os');
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
  process.exit(code);
}

/**
 * Replaces this process with runc (`file`), passing `args` unchanged. Rejects only when runc
 * cannot be started at all.
 */
export async function execRunc(file: string, args: readonly string[], env: Env): Promise<never> {
  execve(file, args, env);
  return spawnAndWait(file, args, env);
}
