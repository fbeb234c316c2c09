/**
 * A recent view of the mount table for questions (Get's Status, Mount's health check): never
 * older than `maxAgeMs`, so that a burst of questions costs one parse of a mountinfo that can hold
 * tens of thousands of lines, and a change made outside the driver shows within `maxAgeMs`. The
 * driver invalidates it after its own changes, so those show at once. Decisions that change
 * mounts read mountinfo afresh instead.
 */
import type { MountEntry } from './mountinfo.js';

export interface MountReader {
  read(): Promise<readonly MountEntry[]>;
}

export interface Snapshot {
  entries: readonly MountEntry[];
  takenAt: number;
}

export class MountSnapshot {
  private current?: Snapshot;
  private refreshing?: Promise<Snapshot>;
  private generation = 0;

  constructor(
    private readonly reader: MountReader,
    private readonly maxAgeMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A snapshot at most `maxAgeMs` old: the current one, or a fresh read when it is older. Past
   * half its age a read starts in the background, so that steady traffic never waits for one.
   */
  async get(): Promise<Snapshot> {
    const current = this.current;
    const age = current ? this.now() - current.takenAt : Infinity;
    if (current && age <= this.maxAgeMs) {
      if (age > this.maxAgeMs / 2) void this.refresh().catch(() => undefined);
      return current;
    }
    return this.refresh();
  }

  /**
   * Forgets the snapshot after the driver changed mounts itself: the next get() reads afresh,
   * never joining a read that started before the change.
   */
  invalidate(): void {
    this.current = undefined;
    this.refreshing = undefined;
    this.generation++;
  }

  refresh(): Promise<Snapshot> {
    // Taken before the read: the snapshot is at least as new as this time.
    if (this.refreshing) return this.refreshing;
    const startedAt = this.now();
    const generation = this.generation;
    const refreshing = this.reader
      .read()
      .then((entries) => {
        const snapshot = { entries, takenAt: startedAt };
        if (generation === this.generation) this.current = snapshot;
        return snapshot;
      })
      .finally(() => {
        if (this.refreshing === refreshing) this.refreshing = undefined;
      });
    this.refreshing = refreshing;
    return refreshing;
  }
}
