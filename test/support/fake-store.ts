/** The store in memory (see driver-fakes.ts): told to fail the way the real one does. */
import type { MountCounts } from '../../src/model/counts.js';
import type { VolumeRecord } from '../../src/model/record.js';
import type {
  BootChange,
  BrokenVolume,
  DataDirectory,
  LoadResult,
  Store,
} from '../../src/state/volume-store.js';
import type { TmpfsIdentity } from '../../src/state/tmpfs-identity.js';
import { allSettledOrThrow } from '../../src/state/record-file.js';

/** An error shaped like Node's for a failed system call (`code`), as the fakes throw them. */
export function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

export class FakeStore implements Store {
  readonly root = '/fake/data/volumes';
  /** Published volumes: what is in the store. */
  readonly volumes = new Map<string, VolumeRecord>();
  /** Staging and trash directories, by path. */
  readonly dirs = new Map<string, VolumeRecord | undefined>();
  readonly savedCounts = new Map<string, MountCounts>();
  readonly discarded: string[] = [];
  readOnly = false;
  /** What rename(2) answers when the name is taken (POSIX allows either). */
  nameTaken: 'ENOTEMPTY' | 'EEXIST' = 'ENOTEMPTY';
  rebooted = false;
  /** errno codes to fail the next call of each kind with. */
  fail: {
    stage?: string;
    publish?: string;
    retire?: string;
    restore?: string;
    saveCounts?: string;
    discard?: string;
  } = {};
  /** Volumes whose state the real store could not read (loadAll reports them broken). */
  readonly broken: BrokenVolume[] = [];
  private next = 0;

  dataDir(name: string): string {
    return `${this.root}/${name}/_data`;
  }

  dataDirIn(dir: string): string {
    return `${dir}/_data`;
  }

  /** Recorded tmpfs identities, by the directory that holds them (they move with it). */
  readonly identities = new Map<string, TmpfsIdentity>();

  async saveTmpfsIdentity(name: string, identity: TmpfsIdentity): Promise<void> {
    if (this.readOnly) throw errno('EROFS');
    this.identities.set(`${this.root}/${name}`, identity);
  }

  /** Records rewritten in place (saveRecord), in order. */
  readonly rewritten: VolumeRecord[] = [];

  async saveRecord(record: VolumeRecord): Promise<void> {
    if (this.readOnly) throw errno('EROFS');
    this.rewritten.push(record);
    this.volumes.set(record.name, record);
  }

  async readTmpfsIdentity(dir: string): Promise<TmpfsIdentity | undefined> {
    return this.identities.get(dir);
  }

  private moveIdentity(from: string, to: string): void {
    const identity = this.identities.get(from);
    this.identities.delete(from);
    if (identity) this.identities.set(to, identity);
  }

  derivedPaths(name: string): string[] {
    return [`${this.root}/${name}/mounts.json.tmp`];
  }

  async init(): Promise<void> {}

  async writable(): Promise<boolean> {
    return !this.readOnly;
  }

  bootId = 'boot-1';
  /** How many times start-up recorded the boot ID as the one its counts belong to. */
  bootRecorded = 0;

  async bootChange(): Promise<BootChange> {
    return {
      current: this.bootId,
      rebooted: this.rebooted,
      record: async () => {
        this.bootRecorded += 1;
      },
    };
  }

  async loadAll(options = { counts: true }): Promise<LoadResult> {
    const result: LoadResult = {
      records: [],
      broken: [...this.broken],
      leftovers: [...this.dirs.keys()],
      voided: [],
    };
    for (const record of this.volumes.values()) {
      const counts = this.savedCounts.get(record.name) ?? new Map<string, number>();
      if (!options.counts && counts.size > 0) {
        result.voided.push({ name: record.name, mountIds: [...counts.keys()] });
      }
      result.records.push({ ...record, mounts: options.counts ? counts : new Map() });
    }
    return result;
  }

  /** Volumes (by staging, then by name) that have a data directory in the data root. */
  readonly withData = new Set<string>();

  async stage(record: VolumeRecord, data?: DataDirectory): Promise<string> {
    this.failIfTold('stage');
    const dir = `${this.root}/.new-${this.next++}`;
    this.dirs.set(dir, record);
    if (data) this.withData.add(record.name);
    return dir;
  }

  async publish(
    staging: string,
    name: string,
    meanwhile: () => Promise<void> = () => Promise.resolve(),
  ): Promise<void> {
    if (this.volumes.has(name)) throw errno(this.nameTaken);
    const record = this.dirs.get(staging);
    if (!record) throw errno('ENOENT');
    this.dirs.delete(staging);
    this.volumes.set(name, record);
    // As the real store: the rename is done, then its fsync (which `fail.publish` fails) and
    // `meanwhile` run side by side, and both are waited for.
    await allSettledOrThrow([
      Promise.resolve().then(() => this.failIfTold('publish')),
      meanwhile(),
    ]);
  }

  async retire(name: string): Promise<string> {
    this.failIfTold('retire');
    const record = this.volumes.get(name);
    if (!record) throw errno('ENOENT');
    const trash = `${this.root}/.trash-${this.next++}`;
    this.volumes.delete(name);
    this.dirs.set(trash, record);
    this.moveIdentity(`${this.root}/${name}`, trash);
    return trash;
  }

  async restore(trash: string, name: string): Promise<void> {
    this.failIfTold('restore');
    const record = this.dirs.get(trash);
    if (!record) throw errno('ENOENT');
    this.dirs.delete(trash);
    this.volumes.set(name, record);
    this.moveIdentity(trash, `${this.root}/${name}`);
  }

  async discard(dir: string): Promise<void> {
    this.failIfTold('discard');
    this.dirs.delete(dir);
    this.identities.delete(dir);
    this.discarded.push(dir);
  }

  async hasData(name: string): Promise<boolean> {
    const record = this.volumes.get(name);
    return record !== undefined && (this.withData.has(name) || record.options.kind === 'directory');
  }

  saveCounts(name: string, counts: MountCounts): void {
    if (this.readOnly) throw errno('EROFS');
    this.failIfTold('saveCounts', false);
    this.savedCounts.set(name, counts);
  }

  private failIfTold(kind: keyof FakeStore['fail'], once = true): void {
    const code = this.fail[kind];
    if (!code) return;
    if (once) delete this.fail[kind];
    throw errno(code);
  }
}
