/**
 * Remove of a volume whose data is the driver's own (a directory in the data root, a tmpfs): out
 * of the store first (one rename: the step that fails on a read-only root), then everything at
 * and below its mount point is detached; a failure after the rename puts the volume back.
 */
import { conflict } from '../../model/errors.js';
import type { VolumeRecord } from '../../model/record.js';
import { aboutPath, isWithin, type MountEntry } from '../../system/mountinfo.js';
import { assertNoMountsWithin, MountBoundaryError } from '../../system/safe-delete.js';
import { crashPoint } from '../crash-points.js';
import { storageError } from '../storage-error.js';
import type { KindContext, RemoveOutcome } from './kind.js';

export async function removeRetiringFirst(
  ctx: KindContext,
  record: VolumeRecord,
): Promise<RemoveOutcome> {
  const { name } = record;
  let trash: string;
  try {
    trash = await ctx.store.retire(name);
  } catch (error) {
    throw storageError(error, `volume ${JSON.stringify(name)} not removed`);
  }
  crashPoint('remove:retired');
  const mountpoint = ctx.mountpoint(name);
  let detached: string[];
  let trashMounts: MountEntry[];
  try {
    ({ detached, trashMounts } = await detachEverything(ctx, mountpoint, trash));
  } catch (error) {
    await undoRemove(ctx, record, trash);
    ctx.log.error('remove failed while detaching; the volume is back as it was', {
      volume: name,
      error: String(error),
    });
    if (error instanceof MountBoundaryError) {
      throw conflict(
        `volume ${JSON.stringify(name)} not removed: a mount inside it could not be detached; it is mounted and usable as before`,
      );
    }
    throw storageError(
      error,
      `volume ${JSON.stringify(name)} not removed; it is mounted and usable as before`,
    );
  }
  crashPoint('remove:detached');
  return {
    trash,
    trashMounts,
    message: 'volume removed',
    details: { submountsDetached: detached.filter((p) => p !== mountpoint) },
  };
}

/**
 * Detaches the volume's mount point and everything beneath it, and any mount left in its files;
 * then proves that none is left. In the usual case the kernel tells, with no read of the mount
 * table: the mount point's mounts are found by identity, and a walk of the mount point and the
 * files by descriptor finds nothing mounted (mountsWithin). Otherwise (a mount found, a large
 * tree, mount(8)) from the table: read once, and again after detaching what is in the files.
 */
async function detachEverything(
  ctx: KindContext,
  mountpoint: string,
  files: string,
): Promise<{ detached: string[]; trashMounts: MountEntry[] }> {
  try {
    const below = await ctx.mounts.detachAll(mountpoint, { includeSelf: true });
    if (
      (await ctx.mounts.mountsWithin(mountpoint)) === 'none' &&
      (await ctx.mounts.mountsWithin(files)) === 'none'
    ) {
      return { detached: below.detached, trashMounts: [] };
    }
    const about = [aboutPath(mountpoint), aboutPath(files)];
    const read = () => ctx.mounts.read((line) => about.some((keep) => keep(line)));
    let entries = await read();
    let inFiles: string[] = [];
    if (entries.some((e) => isWithin(e.mountPoint, files))) {
      inFiles = (await ctx.mounts.detachAll(files, { includeSelf: false })).detached;
      entries = await read();
    }
    assertNoMountsWithin(entries, mountpoint);
    assertNoMountsWithin(entries, files);
    return { detached: [...below.detached, ...inFiles], trashMounts: [] };
  } finally {
    ctx.snapshot.invalidate();
  }
}

async function undoRemove(ctx: KindContext, record: VolumeRecord, trash: string): Promise<void> {
  try {
    await ctx.store.restore(trash, record.name);
    await ctx.ensureMounted(record);
  } catch (error) {
    ctx.markBroken(record.name, 'a failed Remove could not be undone');
    ctx.log.error(
      'could not undo a failed remove; the volume is refused until the plugin restarts',
      { volume: record.name, trash, error: String(error) },
    );
  }
}

/** Detaches the mount point of a failed Create, and everything beneath it. */
export async function detachMountPoint(ctx: KindContext, name: string): Promise<void> {
  await ctx.mounts.detachAll(ctx.mountpoint(name), { includeSelf: true });
}
