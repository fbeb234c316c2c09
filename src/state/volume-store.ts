/**
 * Durable per-volume state under `<dataRoot>/volumes/<name>/`:
 *   volume.json  metadata and mount counts, written atomically (temp, fsync, rename, 0600)
 *   _data/       the volume's contents
 * Names starting with "." are never volumes: `.new-*` are Creates in progress, `.trash-*` are
 * Removes in progress; both are finished or discarded at start-up.
 */
import { mkdir, open, readFile, readdir, rename } from 'node:fs/promises';
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

const recordSchema = z.object({
  version: z.literal(1),
  name: z.string().min(1),
  createdAt: z.string(),
  options: z.object({
    propagation: z.enum(['rshared', 'shared']),
    uid: z.number().int().nonnegative().optional(),
    gid: z.number().int().nonnegative().optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  }),
  mounts: z.record(z.string(), z.number().int().positive()),
});

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
}

export const STATE_FILE = 'volume.json';
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

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  async loadAll(): Promise<LoadResult> {
    const result: LoadResult = { records: [], broken: [], leftovers: [] };
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (entry.name.startsWith('.new-') || entry.name.startsWith('.trash-')) {
        result.leftovers.push(path.join(this.root, entry.name));
        continue;
      }
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const file = this.stateFile(entry.name);
      try {
        const record = parseRecord(await readFile(file, 'utf8'));
        if (record.name !== entry.name) {
          throw new Error(`it names volume ${JSON.stringify(record.name)}`);
        }
        result.records.push(record);
      } catch (error) {
        result.broken.push({ name: entry.name, file, reason: (error as Error).message });
      }
    }
    return result;
  }

  /**
   * Writes `record` into `dir` (its volume directory, or a staging one) atomically: temp file,
   * fsync, rename. The directory is fsynced too when the file is new (`syncDir`); a rename over an
   * existing file needs no directory sync to survive a crash of the driver.
   */
  async save(
    record: VolumeRecord,
    dir = this.volumeDir(record.name),
    options: { syncDir: boolean } = { syncDir: false },
  ): Promise<void> {
    const body = JSON.stringify({ version: 1, ...record }, null, 2) + '\n';
    await writeFileAtomic(path.join(dir, STATE_FILE), body, { mode: 0o600, fsync: true });
    if (options.syncDir) await fsyncDir(dir);
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
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `unexpected content: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const { name, createdAt, options, mounts } = parsed.data;
  return { name, createdAt, options, mounts };
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
