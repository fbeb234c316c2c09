/**
 * Start-up: loads the volumes, voids counts of an earlier boot, detaches what a killed Remove
 * left mounted, and puts back every volume's mount point once (within `restoreInlineMs`, the
 * rest in the background). Leftovers of interrupted Creates and Removes are only collected here,
 * and deleted by `deleteLeftovers()` once the socket listens. The caller holds the data root's
 * lock.
 */
import path from 'node:path';
import type { Logger } from '../log.js';
import { MOUNT_ROOT_MARKER } from '../mount-root-marker.js';
import type { VolumeRecord } from '../model/record.js';
import { isSameTmpfs } from '../state/tmpfs-identity.js';
import type { Store } from '../state/volume-store.js';
import { hostPathOf, mountsAt, propagationOf, type MountEntry } from '../system/mountinfo.js';
import type { Mounts } from '../system/mounts.js';
import type { DriverConfig } from './config.js';
import type { CountsLedger } from './counts-ledger.js';
import type { VolumeRegistry } from './registry.js';
import { volumeOfMount } from './status-view.js';

/** What start-up found, for the rest of the driver. */
export interface RuntimeState {
  readOnly: boolean;
  /** The data root as the host sees it (differs inside the managed plugin). */
  hostDataRoot: string;
  /** The kernel's id of this boot, when it could be read. */
  bootId?: string;
}

/** What recovery needs of the driver's mount points (see SharedpropDriver). */
export interface MountPointKeeper {
  isSound(record: VolumeRecord): Promise<boolean>;
  ensureMounted(record: VolumeRecord): Promise<void>;
  /** False when `view`, the one shared mount at the mount point, is cut off from its peer group. */
  inPeerGroup(record: VolumeRecord, view: MountEntry): Promise<boolean>;
  /** Runs `work` under the volume's lock. */
  exclusive<T>(name: string, work: () => Promise<T>): Promise<T>;
}

export class StartupRecovery {
  /** Leftovers of interrupted or failed deletions, deleted in the background. */
  private readonly leftovers = new Set<string>();
  /** Start-up's restoration of mount points; it may go on after start() returned. */
  private restoring: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: DriverConfig,
    private readonly store: Store,
    private readonly mounts: Mounts,
    private readonly registry: VolumeRegistry,
    private readonly ledger: CountsLedger,
    private readonly keeper: MountPointKeeper,
    private readonly state: RuntimeState,
    private readonly log: Logger,
  ) {}

  private mountpoint(name: string): string {
    return path.join(this.config.mountRoot, name);
  }

  async start(): Promise<void> {
    const { config, log } = this;
    if (config.privateDataRoot && (await this.mounts.privatizeMountPoint(config.dataRoot))) {
      log.info('made the data root private in the plugin', { dataRoot: config.dataRoot });
    }
    await this.store.init();
    this.state.readOnly = !(await this.store.writable());
    if (this.state.readOnly) {
      log.warn(
        'the data root is read-only: serving read-only (Create and Remove are refused; Mount and Unmount count in memory)',
        { dataRoot: config.dataRoot },
      );
    }
    await this.mounts
      .prepareMountRoot(config.mountRoot, {
        name: MOUNT_ROOT_MARKER,
        content: JSON.stringify({ dataRoot: config.dataRoot }) + '\n',
      })
      .catch((error: unknown) =>
        log.warn('could not write the mount-root marker', { error: String(error) }),
      );
    const boot = await this.store.bootChange(
      config.bootIdFile ?? '/proc/sys/kernel/random/boot_id',
    );
    this.state.bootId = boot.current;
    const loaded = await this.store.loadAll({ counts: !boot.rebooted });
    for (const bad of loaded.broken) {
      this.registry.markBroken(bad);
      log.error('volume state unreadable; volume skipped', {
        volume: bad.name,
        file: bad.file,
        reason: bad.reason,
      });
    }
    for (const leftover of loaded.leftovers) this.leftovers.add(leftover);
    for (const record of loaded.records) this.registry.set(record);
    for (const { name, mountIds } of loaded.voided) {
      // The host rebooted: every container that held the volume is gone, and dockerd will not
      // send the Unmounts. Keeping the counts would refuse Remove for ever.
      log.warn('host rebooted since the last start: mount counts reset', {
        volume: name,
        mountIds,
      });
      this.ledger.write(name);
    }
    const entries = await this.mounts.read();
    await this.detachOrphans(entries);
    const toRestore: VolumeRecord[] = [];
    for (const record of loaded.records) {
      const stack = mountsAt(entries, this.mountpoint(record.name));
      const [view] = stack;
      const shared = stack.length === 1 && propagationOf(view as MountEntry).startsWith('shared');
      // A view cut off from the peer group it must share (an adopted directory's) is joined again.
      if (!shared || !(await this.keeper.inPeerGroup(record, view as MountEntry))) {
        toRestore.push(record);
      }
    }
    if (!this.state.readOnly) {
      await boot
        .record()
        .catch((error: unknown) =>
          log.warn('could not record the boot id', { error: String(error) }),
        );
    }
    this.state.hostDataRoot = hostPathOf(entries, config.dataRoot, config.hostDataRoot);
    this.restoring = this.restoreMountPoints(toRestore);
    const restoredInline = await settlesWithin(this.restoring, config.restoreInlineMs ?? 2_000);
    log.info('driver started', {
      dataRoot: config.dataRoot,
      hostDataRoot: this.state.hostDataRoot,
      mountRoot: config.mountRoot,
      volumes: this.registry.size,
      broken: this.registry.brokenCount,
      mountPointsToRestore: toRestore.length,
      restoringInBackground: !restoredInline,
      leftovers: this.leftovers.size,
      readOnly: this.state.readOnly,
    });
  }

  /** Resolves once start-up has put back every mount point it found missing (or failed to). */
  restored(): Promise<void> {
    return this.restoring;
  }

  /** A Remove could not delete what it left: tried again by deleteLeftovers at the next start. */
  addLeftover(dir: string): void {
    this.leftovers.add(dir);
  }

  /**
   * Puts back the mount points that start-up found missing, one volume at a time under its lock:
   * a volume removed meanwhile is skipped, and one that a Mount already restored is left as it
   * is. Never rejects: a volume that cannot be restored is logged, and its next Mount tries again.
   */
  private async restoreMountPoints(records: readonly VolumeRecord[]): Promise<void> {
    if (records.length === 0) return;
    const started = Date.now();
    let restored = 0;
    let failed = 0;
    for (const { name } of records) {
      await this.keeper.exclusive(name, async () => {
        const record = this.registry.get(name);
        if (!record || this.registry.isBroken(name)) return;
        try {
          if (await this.keeper.isSound(record)) return;
          await this.keeper.ensureMounted(record);
          restored++;
        } catch (error) {
          failed++;
          this.log.error('could not restore mount point', { volume: name, error: String(error) });
        }
      });
    }
    this.log.info('mount points restored', { restored, failed, durationMs: Date.now() - started });
  }

  /**
   * Mounts under the mount root whose name is no volume's. Only the driver's own are detached:
   * a mount point that shows, by identity, a volume directory of the data root (a live one, or
   * the trash or staging leftover of a Remove or Create killed half-way), or a tmpfs whose
   * identity (boot, device, mount ID) a leftover recorded. It is detached in this view only
   * (made private first), so that nothing propagates to its peers' submounts (an adopted
   * directory's own, say). Everything else there is someone else's: left alone, and logged.
   */
  private async detachOrphans(entries: readonly MountEntry[]): Promise<void> {
    const byName = new Map<string, MountEntry[]>();
    for (const entry of entries) {
      const name = volumeOfMount(entry.mountPoint, this.config.mountRoot);
      if (name === undefined || this.registry.isKnown(name)) continue;
      byName.set(name, [...(byName.get(name) ?? []), entry]);
    }
    for (const [name, mounts] of byName) {
      const mountpoint = this.mountpoint(name);
      const top = mountsAt(mounts, mountpoint).at(-1);
      if (!top || !(await this.isOwnMount(mountpoint, top))) {
        this.log.warn("mounts under the mount root that are not the driver's own are left alone", {
          name,
          mountPoints: mounts.map((e) => e.mountPoint),
        });
        continue;
      }
      try {
        const report = await this.mounts.detachView(mountpoint);
        await this.mounts.removeMountPoint(mountpoint);
        this.log.warn('detached the mount point of a volume that no longer exists', {
          volume: name,
          detached: report.detached,
        });
      } catch (error) {
        this.log.error('could not detach the mount point of a volume that no longer exists', {
          volume: name,
          error: String(error),
        });
      }
    }
  }

  /** Whether the mount `top` at `mountpoint` is, by identity, one the driver made. */
  private async isOwnMount(mountpoint: string, top: MountEntry): Promise<boolean> {
    const directories = [
      ...[...this.leftovers].map((dir) => this.store.dataDirIn(dir)),
      ...[...this.registry.records()].map((record) => this.store.dataDir(record.name)),
    ];
    for (const directory of directories) {
      if (await this.mounts.showsDirectory(mountpoint, directory)) return true;
    }
    if (top.fsType !== 'tmpfs') return false;
    for (const leftover of this.leftovers) {
      const identity = await this.store.readTmpfsIdentity(leftover);
      if (isSameTmpfs(identity, top, this.state.bootId)) return true;
    }
    return false;
  }

  /** Deletes what interrupted Creates and Removes left behind; safe to run while serving. */
  async deleteLeftovers(): Promise<void> {
    if (this.state.readOnly) return;
    for (const leftover of [...this.leftovers]) {
      try {
        // Whatever is still mounted in a leftover was left by a Remove that was detaching it.
        await this.mounts.detachAll(leftover, { includeSelf: false });
        await this.store.discard(leftover, await this.mounts.readAbout(leftover));
        this.leftovers.delete(leftover);
        this.log.info('removed leftover of an interrupted operation', { path: leftover });
      } catch (error) {
        this.log.error('could not remove leftover; it is kept and tried again at the next start', {
          path: leftover,
          error: String(error),
        });
      }
    }
  }
}

/** Whether `work` settles within `ms`; it goes on either way. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
