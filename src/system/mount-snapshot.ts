/**
 * A recent view of the mount table for read-only questions (Get, List): at most `maxAgeMs` old,
 * refreshed in the background, so that answering never waits for a parse of a mountinfo that
 * can hold tens of thousands of lines. Decisions that change mounts read mountinfo afresh instead.
 */
import type { MountEntry } from './mountinfo.js';

export interface MountReader {
  read(): Promise<MountEntry[]>;
}

export interface Snapshot {
  entries: MountEntry[];
  takenAt: number;
}

export class MountSnapshot {
  private current?: Snapshot;
  private refreshing?: Promise<Snapshot>;

  constructor(
    private readonly reader: MountReader,
    private readonly maxAgeMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The latest snapshot; waits only when there has never been one. */
  async get(): Promise<Snapshot> {
    const current = this.current;
    if (!current) return this.refresh();
    if (this.now() - current.takenAt > this.maxAgeMs) void this.refresh().catch(() => undefined);
    return current;
  }

  /** Forgets the snapshot after the driver changed mounts itself: the next get() reads afresh. */
  invalidate(): void {
    this.current = undefined;
  }

  refresh(): Promise<Snapshot> {
    this.refreshing ??= this.reader
      .read()
      .then((entries) => {
        this.current = { entries, takenAt: this.now() };
        return this.current;
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }
}
