/**
 * The one place that calls into the C library, through koffi (an FFI whose npm package ships
 * prebuilt binaries: nothing is compiled at install time, and it loads where `npm ci
 * --ignore-scripts` left its install script unrun). Calls without a glibc wrapper on every
 * supported distribution (glibc 2.34 on RHEL 9 has none for open_tree and friends) go through
 * syscall(2) with fixed prototypes: on Linux x86_64 and arm64 a variadic call passes integer and
 * pointer arguments exactly as a fixed one does, and these syscall numbers are the same on both.
 */
import { createRequire } from 'node:module';
import { getSystemErrorMap } from 'node:util';
import type * as Koffi from 'koffi';

const nodeRequire = createRequire(import.meta.url);

/** Syscall numbers of the calls that came after the table was unified (same on x86_64, arm64). */
export const SYS = {
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  openat2: 437,
  mount_setattr: 442,
  statmount: 457,
  listmount: 458,
} as const;

/** Node's table of errno names and texts (built anew at every getSystemErrorMap call). */
let errors: Map<number, [string, string]> | undefined;

/** A failed system call, shaped like Node's own (`code`, `errno`, `syscall`, `path`). */
export class KernelError extends Error {
  readonly code: string;
  readonly errno: number;
  constructor(
    readonly syscall: string,
    errno: number,
    readonly path?: string,
  ) {
    errors ??= getSystemErrorMap();
    const [code, description] = errors.get(-errno) ?? [`E${errno}`, 'unknown error'];
    super(`${code}: ${description}, ${syscall}${path === undefined ? '' : ` '${path}'`}`);
    this.name = 'KernelError';
    this.code = code;
    this.errno = errno;
  }
}

export function isErrno(error: unknown, ...codes: string[]): error is KernelError {
  return error instanceof KernelError && codes.includes(error.code);
}

type Fn = (...args: unknown[]) => number | bigint;

export interface Libc {
  koffi: typeof Koffi;
  /** (nr, fd, path, flags): open_tree. */
  sysFdPathInt: Fn;
  /** (nr, fd, path, struct, size): openat2. */
  sysFdPathPtrInt: Fn;
  /** (nr, fd, path, flags, struct, size): mount_setattr. */
  sysFdPathIntPtrInt: Fn;
  /** (nr, fd, path, fd, path, flags): move_mount. */
  sysFdPathFdPathInt: Fn;
  /** (nr, name, flags): fsopen. */
  sysStrInt: Fn;
  /** (nr, fd, cmd, key, value, aux): fsconfig. */
  sysIntIntStrStrInt: Fn;
  /** (nr, fd, flags, attrs): fsmount. */
  sysIntIntInt: Fn;
  /** (nr, struct, buffer, size, flags): statmount, listmount. */
  sysPtrPtrIntInt: Fn;
  statx: Fn;
  umount2: Fn;
  mount: Fn;
  close: Fn;
  poll: Fn;
  errno(): number;
}

let libc: Libc | undefined;

/**
 * koffi, from its package under Node. A Bun-compiled executable (the standalone `sharedprop`)
 * embeds a native module only when it is required by a literal path, and koffi finds its own by
 * a computed one: there, its native module for x86_64 glibc is required directly (koffi's package
 * wraps it only with deprecation shims this code does not use). Elsewhere under Bun this throws,
 * and the driver falls back to mount(8), saying why.
 */
function loadKoffi(): typeof Koffi {
  if (process.versions.bun === undefined) return nodeRequire('koffi') as typeof Koffi;
  if (process.arch !== 'x64') {
    throw new Error(`this executable embeds koffi for x64 only, not ${process.arch}`);
  }
  // Bun's own `require` (defined in its ES modules), which its bundler follows.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@koromix/koffi-linux-x64/linux_x64/koffi.node') as typeof Koffi;
}

/** Loads koffi and libc at first use (the driver's other modules never pay for it). */
export function loadLibc(): Libc {
  if (libc) return libc;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  // `void *` takes a Buffer or a typed array (its memory, not a copy), `str` a JS string.
  const fn = (decl: string) => lib.func(decl) as unknown as Fn;
  libc = {
    koffi,
    sysFdPathInt: fn('long syscall(long nr, long fd, str path, long flags)'),
    sysFdPathPtrInt: fn('long syscall(long nr, long fd, str path, void *how, long size)'),
    sysFdPathIntPtrInt: fn(
      'long syscall(long nr, long fd, str path, long flags, void *attr, long size)',
    ),
    sysFdPathFdPathInt: fn(
      'long syscall(long nr, long fd, str path, long fd2, str path2, long flags)',
    ),
    sysStrInt: fn('long syscall(long nr, str name, long flags)'),
    sysIntIntStrStrInt: fn(
      'long syscall(long nr, long fd, long cmd, str key, str value, long aux)',
    ),
    sysIntIntInt: fn('long syscall(long nr, long fd, long flags, long attrs)'),
    sysPtrPtrIntInt: fn('long syscall(long nr, void *req, void *buf, long size, long flags)'),
    statx: fn('int statx(int dirfd, str path, int flags, uint mask, void *buf)'),
    umount2: fn('int umount2(str target, int flags)'),
    mount: fn('int mount(str source, str target, str fstype, ulong flags, str data)'),
    close: fn('int close(int fd)'),
    poll: fn('int poll(void *fds, ulong nfds, int timeout)'),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** Runs one call; a negative answer throws its errno as a KernelError. */
export function check(result: number | bigint, name: string, path?: string): number {
  const value = Number(result);
  if (value < 0) throw new KernelError(name, loadLibc().errno(), path);
  return value;
}
