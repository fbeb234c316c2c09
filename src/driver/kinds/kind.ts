/**
 * What differs between the kinds of volume (a directory in the data root, a tmpfs of its own, an
 * adopted host directory): one implementation per kind, one file each, found by `options.kind`.
 * Nothing outside src/driver/kinds decides anything by the kind.
 */
import type { Logger } from '../../log.js';
import type { VolumeKindName, VolumeOptions } from '../../model/options.js';
import type { VolumeRecord } from '../../model/record.js';
import type { VolumeStatus } from '../../model/status.js';
import type { DataDirectory, Store } from '../../state/volume-store.js';
import type { MountSnapshot } from '../../system/mount-snapshot.js';
import type { MountEntry } from '../../system/mountinfo.js';
import type { Mounts, MountSource } from '../../system/mounts.js';
import type { DriverConfig } from '../config.js';

/** What the kinds may use of the driver. */
export interface KindContext {
  readonly config: DriverConfig;
  readonly store: Store;
  readonly mounts: Mounts;
  readonly snapshot: MountSnapshot;
  readonly log: Logger;
  mountpoint(name: string): string;
  /** The data root as the host sees it (differs inside the managed plugin). */
  hostDataRoot(): string;
  /** Every volume known now. */
  records(): Iterable<VolumeRecord>;
  /** The kernel's id of this boot, when it could be read. */
  bootId(): string | undefined;
  /** Puts the volume's mount point back (used to undo a failed Remove). */
  ensureMounted(record: VolumeRecord): Promise<void>;
  /** Refuses the volume until the plugin restarts (a failure that could not be undone). */
  markBroken(name: string, reason: string): void;
}

export type OptionsOf<K extends VolumeKindName> = Extract<VolumeOptions, { kind: K }>;
export type RecordOf<K extends VolumeKindName> = VolumeRecord & { options: OptionsOf<K> };

/** A Remove done: where the volume's files now are (to discard), and what to log. */
export interface RemoveOutcome {
  trash: string;
  /**
   * The mounts within the trash, read once the volume was detached (the delete's check): when
   * given, the delete reads the table no more. Mounts made since are the delete helper's to
   * refuse (it never crosses one).
   */
  trashMounts?: readonly MountEntry[];
  message: string;
  details: Record<string, unknown>;
}

/** The Status fields that depend on the kind. */
export type KindStatus = Pick<VolumeStatus, 'type' | 'size' | 'dataPath'>;

export interface VolumeKind<K extends VolumeKindName = VolumeKindName> {
  readonly kind: K;
  /** Creates of this kind are checked against each other, so they run one at a time. */
  readonly serialCreate: boolean;
  /**
   * Checks at Create beyond the options' syntax; throws the answer to give. May return the
   * options to record (with what the check learnt, e.g. an adopted directory's identity).
   */
  checkCreate(name: string, options: OptionsOf<K>): Promise<OptionsOf<K> | void>;
  /** The data directory to make in the data root (owner, mode); none when the data is elsewhere. */
  dataDirectory(options: OptionsOf<K>): DataDirectory | undefined;
  /**
   * What to mount at the mount point; checked again at every (re)mount. A directory it holds
   * (`held`) is released by the caller once the mount is made or failed.
   */
  source(record: RecordOf<K>): Promise<MountSource>;
  /** At start-up, under the volume's lock: completes a record an older version wrote. */
  upgrade?(record: RecordOf<K>): Promise<void>;
  /** Told what was mounted (the mount at the mount point), once it is in place. */
  mounted(record: RecordOf<K>, top: MountEntry): Promise<void>;
  /** Whether the mount point shows the volume's data, once, shared. */
  isSound(record: RecordOf<K>): Promise<boolean>;
  /**
   * Whether `view` (the one shared mount at the mount point) is in the peer group it must share
   * (an adopted directory's); kinds whose mount has a group of its own leave this out.
   */
  inPeerGroup?(record: RecordOf<K>, view: MountEntry): Promise<boolean>;
  /** Takes the volume out of the store and detaches its mount point; undoes itself on failure. */
  remove(record: RecordOf<K>): Promise<RemoveOutcome>;
  /** Detaches the mount point of a Create that failed. */
  undoCreate(name: string): Promise<void>;
  /** Whether the last Unmount reaps the leaks below the mount point. */
  reapsOnUnmount(options: OptionsOf<K>): boolean;
  status(record: RecordOf<K>): KindStatus;
}

/**
 * The mount point is sound when the mount table (at most one snapshot period old) holds exactly
 * one shared mount there and the mount point shows `directory` (the same inode: cheap).
 */
export async function bindIsSound(
  ctx: KindContext,
  mountpoint: string,
  directory: string,
): Promise<boolean> {
  if (!(await ctx.mounts.showsDirectory(mountpoint, directory))) return false;
  const stack = await stackAt(ctx, mountpoint);
  return stack.length === 1 && (stack[0] as MountEntry).sharedGroup !== undefined;
}

/**
 * The mounts at `mountpoint`, bottom first: read now by identity where the mount layer can (no
 * table read, whatever its size), else from the snapshot (at most one snapshot period old).
 */
export async function stackAt(ctx: KindContext, mountpoint: string): Promise<MountEntry[]> {
  const byIdentity = await ctx.mounts.stackAt(mountpoint);
  if (byIdentity) return byIdentity;
  return (await ctx.snapshot.get()).entries.filter((e) => e.mountPoint === mountpoint);
}
