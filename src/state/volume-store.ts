/**
 * Per-volume state under `<dataRoot>/volumes/<name>/`:
 *   volume.json  what the volume is (name, creation time, options): written at Create, atomically
 *                and durably (temp, fsync, rename, directory fsync; 0600)
 *   mounts.json  the per-ID mount counts: replaced atomically (temp, rename; 0600) on every Mount
 *                and Unmount, deliberately without fsync
 *   _data/       the volume's contents
 * Counts only mean something within one boot: a driver killed at any point finds the last whole
 * file (the page cache outlives the process), and a power loss or kernel crash is a reboot, after
 * which the driver voids the counts anyway. An fsync would buy nothing and cost `docker run`
 * two disk flushes per container.
 * Names starting with "." are never volumes: `.new-*` are Creates in progress, `.trash-*` are
 * Removes in progress; both are finished or discarded at start-up.
 */
import { mkdir, open, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import type { MountCounts } from '../driver/refcount.js';
import type { VolumeOptions } from '../driver/validate.js';

export interface VolumeRecord {
  name: string;
  createdAt: string;
  options: VolumeOptions;
  mounts: MountCounts;
}

const countsSchema = z.record(z.string(), z.number().int().positive());

const recordSchema = z.object({
  // Version 1 kept the counts in this file too; they are read when no mounts.json exists yet.
  version: z.union([z.literal(1), z.literal(2)]),
  name: z.string().min(1),
  createdAt: z.string(),
  options: z.object({
    propagation: z.enum(['rshared', 'shared']),
    uid: z.number().int().nonnegative().optional(),
    gid: z.number().int().nonnegative().optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  }),
  mounts: countsSchema.optional(),
});

const countsFileSchema = z.object({ version: z.literal(1), mounts: countsSchema });

export interface BrokenVolume {
  name: string;
  file: string;
  reason: string;
}

export interface LoadResult {
  records: VolumeRecord[];
  broken: BrokenVolume[];
  /** Leftovers of interrupted Creates and Removes, to be deleted safely. */
  leftovers: string[];
  /** Without `counts`: the volumes that had counts (IDs when readable), now reported as zero. */
  voided: { name: string; mountIds: string[] }[];
}

export const STATE_FILE = 'volume.json';
export const COUNTS_FILE = 'mounts.json';
export const DATA_DIR = '_data';

export class VolumeStore {
  readonly root: string;

  constructor(dataRoot: string) {
    this.root = path.join(dataRoot, 'volumes');
  }

  volumeDir(name: string): string {
    return path.join(this.root, name);
  }

  dataDir(name: string): string {
    return path.join(this.root, name, DATA_DIR);
  }

  stateFile(name: string): string {
    return path.join(this.root, name, STATE_FILE);
  }

  countsFile(name: string): string {
    return path.join(this.root, name, COUNTS_FILE);
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  /**
   * Every volume, with its counts unless `counts` is false (a new boot: counts of an earlier one
   * are void, and a file torn by the power loss that ended it must not make a volume unusable).
   */
  async loadAll(options: { counts: boolean } = { counts: true }): Promise<LoadResult> {
    const result: LoadResult = { records: [], broken: [], leftovers: [], voided: [] };
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (entry.name.startsWith('.new-') || entry.name.startsWith('.trash-')) {
        result.leftovers.push(path.join(this.root, entry.name));
        continue;
      }
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      let file = this.stateFile(entry.name);
      try {
        const record = parseRecord(await readFile(file, 'utf8'));
        if (record.name !== entry.name) {
          throw new Error(`it names volume ${JSON.stringify(record.name)}`);
        }
        file = this.countsFile(entry.name);
        if (options.counts) {
          result.records.push({
            ...record,
            mounts: (await this.readCounts(file)) ?? record.mounts,
          });
          continue;
        }
        const earlier = await this.readCounts(file).then(
          (counts) => Object.keys(counts ?? record.mounts),
          () => ['(unreadable)'],
        );
        if (earlier.length > 0) result.voided.push({ name: record.name, mountIds: earlier });
        result.records.push({ ...record, mounts: {} });
      } catch (error) {
        result.broken.push({ name: entry.name, file, reason: (error as Error).message });
      }
    }
    return result;
  }

  /** The counts in `file`, or undefined when there is none (a volume never mounted). */
  private async readCounts(file: string): Promise<MountCounts | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return parseJson(text, countsFileSchema).mounts;
  }

  /**
   * Writes what `record` is (not its counts) into `dir`, a staging directory, atomically and
   * durably: temp file, fsync, rename, then the directory.
   */
  async save(record: VolumeRecord, dir: string): Promise<void> {
    const { name, createdAt, options } = record;
    const body = JSON.stringify({ version: 2, name, createdAt, options }, null, 2) + '\n';
    await writeFileAtomic(path.join(dir, STATE_FILE), body, { mode: 0o600, fsync: true });
    await fsyncDir(dir);
  }

  /**
   * Replaces the volume's counts atomically (see the header for why without fsync). Callers
   * serialise the saves of one volume, so one temp name per volume is enough, and an interrupted
   * save leaves at most that one file, which the next save overwrites. (write-file-atomic would
   * spend a dozen thread-pool round trips on realpath, stat, chown and chmod here.)
   */
  async saveCounts(name: string, counts: MountCounts): Promise<void> {
    const file = this.countsFile(name);
    const temp = `${file}.tmp`;
    try {
      await writeFile(temp, JSON.stringify({ version: 1, mounts: counts }) + '\n', { mode: 0o600 });
      await rename(temp, file);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  /** A fresh staging directory for a Create, under the volumes root. */
  async makeStaging(name: string): Promise<string> {
    const dir = path.join(this.root, `.new-${name}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  /** Atomically publishes a staging directory as the volume `name`. */
  async publish(staging: string, name: string): Promise<void> {
    await rename(staging, this.volumeDir(name));
    await fsyncDir(this.root);
  }

  /** Atomically takes the volume `name` out of the store; returns where its files now are. */
  async retire(name: string): Promise<string> {
    const trash = path.join(this.root, `.trash-${name}-${randomBytes(4).toString('hex')}`);
    await rename(this.volumeDir(name), trash);
    await fsyncDir(this.root);
    return trash;
  }
}

export function parseRecord(text: string): VolumeRecord {
  const { name, createdAt, options, mounts = {} } = parseJson(text, recordSchema);
  return { name, createdAt, options, mounts };
}

function parseJson<T>(text: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `unexpected content: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
