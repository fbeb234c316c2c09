/**
 * A directory's identity, as the kernel gives it (statx: device, inode, birth time), and how a
 * recorded one is compared with the directory a name reaches now. Pure: no I/O here.
 */
import { z } from 'zod';
import { isWithin } from './paths.js';

export interface DirectoryIdentity {
  /** The filesystem's device, major:minor. */
  device: string;
  /** The inode number, in decimal. */
  ino: string;
  /**
   * Birth time (`seconds.nanoseconds`) where the filesystem keeps one: it tells a new directory
   * from an old one whose inode number it reuses, and survives a reboot (a device number may not).
   */
  btime?: string;
}

/**
 * A place inside one filesystem: its device, and the path from that filesystem's root (as the
 * kernel gives a mount's root: statmount, or mountinfo's 4th field). No bind mount changes it.
 */
export interface FsPlace {
  device: string;
  path: string;
}

/**
 * What is known of a directory and everything above it: the identities on its way up (as `..`
 * leads, across mount points) and, for each mount on that way whose root is not its
 * filesystem's root (a bind of a subdirectory), where that root lies in its filesystem: the
 * directories above such a root are on no name's way up, and are compared by place.
 */
export interface DirectoryAncestry {
  readonly identity: DirectoryIdentity;
  readonly lineage: readonly DirectoryIdentity[];
  /** Where the directory itself lies in its filesystem; undefined when that is not known. */
  readonly place?: FsPlace;
  readonly boundRoots: readonly FsPlace[];
}

/** An identity as a volume record keeps it: with the boot it was taken in. */
export interface RecordedIdentity extends DirectoryIdentity {
  boot?: string;
}

export const recordedIdentitySchema = z
  .object({
    device: z.string().regex(/^\d+:\d+$/),
    ino: z.string().regex(/^\d+$/),
    btime: z
      .string()
      .regex(/^-?\d+\.\d{9}$/)
      .optional(),
    boot: z.string().min(1).optional(),
  })
  .strict();

/** The same directory: same device and inode, and the same birth time where both have one. */
export function isSameDirectory(a: DirectoryIdentity, b: DirectoryIdentity): boolean {
  if (a.device !== b.device || a.ino !== b.ino) return false;
  return a.btime === undefined || b.btime === undefined || a.btime === b.btime;
}

/**
 * Whether the directory a name reaches now (`now`, in boot `bootId`) is the one recorded. Within
 * one boot: the same device, inode and birth time. After a reboot the device number of a
 * filesystem may change (disks are numbered as they appear): the inode and the birth time must
 * then both match; without a birth time the device must too.
 */
export function isRecordedDirectory(
  recorded: RecordedIdentity,
  now: DirectoryIdentity,
  bootId: string | undefined,
): boolean {
  if (isSameDirectory(recorded, now)) return true;
  const rebooted = recorded.boot !== undefined && bootId !== undefined && recorded.boot !== bootId;
  return (
    rebooted &&
    recorded.ino === now.ino &&
    recorded.btime !== undefined &&
    recorded.btime === now.btime
  );
}

/** An identity as messages show it. */
export function describeIdentity(identity: DirectoryIdentity): string {
  return `device ${identity.device}, inode ${identity.ino}`;
}

/**
 * Whether `inner` is `outer` or lies beneath it: `outer` is on its way up, or (through a bind of
 * a subdirectory) one of its mounts is rooted at or beneath where `outer` lies in the same
 * filesystem.
 */
export function liesWithin(
  inner: Pick<DirectoryAncestry, 'lineage' | 'boundRoots'>,
  outer: Pick<DirectoryAncestry, 'identity' | 'place'>,
): boolean {
  if (inner.lineage.some((step) => isSameDirectory(step, outer.identity))) return true;
  const place = outer.place;
  return (
    place !== undefined &&
    inner.boundRoots.some((root) => root.device === place.device && isWithin(root.path, place.path))
  );
}
