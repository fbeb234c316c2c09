/**
 * Saves mount counts without ever failing a Mount or an Unmount: when the data root is full or
 * read-only, the counts stay in memory (the driver answers from memory anyway), the failure is
 * logged once, and the save is retried in the background with a growing delay until it works.
 * A save is synchronous (see Store.saveCounts): it always writes what memory holds then.
 */
import type { Logger } from '../log.js';

const FIRST_RETRY_MS = 1_000;
const LAST_RETRY_MS = 60_000;

export class CountsWriter {
  private readonly unsaved = new Set<string>();
  private timer?: NodeJS.Timeout;
  private delay = FIRST_RETRY_MS;

  /** `save(name)` writes the volume's current counts, or throws. */
  constructor(
    private readonly save: (name: string) => void,
    private readonly log: Logger,
  ) {}

  /** Saves the volume's counts now, or keeps them in memory and retries (isSaved tells which). */
  write(name: string): void {
    try {
      this.save(name);
      this.saved(name);
    } catch (error) {
      this.failed(name, error);
    }
  }

  isSaved(name: string): boolean {
    return !this.unsaved.has(name);
  }

  /** The volume is gone: nothing of it is left to save. */
  forget(name: string): void {
    this.unsaved.delete(name);
  }

  /** Volumes whose counts are only in memory. */
  pending(): string[] {
    return [...this.unsaved];
  }

  private saved(name: string): void {
    if (this.unsaved.delete(name))
      this.log.info('mount counts saved after an earlier failure', { volume: name });
  }

  private failed(name: string, error: unknown): void {
    if (!this.unsaved.has(name)) {
      this.log.warn(
        'could not save mount counts; they are kept in memory and the save is retried',
        {
          volume: name,
          code: (error as NodeJS.ErrnoException).code,
          error: String(error),
        },
      );
    }
    this.unsaved.add(name);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.retry(), this.delay);
    this.timer.unref();
  }

  private retry(): void {
    this.timer = undefined;
    for (const name of [...this.unsaved]) {
      try {
        this.save(name);
        this.saved(name);
      } catch {
        // Still failing: logged once already; try again later.
      }
    }
    this.delay = this.unsaved.size > 0 ? Math.min(this.delay * 2, LAST_RETRY_MS) : FIRST_RETRY_MS;
    if (this.unsaved.size > 0) this.schedule();
  }
}
