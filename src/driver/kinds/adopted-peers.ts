/**
 * An adopted directory's view and the directory share one peer group: that is what makes a
 * mount in the volume show in the directory. A view cut off from it (a kill between the two
 * steps of a Remove leaves it private; an older restart made it shared in a group of its own)
 * reaches no one: it is never called sound, and never reported `shared`. And a directory that is
 * already a mount point is adopted only when it is shared: the driver never makes shared what it
 * did not make.
 */
import { conflict, invalid } from '../../model/errors.js';
import type { HeldDirectory } from '../../system/held-directory.js';
import { mountsAt, type MountEntry } from '../../system/mountinfo.js';
import { ForeignMountPointError, isCutOff, type Mounts } from '../../system/mounts.js';
import { bindIsSound, type KindContext, type RecordOf } from './kind.js';

/** Whether `view` (the one mount at the volume's mount point) is in the directory's peer group. */
export async function viewJoinsDirectory(
  mounts: Mounts,
  directory: string,
  view: MountEntry,
): Promise<boolean> {
  return !isCutOff([view], mountsAt(await mounts.readAbout(directory), directory));
}

/** Sound as any bind (one shared mount showing the directory), and in the directory's group. */
export async function adoptedViewIsSound(
  ctx: KindContext,
  record: RecordOf<'path'>,
): Promise<boolean> {
  const mountpoint = ctx.mountpoint(record.name);
  if (!(await bindIsSound(ctx, mountpoint, record.options.path))) return false;
  const view = (await ctx.snapshot.get()).entries.find((e) => e.mountPoint === mountpoint);
  return view !== undefined && viewJoinsDirectory(ctx.mounts, record.options.path, view);
}

/**
 * Refuses (400) a directory that is a mount point but not a shared one: an operator's private
 * bind, a tmpfs. Adopting it would make it shared, and keep it so after Remove. Decided on the
 * held directory (by descriptor), not on what its name shows now.
 */
export async function assertNotForeignMountPoint(
  mounts: Mounts,
  name: string,
  dir: string,
  held: HeldDirectory,
): Promise<void> {
  try {
    await mounts.refuseForeignMountPoint(held);
  } catch (error) {
    if (!(error instanceof ForeignMountPointError)) throw error;
    if (error.propagation === 'detached') {
      throw conflict(
        `volume ${JSON.stringify(name)}: option path=${JSON.stringify(dir)} was a mount point unmounted while it was checked; try again`,
      );
    }
    throw invalid(
      `volume ${JSON.stringify(name)}: option path=${JSON.stringify(dir)} is a ${error.propagation} mount point that sharedprop did not make, and adopting it would make it shared; make it shared yourself (mount --make-shared ${dir}) or adopt a directory that is no mount point`,
    );
  }
}
