/**
 * The sharedprop volume driver: a directory per volume (or a tmpfs of its own, or an adopted host
 * directory), kept mounted once at `<mountRoot>/<name>` with shared propagation, with per-ID
 * mount counts that outlive the driver. It knows nothing about HTTP.
 *
 * This class is a facade: it validates, takes the per-volume lock, and delegates to
 * - the registry (registry.ts): the volumes known, and those whose state is unusable;
 * - the kinds (kinds/): what differs between a directory, a tmpfs and an adopted directory;
 * - the counts ledger (counts-ledger.ts), start-up recovery (recovery.ts), the status view
 *   (status-view.ts) and the reaper (reaper.ts).
 *
 * Data safety, in order of what it protects:
 * - Remove takes the volume out of the store first (one rename: the step that fails on a
 *   read-only root); a failure after it puts the volume back as it was. Deletion runs through a
 *   helper that the kernel keeps from following symlinks or crossing mounts (safe-delete.ts).
 * - The caller holds the data root's lock (one driver per data root).
 * - Counts live in memory; a count that cannot be saved is kept and saved later. A Mount's count
 *   is saved only once its answer reached dockerd (`Tentative`).
 */
import path from 'node:path';
import AsyncLock from 'async-lock';
import type { Logger } from '../log.js';
import { totalMounts } from '../model/counts.js';
import { conflict, unavailable } from '../model/errors.js';
import { validateDerivedPaths, validateMountId, validateName, shownName } from '../model/names.js';
import {
  describeOptions,
  parseOptions,
  sameOptions,
  type RawOptions,
  type VolumeOptions,
} from '../model/options.js';
import type { VolumeRecord } from '../model/record.js';
import { VolumeStore, type Store } from '../state/volume-store.js';
import { MountSnapshot } from '../system/mount-snapshot.js';
import type { MountEntry } from '../system/mountinfo.js';
import { createMountLayer, MOUNT_LAYER_ENV, parseMountLayer } from '../system/mount-layer.js';
import { ForeignMountPointError, type Mounts } from '../system/mounts.js';
import { MountBoundaryError } from '../system/safe-delete.js';
import { hostMemory } from '../system/host-memory.js';
import type { DriverConfig } from './config.js';
import { CountsLedger } from './counts-ledger.js';
import { crashPoint } from './crash-points.js';
import { VolumeKinds, type VolumeKind } from './kinds/index.js';
import { Reaper } from './reaper.js';
import { StartupRecovery, type RuntimeState } from './recovery.js';
import { VolumeRegistry } from './registry.js';
import { StatusView } from './status-view.js';
import { storageError } from './storage-error.js';
import type { Capabilities, Tentative, VolumeDriver, VolumeInfo } from './types.js';

export { DEFAULT_RESERVED_PATHS, type DriverConfig } from './config.js';

/** The lock under which Creates that must be checked against each other run. */
const SERIAL_CREATE_LOCK = '\0adopt';
/** Volumes are local to the host: each engine has its own. */
const LOCAL_SCOPE: Capabilities = Object.freeze({ scope: 'local' });

export class SharedpropDriver implements VolumeDriver {
  private readonly store: Store;
  private readonly mounts: Mounts;
  private readonly log: Logger;
  private readonly lock = new AsyncLock({ maxPending: Number.MAX_SAFE_INTEGER });
  private readonly snapshot: MountSnapshot;
  private readonly registry = new VolumeRegistry();
  private readonly ledger: CountsLedger;
  private readonly kinds: VolumeKinds;
  private readonly view: StatusView;
  private readonly reaper: Reaper;
  private readonly recovery: StartupRecovery;
  private readonly state: RuntimeState;

  constructor(private readonly config: DriverConfig) {
    this.store = config.store ?? new VolumeStore(config.dataRoot);
    this.mounts =
      config.mounts ??
      createMountLayer(parseMountLayer(process.env[MOUNT_LAYER_ENV]), config.logger);
    this.log = config.logger;
    this.snapshot = new MountSnapshot(
      this.mounts.readerAbout(config.mountRoot),
      config.statusMaxAgeMs ?? 1_000,
    );
    this.state = { readOnly: false, hostDataRoot: config.dataRoot };
    this.ledger = new CountsLedger(this.registry, this.store, this.log);
    this.kinds = new VolumeKinds({
      config,
      store: this.store,
      mounts: this.mounts,
      snapshot: this.snapshot,
      log: this.log,
      mountpoint: (name) => this.mountpoint(name),
      hostDataRoot: () => this.state.hostDataRoot,
      records: () => this.registry.records(),
      bootId: () => this.state.bootId,
      ensureMounted: (record) => this.ensureMounted(record),
      markBroken: (name, reason) =>
        this.registry.markBroken({ name, file: path.join('volumes', name), reason }),
    });
    this.view = new StatusView(
      config.mountRoot,
      this.registry,
      this.ledger,
      this.kinds,
      this.snapshot,
    );
    this.reaper = new Reaper(this.mounts, this.snapshot, this.log, config.engineStorage);
    this.recovery = new StartupRecovery(
      config,
      this.store,
      this.mounts,
      this.registry,
      this.ledger,
      {
        isSound: (record) => this.kinds.of(record.options).isSound(record),
        ensureMounted: (record) => this.ensureMounted(record),
        inPeerGroup: async (record, view) =>
          (await this.kinds.of(record.options).inPeerGroup?.(record, view)) ?? true,
        exclusive: (name, work) => this.exclusive(name, work),
      },
      this.state,
      this.log,
    );
  }

  mountpoint(name: string): string {
    return path.join(this.config.mountRoot, name);
  }

  /** See StartupRecovery.start; then records an older version wrote are completed. */
  async start(): Promise<void> {
    await this.recovery.start();
    for (const record of [...this.registry.records()]) {
      const kind = this.kinds.of(record.options);
      const upgrade = kind.upgrade?.bind(kind);
      if (!upgrade) continue;
      await this.exclusive(record.name, async () => {
        if (this.registry.get(record.name) === record) await upgrade(record);
      });
    }
  }

  /** Resolves once start-up has put back every mount point it found missing (or failed to). */
  restored(): Promise<void> {
    return this.recovery.restored();
  }

  /** Deletes what interrupted Creates and Removes left behind; safe to run while serving. */
  deleteLeftovers(): Promise<void> {
    return this.recovery.deleteLeftovers();
  }

  capabilities(): Capabilities {
    return LOCAL_SCOPE;
  }

  async create(name: string, rawOptions: RawOptions): Promise<void> {
    validateName(name);
    validateDerivedPaths(name, [...this.store.derivedPaths(name), this.mountpoint(name)]);
    const options = parseOptions(name, rawOptions, {
      tmpfs: this.config.tmpfsSizeLimits ?? hostMemory(),
    });
    const kind = this.kinds.of(options);
    const work = () =>
      this.exclusive(name, async () => {
        this.registry.assertNotBroken(name);
        const existing = this.registry.get(name);
        if (existing) {
          if (sameOptions(existing.options, options)) return;
          throw conflict(
            `volume ${JSON.stringify(name)} already exists with different options (${describeOptions(existing.options)})`,
          );
        }
        this.assertWritable(name, 'created');
        const recorded = (await kind.checkCreate(name, options)) ?? options;
        await this.createNew(name, recorded, kind);
      });
    await (kind.serialCreate ? this.lock.acquire(SERIAL_CREATE_LOCK, work) : work());
  }

  private async createNew(name: string, options: VolumeOptions, kind: VolumeKind): Promise<void> {
    const record: VolumeRecord = {
      name,
      createdAt: new Date().toISOString(),
      options,
      mounts: new Map(),
    };
    let staging: string | undefined;
    let published = false;
    try {
      staging = await this.store.stage(record, kind.dataDirectory(options));
      crashPoint('create:staged');
      // The mount is made while the publishing rename is made durable (one fsync fewer waited for).
      const mount = async () => {
        published = true;
        crashPoint('create:published');
        await this.ensureMounted(record);
      };
      await this.store.publish(staging, name, mount).catch((error: NodeJS.ErrnoException) => {
        if (!published && (error.code === 'ENOTEMPTY' || error.code === 'EEXIST')) {
          throw conflict(
            `volume ${JSON.stringify(name)}: the data root holds a directory of that name that is no volume; move volumes/${name} away first`,
          );
        }
        throw error;
      });
      this.registry.set(record);
      crashPoint('create:mounted');
      this.log.info('volume created', { volume: name, options: describeOptions(options) });
    } catch (error) {
      if (staging) await this.undoCreate(name, kind, published ? undefined : staging);
      throw storageError(error, `volume ${JSON.stringify(name)} not created`);
    }
  }

  /** Takes back a failed Create: its mount point, and its files (published or still staged). */
  private async undoCreate(name: string, kind: VolumeKind, staging?: string): Promise<void> {
    try {
      await kind.undoCreate(name);
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
      this.registry.assertNotBroken(name);
      const record = this.registry.require(name);
      const inUse = totalMounts(record.mounts);
      if (inUse > 0) {
        throw conflict(
          `volume ${JSON.stringify(name)} is in use (${inUse} active mount${inUse > 1 ? 's' : ''}: ${[...record.mounts.keys()].join(', ')}); stop the containers that use it first`,
        );
      }
      this.assertWritable(name, 'removed');
      const outcome = await this.kinds.of(record.options).remove(record);
      await this.forgetRemoved(name, outcome.trash, outcome.trashMounts);
      crashPoint('remove:deleted');
      this.log.info(outcome.message, { volume: name, ...outcome.details });
    });
  }

  /**
   * The end of every Remove, once the volume is detached and retired: it is forgotten, and its
   * trash is deleted (or left for a retry at the next start).
   */
  private async forgetRemoved(
    name: string,
    trash: string,
    trashMounts?: readonly MountEntry[],
  ): Promise<void> {
    this.registry.delete(name);
    this.ledger.forget(name);
    this.view.forget(name);
    await this.mounts.removeMountPoint(this.mountpoint(name));
    try {
      await this.store.discard(trash, trashMounts ?? (await this.mounts.readAbout(trash)));
    } catch (error) {
      this.recovery.addLeftover(trash);
      this.log.error('volume removed, but what it left could not all be deleted yet', {
        volume: name,
        path: trash,
        error: String(error),
        boundary: error instanceof MountBoundaryError,
      });
    }
  }

  async mount(name: string, id: string): Promise<Tentative<string>> {
    validateName(name);
    validateMountId(name, id);
    return this.exclusive(name, async () => {
      this.registry.assertNotBroken(name);
      const before = this.registry.require(name);
      if (!(await this.kinds.of(before.options).isSound(before))) await this.ensureMounted(before);
      // Counted at once (Remove refuses from now on), saved only once dockerd has the answer.
      this.ledger.count(name, id);
      crashPoint('mount:counted');
      let settled = false;
      const settle = (delivered: boolean) => {
        if (settled) return;
        settled = true;
        this.ledger.settle(name, id, delivered);
      };
      return {
        value: this.mountpoint(name),
        commit: () => settle(true),
        abandon: () => settle(false),
      };
    });
  }

  async unmount(name: string, id: string): Promise<void> {
    validateName(name);
    validateMountId(name, id);
    await this.exclusive(name, async () => {
      this.registry.assertNotBroken(name);
      const { options } = this.registry.require(name);
      const { known, left } = this.ledger.uncount(name, id);
      if (!known) {
        // dockerd may repeat an Unmount after a restart; nothing is counted for it.
        this.log.warn('unmount for an ID with no mounts counted', { volume: name, id });
        return;
      }
      if (left === 0 && this.kinds.of(options).reapsOnUnmount(options)) {
        await this.reaper.reap(name, this.mountpoint(name));
      }
    });
  }

  async path(name: string): Promise<string> {
    validateName(name);
    this.registry.assertNotBroken(name);
    this.registry.require(name);
    return this.mountpoint(name);
  }

  async get(name: string): Promise<VolumeInfo> {
    validateName(name);
    this.registry.assertNotBroken(name);
    return this.view.get(this.registry.require(name));
  }

  /**
   * Name, mount point and creation time of every volume (dockerd's List needs no more). The
   * array is rebuilt only when a volume is created or removed, so callers may cache by identity.
   */
  async list(): Promise<readonly VolumeInfo[]> {
    return this.view.list();
  }

  /** Volumes whose counts are only in memory (to report at shutdown). */
  unsavedCounts(): string[] {
    return this.ledger.pending();
  }

  /**
   * Puts the volume's mount point back when it is missing: what its kind mounts there (a bind
   * of its data directory, a fresh tmpfs, the adopted directory).
   */
  private async ensureMounted(record: VolumeRecord): Promise<void> {
    const kind = this.kinds.of(record.options);
    const source = await kind.source(record);
    let top: MountEntry;
    try {
      top = await this.mounts.ensureSharedMount(
        source,
        this.mountpoint(record.name),
        record.options.propagation,
      );
    } catch (error) {
      if (!(error instanceof ForeignMountPointError)) throw error;
      if (error.propagation === 'detached') {
        throw unavailable(`volume ${JSON.stringify(record.name)}: ${error.message}; try again`);
      }
      throw unavailable(
        `volume ${JSON.stringify(record.name)}: ${error.message}; making it shared would change what is not the driver's: not mounted (make it shared yourself, or unmount it)`,
      );
    } finally {
      if (source.kind === 'adopt') source.held?.release();
      this.snapshot.invalidate();
    }
    await kind.mounted(record, top);
  }

  private assertWritable(name: string, verb: string): void {
    if (this.state.readOnly) {
      throw unavailable(
        `volume ${shownName(name)} not ${verb}: the data root is read-only (volumes can be used, not ${verb}); make it writable and restart the plugin`,
      );
    }
  }

  private exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.lock.acquire(name, work);
  }
}
