/**
 * Directories held by descriptor, and known by identity: a name is resolved once (openat2, no
 * symlink and no magic link anywhere on the way), and everything decided about it is decided
 * through that descriptor: its identity (statx), and those of every directory above it, found by
 * walking `..` from descriptor to descriptor as the kernel resolves it (across mount points, up
 * to the process's root). A bind mount gives a directory many names, never another identity.
 * A bind of a subdirectory hides what lies above its root in its filesystem from that walk: the
 * mounts on the way are read too (statmount by ID, or mountinfo once on older kernels), and the
 * roots of those bound from a subdirectory are kept as places in their filesystem.
 */
import { readFileSync } from 'node:fs';
import nodePath from 'node:path';
import type { DirectoryAncestry, DirectoryIdentity, FsPlace } from '../model/directory-identity.js';
import { isSameDirectory } from '../model/directory-identity.js';
import { isWithin } from '../model/paths.js';
import { close, openDirectory, openTree, statx, withFd, type Statx } from './kernel/calls.js';
import { STATX_MNT_ID, STATX_MNT_ID_UNIQUE } from './kernel/constants.js';
import { statmountIfAny } from './kernel/statmount.js';
import { parseMountinfo } from './mountinfo.js';

/** Deeper than this, a walk up is refused rather than followed (PATH_MAX allows ~2,000). */
export const MAX_DEPTH = 4096;

export interface HeldDirectory extends DirectoryAncestry {
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
  return identityIn(statx(fd));
}

function identityIn(stat: Statx): DirectoryIdentity {
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
  return walkUp(fd, true).map((step) => step.identity);
}

interface Step {
  identity: DirectoryIdentity;
  /** The ID of its mount: the unique one where asked for and known, else mountinfo's. */
  mount?: bigint | number;
}

function stepOf(fd: number, unique: boolean): Step {
  const stat = statx(fd, '', unique);
  // Before 5.8 statx has no mount ID: the identities alone decide.
  if ((stat.mask & (STATX_MNT_ID | STATX_MNT_ID_UNIQUE)) === 0)
    return { identity: identityIn(stat) };
  return { identity: identityIn(stat), mount: stat.uniqueMountId ?? stat.mountId };
}

function walkUp(fd: number, unique: boolean): Step[] {
  const steps = [stepOf(fd, unique)];
  let current = openDirectory('.', { dirFd: fd });
  try {
    while (steps.length <= MAX_DEPTH) {
      const parent = openDirectory('..', { dirFd: current });
      close(current);
      current = parent;
      const step = stepOf(parent, unique);
      if (isSameDirectory(step.identity, (steps.at(-1) as Step).identity)) return steps;
      steps.push(step);
    }
  } finally {
    close(current);
  }
  throw new Error(`a directory more than ${MAX_DEPTH} levels deep`);
}

/** A mount as far as places go: its filesystem, the root it shows of it, and where it is. */
interface MountRoot {
  device: string;
  root: string;
  mountPoint: string;
}

/**
 * How the mounts on a walk up are read: by statmount (6.8+: the steps carry unique mount IDs),
 * or from one read of mountinfo (the steps carry its IDs).
 */
export type MountReading = 'statmount' | 'mountinfo';

function mountRoots(steps: readonly Step[], reading: MountReading): Map<Step['mount'], MountRoot> {
  const found = new Map<Step['mount'], MountRoot>();
  if (reading === 'statmount') {
    for (const { mount } of steps) {
      if (typeof mount !== 'bigint' || found.has(mount)) continue;
      const stat = statmountIfAny(mount);
      if (stat)
        found.set(mount, { device: stat.device, root: stat.root, mountPoint: stat.mountPoint });
    }
    return found;
  }
  const wanted = new Set(steps.map((step) => step.mount));
  for (const entry of parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))) {
    if (wanted.has(entry.id)) found.set(entry.id, entry);
  }
  return found;
}

/**
 * Where `path` (the directory of the first step) lies in its filesystem, and the roots of the
 * mounts on its way up that are bound from a subdirectory. A mount that cannot be read any more
 * (gone meanwhile) adds nothing: the identities still decide what they can.
 */
function placesOf(
  path: string,
  steps: readonly Step[],
  reading: MountReading,
): Pick<DirectoryAncestry, 'place' | 'boundRoots'> {
  const roots = mountRoots(steps, reading);
  const boundRoots: FsPlace[] = [];
  for (const root of roots.values()) {
    if (root.root !== '/') boundRoots.push({ device: root.device, path: root.root });
  }
  const own = roots.get(steps[0]?.mount);
  if (!own || !isWithin(path, own.mountPoint)) return { place: undefined, boundRoots };
  const place = nodePath.join(own.root, nodePath.relative(own.mountPoint, path));
  return { place: { device: own.device, path: place }, boundRoots };
}

/**
 * Opens the directory `path` names (absolute; no symlink on the way: ELOOP; no directory:
 * ENOTDIR; missing: ENOENT, as KernelErrors) and takes its identity and lineage, and with a
 * `reading`, its places (else none: no place, no bound roots).
 */
export function holdDirectory(path: string, reading?: MountReading): HeldDirectory {
  const fd = openDirectory(path);
  try {
    let open = true;
    const release = () => {
      if (open) close(fd);
      open = false;
    };
    const steps = walkUp(fd, reading === 'statmount');
    const lineage = steps.map((step) => step.identity);
    const identity = lineage[0] as DirectoryIdentity;
    const places = reading ? placesOf(path, steps, reading) : { boundRoots: [] };
    return { fd, path, identity, lineage, ...places, release };
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
