/**
 * Whether the mount layer on system calls can run here: the FFI loads, and the kernel has every
 * call it makes (open_tree/move_mount/fsopen 5.2, openat2 5.6, statx's mount ID 5.8,
 * mount_setattr 5.12). Each call is made with arguments it refuses (EBADF, EINVAL): nothing is
 * changed, and only ENOSYS means the call is missing.
 */
import { AT_EMPTY_PATH, STATX_MNT_ID } from './constants.js';
import { close, openDirectory, statx } from './calls.js';
import { loadLibc, SYS, type Libc } from './ffi.js';

const ENOSYS = 38;

/** Throws, saying what is missing, when the system calls cannot be made; else returns. */
export function probeSyscalls(libc: Libc = loadLibc()): void {
  const calls: [string, string, () => number | bigint][] = [
    ['open_tree', '5.2', () => libc.sysFdPathInt(SYS.open_tree, -1, '', AT_EMPTY_PATH)],
    ['move_mount', '5.2', () => libc.sysFdPathFdPathInt(SYS.move_mount, -1, '', -1, '', 0)],
    ['fsopen', '5.2', () => libc.sysStrInt(SYS.fsopen, '', -1)],
    ['mount_setattr', '5.12', () => libc.sysFdPathIntPtrInt(SYS.mount_setattr, -1, '', 0, null, 0)],
  ];
  for (const [name, version, call] of calls) {
    if (Number(call()) < 0 && libc.errno() === ENOSYS) {
      throw new Error(`the kernel has no ${name} (Linux ${version} or later)`);
    }
  }
  // openat2 (5.6) and statx's mount ID (5.8), through the bindings the layer uses.
  const fd = openDirectory('/');
  try {
    if ((statx(fd, '', false).mask & STATX_MNT_ID) === 0) {
      throw new Error('statx gives no mount ID (Linux 5.8 or later)');
    }
  } finally {
    close(fd);
  }
}
