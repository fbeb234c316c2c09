/**
 * The last Get answer built for each of up to `capacity` volumes, kept while nothing it was built
 * from changed: the volume's record (replaced, never mutated, on every change), its entries in the
 * mount-table snapshot (rebuilt when the table changed) and whether its counts are saved. dockerd
 * asks Get around every use of a volume; an unchanged volume is then answered with the same
 * object, which the protocol layer serialises once. At most `capacity` volumes are kept, the
 * least recently built dropped first, so memory does not grow with the number of volumes; the
 * owner clears it when the mount table changed.
 */
import type { MountEntry } from '../system/mountinfo.js';
import type { VolumeRecord } from '../model/record.js';
import type { VolumeInfo } from './types.js';

interface Sources {
  record: VolumeRecord;
  mounts: readonly MountEntry[];
  countsSaved: boolean;
  /** Whether the mount point is in the peer group it must share (see StatusView). */
  joined?: boolean;
}

export class VolumeInfoCache {
  private readonly entries = new Map<string, Sources & { info: VolumeInfo }>();

  constructor(private readonly capacity = 1_000) {}

  /** The info built from these very sources, or the one `build` makes now (and keeps). */
  get(sources: Sources, build: () => VolumeInfo): VolumeInfo {
    const name = sources.record.name;
    const kept = this.entries.get(name);
    if (
      kept &&
      kept.record === sources.record &&
      kept.mounts === sources.mounts &&
      kept.countsSaved === sources.countsSaved &&
      kept.joined === sources.joined
    ) {
      return kept.info;
    }
    const info = Object.freeze(build());
    this.entries.delete(name);
    this.entries.set(name, { ...sources, info });
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return info;
  }

  forget(name: string): void {
    this.entries.delete(name);
  }

  /**
   * Drops everything: the mount table changed, so no kept info can match again, and each would
   * pin an old copy of the table (its entries' strings are slices of the mountinfo text).
   */
  clear(): void {
    this.entries.clear();
  }
}
