/**
 * The bind of an adopted directory, made through the descriptor it was checked by (see
 * held-directory.ts): never through its name, so a rename or a symlink swapped in at the name
 * between the check and the bind cannot redirect it (CVE-2018-15664's race, on a mount).
 */
import type { SharedMode } from './mounts.js';
import { close, mountSetattr, moveMount, openTree, statx } from './kernel/calls.js';
import { duplicate, type HeldDirectory } from './held-directory.js';

/** Whether the mount of this (reusable, mountinfo) ID is shared. */
export type IsShared = (mountId: number) => boolean | Promise<boolean>;

/**
 * Makes the held directory a shared mount point with a peer group of its own, as `ip netns add`
 * does for /run/netns: a recursive self-bind through the descriptor when it is no mount root (out
 * of its parent's group, then shared: a group of its own), or made shared when it is a mount root
 * that is not. Returns a descriptor of that mount's root (the caller closes it).
 */
export async function sharedMountPointAt(held: HeldDirectory, isShared: IsShared): Promise<number> {
  const stat = statx(held.fd, '', false);
  if (stat.mountRoot) {
    const top = duplicate(held.fd);
    try {
      if (!(await isShared(stat.mountId as number))) mountSetattr(top, { propagation: 'shared' });
      return top;
    } catch (error) {
      close(top);
      throw error;
    }
  }
  return selfBindInOwnGroup(held.fd, true);
}

/**
 * Binds the directory `fd` holds onto itself (with what is mounted beneath it when `recursive`),
 * out of every peer group, then shared: a mount point with a peer group of its own. Returns a
 * descriptor of the new mount's root (the caller closes it).
 */
export function selfBindInOwnGroup(fd: number, recursive: boolean): number {
  const self = openTree(fd, { clone: true, recursive });
  try {
    mountSetattr(self, { propagation: 'private' });
    moveMount(self, fd);
    // Attached under a shared parent, it joined a group with the copies at the parent's peers.
    mountSetattr(self, { propagation: 'private' });
    mountSetattr(self, { propagation: 'shared' });
    return self;
  } catch (error) {
    close(self);
    throw error;
  }
}

/**
 * Binds the mount whose root `from` holds, with what is mounted beneath it (as `--rbind`), at the
 * directory `to` holds, in its peer group: what is mounted in the one shows in the other.
 */
export function bindTree(from: number, to: number, mode: SharedMode): void {
  const view = openTree(from, { clone: true, recursive: true });
  try {
    moveMount(view, to);
    if (mode === 'rshared') mountSetattr(view, { propagation: 'shared', recursive: true });
  } finally {
    close(view);
  }
}
