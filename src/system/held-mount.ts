/**
 * Mount points held by descriptor for the layer on system calls (syscall-mounts.ts): a directory
 * opened with no symlink on its way, the mount it is on and the stack of mounts at it, read by
 * identity; and the two acts on a held directory that make a mount point of its own.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { close, openDirectory } from './kernel/calls.js';
import { selfBindInOwnGroup } from './held-bind.js';
import { isErrno } from './kernel/ffi.js';
import type { MountTree, MountNode, MountView } from './mount-tree.js';
import { parseMountinfo, propagationOf, type MountEntry } from './mountinfo.js';
import { ForeignMountPointError } from './mounts-api.js';
import { mountRootShowsTwice } from './mount-root-peers.js';

/** This namespace's mount table, read once (at start, for the mount root). */
function readMountinfoSync(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** A directory held open, with what statx said of it and the mounts stacked at it. */
export interface Held {
  fd: number;
  path: string;
  /** The mount the descriptor is on (the top of the stack when it is a mount root). */
  mount: MountNode;
  /** The mounts at this directory, bottom first; empty when it is no mount point. */
  stack: MountNode[];
  /** The operation's view of the tree (in mountinfo mode, one read about this directory). */
  view: MountView;
}

/**
 * Opens `dir` (no symlink on the way) and reads, by identity, the mount it is on and the stack
 * of mounts at it: each mount of a stack is the parent of the one above, at the same place.
 */
export function holdMountPoint(tree: MountTree, dir: string, given?: MountView): Held {
  const fd = openDirectory(dir);
  try {
    const stat = tree.stat(fd);
    const id = tree.idOf(stat);
    const view = given ?? tree.view({ path: dir, ids: [id] });
    const mount = view.get(id);
    if (!mount) throw new Error(`the mount of ${JSON.stringify(dir)} is not in the mount table`);
    const stack: MountNode[] = [];
    if (stat.mountRoot) {
      for (let m: MountNode | undefined = mount; m; m = view.get(m.parent)) {
        if (m.mountPoint !== mount.mountPoint || stack.includes(m) || m.parent === m.id) break;
        stack.unshift(m);
      }
    }
    return { fd, path: dir, mount, stack, view };
  } catch (error) {
    close(fd);
    throw error;
  }
}

/** Opens `dir`, making it (and its parents) first when it does not exist. */
export async function holdOrCreate(tree: MountTree, dir: string): Promise<Held> {
  try {
    return holdMountPoint(tree, dir);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  await mkdir(dir, { recursive: true });
  return holdMountPoint(tree, dir);
}

/**
 * The mount whose root `fd` holds, as mountinfo shows it: from `view` when nothing changed
 * since it was taken, else from a new one (in mountinfo mode, the operation's second read).
 */
export function entryOfRoot(tree: MountTree, fd: number, view?: MountView): MountEntry {
  const id = tree.idOf(tree.stat(fd));
  const entry = (view ?? tree.view({ ids: [id] })).entry(id);
  if (!entry) throw new Error(`mount ${String(id)} is not in the mount table`);
  return entry;
}

/**
 * Makes `dir` a shared mount point with a peer group of its own, as `ip netns add` does for
 * /run/netns: a recursive self-bind when it is no mount point yet. A mount point that is not
 * shared is someone else's: refused, never made shared. Returns the mounts at `dir` (their peer
 * groups).
 */
export function ensureSharedMountPoint(tree: MountTree, dir: string): { sharedGroup?: number }[] {
  const held = holdMountPoint(tree, dir);
  try {
    const top = held.stack.at(-1);
    if (!top) {
      const self = selfBindInOwnGroup(held.fd, true);
      try {
        return [entryOfRoot(tree, self)];
      } finally {
        close(self);
      }
    }
    if (top.sharedGroup === undefined) {
      const entry = held.view.entry(top.id);
      throw new ForeignMountPointError(dir, entry ? propagationOf(entry) : 'detached');
    }
    return held.stack;
  } finally {
    close(held.fd);
  }
}

/**
 * As MountSystem's: a mount root held by a shared mount with a peer here becomes a mount of its
 * own in a group of its own. The caller checked that nothing is mounted in it.
 */
export function separateMountRoot(tree: MountTree, root: string): void {
  const held = holdMountPoint(tree, root);
  try {
    if (!mountRootShowsTwice(readMountinfoSync(), root)) return;
    close(selfBindInOwnGroup(held.fd, false));
  } finally {
    close(held.fd);
  }
}
