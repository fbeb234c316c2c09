import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRecord, VolumeStore, type VolumeRecord } from '../../src/state/volume-store.js';

const record = (name: string, mounts: Record<string, number> = {}): VolumeRecord => ({
  name,
  createdAt: '2026-11-22T10:00:00.000Z',
  options: { propagation: 'rshared', uid: 1000 },
  mounts,
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
    const staging = await store.makeStaging(r.name);
    await mkdir(path.join(staging, '_data'));
    await store.save(r, staging);
    await store.publish(staging, r.name);
  }

  it('saves with mode 0600 and loads back what it saved', async () => {
    await publish(record('alpha', { c1: 2 }));
    await publish(record('beta'));
    const st = await stat(store.stateFile('alpha'));
    expect(st.mode & 0o777).toBe(0o600);
    const loaded = await store.loadAll();
    expect(loaded.broken).toEqual([]);
    expect(loaded.records.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      record('alpha', { c1: 2 }),
      record('beta'),
    ]);
  });

  it('overwrites atomically: the file is always whole', async () => {
    await publish(record('alpha'));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.save(record('alpha', { [`id${i}`]: i + 1 }))),
    );
    const text = await readFile(store.stateFile('alpha'), 'utf8');
    expect(() => parseRecord(text)).not.toThrow();
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

  it('rejects content of the wrong shape', () => {
    expect(() => parseRecord('{"version":2}')).toThrow(/unexpected content/);
    expect(() =>
      parseRecord(JSON.stringify({ version: 1, ...record('a'), mounts: { x: -1 } })),
    ).toThrow(/mounts.x/);
  });

  it('lists interrupted creates and removes as leftovers, not volumes', async () => {
    const staging = await store.makeStaging('half');
    await publish(record('kept'));
    const trash = await store.retire('kept');
    const loaded = await store.loadAll();
    expect(loaded.records).toEqual([]);
    expect(loaded.leftovers.sort()).toEqual([staging, trash].sort());
  });
});
