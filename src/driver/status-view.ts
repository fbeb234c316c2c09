/**
 * What Get and List answer: a volume's summary, and its Status built from a snapshot of the mount
 * table (at most `statusMaxAgeMs` old). The same object is returned while nothing it shows
 * changed (VolumeInfoCache), and the same List array while the set of volumes is the same.
 */
import path from 'node:path';
import { totalMounts } from '../model/counts.js';
import { isWithin } from '../model/paths.js';
import type { VolumeRecord } from '../model/record.js';
import type { VolumeStatus } from '../model/status.js';
import type { MountSnapshot } from '../system/mount-snapshot.js';
import { propagationOf, type MountEntry } from '../system/mountinfo.js';
import type { CountsLedger } from './counts-ledger.js';
import { VolumeInfoCache } from './info-cache.js';
import type { VolumeKinds } from './kinds/index.js';
import type { VolumeRegistry } from './registry.js';
import type { VolumeInfo } from './types.js';

/** A volume with no mount in the snapshot (one shared value, so that VolumeInfoCache can compare). */
const NO_ENTRIES: readonly MountEntry[] = Object.freeze([]);

/** The Status of a mount point cut off from the peer group it must share (see VolumeKind). */
export const CUT_OFF = 'cut off from the peer group of the directory it shows';

export class StatusView {
  private readonly infos = new VolumeInfoCache();
  private submountIndex?: { entries: readonly MountEntry[]; byVolume: Map<string, MountEntry[]> };
  private listing?: { version: number; infos: readonly VolumeInfo[] };

  constructor(
    private readonly mountRoot: string,
    private readonly registry: VolumeRegistry,
    private readonly ledger: CountsLedger,
    private readonly kinds: VolumeKinds,
    private readonly snapshot: MountSnapshot,
  ) {}

  mountpoint(name: string): string {
    return path.join(this.mountRoot, name);
  }

  async get(record: VolumeRecord): Promise<VolumeInfo> {
    const mounts = (await this.submounts()).get(record.name) ?? NO_ENTRIES;
    const countsSaved = this.ledger.isSaved(record.name);
    const joined = await this.joined(record, mounts);
    // The same object while the volume and its mounts are unchanged: see VolumeInfoCache.
    return this.infos.get({ record, mounts, countsSaved, joined }, () => ({
      ...this.summary(record),
      status: this.status(record, mounts, joined),
    }));
  }

  /** False when the one mount at the mount point is cut off from the peer group it must share. */
  private async joined(record: VolumeRecord, mounts: readonly MountEntry[]): Promise<boolean> {
    const own = mounts.filter((e) => e.mountPoint === this.mountpoint(record.name));
    const kind = this.kinds.of(record.options);
    if (own.length !== 1 || kind.inPeerGroup === undefined) return true;
    return kind.inPeerGroup(record, own[0] as MountEntry);
  }

  /** Every volume's summary; the same array until a volume is created or removed. */
  list(): readonly VolumeInfo[] {
    if (this.listing?.version !== this.registry.version) {
      this.listing = {
        version: this.registry.version,
        infos: Object.freeze([...this.registry.records()].map((r) => this.summary(r))),
      };
    }
    return this.listing.infos;
  }

  forget(name: string): void {
    this.infos.forget(name);
  }

  private summary(record: VolumeRecord): VolumeInfo {
    return {
      name: record.name,
      mountpoint: this.mountpoint(record.name),
      createdAt: record.createdAt,
    };
  }

  /** `joined`: false when the mount point's one mount is cut off from its peer group. */
  private status(
    record: VolumeRecord,
    mounts: readonly MountEntry[],
    joined: boolean,
  ): VolumeStatus {
    const mountpoint = this.mountpoint(record.name);
    const own = mounts.filter((e) => e.mountPoint === mountpoint);
    const { type, size, dataPath } = this.kinds.of(record.options).status(record);
    return {
      propagation: record.options.propagation,
      type,
      ...(size === undefined ? {} : { size }),
      activeMounts: totalMounts(record.mounts),
      mountIds: record.mounts,
      countsSaved: this.ledger.isSaved(record.name),
      mountPoint:
        own.length !== 1 ? `${own.length} mounts` : joined ? propagationOf(own[0]!) : CUT_OFF,
      submounts: mounts
        .filter((e) => e.mountPoint !== mountpoint)
        .map((e) => ({
          path: e.mountPoint.slice(mountpoint.length),
          fsType: e.fsType,
          source: e.source,
          root: e.root,
        })),
      ...(dataPath === undefined ? {} : { dataPath }),
    };
  }

  /** Mounts at or under each volume's mount point, from a snapshot of the mount table. */
  private async submounts(): Promise<Map<string, MountEntry[]>> {
    const { entries } = await this.snapshot.get();
    if (this.submountIndex?.entries !== entries) {
      const byVolume = new Map<string, MountEntry[]>();
      for (const entry of entries) {
        const name = volumeOfMount(entry.mountPoint, this.mountRoot);
        if (name === undefined) continue;
        const list = byVolume.get(name);
        if (list) list.push(entry);
        else byVolume.set(name, [entry]);
      }
      this.submountIndex = { entries, byVolume };
      this.infos.clear(); // built from the old table: none can match again
    }
    return this.submountIndex.byVolume;
  }
}

/** The name under the mount root that a mount point lies in; undefined outside it (or the root). */
export function volumeOfMount(mountPoint: string, mountRoot: string): string | undefined {
  if (!isWithin(mountPoint, mountRoot) || mountPoint === mountRoot) return undefined;
  return mountPoint.slice(mountRoot.length + 1).split('/')[0] as string;
}
