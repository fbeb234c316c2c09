/**
 * Whether anything is mounted at or within a small directory tree, told by the kernel without the
 * mount table: the tree is walked by descriptor. Every entry is asked with statx from its
 * directory's descriptor (STATX_ATTR_MOUNT_ROOT: something is mounted on it; its type from the same
 * answer, never from readdir), and each directory is opened with openat2 RESOLVE_NO_XDEV |
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (EXDEV: a mount point), depth first (one descriptor and
 * one listing open per level).
 * Listings are read a batch at a time and stop at the budget, so a huge directory costs no more
 * than the budget. Any doubt (an error, an entry gone or changed meanwhile, no /proc) is `unknown`,
 * never `none`.
 * Nothing is resolved by a path below `dir`, so a swap mid-walk cannot lead it elsewhere.
 *
 * It answers for the moment of the walk only, and gives up on a large tree (`unknown`): a Remove
 * takes `none` as the reason to skip reading the whole mount table; the delete that follows
 * (sharedprop-rmtree) still refuses to cross any mount, whenever it was made.
 */
import { constants, opendirSync, type Dir } from 'node:fs';
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
    return 'unknown'; // a file, a symlink, or a directory this process cannot open
  }
  const counter = { seen: 0, budget };
  try {
    return statx(root).mountRoot ? 'some' : scanDirectory(root, counter);
  } catch {
    return 'unknown';
  } finally {
    close(root);
  }
}

/** One directory (its descriptor stays the caller's), and those beneath it, one at a time. */
function scanDirectory(fd: number, counter: { seen: number; budget: number }): MountsWithin {
  let listing: Dir;
  try {
    // Listed through the descriptor: procfs reopens the very directory it holds.
    listing = opendirSync(`/proc/self/fd/${fd}`, { bufferSize: 64 });
  } catch {
    return 'unknown';
  }
  try {
    for (let entry = listing.readSync(); entry !== null; entry = listing.readSync()) {
      if (++counter.seen > counter.budget) return 'unknown';
      const answer = scanEntry(fd, entry.name, counter);
      if (answer !== 'none') return answer;
    }
    return 'none';
  } catch {
    return 'unknown';
  } finally {
    listing.closeSync();
  }
}

function scanEntry(
  fd: number,
  name: string,
  counter: { seen: number; budget: number },
): MountsWithin {
  const found = statx(fd, name, false); // throws, gone or not: the caller's `unknown`
  if (found.mountRoot) return 'some';
  if ((found.mode & constants.S_IFMT) !== constants.S_IFDIR) return 'none';
  let child: number;
  try {
    child = openDirectory(name, { dirFd: fd, resolve: RESOLVE_NO_XDEV | RESOLVE_BENEATH });
  } catch (error) {
    if (isErrno(error, 'EXDEV')) return 'some';
    return 'unknown'; // gone, or swapped for a symlink or a file, since the statx
  }
  try {
    return scanDirectory(child, counter);
  } finally {
    close(child);
  }
}
