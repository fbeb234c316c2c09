import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { allSettledOrThrow, parseRecord } from '../../src/state/record-file.js';
import { VolumeStore } from '../../src/state/volume-store.js';
import type { VolumeRecord } from '../../src/model/record.js';

const record = (name: string, mounts: Record<string, number> = {}): VolumeRecord => ({
  name,
  createdAt: '2026-11-22T10:00:00.000Z',
  options: { kind: 'directory', propagation: 'rshared', uid: 1000 },
  mounts: new Map(Object.entries(mounts)),
});

describe('volume state on disk', () => {
  let root: string;
  let store: VolumeStore;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sharedprop-store-'));
    store = new VolumeStore(root);
    await store.init();
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  async function publish(r: VolumeRecord) {
    const staging = await store.makeStaging();
    await mkdir(path.join(staging, '_data'));
    await store.save(r, staging);
    await store.publish(staging, r.name);
    if (r.mounts.size > 0) store.saveCounts(r.name, r.mounts);
  }

  const byName = <T extends { name: string }>(items: T[]) =>
    [...items].sort((a, b) => a.name.localeCompare(b.name));

  it('publishes by renaming first, then waits for the rename to be durable and for `meanwhile`', async () => {
    const staging = await store.makeStaging();
    await store.save(record('alpha'), staging);
    const seen: string[] = [];
    await store.publish(staging, 'alpha', async () => {
      seen.push(...(await readdir(store.volumeDir('alpha'))).sort());
    });
    expect(seen).toEqual(['mounts.json', 'volume.json']);
    const again = await store.makeStaging();
    await store.save(record('beta'), again);
    await expect(
      store.publish(again, 'beta', () => Promise.reject(new Error('mount: simulated'))),
    ).rejects.toThrow('mount: simulated');
    expect(await readdir(store.volumeDir('beta'))).toHaveLength(2);
  });

  it('waits for every fsync of a step before failing it: none is left running on a closed descriptor', async () => {
    let later = false;
    const slow = new Promise<void>((resolve) =>
      setTimeout(() => {
        later = true;
        resolve();
      }, 30),
    );
    await expect(
      allSettledOrThrow([Promise.reject(new Error('EIO: first')), slow]).finally(() =>
        expect(later).toBe(true),
      ),
    ).rejects.toThrow('EIO: first');
    await expect(
      allSettledOrThrow([Promise.resolve(), Promise.resolve()]),
    ).resolves.toBeUndefined();
  });

  it('saves with mode 0600 and loads back what it saved', async () => {
    await publish(record('alpha', { c1: 2 }));
    await publish(record('beta'));
    for (const file of [store.stateFile('alpha'), store.countsFile('alpha')]) {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    }
    const loaded = await store.loadAll();
    expect(loaded.broken).toEqual([]);
    expect(byName(loaded.records)).toEqual([record('alpha', { c1: 2 }), record('beta')]);
  });

  it("rewrites a live record in place (an adopted directory's identity), never its counts", async () => {
    await publish(record('alpha', { c1: 2 }));
    const counts = await readFile(store.countsFile('alpha'), 'utf8');
    const adopted: VolumeRecord = {
      ...record('alpha'),
      options: {
        kind: 'path',
        propagation: 'rshared',
        path: '/srv/hd',
        identity: { device: '8:1', ino: '42', btime: '1.000000000', boot: 'b' },
      },
    };
    await store.saveRecord(adopted);
    expect(JSON.parse(await readFile(store.stateFile('alpha'), 'utf8'))).toEqual({
      version: 2,
      name: 'alpha',
      createdAt: '2026-11-22T10:00:00.000Z',
      options: adopted.options,
    });
    expect((await stat(store.stateFile('alpha'))).mode & 0o777).toBe(0o600);
    expect(await readFile(store.countsFile('alpha'), 'utf8')).toBe(counts);
    const [loaded] = (await store.loadAll()).records;
    expect(loaded).toEqual({ ...adopted, mounts: new Map([['c1', 2]]) });
  });

  it('keeps what a volume is apart from its counts, which each save overwrites whole', async () => {
    await publish(record('alpha'));
    const definition = await readFile(store.stateFile('alpha'), 'utf8');
    const inode = (await stat(store.countsFile('alpha'))).ino;
    for (let i = 1; i <= 20; i++) {
      store.saveCounts('alpha', new Map([[`id${i}`, i]]));
      const text = await readFile(store.countsFile('alpha'), 'utf8');
      expect(text).toHaveLength(4096); // one page, overwritten in place
      expect(JSON.parse(text)).toEqual({ version: 2, mounts: [[`id${i}`, i]] });
    }
    // In place: the same file, so a full disk (no new block) still takes the save.
    expect((await stat(store.countsFile('alpha'))).ino).toBe(inode);
    expect(await readFile(store.stateFile('alpha'), 'utf8')).toBe(definition);
    expect(JSON.parse(definition)).not.toHaveProperty('mounts');
    // Overwritten in place: no temp file of write-file-atomic's (`mounts.json.<digits>`) left.
    expect((await readdir(store.volumeDir('alpha'))).sort()).toEqual([
      '_data',
      'mounts.json',
      'volume.json',
    ]);
  });

  it('ignores the temp files of saves that were killed, and the next saves still take', async () => {
    await publish(record('alpha', { a: 1 }));
    // What write-file-atomic leaves when killed before its rename: `<file>.<uint32>`, torn.
    const tornCounts = `${store.countsFile('alpha')}.2357954893`;
    const tornState = `${store.stateFile('alpha')}.3735928559`;
    await writeFile(tornCounts, '{"version":2,"mou');
    await writeFile(tornState, '{"version":2,"na');
    const loaded = await store.loadAll();
    expect(loaded.records).toEqual([record('alpha', { a: 1 })]);
    expect(loaded.broken).toEqual([]);
    store.saveCounts('alpha', new Map([['b', 2]]));
    expect((await store.loadAll()).records).toEqual([record('alpha', { b: 2 })]);
    // Larger than a page: replaced through a temp file of its own, whatever lies about.
    const many = new Map(Array.from({ length: 200 }, (_, i) => [`${'c'.repeat(60)}${i}`, 1]));
    store.saveCounts('alpha', many);
    expect((await store.loadAll()).records).toEqual([{ ...record('alpha'), mounts: many }]);
    expect((await readdir(store.volumeDir('alpha'))).sort()).toEqual(
      [
        '_data',
        'mounts.json',
        path.basename(tornCounts),
        path.basename(tornState),
        'volume.json',
      ].sort(),
    );
  });

  it('reads the counts of a version 1 file, until a counts file exists', async () => {
    await publish(record('old'));
    const { name, createdAt, options } = record('old');
    const v1 = { version: 1, name, createdAt, options, mounts: { c: 1 } };
    await writeFile(store.stateFile('old'), JSON.stringify(v1));
    await rm(store.countsFile('old')); // version 1 wrote none
    expect((await store.loadAll()).records).toEqual([record('old', { c: 1 })]);
    store.saveCounts('old', new Map());
    expect((await store.loadAll()).records).toEqual([record('old')]);
  });

  it('after a reboot, reports counts as void instead of reading them, torn or not', async () => {
    await publish(record('held', { c1: 1, c2: 2 }));
    await publish(record('torn', { c: 1 }));
    await publish(record('idle'));
    await writeFile(store.countsFile('torn'), '{"version":1,"mo');
    const sameBoot = await store.loadAll();
    expect(sameBoot.broken).toEqual([
      expect.objectContaining({ name: 'torn', file: path.join('volumes', 'torn', 'mounts.json') }),
    ]);
    const rebooted = await store.loadAll({ counts: false });
    expect(rebooted.broken).toEqual([]);
    expect(byName(rebooted.records)).toEqual([record('held'), record('idle'), record('torn')]);
    expect(byName(rebooted.voided)).toEqual([
      { name: 'held', mountIds: ['c1', 'c2'] },
      { name: 'torn', mountIds: ['(unreadable)'] },
    ]);
  });

  it('reports a garbled or torn file and still loads the others', async () => {
    await publish(record('good'));
    await publish(record('torn'));
    await publish(record('wrongname'));
    await writeFile(store.stateFile('torn'), '{"version":1,"name":"to');
    await writeFile(
      store.stateFile('wrongname'),
      JSON.stringify({ version: 1, ...record('other') }),
    );
    await mkdir(path.join(store.root, 'nostate'));
    const loaded = await store.loadAll();
    expect(loaded.records.map((r) => r.name)).toEqual(['good']);
    const reasons = Object.fromEntries(loaded.broken.map((b) => [b.name, b.reason]));
    expect(reasons.torn).toMatch(/not valid JSON/);
    expect(reasons.wrongname).toMatch(/names volume "other"/);
    expect(reasons.nostate).toMatch(/ENOENT/);
  });

  it('loads 50 volumes in the order of the directory, a broken one among them reported and skipped', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `v${String(i).padStart(2, '0')}`);
    for (const name of names) await publish(record(name, name === 'v07' ? { c: 1 } : {}));
    await writeFile(store.stateFile('v31'), 'garbled');
    const loaded = await store.loadAll();
    const inDirectory = (await readdir(store.root)).filter(
      (n) => n !== 'v31' && !n.startsWith('.'),
    );
    expect(loaded.records.map((r) => r.name)).toEqual(inDirectory);
    expect(loaded.records.find((r) => r.name === 'v07')?.mounts).toEqual(new Map([['c', 1]]));
    expect(loaded.broken.map((b) => b.name)).toEqual(['v31']);
  }, 30_000); // 50 Creates, each fsynced: seconds on a loaded machine

  it('rejects content of the wrong shape', () => {
    expect(() => parseRecord('{"version":2}')).toThrow(/unexpected content/);
    expect(() =>
      parseRecord(JSON.stringify({ version: 1, ...record('a'), mounts: { x: -1 } })),
    ).toThrow(/unexpected mount count/);
  });

  it('counts IDs named like Object.prototype members like any other, through a save and a load', async () => {
    const ids = ['__proto__', 'constructor', 'valueOf', 'toString', 'hasOwnProperty'];
    await publish(record('proto', Object.fromEntries(ids.map((id, i) => [id, i + 1]))));
    store.saveCounts('proto', new Map(ids.map((id, i) => [id, i + 1])));
    const [loaded] = (await store.loadAll()).records;
    expect([...(loaded?.mounts ?? [])]).toEqual(ids.map((id, i) => [id, i + 1]));
  });

  it('counts too large for one page are replaced atomically instead', async () => {
    await publish(record('many'));
    const many = new Map(Array.from({ length: 200 }, (_, i) => [`${'c'.repeat(60)}${i}`, 1]));
    store.saveCounts('many', many);
    expect((await store.loadAll()).records[0]?.mounts).toEqual(many);
    store.saveCounts('many', new Map([['one', 1]]));
    expect((await store.loadAll()).records[0]?.mounts).toEqual(new Map([['one', 1]]));
    expect((await stat(store.countsFile('many'))).size).toBe(4096);
  });

  it('lists interrupted creates and removes as leftovers, not volumes', async () => {
    const staging = await store.makeStaging();
    await publish(record('kept'));
    const trash = await store.retire('kept');
    const loaded = await store.loadAll();
    expect(loaded.records).toEqual([]);
    expect(loaded.leftovers.sort()).toEqual([staging, trash].sort());
  });
});
