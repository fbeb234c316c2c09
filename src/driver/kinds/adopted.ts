/**
 * A volume that adopts an existing host directory (`-o path=`): the directory is made a shared
 * mount point of its own and bound at the volume's mount point, so that what is mounted in the
 * volume shows in the directory too. Nothing in the directory is ever deleted, and nothing
 * mounted in it is ever detached from it: the volume's view is made private before it goes.
 */
import { describeIdentity, isRecordedDirectory } from '../../model/directory-identity.js';
import { conflict, VolumeError } from '../../model/errors.js';
import type { HeldDirectory } from '../../system/held-directory.js';
import { mountsAt } from '../../system/mountinfo.js';
import { StackedMountsError, type MountSource } from '../../system/mounts.js';
import { assertNoMountsWithin } from '../../system/safe-delete.js';
import { crashPoint } from '../crash-points.js';
import { storageError } from '../storage-error.js';
import {
  adoptedViewIsSound,
  assertNotForeignMountPoint,
  viewJoinsDirectory,
} from './adopted-peers.js';
import { holdAdoptable, openFailure } from './adoption-check.js';
import { type KindContext, type RecordOf, type VolumeKind } from './kind.js';

export function adoptedKind(ctx: KindContext): VolumeKind<'path'> {
  /** The directory a Create checked, held until its bind is made (Creates of this kind are serial). */
  const checked = new Map<string, HeldDirectory>();
  const forget = (name: string) => {
    checked.get(name)?.release();
    checked.delete(name);
  };
  return {
    kind: 'path',
    // Adopted directories are checked against each other: one Create at a time.
    serialCreate: true,
    checkCreate: async (name, options) => {
      // A Create that failed before its bind left its descriptor: Creates are serial, so any
      // still held is stale.
      for (const stale of [...checked.keys()]) forget(stale);
      const held = await holdAdoptable(ctx, name, options);
      try {
        await assertNotForeignMountPoint(ctx.mounts, name, options.path, held);
      } catch (error) {
        held.release();
        throw error;
      }
      checked.set(name, held);
      return { ...options, identity: { ...held.identity, ...bootOf(ctx) } };
    },
    // The data is the host directory: the data root keeps only the record.
    dataDirectory: () => undefined,
    source: async (record) => {
      const held = checked.get(record.name);
      checked.delete(record.name);
      return adoptedSource(ctx, record, held);
    },
    mounted: async () => undefined,
    upgrade: (record) => upgradeRecord(ctx, record),
    isSound: (record) => adoptedViewIsSound(ctx, record),
    inPeerGroup: (record, view) => viewJoinsDirectory(ctx.mounts, record.options.path, view),
    remove: (record) => removeAdopted(ctx, record),
    // In this view only: detaching it plainly would propagate to the directory's own mounts.
    undoCreate: async (name) => {
      forget(name);
      await ctx.mounts.detachView(ctx.mountpoint(name));
    },
    // Reaping would reach the host directory's own mounts.
    reapsOnUnmount: () => false,
    status: (record) => ({ type: 'path', dataPath: record.options.path }),
  };
}

/**
 * A record written before identities were kept takes the directory's current one (logged), and
 * is saved with it; a data root that cannot be written keeps it in memory until the next start.
 */
async function recordIdentity(
  ctx: KindContext,
  record: RecordOf<'path'>,
  held: HeldDirectory,
): Promise<void> {
  record.options.identity = { ...held.identity, ...bootOf(ctx) };
  const details = {
    volume: record.name,
    path: record.options.path,
    identity: describeIdentity(held.identity),
  };
  ctx.log.warn(
    'adopted directory had no recorded identity (an older record); took its current one',
    details,
  );
  await ctx.store.saveRecord(record).catch((error: unknown) =>
    ctx.log.error('could not save the identity of an adopted directory', {
      ...details,
      error: String(error),
    }),
  );
}

/** At start-up: a record without an identity takes it now (see recordIdentity). */
async function upgradeRecord(ctx: KindContext, record: RecordOf<'path'>): Promise<void> {
  if (record.options.identity !== undefined) return;
  let held: HeldDirectory;
  try {
    held = await ctx.mounts.holdDirectory(record.options.path);
  } catch (error) {
    ctx.log.warn(
      'could not take the identity of an adopted directory; it is taken at its next mount',
      {
        volume: record.name,
        path: record.options.path,
        error: String(error),
      },
    );
    return;
  }
  try {
    await recordIdentity(ctx, record, held);
  } finally {
    held.release();
  }
}

function bootOf(ctx: KindContext): { boot?: string } {
  const boot = ctx.bootId();
  return boot === undefined ? {} : { boot };
}

/**
 * Checked again at every (re)mount, by identity: the directory the path reaches now (held by
 * descriptor, no symlink on its way) must be the one recorded at Create; one replaced since
 * (`umount; mv; mkdir`) is never served in its place. The bind is made through the descriptor.
 * A record from before identities were kept takes the directory's now (logged).
 */
async function adoptedSource(
  ctx: KindContext,
  record: RecordOf<'path'>,
  checked: HeldDirectory | undefined,
): Promise<MountSource> {
  const dir = record.options.path;
  const unavailable = (why: string) =>
    new VolumeError(
      'unavailable',
      `volume ${JSON.stringify(record.name)}: its adopted directory ${JSON.stringify(dir)} ${why}; not mounted`,
    );
  let held = checked;
  if (!held) {
    try {
      held = await ctx.mounts.holdDirectory(dir);
    } catch (error) {
      const why = openFailure(error);
      if (why === undefined) throw error;
      throw unavailable(
        why === 'has a symlink on its way' ? 'is now reached through a symlink' : `${why} now`,
      );
    }
  }
  const recorded = record.options.identity;
  if (recorded === undefined) {
    await recordIdentity(ctx, record, held);
  } else if (!isRecordedDirectory(recorded, held.identity, ctx.bootId())) {
    held.release();
    const beneath = await ctx.mounts.identityBeneath(dir).catch(() => undefined);
    if (beneath && isRecordedDirectory(recorded, beneath, ctx.bootId())) {
      // The host mounted something over the directory (it is still there, beneath): a view still
      // there shows it, and is kept as it is. Without one, nothing is done by the name, which no
      // longer reaches the directory (and a rename could make it reach another).
      const mountpoint = ctx.mountpoint(record.name);
      if (mountsAt(await ctx.mounts.readAbout(mountpoint), mountpoint).length === 0) {
        throw unavailable(
          'is covered by a mount the host made over it, and the volume no longer shows it; unmount that mount on the host, then use the volume again',
        );
      }
      ctx.log.warn('something is mounted over the adopted directory on the host', {
        volume: record.name,
        path: dir,
      });
      return { kind: 'adopt', directory: dir, keepView: true };
    }
    throw unavailable(
      `was replaced: it is no longer the directory adopted at Create (${describeIdentity(recorded)}), it is ${describeIdentity(held.identity)} (unmounted, moved away and made anew?); put the original back there, or remove the volume and create it again`,
    );
  }
  return { kind: 'adopt', directory: dir, held };
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
