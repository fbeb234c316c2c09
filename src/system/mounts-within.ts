/**
 * Whether anything is mounted at or within a small directory tree, told by the kernel without the
 * mount table: the tree is walked by descriptor, and each directory is opened with openat2
 * RESOLVE_NO_XDEV | RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (EXDEV: a mount point) from its parent's
 * descriptor, each other entry asked with statx (STATX_ATTR_MOUNT_ROOT: a file bound over it).
 * Nothing is resolved by a path below `dir`, so a swap mid-walk cannot lead it elsewhere.
 *
 * It answers for the moment of the walk only, and gives up on a large tree (`unknown`): a Remove
 * takes `none` as the reason to skip reading the whole mount table; the delete that follows
 * (sharedprop-rmtree) still refuses to cross any mount, whenever it was made.
 */
import { readdirSync } from 'node:fs';
import { close, openDirectory, statx } from './kernel/calls.js';
import { RESOLVE_BENEATH, RESOLVE_NO_XDEV } from './kernel/constants.js';
import { isErrno } from './kernel/ffi.js';

export type MountsWithin = 'none' | 'some' | 'unknown';

/** Entries looked at before the walk gives up: a table read costs less than a longer walk. */
export const SCAN_BUDGET = 2_000;

export function scanForMounts(dir: string, budget = SCAN_BUDGET): MountsWithin {
  let root: number;
  try {
    root = openDirectory(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return 'none';
    if (isErrno(error, 'ENOTDIR', 'ELOOP')) return 'unknown';
    throw error;
  }
  if (statx(root).mountRoot) {
    close(root);
    return 'some';
  }
  const pending = [root];
  const counter = { seen: 0, budget };
  try {
    for (let fd = pending.pop(); fd !== undefined; fd = pending.pop()) {
      try {
        const answer = scanDirectory(fd, pending, counter);
        if (answer !== 'none') return answer;
      } finally {
        // Its subdirectories were opened from it: only theirs stay open.
        close(fd);
      }
    }
    return 'none';
  } finally {
    for (const fd of pending) close(fd);
  }
}

/** One directory's entries: its subdirectories go to `pending`, opened. */
function scanDirectory(
  fd: number,
  pending: number[],
  counter: { seen: number; budget: number },
): MountsWithin {
  let entries;
  try {
    // Listed through the descriptor (procfs reopens the very directory it holds).
    entries = readdirSync(`/proc/self/fd/${fd}`, { withFileTypes: true });
  } catch (error) {
    // Removed meanwhile: nothing is mounted there.
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'unknown';
  }
  for (const entry of entries) {
    if (++counter.seen > counter.budget) return 'unknown';
    try {
      if (entry.isDirectory()) {
        pending.push(
          openDirectory(entry.name, { dirFd: fd, resolve: RESOLVE_NO_XDEV | RESOLVE_BENEATH }),
        );
      } else if (statx(fd, entry.name, false).mountRoot) {
        return 'some';
      }
    } catch (error) {
      if (isErrno(error, 'EXDEV')) return 'some';
      if (isErrno(error, 'ENOENT')) continue;
      return 'unknown'; // swapped for a symlink or a file meanwhile, or unreadable
    }
  }
  return 'none';
}
