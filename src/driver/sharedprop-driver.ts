/**
 * The sharedprop volume driver: a directory per volume, kept bind-mounted once at
 * `<mountRoot>/<name>` with shared propagation, with durable per-ID mount counts.
 */
import { chmod, chown, lstat, mkdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import path from 'node:path';
import AsyncLock from 'async-lock';
import type { Logger } from '../log.js';
import { MOUNT_ROOT_MARKER } from '../mount-root-marker.js';
import { MountSystem } from '../system/mounts.js';
import { MountSnapshot } from '../system/mount-snapshot.js';
import { isWithin, mountsAt, propagationOf, type MountEntry } from '../system/mountinfo.js';
import { assertNoMountsWithin, deleteTree, MountBoundaryError } from '../system/safe-delete.js';
import { VolumeStore, type BrokenVolume, type VolumeRecord } from '../state/volume-store.js';
import { conflict, notFound, VolumeError } from './errors.js';
import { addMount, removeMount, totalMounts } from './refcount.js';
import type { VolumeDriver, VolumeInfo } from './types.js';
import {
  describeOptions,
  parseOptions,
  sameOptions,
  validateMountId,
  validateName,
  type VolumeOptions,
} from './validate.js';

/** Under the data root: the boot the mount counts belong to. */
const BOOT_ID_FILE = 'boot-id';

export interface DriverConfig {
  /** Where volume data and state live. */
  dataRoot: string;
  /** Where the mount points live (the managed plugin's propagated mount). */
  mountRoot: string;
  logger: Logger;
  mounts?: MountSystem;
  /** The kernel's id of this boot: counts from an earlier boot are void (no container survives). */
  bootIdFile?: string;
}

export class SharedpropDriver implements VolumeDriver {
  private readonly store: VolumeStore;
  private readonly mounts: MountSystem;
  private readonly log: Logger;
  private readonly volumes = new Map<string, VolumeRecord>();
  private readonly broken = new Map<string, BrokenVolume>();
  private readonly lock = new AsyncLock({ maxPending: Number.MAX_SAFE_INTEGER });
  private readonly snapshot: MountSnapshot;
  private listing?: readonly VolumeInfo[];
  private submountIndex?: { entries: MountEntry[]; byVolume: Map<string, MountEntry[]> };
  /** The data root as the host sees it (differs inside the managed plugin). */
  private hostDataRoot: string;

  constructor(private readonly config: DriverConfig) {
    this.store = new VolumeStore(config.dataRoot);
    this.mounts = config.mounts ?? new MountSystem();
    this.log = config.logger;
    this.snapshot = new MountSnapshot({ read: () => this.mounts.readAbout(config.mountRoot) });
    this.hostDataRoot = config.dataRoot;
  }

  mountpoint(name: string): string {
    return path.join(this.config.mountRoot, name);
  }

  /** Loads state, finishes interrupted work, and puts back every volume's mount point once. */
  async start(): Promise<void> {
    await this.store.init();
    await mkdir(this.config.mountRoot, { recursive: true, mode: 0o755 });
    await writeFile(
      path.join(this.config.mountRoot, MOUNT_ROOT_MARKER),
      JSON.stringify({ dataRoot: this.config.dataRoot }) + '\n',
    );
    const boot = await this.bootChange();
    const loaded = await this.store.loadAll({ counts: !boot.rebooted });
    for (const bad of loaded.broken) {
      this.broken.set(bad.name, bad);
      this.log.error('volume state unreadable; volume skipped', {
        volume: bad.name,
        file: bad.file,
        reason: bad.reason,
      });
    }
    const entries = await this.mounts.read();
    for (const leftover of loaded.leftovers) {
      try {
        await deleteTree(leftover, entries);
        this.log.info('removed leftover of an interrupted operation', { path: leftover });
      } catch (error) {
        this.log.error('could not remove leftover', { path: leftover, error: String(error) });
      }
    }
    for (const { name, mountIds } of loaded.voided) {
      // The host rebooted: every container that held the volume is gone, and dockerd will not
      // send the Unmounts. Keeping the counts would refuse Remove for ever.
      this.log.warn('host rebooted since the last start: mount counts reset', {
        volume: name,
        mountIds,
      });
      await this.store.saveCounts(name, {});
    }
    let restored = 0;
    for (const record of loaded.records) {
      this.volumes.set(record.name, record);
      const stack = mountsAt(entries, this.mountpoint(record.name));
      if (stack.length === 1 && propagationOf(stack[0] as MountEntry).startsWith('shared'))
        continue;
      try {
        await this.ensureMounted(record);
        restored++;
      } catch (error) {
        this.log.error('could not restore mount point', {
          volume: record.name,
          error: String(error),
        });
      }
    }
    await boot.record();
    this.hostDataRoot = hostPathOf(entries, this.config.dataRoot);
    this.log.info('driver started', {
      dataRoot: this.config.dataRoot,
      hostDataRoot: this.hostDataRoot,
      mountRoot: this.config.mountRoot,
      volumes: this.volumes.size,
      broken: this.broken.size,
      mountsRestored: restored,
    });
  }

  /** Whether the host rebooted since the boot id was last recorded, and how to record it. */
  private async bootChange(): Promise<{ rebooted: boolean; record: () => Promise<void> }> {
    const read = (file: string) =>
      readFile(file, 'utf8').then(
        (text) => text.trim(),
        () => undefined,
      );
    const marker = path.join(this.config.dataRoot, BOOT_ID_FILE);
    const [current, previous] = await Promise.all([
      read(this.config.bootIdFile ?? '/proc/sys/kernel/random/boot_id'),
      read(marker),
    ]);
    return {
      rebooted: current !== undefined && previous !== undefined && current !== previous,
      record: async () => {
        if (current !== undefined && current !== previous) {
          await writeFileAtomic(marker, `${current}\n`, { mode: 0o600, fsync: true });
        }
      },
    };
  }

  capabilities(): { scope: 'local' } {
    return { scope: 'local' };
  }

  async create(name: string, rawOptions: Record<string, string>): Promise<void> {
    validateName(name);
    const options = parseOptions(name, rawOptions);
    await this.exclusive(name, async () => {
      this.assertNotBroken(name);
      const existing = this.volumes.get(name);
      if (existing) {
        if (sameOptions(existing.options, options)) return;
        throw conflict(
          `volume ${JSON.stringify(name)} already exists with different options (${describeOptions(existing.options)})`,
        );
      }
      await this.createNew(name, options);
    });
  }

  private async createNew(name: string, options: VolumeOptions): Promise<void> {
    const record: VolumeRecord = {
      name,
      createdAt: new Date().toISOString(),
      options,
      mounts: {},
    };
    const staging = await this.store.makeStaging(name);
    let published = false;
    try {
      const data = path.join(staging, '_data');
      await mkdir(data);
      await chmod(data, options.mode ?? 0o755);
      if (options.uid !== undefined || options.gid !== undefined) {
        await chown(data, options.uid ?? -1, options.gid ?? -1);
      }
      await this.store.save(record, staging);
      await this.store.publish(staging, name).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOTEMPTY' || error.code === 'EEXIST') {
          throw conflict(
            `volume ${JSON.stringify(name)}: ${this.store.volumeDir(name)} exists but holds no volume state; move it away first`,
          );
        }
        throw error;
      });
      published = true;
      await this.ensureMounted(record);
      this.volumes.set(name, record);
      this.listing = undefined;
      this.log.info('volume created', { volume: name, options: describeOptions(options) });
    } catch (error) {
      await this.undoCreate(name, published ? this.store.volumeDir(name) : staging);
      throw error;
    }
  }

  private async undoCreate(name: string, dir: string): Promise<void> {
    try {
      await this.mounts.detachAll(this.mountpoint(name), { includeSelf: true });
      await rmdir(this.mountpoint(name)).catch(() => undefined);
      const trash = dir === this.store.volumeDir(name) ? await this.store.retire(name) : dir;
      await deleteTree(trash, await this.mounts.readAbout(trash));
    } catch (error) {
      this.log.error('could not undo a failed create', { volume: name, error: String(error) });
    }
  }

  async remove(name: string): Promise<void> {
    validateName(name);
    await this.exclusive(name, async () => {
      this.assertNotBroken(name);
      const record = this.require(name);
      const inUse = totalMounts(record.mounts);
      if (inUse > 0) {
        throw conflict(
          `volume ${JSON.stringify(name)} is in use (${inUse} active mount${inUse > 1 ? 's' : ''}: ${Object.keys(record.mounts).join(', ')}); stop the containers that use it first`,
        );
      }
      const mountpoint = this.mountpoint(name);
      const volumeDir = this.store.volumeDir(name);
      const below = await this.mounts.detachAll(mountpoint, { includeSelf: true });
      const inData = await this.mounts.detachAll(volumeDir, { includeSelf: false });
      const entries = [
        ...(await this.mounts.readAbout(mountpoint)),
        ...(await this.mounts.readAbout(volumeDir)),
      ];
      try {
        assertNoMountsWithin(entries, mountpoint);
        assertNoMountsWithin(entries, volumeDir);
      } catch (error) {
        throw conflict(`volume ${JSON.stringify(name)} not removed: ${(error as Error).message}`);
      }
      await rmdir(mountpoint).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      const trash = await this.store.retire(name);
      this.volumes.delete(name);
      this.listing = undefined;
      this.snapshot.invalidate();
      try {
        await deleteTree(trash, await this.mounts.readAbout(trash));
      } catch (error) {
        // The volume is gone from the store; the files stay in `trash` for the next start.
        this.log.error('volume removed, but its files could not all be deleted', {
          volume: name,
          path: trash,
          error: String(error),
          boundary: error instanceof MountBoundaryError,
        });
      }
      this.log.info('volume removed', {
        volume: name,
        submountsDetached: [...below.detached, ...inData.detached].filter((p) => p !== mountpoint),
        lazilyDetached: [...below.lazy, ...inData.lazy],
      });
    });
  }

  async mount(name: string, id: string): Promise<string> {
    validateName(name);
    validateMountId(name, id);
    return this.exclusive(name, async () => {
      this.assertNotBroken(name);
      const record = this.require(name);
      if (!(await this.bindIsInPlace(name))) await this.ensureMounted(record);
      await this.commit(record, { ...record, mounts: addMount(record.mounts, id) });
      return this.mountpoint(name);
    });
  }

  async unmount(name: string, id: string): Promise<void> {
    validateName(name);
    validateMountId(name, id);
    await this.exclusive(name, async () => {
      this.assertNotBroken(name);
      const record = this.require(name);
      const { counts, known } = removeMount(record.mounts, id);
      if (!known) {
        // dockerd may repeat an Unmount after a restart; nothing is counted for it.
        this.log.warn('unmount for an ID with no mounts counted', { volume: name, id });
        return;
      }
      await this.commit(record, { ...record, mounts: counts });
    });
  }

  async path(name: string): Promise<string> {
    validateName(name);
    this.assertNotBroken(name);
    this.require(name);
    return this.mountpoint(name);
  }

  async get(name: string): Promise<VolumeInfo> {
    validateName(name);
    this.assertNotBroken(name);
    const record = this.require(name);
    const index = await this.submounts();
    return { ...this.summary(record), status: this.status(record, index.get(record.name) ?? []) };
  }

  /**
   * Name, mount point and creation time of every volume (dockerd's List needs no more). The
   * array is rebuilt only when a volume is created or removed, so callers may cache by identity.
   */
  async list(): Promise<readonly VolumeInfo[]> {
    this.listing ??= Object.freeze(
      [...this.volumes.values()].map((record) => ({ ...this.summary(record), status: {} })),
    );
    return this.listing;
  }

  private summary(record: VolumeRecord): Omit<VolumeInfo, 'status'> {
    return {
      name: record.name,
      mountpoint: this.mountpoint(record.name),
      createdAt: record.createdAt,
    };
  }

  private status(record: VolumeRecord, mounts: MountEntry[]): Record<string, unknown> {
    const mountpoint = this.mountpoint(record.name);
    const own = mounts.filter((e) => e.mountPoint === mountpoint);
    return {
      propagation: record.options.propagation,
      activeMounts: totalMounts(record.mounts),
      mountIds: { ...record.mounts },
      mountPoint: own.length === 1 ? propagationOf(own[0] as MountEntry) : `${own.length} mounts`,
      submounts: mounts
        .filter((e) => e.mountPoint !== mountpoint)
        .map((e) => ({
          path: e.mountPoint.slice(mountpoint.length) || '/',
          fsType: e.fsType,
          source: e.source,
          root: e.root,
        })),
      dataPath: path.join(this.hostDataRoot, 'volumes', record.name, '_data'),
    };
  }

  /** Mounts at or under each volume's mount point, from a recent snapshot of the mount table. */
  private async submounts(): Promise<Map<string, MountEntry[]>> {
    const { entries } = await this.snapshot.get();
    if (this.submountIndex?.entries !== entries) {
      const byVolume = new Map<string, MountEntry[]>();
      const root = this.config.mountRoot;
      for (const entry of entries) {
        if (!isWithin(entry.mountPoint, root) || entry.mountPoint === root) continue;
        const name = entry.mountPoint.slice(root.length + 1).split('/')[0] as string;
        const list = byVolume.get(name);
        if (list) list.push(entry);
        else byVolume.set(name, [entry]);
      }
      this.submountIndex = { entries, byVolume };
    }
    return this.submountIndex.byVolume;
  }

  /** Saves the counts of `next`, then makes it the current record. */
  private async commit(current: VolumeRecord, next: VolumeRecord): Promise<void> {
    await this.store.saveCounts(next.name, next.mounts);
    if (this.volumes.get(current.name) === current) this.volumes.set(next.name, next);
  }

  /**
   * Cheap check that the mount point shows the volume's data directory: a bind mount shows the
   * same inode. Anything else (host reboot, someone unmounted it) takes the full path.
   */
  private async bindIsInPlace(name: string): Promise<boolean> {
    try {
      const [shown, data] = await Promise.all([
        stat(this.mountpoint(name)),
        lstat(this.store.dataDir(name)),
      ]);
      return shown.ino === data.ino && shown.dev === data.dev;
    } catch {
      return false;
    }
  }

  private async ensureMounted(record: VolumeRecord): Promise<void> {
    const data = this.store.dataDir(record.name);
    await stat(data).catch(() => {
      throw new VolumeError(
        'internal',
        `volume ${JSON.stringify(record.name)}: its data directory ${data} is missing`,
      );
    });
    await this.mounts.ensureSharedBind(
      data,
      this.mountpoint(record.name),
      record.options.propagation,
    );
  }

  private require(name: string): VolumeRecord {
    const record = this.volumes.get(name);
    if (!record) throw notFound(name);
    return record;
  }

  private assertNotBroken(name: string): void {
    const bad = this.broken.get(name);
    if (bad) {
      throw new VolumeError(
        'internal',
        `volume ${JSON.stringify(name)}: its state file ${bad.file} is unreadable (${bad.reason}); repair or move it, then restart the plugin`,
      );
    }
  }

  private exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.lock.acquire(name, work);
  }
}

/**
 * Where `dir` is on the host: mountinfo gives, for the mount that holds it, the path inside the
 * filesystem that is mounted there (for the plugin's /data, the host directory bound to it).
 */
export function hostPathOf(entries: readonly MountEntry[], dir: string): string {
  const holder = entries
    .filter((e) => isWithin(dir, e.mountPoint))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0];
  // Only a bind of a subdirectory says where it comes from; a whole filesystem's root does not.
  if (!holder || holder.root === '/') return dir;
  const relative = holder.mountPoint === '/' ? dir : dir.slice(holder.mountPoint.length);
  return path.join(holder.root, relative);
}
