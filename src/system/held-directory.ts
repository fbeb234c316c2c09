/**
 * Directories held by descriptor, and known by identity: a name is resolved once (openat2, no
 * symlink and no magic link anywhere on the way), and everything decided about it is decided
 * through that descriptor: its identity (statx), and those of every directory above it, found by
 * walking `..` from descriptor to descriptor as the kernel resolves it (across mount points, up
 * to the process's root). A bind mount gives a directory many names, never another identity.
 */
import type { DirectoryIdentity } from '../model/directory-identity.js';
import { isSameDirectory } from '../model/directory-identity.js';
import nodePath from 'node:path';
import { close, openDirectory, openTree, statx, withFd } from './kernel/calls.js';

/** Deeper than this, a walk up is refused rather than followed (PATH_MAX allows ~2,000). */
export const MAX_DEPTH = 4096;

export interface HeldDirectory {
  /** O_PATH descriptor of the directory: the caller's to close (see release). */
  readonly fd: number;
  readonly path: string;
  readonly identity: DirectoryIdentity;
  /** Its identity and those of every directory above it, itself first, the root last. */
  readonly lineage: readonly DirectoryIdentity[];
  /** Closes the descriptor (once; later calls do nothing). */
  release(): void;
}

/** The identity of the directory (or file) `fd` holds. */
export function identityOf(fd: number): DirectoryIdentity {
  const stat = statx(fd);
  const identity: DirectoryIdentity = { device: stat.device, ino: String(stat.ino) };
  if (stat.btime !== undefined) identity.btime = stat.btime;
  return identity;
}

/**
 * The identities of the directory `fd` holds and of every directory above it, up to the root
 * (whose `..` is itself). Each step opens `..` relative to the last descriptor: no name is looked
 * up twice.
 */
export function lineageOf(fd: number): DirectoryIdentity[] {
  const lineage = [identityOf(fd)];
  let current = openDirectory('.', { dirFd: fd });
  try {
    while (lineage.length <= MAX_DEPTH) {
      const parent = openDirectory('..', { dirFd: current });
      close(current);
      current = parent;
      const identity = identityOf(parent);
      if (isSameDirectory(identity, lineage.at(-1) as DirectoryIdentity)) return lineage;
      lineage.push(identity);
    }
  } finally {
    close(current);
  }
  throw new Error(`a directory more than ${MAX_DEPTH} levels deep`);
}

/**
 * Opens the directory `path` names (absolute; no symlink on the way: ELOOP; no directory:
 * ENOTDIR; missing: ENOENT, as KernelErrors) and takes its identity and lineage.
 */
export function holdDirectory(path: string): HeldDirectory {
  const fd = openDirectory(path);
  try {
    let open = true;
    const release = () => {
      if (open) close(fd);
      open = false;
    };
    return { fd, path, identity: identityOf(fd), lineage: lineageOf(fd), release };
  } catch (error) {
    close(fd);
    throw error;
  }
}

/** A second descriptor of exactly what `fd` holds (the same mount, the same directory). */
export function duplicate(fd: number): number {
  return openDirectory('.', { dirFd: fd });
}

/** Whether `lineage` (a directory and those above it) passes through `identity`. */
export function passesThrough(
  lineage: readonly DirectoryIdentity[],
  identity: DirectoryIdentity,
): boolean {
  return lineage.some((step) => isSameDirectory(step, identity));
}

/**
 * The identity of the directory `dir` names beneath whatever is mounted over it (as the
 * directory entry in its parent holds it): looked up in a detached copy of the parent's mount
 * alone (open_tree without AT_RECURSIVE), where nothing is mounted. Freed when closed.
 */
export function identityBeneath(dir: string): DirectoryIdentity {
  return withFd(openDirectory(nodePath.dirname(dir)), (parent) =>
    withFd(openTree(parent, { clone: true, recursive: false }), (copy) =>
      withFd(openDirectory(nodePath.basename(dir), { dirFd: copy }), identityOf),
    ),
  );
}
