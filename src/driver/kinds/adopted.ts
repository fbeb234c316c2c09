/**
 * A volume that adopts an existing host directory (`-o path=`): the directory is made a shared
 * mount point of its own and bound at the volume's mount point, so that what is mounted in the
 * volume shows in the directory too. Nothing in the directory is ever deleted, and nothing
 * mounted in it is ever detached from it: the volume's view is made private before it goes.
 */
import { conflict, invalid, VolumeError } from '../../model/errors.js';
import { isWithin } from '../../model/paths.js';
import { StackedMountsError, type MountSource } from '../../system/mounts.js';
import { assertNoMountsWithin } from '../../system/safe-delete.js';
import { DEFAULT_RESERVED_PATHS } from '../config.js';
import { crashPoint } from '../crash-points.js';
import { storageError } from '../storage-error.js';
import {
  adoptedViewIsSound,
  assertNotForeignMountPoint,
  viewJoinsDirectory,
} from './adopted-peers.js';
import { type KindContext, type RecordOf, type VolumeKind } from './kind.js';

export function adoptedKind(ctx: KindContext): VolumeKind<'path'> {
  return {
    kind: 'path',
    // Adopted directories are checked against each other: one Create at a time.
    serialCreate: true,
    checkCreate: async (name, options) => {
      await assertAdoptable(ctx, name, options.path);
      await assertNotForeignMountPoint(ctx.mounts, name, options.path);
    },
    // The data is the host directory: the data root keeps only the record.
    dataDirectory: () => undefined,
    source: (record) => adoptedSource(ctx, record),
    mounted: async () => undefined,
    isSound: (record) => adoptedViewIsSound(ctx, record),
    inPeerGroup: (record, view) => viewJoinsDirectory(ctx.mounts, record.options.path, view),
    remove: (record) => removeAdopted(ctx, record),
    // In this view only: detaching it plainly would propagate to the directory's own mounts.
    undoCreate: async (name) => {
      await ctx.mounts.detachView(ctx.mountpoint(name));
    },
    // Reaping would reach the host directory's own mounts.
    reapsOnUnmount: () => false,
    status: (record) => ({ type: 'path', dataPath: record.options.path }),
  };
}

/**
 * A host directory may be adopted when it exists, is a directory, has no symlink on its way
 * (its real path is itself), stays clear of the driver's own directories and dockerd's (neither
 * in them nor around them), and overlaps no other volume's adopted directory.
 */
async function assertAdoptable(ctx: KindContext, name: string, dir: string): Promise<void> {
  const { config, mounts } = ctx;
  const refuse = (why: string) =>
    invalid(`volume ${JSON.stringify(name)}: option path=${JSON.stringify(dir)} ${why}`);
  if (config.hostPaths === false) {
    throw refuse(
      "is refused: the managed plugin does not see the host's directories; run the driver as a host process (sharedprop serve) to adopt one",
    );
  }
  const resolved = await mounts.resolveDirectory(dir);
  if (!resolved) throw refuse('does not exist; create the directory first');
  if (resolved.realPath !== dir) {
    throw refuse("has a symlink on its way; give the directory's real path");
  }
  if (!resolved.isDirectory) throw refuse('is not a directory');
  const own = [config.dataRoot, config.mountRoot, ctx.hostDataRoot()];
  for (const reserved of [...own, ...DEFAULT_RESERVED_PATHS, ...(config.reservedPaths ?? [])]) {
    const real = (await mounts.resolveDirectory(reserved))?.realPath ?? reserved;
    if (isWithin(dir, real) || isWithin(real, dir)) {
      throw refuse(
        own.includes(reserved)
          ? "overlaps the driver's own data root or mount root"
          : `overlaps ${reserved}, which dockerd or containerd own`,
      );
    }
  }
  for (const other of ctx.records()) {
    const theirs = other.options.kind === 'path' ? other.options.path : undefined;
    if (theirs !== undefined && (isWithin(dir, theirs) || isWithin(theirs, dir))) {
      throw conflict(
        `volume ${JSON.stringify(name)}: option path=${JSON.stringify(dir)} overlaps ${JSON.stringify(theirs)}, which volume ${JSON.stringify(other.name)} adopted; two volumes may not adopt the same or nested directories`,
      );
    }
  }
}

/**
 * Checked again at every (re)mount: a symlink put on its way since Create must not lead the bind
 * (mount(8) follows symlinks) to another directory.
 */
async function adoptedSource(ctx: KindContext, record: RecordOf<'path'>): Promise<MountSource> {
  const dir = record.options.path;
  const resolved = await ctx.mounts.resolveDirectory(dir);
  if (resolved?.realPath !== dir || !resolved.isDirectory) {
    throw new VolumeError(
      'unavailable',
      `volume ${JSON.stringify(record.name)}: its adopted directory ${JSON.stringify(dir)} ${resolved ? 'is now reached through a symlink or is no directory' : 'no longer exists'}; not mounted`,
    );
  }
  return { kind: 'adopt', directory: dir };
}

/**
 * Its mount point is detached first, in this view only (made private, so that no unmount
 * reaches the directory), then the record goes. A failure puts the mount point back; a kill
 * between the two steps leaves the volume whole (its record), and the next start mounts it
 * again. The trash holds the record only: the adopted directory is never in it.
 */
async function removeAdopted(ctx: KindContext, record: RecordOf<'path'>) {
  const { name } = record;
  const mountpoint = ctx.mountpoint(name);
  let detached: string[];
  let trash: string;
  try {
    try {
      detached = (await ctx.mounts.detachView(mountpoint)).detached;
      assertNoMountsWithin(await ctx.mounts.readAbout(mountpoint), mountpoint);
    } finally {
      ctx.snapshot.invalidate();
    }
    crashPoint('remove:detached');
    trash = await ctx.store.retire(name);
  } catch (error) {
    await ctx.ensureMounted(record).catch((again: unknown) =>
      ctx.log.error('could not put back the mount point of an adopted directory', {
        volume: name,
        error: String(again),
      }),
    );
    ctx.log.error('remove failed; the volume is back as it was', {
      volume: name,
      error: String(error),
    });
    if (error instanceof StackedMountsError) {
      // Detaching would unmount, through the directory's peer group, what the host put over it.
      throw conflict(
        `volume ${JSON.stringify(name)} not removed: something is mounted over its adopted directory ${JSON.stringify(record.options.path)} on the host (${error.count} mounts stacked); unmount it there first`,
      );
    }
    throw storageError(
      error,
      `volume ${JSON.stringify(name)} not removed; it is mounted and usable as before`,
    );
  }
  crashPoint('remove:retired');
  return {
    trash,
    message: 'volume removed; the adopted directory and what is mounted in it are kept',
    details: { path: record.options.path, detachedFromView: detached.length },
  };
}
