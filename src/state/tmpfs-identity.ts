/**
 * The identity of a tmpfs the driver mounted for a volume, in `tmpfs.json` in the volume's
 * directory: recorded at each mount, so that start-up can recognise the tmpfs as its own after
 * a Remove was killed half-way (the file moves with the volume's directory into the trash).
 * The kernel reuses device numbers and mount IDs only after an unmount, and none of them means
 * anything after a reboot: all three must match.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';

export const TMPFS_IDENTITY_FILE = 'tmpfs.json';

const identitySchema = z.object({
  bootId: z.string().min(1),
  /** major:minor of the tmpfs. */
  device: z.string().regex(/^\d+:\d+$/),
  mountId: z.number().int().nonnegative(),
});

export type TmpfsIdentity = z.infer<typeof identitySchema>;

/** Atomic (whole or absent), without fsync: it only means something within this boot. */
export async function writeTmpfsIdentity(dir: string, identity: TmpfsIdentity): Promise<void> {
  await writeFileAtomic(path.join(dir, TMPFS_IDENTITY_FILE), JSON.stringify(identity) + '\n', {
    mode: 0o600,
    fsync: false,
  });
}

/** The identity recorded in `dir`; undefined when there is none or it is unreadable. */
export async function readTmpfsIdentity(dir: string): Promise<TmpfsIdentity | undefined> {
  try {
    const text = await readFile(path.join(dir, TMPFS_IDENTITY_FILE), 'utf8');
    const parsed = identitySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `identity` is that of the mount `mount` (device and ID) in the boot `bootId`. */
export function isSameTmpfs(
  identity: TmpfsIdentity | undefined,
  mount: { device: string; id: number },
  bootId: string | undefined,
): boolean {
  return (
    identity !== undefined &&
    bootId !== undefined &&
    identity.bootId === bootId &&
    identity.device === mount.device &&
    identity.mountId === mount.id
  );
}
