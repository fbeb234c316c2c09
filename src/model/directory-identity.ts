/**
 * A directory's identity, as the kernel gives it (statx: device, inode, birth time), and how a
 * recorded one is compared with the directory a name reaches now. Pure: no I/O here.
 */
import { z } from 'zod';

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
