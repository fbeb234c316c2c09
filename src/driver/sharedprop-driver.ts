/**
 * The sharedprop volume driver: a directory per volume (or a tmpfs of its own), kept mounted once
 * at `<mountRoot>/<name>` with shared propagation, with per-ID mount counts that outlive the driver.
 * It coordinates the store (what volumes exist, durably) and the mount system (the kernel's mount
 * table); it knows nothing about HTTP.
 *
 * Data safety, in order of what it protects:
 * - Remove takes the volume out of the store first (one rename: the step that fails on a
 *   read-only root); a failure after it puts the volume back as it was. Deletion runs through a
 *   helper that the kernel keeps from following symlinks or crossing mounts (safe-delete.ts).
 * - The caller holds the data root's lock (one driver per data root).
 * - Counts live in Maps; a count that cannot be saved is kept in memory and saved later.
 * - A Mount's count is saved only once its answer reached dockerd (`Tentative`): a kill or a cut
 *   connection before then must not leave a count that no Unmount will ever take back.
 */
import path from 'node:path';
import AsyncLock from 'async-lock';
import type { Logger } from '../log.js';
import { MOUNT_ROOT_MARKER } from '../mount-root-marker.js';
import { conflict, invalid, notFound, unavailable, VolumeError } from '../model/errors.js';
import {
  addMount,
  removeMount,
  totalMounts,
  withoutMounts,
  NO_MOUNTS,
  type MountCounts,
} from '../model/counts.js';
import { validateDerivedPaths, validateMountId, validateName, shownName } from '../model/names.js';
import {
  describeOptions,
  parseOptions,
  sameOptions,
  tmpfsMountOptions,
  type RawOptions,
  type VolumeOptions,
} from '../model/options.js';
import type { VolumeRecord } from '../model/record.js';
import type { VolumeStatus } from '../model/status.js';
import {
  MountSystem,
  StackedMountsError,
  type Mounts,
  type MountSource,
} from '../system/mounts.js';
import { MountSnapshot } from '../system/mount-snapshot.js';
import {
  hostPathOf,
  isWithin,
  mountsAt,
  mountsBelow,
  propagationOf,
  type MountEntry,
} from '../system/mountinfo.js';
import { leakReason, NONE_RUNNING } from '../system/leaks.js';
import { assertNoMountsWithin, MountBoundaryError } from '../system/safe-delete.js';
import { VolumeStore, type BrokenVolume, type Store } from '../state/volume-store.js';
import { CountsWriter } from './counts-writer.js';
import { VolumeInfoCache } from './info-cache.js';
import { crashPoint } from './crash-points.js';
import type { Capabilities, Tentative, VolumeDriver, VolumeInfo } from './types.js';

export interface DriverConfig {
  /** Where volume data and state live. */
  dataRoot: string;
  /** Where the mount points live (the managed plugin's propagated mount). */
  mountRoot: string;
  logger: Logger;
  /** The store and the mount system; unit tests pass fakes. */
  store?: Store;
  mounts?: Mounts;
  /** The kernel's id of this boot: counts from an earlier boot are void (no container survives). */
  bootIdFile?: string;
  /** How old the mount table behind Get's Status may be (ms); the README states the bound. */
  statusMaxAgeMs?: number;
  /**
   * Whether `-o path=` can adopt host directories: a host process sees them, the managed plugin
   * does not (its paths are inside its own rootfs). Default true.
   */
  hostPaths?: boolean;
  /**
   * The data root's path on the host, as the installer recorded it (the managed plugin's
   * HOST_DATA_DIR), for Status's dataPath; mountinfo's guess is used when it is unset or wrong.
   */
  hostDataRoot?: string;
  /**
   * Make the data root's mount private in the driver's namespace at start (the managed plugin:
   * its /data is the host's directory, and runc 1.2.7 and later apply the plugin's rshared root
   * propagation after pivot_root, which leaves /data shared with the host despite the manifest's
   * rprivate; a volume's mount point bound from it would then join the host's peer group, and
   * what containers mount in it would land under the data root instead of the mount point).
   */
  privateDataRoot?: boolean;
  /**
   * Host directories that a volume may never adopt, nor anything in or around them, besides
   * DEFAULT_RESERVED_PATHS (e.g. the `data-root` of a dockerd that moved it).
   */
  reservedPaths?: readonly string[];
  /**
   * How long start() may spend putting mount points back before it returns (ms, default 2,000).
   * dockerd gives a managed plugin about 12 s to listen (one dial after 0.5 s, four more 3 s
   * apart) and then stops it, and each mount point takes a few mount(8) calls: a thousand of
   * them take longer than that. What is left is restored in the background, and a Mount of a
   * volume not restored yet restores it itself first.
   */
  restoreInlineMs?: number;
}

/** dockerd's and containerd's state: never adopted, whatever the configuration says. */
export const DEFAULT_RESERVED_PATHS = [
  '/var/lib/docker',
  '/var/lib/containerd',
  '/run/docker',
  '/run/containerd',
];

/** The lock under which adopted paths are checked against each other and published. */
const ADOPT_LOCK = '\0adopt';
/** Volumes are local to the host: each engine has its own. */
const LOCAL_SCOPE: Capabilities = Object.freeze({ scope: 'local' });
/** A volume with no mount in the snapshot (one shared value, so that VolumeInfoCache can compare). */
const NO_ENTRIES: readonly MountEntry[] = Object.freeze([]);

export class SharedpropDriver implements VolumeDriver {
  private readonly store: Store;
  private readonly mounts: Mounts;
  private readonly log: Logger;
  private readonly volumes = new Map<string, VolumeRecord>();
  private readonly broken = new Map<string, BrokenVolume>();
  private readonly lock = new AsyncLock({ maxPending: Number.MAX_SAFE_INTEGER });
  private readonly snapshot: MountSnapshot;
  private readonly counts: CountsWriter;
  /** Per volume, the Mounts counted whose answer has not reached dockerd yet (never saved). */
  private readonly undelivered = new Map<string, MountCounts>();
  private listing?: readonly VolumeInfo[];
  private readonly infos = new VolumeInfoCache();
  private submountIndex?: { entries: readonly MountEntry[]; byVolume: Map<string, MountEntry[]> };
  /** Leftovers of interrupted or failed deletions, deleted in the background. */
  private leftovers = new Set<string>();
  private readOnly = false;
  /** The data root as the host sees it (differs inside the managed plugin). */
  private hostDataRoot: string;
  /** Start-up's restoration of mount points; it may go on after start() returned. */
  private restoring: Promise<void> = Promise.resolve();

  constructor(private readonly config: DriverConfig) {
    this.store = config.store ?? new VolumeStore(config.dataRoot);
    this.mounts = config.mounts ?? new MountSystem();
    this.log = config.logger;
    this.snapshot = new MountSnapshot(
      this.mounts.readerAbout(config.mountRoot),
      config.statusMaxAgeMs ?? 1_000,
    );
    this.counts = new CountsWriter((name) => this.saveCounts(name), this.log);
    this.hostDataRoot = config.dataRoot;
  }

  mountpoint(name: string): string {
    return path.join(this.config.mountRoot, name);
  }

  /**
   * Loads state, voids counts of an earlier boot, and puts back every volume's mount point once:
   * within `restoreInlineMs`, and the rest in the background (`restored()`), so that dockerd finds
   * the socket in time whatever the number of volumes. The caller holds the data root's lock.
   * Leftovers are only collected here: deleting them can take long, so `deleteLeftovers()` runs
   * after the socket listens.
   */
  async start(): Promise<void> {
    if (
      this.config.privateDataRoot &&
      (await this.mounts.privatizeMountPoint(this.config.dataRoot))
    ) {
      this.log.info('made the data root private in the plugin', { dataRoot: this.config.dataRoot });
    }
    await this.store.init();
    this.readOnly = !(await this.store.writable());
    if (this.readOnly) {
      this.log.warn(
        'the data root is read-only: serving read-only (Create and Remove are refused; Mount and Unmount count in memory)',
        {
          dataRoot: this.config.dataRoot,
        },
      );
    }
    await this.mounts
      .prepareMountRoot(this.config.mountRoot, {
        name: MOUNT_ROOT_MARKER,
        content: JSON.stringify({ dataRoot: this.config.dataRoot }) + '\n',
      })
      .catch((error: unknown) =>
        this.log.warn('could not write the mount-root marker', { error: String(error) }),
      );
    const boot = await this.store.bootChange(
      this.config.bootIdFile ?? '/proc/sys/kernel/random/boot_id',
    );
    const loaded = await this.store.loadAll({ counts: !boot.rebooted });
    for (const bad of loaded.broken) {
      this.broken.set(bad.name, bad);
      this.log.error('volume state unreadable; volume skipped', {
        volume: bad.name,
        file: bad.file,
        reason: bad.reason,
      });
    }
    this.leftovers = new Set(loaded.leftovers);
    for (const record of loaded.records) this.volumes.set(record.name, record);
    for (const { name, mountIds } of loaded.voided) {
      // The host rebooted: every container that held the volume is gone, and dockerd will not
      // send the Unmounts. Keeping the counts would refuse Remove for ever.
      this.log.warn('host rebooted since the last start: mount counts reset', {
        volume: name,
        mountIds,
      });
      this.counts.write(name);
    }
    const entries = await this.mounts.read();
    await this.detachOrphans(entries);
    const toRestore = loaded.records.filter((record) => {
      const stack = mountsAt(entries, this.mountpoint(record.name));
      return !(stack.length === 1 && propagationOf(stack[0] as MountEntry).startsWith('shared'));
    });
    if (!this.readOnly) {
      await boot
        .record()
        .catch((error: unknown) =>
          this.log.warn('could not record the boot id', { error: String(error) }),
        );
    }
    this.hostDataRoot = hostPathOf(entries, this.config.dataRoot, this.config.hostDataRoot);
    this.restoring = this.restoreMountPoints(toRestore);
    const restoredInline = await settlesWithin(
      this.restoring,
      this.config.restoreInlineMs ?? 2_000,
    );
    this.log.info('driver started', {
      dataRoot: this.config.dataRoot,
      hostDataRoot: this.hostDataRoot,
      mountRoot: this.config.mountRoot,
      volumes: this.volumes.size,
      broken: this.broken.size,
      mountPointsToRestore: toRestore.length,
      restoringInBackground: !restoredInline,
      leftovers: this.leftovers.size,
      readOnly: this.readOnly,
    });
  }

  /** Resolves once start-up has put back every mount point it found missing (or failed to). */
  restored(): Promise<void> {
    return this.restoring;
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
      await this.exclusive(name, async () => {
        const record = this.volumes.get(name);
        if (!record || this.broken.has(name)) return;
        try {
          if (await this.mountPointIsSound(record)) return;
          await this.ensureMounted(record);
          restored++;
        } catch (error) {
          failed++;
          this.log.error('could not restore mount point', { volume: name, error: String(error) });
        }
      });
    }
    this.log.info('mount points restored', {
      restored,
      failed,
      durationMs: Date.now() - started,
    });
  }

  /**
   * Mount points under the mount root that belong to no volume (a Remove killed after it took the
   * volume out of the store) are detached: the mount root is this driver's alone.
   */
  private async detachOrphans(entries: readonly MountEntry[]): Promise<void> {
    const root = this.config.mountRoot;
    const orphans = new Set<string>();
    for (const entry of entries) {
      if (!isWithin(entry.mountPoint, root) || entry.mountPoint === root) continue;
      const name = entry.mountPoint.slice(root.length + 1).split('/')[0] as string;
      if (!this.volumes.has(name) && !this.broken.has(name)) orphans.add(name);
    }
    for (const name of orphans) {
      const report = await this.mounts.detachAll(this.mountpoint(name), { includeSelf: true });
      await this.mounts.removeMountPoint(this.mountpoint(name));
      this.log.warn('detached the mount point of a volume that no longer exists', {
        volume: name,
        detached: report.detached,
      });
    }
  }

  /** Deletes what interrupted Creates and Removes left behind; safe to run while serving. */
  async deleteLeftovers(): Promise<void> {
    if (this.readOnly) return;
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

  capabilities(): Capabilities {
    return LOCAL_SCOPE;
  }

  async create(name: string, rawOptions: RawOptions): Promise<void> {
    validateName(name);
    validateDerivedPaths(name, [...this.store.derivedPaths(name), this.mountpoint(name)]);
    const options = parseOptions(name, rawOptions);
    const work = () =>
      this.exclusive(name, async () => {
        this.assertNotBroken(name);
        const existing = this.volumes.get(name);
        if (existing) {
          if (sameOptions(existing.options, options)) return;
          throw conflict(
            `volume ${JSON.stringify(name)} already exists with different options (${describeOptions(existing.options)})`,
          );
        }
        this.assertWritable(name, 'created');
        if (options.kind === 'path') await this.assertAdoptable(name, options.path);
        await this.createNew(name, options);
      });
    // Adopted paths are checked against each other one Create at a time.
    await (options.kind !== 'path' ? work() : this.lock.acquire(ADOPT_LOCK, work));
  }

  /**
   * A host directory may be adopted when it exists, is a directory, has no symlink on its way
   * (its real path is itself), stays clear of the driver's own directories and dockerd's (neither
   * in them nor around them), and overlaps no other volume's adopted directory.
   */
  private async assertAdoptable(name: string, dir: string): Promise<void> {
    const refuse = (why: string) =>
      invalid(`volume ${JSON.stringify(name)}: option path=${JSON.stringify(dir)} ${why}`);
    if (this.config.hostPaths === false) {
      throw refuse(
        "is refused: the managed plugin does not see the host's directories; run the driver as a host process (sharedprop serve) to adopt one",
      );
    }
    const resolved = await this.mounts.resolveDirectory(dir);
    if (!resolved) throw refuse('does not exist; create the directory first');
    if (resolved.realPath !== dir) {
      throw refuse("has a symlink on its way; give the directory's real path");
    }
    if (!resolved.isDirectory) throw refuse('is not a directory');
    const own = [this.config.dataRoot, this.config.mountRoot, this.hostDataRoot];
    for (const reserved of [
      ...own,
      ...DEFAULT_RESERVED_PATHS,
      ...(this.config.reservedPaths ?? []),
    ]) {
      const real = (await this.mounts.resolveDirectory(reserved))?.realPath ?? reserved;
      if (isWithin(dir, real) || isWithin(real, dir)) {
        throw refuse(
          own.includes(reserved)
            ? "overlaps the driver's own data root or mount root"
            : `overlaps ${reserved}, which dockerd or containerd own`,
        );
      }
    }
    for (const other of this.volumes.values()) {
      const theirs = other.options.kind === 'path' ? other.options.path : undefined;
      if (theirs !== undefined && (isWithin(dir, theirs) || isWithin(theirs, dir))) {
        throw conflict(
          `volume ${JSON.stringify(name)}: option path=${JSON.stringify(dir)} overlaps ${JSON.stringify(theirs)}, which volume ${JSON.stringify(other.name)} adopted; two volumes may not adopt the same or nested directories`,
        );
      }
    }
  }

  private async createNew(name: string, options: VolumeOptions): Promise<void> {
    const record: VolumeRecord = {
      name,
      createdAt: new Date().toISOString(),
      options,
      mounts: new Map(),
    };
    let staging: string | undefined;
    let published = false;
    try {
      staging = await this.store.stage(record, options.kind === 'directory' ? options : undefined);
      crashPoint('create:staged');
      await this.store.publish(staging, name).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOTEMPTY' || error.code === 'EEXIST') {
          throw conflict(
            `volume ${JSON.stringify(name)}: the data root holds a directory of that name that is no volume; move volumes/${name} away first`,
          );
        }
        throw error;
      });
      published = true;
      crashPoint('create:published');
      await this.ensureMounted(record);
      this.volumes.set(name, record);
      this.listing = undefined;
      crashPoint('create:mounted');
      this.log.info('volume created', { volume: name, options: describeOptions(options) });
    } catch (error) {
      if (staging) {
        await this.undoCreate(name, published ? undefined : staging, options.kind === 'path');
      }
      throw storageError(error, `volume ${JSON.stringify(name)} not created`);
    }
  }

  /** Takes back a failed Create: its mount point, and its files (published or still staged). */
  private async undoCreate(
    name: string,
    staging: string | undefined,
    adopted: boolean,
  ): Promise<void> {
    try {
      if (adopted) await this.mounts.detachView(this.mountpoint(name));
      else await this.mounts.detachAll(this.mountpoint(name), { includeSelf: true });
      this.snapshot.invalidate();
      await this.mounts.removeMountPoint(this.mountpoint(name));
      const trash = staging ?? (await this.store.retire(name));
      await this.store.discard(trash, await this.mounts.readAbout(trash));
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
          `volume ${JSON.stringify(name)} is in use (${inUse} active mount${inUse > 1 ? 's' : ''}: ${[...record.mounts.keys()].join(', ')}); stop the containers that use it first`,
        );
      }
      this.assertWritable(name, 'removed');
      if (record.options.kind === 'path') {
        await this.removeAdopted(record);
        return;
      }
      // Out of the store first: if this rename fails (read-only root, I/O error), nothing changed.
      let trash: string;
      try {
        trash = await this.store.retire(name);
      } catch (error) {
        throw storageError(error, `volume ${JSON.stringify(name)} not removed`);
      }
      crashPoint('remove:retired');
      const mountpoint = this.mountpoint(name);
      let detached: string[];
      try {
        detached = await this.detachEverything(mountpoint, trash);
      } catch (error) {
        await this.undoRemove(record, trash);
        this.log.error('remove failed while detaching; the volume is back as it was', {
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
      await this.forgetRemoved(name, mountpoint, trash);
      crashPoint('remove:deleted');
      this.log.info('volume removed', {
        volume: name,
        submountsDetached: detached.filter((p) => p !== mountpoint),
      });
    });
  }

  /**
   * The end of every Remove, once the volume is detached and retired: it is forgotten, and its
   * trash is deleted (or left for a retry at the next start).
   */
  private async forgetRemoved(name: string, mountpoint: string, trash: string): Promise<void> {
    this.volumes.delete(name);
    this.undelivered.delete(name);
    this.counts.forget(name);
    this.listing = undefined;
    this.infos.forget(name);
    await this.mounts.removeMountPoint(mountpoint);
    try {
      await this.store.discard(trash, await this.mounts.readAbout(trash));
    } catch (error) {
      this.leftovers.add(trash);
      this.log.error('volume removed, but what it left could not all be deleted yet', {
        volume: name,
        path: trash,
        error: String(error),
        boundary: error instanceof MountBoundaryError,
      });
    }
  }

  /**
   * Removes a volume that adopted a host directory: nothing in the directory is deleted, and
   * nothing mounted in it is detached from it. Its mount point is detached first, in this view
   * only (made private, so that no unmount reaches the directory), then the record goes. A
   * failure puts the mount point back; a kill between the two steps leaves the volume whole (its
   * record), and the next start mounts it again. Its mount point is never an orphan, whose
   * submounts start-up would detach everywhere.
   */
  private async removeAdopted(record: VolumeRecord): Promise<void> {
    const { name } = record;
    const mountpoint = this.mountpoint(name);
    let detached: string[];
    let trash: string;
    try {
      try {
        detached = (await this.mounts.detachView(mountpoint)).detached;
        assertNoMountsWithin(await this.mounts.readAbout(mountpoint), mountpoint);
      } finally {
        this.snapshot.invalidate();
      }
      crashPoint('remove:detached');
      trash = await this.store.retire(name);
    } catch (error) {
      await this.ensureMounted(record).catch((again: unknown) =>
        this.log.error('could not put back the mount point of an adopted directory', {
          volume: name,
          error: String(again),
        }),
      );
      this.log.error('remove failed; the volume is back as it was', {
        volume: name,
        error: String(error),
      });
      if (error instanceof StackedMountsError) {
        // Detaching would unmount, through the directory's peer group, what the host put over it.
        throw conflict(
          `volume ${JSON.stringify(name)} not removed: something is mounted over its adopted directory ${JSON.stringify((record.options as { path: string }).path)} on the host (${error.count} mounts stacked); unmount it there first`,
        );
      }
      throw storageError(
        error,
        `volume ${JSON.stringify(name)} not removed; it is mounted and usable as before`,
      );
    }
    crashPoint('remove:retired');
    // The trash holds the record only: the adopted directory is not in it.
    await this.forgetRemoved(name, mountpoint, trash);
    crashPoint('remove:deleted');
    this.log.info('volume removed; the adopted directory and what is mounted in it are kept', {
      volume: name,
      path: (record.options as { path: string }).path,
      detachedFromView: detached.length,
    });
  }

  /**
   * Detaches the volume's mount point and everything beneath it, and any mount left in its files;
   * then proves from the mount table that none is left.
   */
  private async detachEverything(mountpoint: string, files: string): Promise<string[]> {
    try {
      const below = await this.mounts.detachAll(mountpoint, { includeSelf: true });
      const inFiles = await this.mounts.detachAll(files, { includeSelf: false });
      const entries = [
        ...(await this.mounts.readAbout(mountpoint)),
        ...(await this.mounts.readAbout(files)),
      ];
      assertNoMountsWithin(entries, mountpoint);
      assertNoMountsWithin(entries, files);
      return [...below.detached, ...inFiles.detached];
    } finally {
      this.snapshot.invalidate();
    }
  }

  private async undoRemove(record: VolumeRecord, trash: string): Promise<void> {
    try {
      await this.store.restore(trash, record.name);
      await this.ensureMounted(record);
    } catch (error) {
      this.broken.set(record.name, {
        name: record.name,
        file: path.join('volumes', record.name),
        reason: 'a failed Remove could not be undone',
      });
      this.log.error(
        'could not undo a failed remove; the volume is refused until the plugin restarts',
        {
          volume: record.name,
          trash,
          error: String(error),
        },
      );
    }
  }

  async mount(name: string, id: string): Promise<Tentative<string>> {
    validateName(name);
    validateMountId(name, id);
    return this.exclusive(name, async () => {
      this.assertNotBroken(name);
      const before = this.require(name);
      if (!(await this.mountPointIsSound(before))) await this.ensureMounted(before);
      // Read again: a Mount settled meanwhile may have changed the counts.
      const record = this.require(name);
      // Counted at once (Remove refuses from now on), saved only once dockerd has the answer.
      this.volumes.set(name, { ...record, mounts: addMount(record.mounts, id) });
      this.undelivered.set(name, addMount(this.undelivered.get(name) ?? NO_MOUNTS, id));
      crashPoint('mount:counted');
      let settled = false;
      const settle = (delivered: boolean) => {
        if (settled) return;
        settled = true;
        this.settleMount(name, id, delivered);
      };
      return {
        value: this.mountpoint(name),
        commit: () => settle(true),
        abandon: () => settle(false),
      };
    });
  }

  /**
   * The answer to a Mount of `id` reached dockerd (`delivered`), and its count is saved; or it did
   * not, and the count is taken back: dockerd treats that Mount as failed and never unmounts it.
   * Synchronous, like the save, so that nothing runs between an answer and its count's save.
   */
  private settleMount(name: string, id: string, delivered: boolean): void {
    const pending = removeMount(this.undelivered.get(name) ?? NO_MOUNTS, id);
    // Not pending any more: an Unmount of the same ID has already taken the count back.
    if (!pending.known) return;
    this.setUndelivered(name, pending.counts);
    const record = this.volumes.get(name);
    if (!record) return;
    if (!delivered) {
      this.volumes.set(name, { ...record, mounts: removeMount(record.mounts, id).counts });
      this.log.warn('the answer to a Mount did not reach dockerd; its count is taken back', {
        volume: name,
        id,
      });
    }
    this.counts.write(name);
  }

  private setUndelivered(name: string, counts: MountCounts): void {
    if (counts.size === 0) this.undelivered.delete(name);
    else this.undelivered.set(name, counts);
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
      // An Unmount of a Mount whose delivery is not settled yet takes that pending count.
      const pending = this.undelivered.get(name);
      if (pending && (pending.get(id) ?? 0) > (counts.get(id) ?? 0)) {
        this.setUndelivered(name, removeMount(pending, id).counts);
      }
      this.setCounts(record, counts);
      if (
        'reap' in record.options &&
        record.options.reap === 'on-unmount' &&
        totalMounts(counts) === 0
      ) {
        await this.reapLeaks(name);
      }
    });
  }

  /**
   * The volume's last mount ID is gone, so no container holds it: a submount of a container's
   * root filesystem (a bind of its /etc, say) pins a container that no longer runs, and is
   * detached, deepest first. Everything else stays: namespace files (nsfs) and other kernel
   * objects must outlive their maker, and tmpfs, FUSE or NFS mounts belong to no container.
   * A failure is logged; the Unmount itself has succeeded.
   */
  private async reapLeaks(name: string): Promise<void> {
    const mountpoint = this.mountpoint(name);
    try {
      // Deepest first; a leak with anything that must stay beneath it is kept whole.
      const below = mountsBelow(await this.mounts.readAbout(mountpoint), mountpoint).map(
        (entry) => ({ entry, reason: leakReason(entry, NONE_RUNNING) }),
      );
      const kept = below.filter((m) => m.reason === undefined).map((m) => m.entry.mountPoint);
      const leaks = below.filter(
        (m) => m.reason !== undefined && !kept.some((path) => isWithin(path, m.entry.mountPoint)),
      );
      for (const { entry, reason } of leaks) {
        const report = await this.mounts.detachAll(entry.mountPoint, { includeSelf: true });
        if (report.detached.length === 0) continue;
        this.log.warn('reaped a submount left by a container that no longer runs', {
          volume: name,
          path: entry.mountPoint.slice(mountpoint.length),
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
    const mounts = (await this.submounts()).get(record.name) ?? NO_ENTRIES;
    // The same object while the volume and its mounts are unchanged: see VolumeInfoCache.
    return this.infos.get({ record, mounts, countsSaved: this.counts.isSaved(name) }, () => ({
      ...this.summary(record),
      status: this.status(record, mounts),
    }));
  }

  /**
   * Name, mount point and creation time of every volume (dockerd's List needs no more). The
   * array is rebuilt only when a volume is created or removed, so callers may cache by identity.
   */
  async list(): Promise<readonly VolumeInfo[]> {
    this.listing ??= Object.freeze(
      [...this.volumes.values()].map((record) => this.summary(record)),
    );
    return this.listing;
  }

  /** Volumes whose counts are only in memory (to report at shutdown). */
  unsavedCounts(): string[] {
    return this.counts.pending();
  }

  private summary(record: VolumeRecord): VolumeInfo {
    return {
      name: record.name,
      mountpoint: this.mountpoint(record.name),
      createdAt: record.createdAt,
    };
  }

  private status(record: VolumeRecord, mounts: readonly MountEntry[]): VolumeStatus {
    const mountpoint = this.mountpoint(record.name);
    const own = mounts.filter((e) => e.mountPoint === mountpoint);
    const { options } = record;
    const tmpfs = options.kind === 'tmpfs';
    const adopted = options.kind === 'path' ? options.path : undefined;
    return {
      propagation: record.options.propagation,
      type: options.kind,
      ...(options.kind !== 'tmpfs' || options.size === undefined ? {} : { size: options.size }),
      activeMounts: totalMounts(record.mounts),
      mountIds: record.mounts,
      countsSaved: this.counts.isSaved(record.name),
      mountPoint: own.length === 1 ? propagationOf(own[0] as MountEntry) : `${own.length} mounts`,
      submounts: mounts
        .filter((e) => e.mountPoint !== mountpoint)
        .map((e) => ({
          path: e.mountPoint.slice(mountpoint.length) || '/',
          fsType: e.fsType,
          source: e.source,
          root: e.root,
        })),
      ...(tmpfs
        ? {}
        : {
            dataPath: adopted ?? path.join(this.hostDataRoot, 'volumes', record.name, '_data'),
          }),
    };
  }

  /** Mounts at or under each volume's mount point, from a snapshot of the mount table. */
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
      this.infos.clear(); // built from the old table: none can match again
    }
    return this.submountIndex.byVolume;
  }

  /** Makes `counts` the volume's counts at once; saving them may fail and is then retried. */
  private setCounts(record: VolumeRecord, counts: MountCounts): void {
    this.volumes.set(record.name, { ...record, mounts: counts });
    this.counts.write(record.name);
  }

  private saveCounts(name: string): void {
    const record = this.volumes.get(name);
    if (!record) return;
    // Only delivered Mounts are saved (see `mount`).
    const delivered = withoutMounts(record.mounts, this.undelivered.get(name) ?? NO_MOUNTS);
    this.store.saveCounts(name, delivered);
  }

  /**
   * The mount point shows the volume's data (the same inode: cheap) and the mount table (at most
   * one snapshot period old) holds exactly one shared mount there. Anything else (a reboot,
   * someone unmounted it or stacked mounts on it) takes the full path, which repairs it.
   */
  private async mountPointIsSound(record: VolumeRecord): Promise<boolean> {
    const mountpoint = this.mountpoint(record.name);
    if (record.options.kind === 'tmpfs') {
      const stack = mountsAt((await this.snapshot.get()).entries, mountpoint);
      const only = stack.length === 1 ? (stack[0] as MountEntry) : undefined;
      return (
        only !== undefined &&
        only.fsType === 'tmpfs' &&
        only.sharedGroup !== undefined &&
        (await this.mounts.showsDevice(mountpoint, only.device))
      );
    }
    const data =
      record.options.kind === 'path' ? record.options.path : this.store.dataDir(record.name);
    if (!(await this.mounts.showsDirectory(mountpoint, data))) return false;
    const stack = mountsAt((await this.snapshot.get()).entries, mountpoint);
    return stack.length === 1 && (stack[0] as MountEntry).sharedGroup !== undefined;
  }

  /**
   * Puts the volume's mount point back when it is missing: a bind of its data directory, or for a
   * tmpfs volume a fresh, empty tmpfs (after a reboot, like /run).
   */
  private async ensureMounted(record: VolumeRecord): Promise<void> {
    const { options } = record;
    let source: MountSource;
    if (options.kind === 'tmpfs') {
      source = { kind: 'tmpfs', options: tmpfsMountOptions(options) };
    } else if (options.kind === 'path') {
      // Checked again at every (re)mount: a symlink put on its way since Create must not lead
      // the bind (mount(8) follows symlinks) to another directory.
      const resolved = await this.mounts.resolveDirectory(options.path);
      if (resolved?.realPath !== options.path || !resolved.isDirectory) {
        throw new VolumeError(
          'unavailable',
          `volume ${JSON.stringify(record.name)}: its adopted directory ${JSON.stringify(options.path)} ${resolved ? 'is now reached through a symlink or is no directory' : 'no longer exists'}; not mounted`,
        );
      }
      source = { kind: 'adopt', directory: options.path };
    } else {
      if (!(await this.store.hasData(record.name))) {
        throw new VolumeError(
          'internal',
          `volume ${JSON.stringify(record.name)}: its data directory is missing from the data root`,
        );
      }
      source = { kind: 'bind', directory: this.store.dataDir(record.name) };
    }
    try {
      await this.mounts.ensureSharedMount(
        source,
        this.mountpoint(record.name),
        options.propagation,
      );
    } finally {
      this.snapshot.invalidate();
    }
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
        `volume ${JSON.stringify(name)}: its state (${bad.file} in the data root) is unusable (${bad.reason}); repair or move it, then restart the plugin`,
      );
    }
  }

  private assertWritable(name: string, verb: string): void {
    if (this.readOnly) {
      throw unavailable(
        `volume ${shownName(name)} not ${verb}: the data root is read-only (volumes can be used, not ${verb}); make it writable and restart the plugin`,
      );
    }
  }

  private exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.lock.acquire(name, work);
  }
}

/**
 * A storage failure as the user should see it: what went wrong, without host paths (they are in
 * the log). Errors the driver already phrased pass through.
 */
function storageError(error: unknown, what: string): unknown {
  if (error instanceof VolumeError) return error;
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'EROFS') return unavailable(`${what}: the data root is read-only`);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return unavailable(`${what}: no space left in the data root`);
  return error;
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
