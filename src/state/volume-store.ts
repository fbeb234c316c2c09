/**
 * Per-volume state under `<dataRoot>/volumes/<name>/`:
 *   volume.json  what the volume is (name, creation time, options): written at Create, atomically
 *                and durably (temp, fsync, rename, directory fsync; 0600)
 *   mounts.json  the per-ID mount counts, as [id, count] pairs, in a file of one page (4 KiB,
 *                padded with spaces) that every Mount and Unmount overwrites in place with one
 *                write: no new block is needed, so counts keep being saved on a full disk, and a
 *                one-page write is never torn by kill -9. Larger counts are replaced atomically
 *                (write-file-atomic). Deliberately without fsync, see below.
 *   _data/       the volume's contents
 * Counts only mean something within one boot: a driver killed at any point finds the last whole
 * file (the page cache outlives the process), and a power loss or kernel crash is a reboot, after
 * which the counts are void anyway. An fsync would buy nothing and cost `docker run` two disk
 * flushes per container. Counts are saved synchronously (a page to the page cache takes
 * microseconds): saves never overtake each other, and need no lock.
 * Names starting with "." are never volumes: `.new-<random>` are Creates in progress,
 * `.trash-<random>` are Removes in progress; both are discarded after start-up. Their names do
 * not carry the volume's name, so that a 255-character name fits (NAME_MAX).
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { access, mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import writeFileAtomic from 'write-file-atomic';
import type { MountEntry } from '../system/mountinfo.js';
import { deleteTree } from '../system/safe-delete.js';
import {
  readTmpfsIdentity,
  TMPFS_IDENTITY_FILE,
  writeTmpfsIdentity,
  type TmpfsIdentity,
} from './tmpfs-identity.js';
import type { MountCounts } from '../model/counts.js';
import { COUNTS_PAGE, countsBody, overwritePage } from './counts-page.js';
import { countsFileSchema, countsFromJson, type VolumeRecord } from '../model/record.js';
import {
  allSettledOrThrow,
  fsyncDir,
  fsyncFd,
  parseJson,
  parseRecord,
  recordText,
  writeRecord,
} from './record-file.js';

export interface BrokenVolume {
  name: string;
  /** Relative to the data root: error texts name no host paths. */
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

/** Whether the host rebooted since the boot id was last recorded, and how to record it. */
export interface BootChange {
  /** This boot's id, when the kernel's file could be read. */
  current?: string;
  rebooted: boolean;
  record: () => Promise<void>;
}

/** The owner and mode of a volume's data directory in the data root. */
export interface DataDirectory {
  uid?: number;
  gid?: number;
  mode?: number;
}

export const STATE_FILE = 'volume.json';
export const COUNTS_FILE = 'mounts.json';
export const DATA_DIR = '_data';
const BOOT_ID_FILE = 'boot-id';

/** What the driver needs of the store (faked in unit tests). */
export interface Store {
  dataDir(name: string): string;
  derivedPaths(name: string): string[];
  init(): Promise<void>;
  writable(): Promise<boolean>;
  bootChange(bootIdFile: string): Promise<BootChange>;
  loadAll(options?: { counts: boolean }): Promise<LoadResult>;
  /**
   * A staging directory holding the new volume whole (its state, and a data directory with
   * `data`'s owner and mode when given); see publish.
   */
  stage(record: VolumeRecord, data?: DataDirectory): Promise<string>;
  /** Rewrites a live volume's record (volume.json), e.g. with what an older version lacked. */
  saveRecord(record: VolumeRecord): Promise<void>;
  /**
   * Renames the staging directory to the volume `name`, then makes that rename durable while
   * `meanwhile` runs (the volume's mount, which needs the name but not its durability); resolves
   * when both are done, and rejects when either failed.
   */
  publish(staging: string, name: string, meanwhile?: () => Promise<void>): Promise<void>;
  retire(name: string): Promise<string>;
  restore(trash: string, name: string): Promise<void>;
  /** Deletes a staging or trash directory, never across a mount in `entries` or the kernel's. */
  discard(dir: string, entries: readonly MountEntry[]): Promise<void>;
  hasData(name: string): Promise<boolean>;
  /** The data directory inside a volume's directory wherever it is (a trash or a staging one). */
  dataDirIn(dir: string): string;
  /** Records the identity of the tmpfs mounted for the volume `name`. */
  saveTmpfsIdentity(name: string, identity: TmpfsIdentity): Promise<void>;
  /** The tmpfs identity recorded in a volume's directory (a trash one too), if any. */
  readTmpfsIdentity(dir: string): Promise<TmpfsIdentity | undefined>;
  /**
   * Saves the counts at once, synchronously: one page written to the page cache, so no two saves
   * of a volume can land out of order, and a save made right after an answer is on its way.
   */
  saveCounts(name: string, counts: MountCounts): void;
}

export class VolumeStore implements Store {
  readonly root: string;

  constructor(readonly dataRoot: string) {
    this.root = path.join(dataRoot, 'volumes');
  }

  volumeDir(name: string): string {
    return path.join(this.root, name);
  }

  dataDir(name: string): string {
    return path.join(this.root, name, DATA_DIR);
  }

  dataDirIn(dir: string): string {
    return path.join(dir, DATA_DIR);
  }

  saveTmpfsIdentity(name: string, identity: TmpfsIdentity): Promise<void> {
    return writeTmpfsIdentity(this.volumeDir(name), identity);
  }

  readTmpfsIdentity(dir: string): Promise<TmpfsIdentity | undefined> {
    return readTmpfsIdentity(dir);
  }

  stateFile(name: string): string {
    return path.join(this.root, name, STATE_FILE);
  }

  countsFile(name: string): string {
    return path.join(this.root, name, COUNTS_FILE);
  }

  /** Every path the store derives from a volume name, for the PATH_MAX check at Create. */
  derivedPaths(name: string): string[] {
    // write-file-atomic writes `<file>.<up to 10 digits>` before its rename.
    return [
      `${this.countsFile(name)}.0123456789`,
      `${this.stateFile(name)}.0123456789`,
      `${path.join(this.volumeDir(name), TMPFS_IDENTITY_FILE)}.0123456789`,
    ];
  }

  /** Makes the volumes directory; on a read-only data root it must exist already. */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  /** False when the data root cannot be written (read-only filesystem): serve read-only. */
  async writable(): Promise<boolean> {
    return access(this.root, constants.W_OK).then(
      () => true,
      () => false,
    );
  }

  /**
   * Whether the host rebooted since the boot id was last recorded, and how to record it. Counts
   * of an earlier boot are void: no container survives a reboot, and dockerd sends no Unmount.
   */
  async bootChange(bootIdFile: string): Promise<BootChange> {
    const read = (file: string) =>
      readFile(file, 'utf8').then(
        (text) => text.trim(),
        () => undefined,
      );
    const marker = path.join(this.dataRoot, BOOT_ID_FILE);
    const [current, previous] = await Promise.all([read(bootIdFile), read(marker)]);
    return {
      current,
      rebooted: current !== undefined && previous !== undefined && current !== previous,
      record: async () => {
        if (current !== undefined && current !== previous) {
          await writeFileAtomic(marker, `${current}\n`, { mode: 0o600, fsync: true });
        }
      },
    };
  }

  /**
   * Every volume, with its counts unless `counts` is false (a new boot: counts of an earlier one
   * are void, and a file torn by the power loss that ended it must not make a volume unusable).
   */
  async loadAll(options: { counts: boolean } = { counts: true }): Promise<LoadResult> {
    const result: LoadResult = { records: [], broken: [], leftovers: [], voided: [] };
    const volumes: string[] = [];
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (entry.name.startsWith('.new-') || entry.name.startsWith('.trash-')) {
        result.leftovers.push(path.join(this.root, entry.name));
      } else if (entry.isDirectory() && !entry.name.startsWith('.')) {
        volumes.push(entry.name);
      }
    }
    // Read synchronously: this runs once, before the socket listens, when nothing else waits for
    // the event loop, and each of these small files through the thread pool (open, fstat, read,
    // close) made 10,000 volumes take 4.4 s of dockerd's wait for the socket (1.2 s like this).
    const loaded = volumes.map((name) => this.loadOne(name, options));
    for (const one of loaded) {
      if ('broken' in one) {
        result.broken.push(one.broken);
        continue;
      }
      result.records.push(one.record);
      if (one.voided) result.voided.push(one.voided);
    }
    return result;
  }

  private loadOne(
    name: string,
    options: { counts: boolean },
  ): { record: VolumeRecord; voided?: LoadResult['voided'][number] } | { broken: BrokenVolume } {
    let file = STATE_FILE;
    try {
      const record = parseRecord(readFileSync(this.stateFile(name), 'utf8'));
      if (record.name !== name) {
        throw new Error(`it names volume ${JSON.stringify(record.name)}`);
      }
      file = COUNTS_FILE;
      if (options.counts) {
        const counts = this.readCounts(name);
        return { record: counts ? { ...record, mounts: counts } : record };
      }
      let earlier: string[];
      try {
        earlier = [...(this.readCounts(name) ?? record.mounts).keys()];
      } catch {
        earlier = ['(unreadable)'];
      }
      return {
        record: { ...record, mounts: new Map() },
        voided: earlier.length > 0 ? { name: record.name, mountIds: earlier } : undefined,
      };
    } catch (error) {
      return {
        broken: {
          name,
          file: path.join('volumes', name, file),
          reason: (error as Error).message,
        },
      };
    }
  }

  /** The counts in mounts.json, or undefined when there is none (a volume of version 1). */
  private readCounts(name: string): MountCounts | undefined {
    let text: string;
    try {
      text = readFileSync(this.countsFile(name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return countsFromJson(parseJson(text, countsFileSchema).mounts);
  }

  /**
   * Writes what `record` is into `dir`, a staging directory of its own (fresh, 0700: nobody else
   * writes in it, and it is published by one rename), durably (new file and the directory,
   * fsynced), and its empty counts file of one page. No temporary file and rename: a staging
   * directory cut short is never published, and is deleted at the next start.
   *
   * The small metadata calls are synchronous (each is tens of microseconds; a trip through the
   * thread pool costs more than the call) and the two fsyncs run side by side: both are done
   * before the staging directory can be published, and neither needs the other first.
   */
  async save(record: VolumeRecord, dir: string): Promise<void> {
    const state = openSync(path.join(dir, STATE_FILE), 'wx', 0o600);
    try {
      writeFileSync(state, recordText(record));
      writeFileSync(path.join(dir, COUNTS_FILE), countsBody(record.mounts), {
        mode: 0o600,
        flag: 'wx',
      });
      await allSettledOrThrow([fsyncFd(state), fsyncDir(dir)]);
    } finally {
      closeSync(state);
    }
  }

  /** Rewrites a live volume's record (not its counts), atomically and durably. */
  async saveRecord(record: VolumeRecord): Promise<void> {
    await writeRecord(record, path.join(this.volumeDir(record.name), STATE_FILE));
    await fsyncDir(this.volumeDir(record.name));
  }

  /** Saves the volume's counts (see the header for how, and why without fsync). */
  saveCounts(name: string, counts: MountCounts): void {
    const body = countsBody(counts);
    const file = this.countsFile(name);
    if (body.length === COUNTS_PAGE && overwritePage(file, body)) return;
    // More than a page (or a file of another size): replaced whole, atomically.
    writeFileAtomic.sync(file, body, { mode: 0o600, fsync: false });
  }

  async stage(record: VolumeRecord, data?: DataDirectory): Promise<string> {
    const staging = await this.makeStaging();
    // A volume whose data is elsewhere (a tmpfs, an adopted directory) keeps only its record here.
    if (data) {
      const dir = path.join(staging, DATA_DIR);
      mkdirSync(dir);
      chmodSync(dir, data.mode ?? 0o755);
      const { uid, gid } = data;
      if (uid !== undefined || gid !== undefined) chownSync(dir, uid ?? -1, gid ?? -1);
    }
    await this.save(record, staging);
    return staging;
  }

  discard(dir: string, entries: readonly MountEntry[]): Promise<void> {
    return deleteTree(dir, entries);
  }

  async hasData(name: string): Promise<boolean> {
    try {
      return statSync(this.dataDir(name)).isDirectory();
    } catch {
      return false;
    }
  }

  /** A fresh staging directory for a Create, under the volumes root. */
  async makeStaging(): Promise<string> {
    const dir = path.join(this.root, `.new-${randomBytes(8).toString('hex')}`);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  /** Atomically publishes a staging directory as the volume `name` (see Store.publish). */
  async publish(
    staging: string,
    name: string,
    meanwhile: () => Promise<void> = () => Promise.resolve(),
  ): Promise<void> {
    renameSync(staging, this.volumeDir(name));
    await allSettledOrThrow([fsyncDir(this.root), meanwhile()]);
  }

  /** Atomically takes the volume `name` out of the store; returns where its files now are. */
  async retire(name: string): Promise<string> {
    const trash = path.join(this.root, `.trash-${randomBytes(8).toString('hex')}`);
    renameSync(this.volumeDir(name), trash);
    await fsyncDir(this.root);
    return trash;
  }

  /** Undoes retire(): the volume is back as it was. */
  async restore(trash: string, name: string): Promise<void> {
    renameSync(trash, this.volumeDir(name));
    await fsyncDir(this.root);
  }
}
