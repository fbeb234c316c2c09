/**
 * The per-ID mount counts of every volume: in the registry's records at once (Remove refuses
 * from the first count), saved through CountsWriter (a count that cannot be saved is kept in
 * memory and saved later). A Mount's count is saved only once its answer reached dockerd: a
 * kill or a cut connection before then must not leave a count that no Unmount will take back.
 */
import type { Logger } from '../log.js';
import {
  addMount,
  removeMount,
  totalMounts,
  withoutMounts,
  NO_MOUNTS,
  type MountCounts,
} from '../model/counts.js';
import type { Store } from '../state/volume-store.js';
import { CountsWriter } from './counts-writer.js';
import type { VolumeRegistry } from './registry.js';

export class CountsLedger {
  private readonly writer: CountsWriter;
  /** Per volume, the Mounts counted whose answer has not reached dockerd yet (never saved). */
  private readonly undelivered = new Map<string, MountCounts>();

  constructor(
    private readonly registry: VolumeRegistry,
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    this.writer = new CountsWriter((name) => this.save(name), log);
  }

  /** Counts a Mount of `id` at once; it is saved when `settle` says it was delivered. */
  count(name: string, id: string): void {
    const record = this.registry.require(name);
    this.registry.set({ ...record, mounts: addMount(record.mounts, id) });
    this.undelivered.set(name, addMount(this.undelivered.get(name) ?? NO_MOUNTS, id));
  }

  /**
   * The answer to a Mount of `id` reached dockerd (`delivered`), and its count is saved; or it did
   * not, and the count is taken back: dockerd treats that Mount as failed and never unmounts it.
   * Synchronous, like the save, so that nothing runs between an answer and its count's save.
   */
  settle(name: string, id: string, delivered: boolean): void {
    const pending = removeMount(this.undelivered.get(name) ?? NO_MOUNTS, id);
    // Not pending any more: an Unmount of the same ID has already taken the count back.
    if (!pending.known) return;
    this.setUndelivered(name, pending.counts);
    const record = this.registry.get(name);
    if (!record) return;
    if (!delivered) {
      this.registry.set({ ...record, mounts: removeMount(record.mounts, id).counts });
      this.log.warn('the answer to a Mount did not reach dockerd; its count is taken back', {
        volume: name,
        id,
      });
    }
    this.writer.write(name);
  }

  /**
   * Takes back one Mount of `id`: false when none is counted (dockerd may repeat an Unmount after
   * a restart). `left` is how many mounts the volume still has.
   */
  uncount(name: string, id: string): { known: boolean; left: number } {
    const record = this.registry.require(name);
    const { counts, known } = removeMount(record.mounts, id);
    if (!known) return { known, left: totalMounts(record.mounts) };
    // An Unmount of a Mount whose delivery is not settled yet takes that pending count.
    const pending = this.undelivered.get(name);
    if (pending && (pending.get(id) ?? 0) > (counts.get(id) ?? 0)) {
      this.setUndelivered(name, removeMount(pending, id).counts);
    }
    this.registry.set({ ...record, mounts: counts });
    this.writer.write(name);
    return { known, left: totalMounts(counts) };
  }

  /** Saves what the registry holds now (counts voided at start-up). */
  write(name: string): void {
    this.writer.write(name);
  }

  isSaved(name: string): boolean {
    return this.writer.isSaved(name);
  }

  /** Volumes whose counts are only in memory. */
  pending(): string[] {
    return this.writer.pending();
  }

  /** The volume is gone. */
  forget(name: string): void {
    this.undelivered.delete(name);
    this.writer.forget(name);
  }

  private setUndelivered(name: string, counts: MountCounts): void {
    if (counts.size === 0) this.undelivered.delete(name);
    else this.undelivered.set(name, counts);
  }

  private save(name: string): void {
    const record = this.registry.get(name);
    if (!record) return;
    // Only delivered Mounts are saved.
    const delivered = withoutMounts(record.mounts, this.undelivered.get(name) ?? NO_MOUNTS);
    this.store.saveCounts(name, delivered);
  }
}
