/**
 * Reaping at the last Unmount (`reap=on-unmount`): the volume's last mount ID is gone, so no
 * container holds it: a submount of a container's root filesystem (a bind of its /etc, say) pins
 * a container that no longer runs, and is detached, deepest first. Everything else stays:
 * namespace files (nsfs) and other kernel objects must outlive their maker, and tmpfs, FUSE or
 * NFS mounts belong to no container. A leak with anything that must stay beneath it is kept
 * whole. A failure is logged; the Unmount itself has succeeded.
 */
import type { Logger } from '../log.js';
import { isWithin } from '../model/paths.js';
import { leakReason, noneRunningIn } from '../system/leaks.js';
import type { MountSnapshot } from '../system/mount-snapshot.js';
import { mountsBelow, type MountEntry } from '../system/mountinfo.js';
import type { DetachReport, Mounts } from '../system/mounts.js';

export interface Leak {
  entry: MountEntry;
  reason: string;
}

/**
 * The leaks among the mounts below `mountpoint`, deepest first: those `leakReason` judges
 * leaked, without anything kept beneath them.
 */
export function leaksBelow(
  entries: readonly MountEntry[],
  mountpoint: string,
  engineStorage?: readonly string[],
): Leak[] {
  const running = noneRunningIn(engineStorage);
  const below = mountsBelow(entries, mountpoint).map((entry) => ({
    entry,
    reason: leakReason(entry, running),
  }));
  const kept = below.filter((m) => m.reason === undefined).map((m) => m.entry.mountPoint);
  return below.filter(
    (m): m is Leak => m.reason !== undefined && !kept.some((p) => isWithin(p, m.entry.mountPoint)),
  );
}

export class Reaper {
  constructor(
    private readonly mounts: Mounts,
    private readonly snapshot: MountSnapshot,
    private readonly log: Logger,
    /** Engine storage roots: an overlay is a container's root only with its upper in one. */
    private readonly engineStorage?: readonly string[],
  ) {}

  /** Detaches each leak below the mount point; one that cannot be detached stops none of the others. */
  async reap(name: string, mountpoint: string): Promise<void> {
    try {
      const leaks = leaksBelow(
        await this.mounts.readAbout(mountpoint),
        mountpoint,
        this.engineStorage,
      );
      for (const { entry, reason } of leaks) {
        const where = { volume: name, path: entry.mountPoint.slice(mountpoint.length) };
        let report: DetachReport;
        try {
          report = await this.mounts.detachAll(entry.mountPoint, { includeSelf: true });
        } catch (error) {
          this.log.error('could not reap a leaked submount', { ...where, error: String(error) });
          continue;
        }
        if (report.detached.length === 0) continue;
        this.log.warn('reaped a submount left by a container that no longer runs', {
          ...where,
          fsType: entry.fsType,
          source: entry.source,
          reason,
          lazy: report.lazy.length > 0,
        });
      }
    } catch (error) {
      this.log.error('could not reap the leaked submounts of a volume', {
        volume: name,
        error: String(error),
      });
    } finally {
      this.snapshot.invalidate();
    }
  }
}
