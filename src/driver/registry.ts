/**
 * The volumes the driver knows, and those whose state it could not read (refused until the
 * plugin restarts). Plain maps: the driver's lock per volume orders the changes.
 */
import { notFound, VolumeError } from '../model/errors.js';
import type { VolumeRecord } from '../model/record.js';
import type { BrokenVolume } from '../state/volume-store.js';

export class VolumeRegistry {
  private readonly volumes = new Map<string, VolumeRecord>();
  private readonly broken = new Map<string, BrokenVolume>();
  /** Bumped whenever a volume comes or goes (List caches by it). */
  private generation = 0;

  get(name: string): VolumeRecord | undefined {
    return this.volumes.get(name);
  }

  has(name: string): boolean {
    return this.volumes.has(name);
  }

  /** A volume that is known or broken: its name is taken. */
  isKnown(name: string): boolean {
    return this.volumes.has(name) || this.broken.has(name);
  }

  /** Adds a volume or replaces its record (a record with new counts is the same volume). */
  set(record: VolumeRecord): void {
    if (!this.volumes.has(record.name)) this.generation++;
    this.volumes.set(record.name, record);
  }

  delete(name: string): void {
    if (this.volumes.delete(name)) this.generation++;
  }

  records(): IterableIterator<VolumeRecord> {
    return this.volumes.values();
  }

  get size(): number {
    return this.volumes.size;
  }

  get brokenCount(): number {
    return this.broken.size;
  }

  /** Changes whenever the set of volumes does. */
  get version(): number {
    return this.generation;
  }

  markBroken(bad: BrokenVolume): void {
    this.broken.set(bad.name, bad);
  }

  isBroken(name: string): boolean {
    return this.broken.has(name);
  }

  require(name: string): VolumeRecord {
    const record = this.volumes.get(name);
    if (!record) throw notFound(name);
    return record;
  }

  assertNotBroken(name: string): void {
    const bad = this.broken.get(name);
    if (bad) {
      throw new VolumeError(
        'internal',
        `volume ${JSON.stringify(name)}: its state (${bad.file} in the data root) is unusable (${bad.reason}); repair or move it, then restart the plugin`,
      );
    }
  }
}
