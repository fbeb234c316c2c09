/**
 * What the driver needs of a mount layer (the `Mounts` interface), the shapes it speaks in, and
 * the errors it throws: shared by MountSystem (mount(8), mounts.ts), SyscallMounts (system calls,
 * syscall-mounts.ts) and the unit tests' fake.
 */
import type { MountsWithin } from './mounts-within.js';
import type { DirectoryIdentity } from '../model/directory-identity.js';
import type { HeldDirectory } from './held-directory.js';
import type { MountReader } from './mount-snapshot.js';
import { MountinfoReader, mountsAt, readMountinfo, type MountEntry } from './mountinfo.js';
export type SharedMode = 'rshared' | 'shared';

/** What a volume's mount point shows: a directory bound there, a tmpfs, or an adopted directory. */
export type MountSource =
  | { kind: 'bind'; directory: string }
  /** `options`: mount(8) options, e.g. `nosuid,nodev,mode=0755,size=64m`. */
  | { kind: 'tmpfs'; options: string }
  /**
   * A host directory adopted as it is: made a shared mount point of its own, and bound at the
   * target in its peer group, so that what is mounted in the volume shows in the directory too.
   */
  | {
      kind: 'adopt';
      directory: string;
      /**
       * The directory as it was checked, held by descriptor: the bind is made through it, so
       * nothing swapped at the name since (a rename, a symlink) can redirect it.
       */
      held?: HeldDirectory;
      /**
       * The host mounted something over the directory and the volume's view is there: the view
       * is kept as it is and nothing is done by the directory's name (it no longer reaches the
       * directory).
       */
      keepView?: true;
    };

/** A host directory as the kernel resolves it (symlinks followed). */
/** A view that cannot be detached without reaching the directory it shows: mounts are stacked. */
export class StackedMountsError extends Error {
  constructor(readonly count: number) {
    super(`${count} mounts are stacked at the mount point`);
  }
}

/**
 * A directory to adopt that is already a mount point, but not a shared one: someone else's mount
 * (an operator's private bind, a tmpfs). Making it shared would change what is not the driver's.
 */
export class ForeignMountPointError extends Error {
  /** `propagation`: the mount's, or `detached` when it left the mount table since it was held. */
  constructor(
    readonly directory: string,
    readonly propagation: string,
  ) {
    super(
      propagation === 'detached'
        ? `${directory} was unmounted while sharedprop held it`
        : `${directory} is a ${propagation} mount point that sharedprop did not make`,
    );
  }
}

/** True when a view (the one mount at a volume's mount point) is in none of the directory's groups. */
export function isCutOff(
  view: readonly { sharedGroup?: number }[],
  directory: readonly { sharedGroup?: number }[],
): boolean {
  const [only] = view;
  return view.length === 1 && !directory.some((d) => d.sharedGroup === only?.sharedGroup);
}

export interface ResolvedDirectory {
  realPath: string;
  isDirectory: boolean;
}

export interface MountTable {
  /** The mount table, or only the lines `keep` accepts. */
  read(keep?: (line: string) => boolean): Promise<MountEntry[]>;
  /** For repeated reads of the same lines: one that may skip the parse when nothing changed. */
  reader(keep: (line: string) => boolean): MountReader;
}

const MOUNTINFO = '/proc/self/mountinfo';

export const procMountTable: MountTable = {
  read: (keep) => readMountinfo(MOUNTINFO, keep),
  reader: (keep) => new MountinfoReader(MOUNTINFO, keep),
};

export interface DetachReport {
  /** Mount points detached, deepest first. */
  detached: string[];
  /** Those that were busy and had to be detached lazily. */
  lazy: string[];
}

/** What the driver needs of the mount table and of mount point directories (faked in unit tests). */
export interface Mounts {
  read(keep?: (line: string) => boolean): Promise<MountEntry[]>;
  readAbout(dir: string): Promise<MountEntry[]>;
  /**
   * For questions asked again and again (the driver's snapshot): reads what readAbout(dir) does,
   * returning the same, frozen array while the table has not changed.
   */
  readerAbout(dir: string): MountReader;
  /**
   * The mounts at `mountpoint` (bottom of the stack first), read now by identity without the
   * mount table; undefined when this layer can only tell from the table (the driver's snapshot
   * answers then). A path that is no directory, or leads through a symlink, has none.
   */
  stackAt(mountpoint: string): Promise<MountEntry[] | undefined>;
  ensureSharedMount(source: MountSource, target: string, mode: SharedMode): Promise<MountEntry>;
  detachAll(dir: string, options: { includeSelf: boolean }): Promise<DetachReport>;
  /**
   * Detaches the mount at `mountpoint` and everything beneath it in this view only: they are made
   * private first, so that no unmount propagates to the peers (an adopted directory keeps its
   * own submounts, namespace files included).
   */
  detachView(mountpoint: string): Promise<DetachReport>;
  /** Where `dir` really is, and whether it is a directory; undefined when it does not exist. */
  resolveDirectory(dir: string): Promise<ResolvedDirectory | undefined>;
  /**
   * Opens the directory `dir` names, no symlink on its way, and takes its identity and those of
   * the directories above it (held-directory.ts); errors carry ENOENT, ELOOP or ENOTDIR.
   * `places`: also where it and the mounts on its way up lie in their filesystems (what adoption
   * compares; a mountinfo read on the fallback layers), else those are left empty.
   */
  holdDirectory(dir: string, places?: boolean): Promise<HeldDirectory>;
  /**
   * Refuses (ForeignMountPointError) a held directory that is the root of a mount that is not
   * shared: someone else's, which adopting would make shared. Decided through the descriptor
   * (its mount's ID), so a name swapped since it was held changes nothing.
   */
  refuseForeignMountPoint(held: HeldDirectory): Promise<void>;
  /** The identity of the directory `dir` names beneath whatever is mounted over it. */
  identityBeneath(dir: string): Promise<DirectoryIdentity>;
  /** True when `mountpoint` shows the directory `source` (the same inode): a cheap health check. */
  showsDirectory(mountpoint: string, source: string): Promise<boolean>;
  /** True when `mountpoint` shows the filesystem `device` (major:minor): a cheap health check. */
  showsDevice(mountpoint: string, device: string): Promise<boolean>;
  /**
   * Whether anything is mounted at or within `dir` now, told without the mount table where the
   * layer can (mounts-within.ts: a walk of a small tree by descriptor); `unknown` where it cannot
   * (a large tree, mount(8)): the caller reads the table then.
   */
  mountsWithin(dir: string): Promise<MountsWithin>;
  /** Removes an empty mount point directory; never anything else (rmdir). */
  removeMountPoint(mountpoint: string): Promise<void>;
  /** Makes the mount root and writes `file` (name, content) into it. */
  prepareMountRoot(root: string, file: { name: string; content: string }): Promise<void>;
  /**
   * Makes the mount at `dir` and everything beneath it private in this mount namespace, when
   * `dir` is a mount point that is shared or a slave; true when it changed anything. Other
   * namespaces' copies are not touched.
   */
  privatizeMountPoint(dir: string): Promise<boolean>;
}

/** The top of the mounts at `target`, kept as it is (an adopt source's `keepView`). */
export async function viewKeptAsItIs(
  mounts: Pick<Mounts, 'readAbout'>,
  target: string,
): Promise<MountEntry> {
  const top = mountsAt(await mounts.readAbout(target), target).at(-1);
  if (!top) throw new Error(`the view at ${target} is gone`);
  return top;
}
