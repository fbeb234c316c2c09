/**
 * The driver's logic with fakes of the store and the mount system (no root, no mounts): the
 * decisions of Create, Remove, Mount and start-up, and what each failure leaves behind.
 */
import { SharedpropDriver, type DriverConfig } from '../../src/driver/sharedprop-driver.js';
import { VolumeError } from '../../src/model/errors.js';
import { countsToObject } from '../../src/model/counts.js';
import { FakeMounts, FakeStore } from '../support/driver-fakes.js';
import { silentLogger } from '../support/silent-logger.js';
import type { MountEntry } from '../../src/system/mountinfo.js';

const MOUNT_ROOT = '/fake/mounts';
const mp = (name: string) => `${MOUNT_ROOT}/${name}`;

async function setup<M extends FakeMounts = FakeMounts>(
  prepare: (store: FakeStore, mounts: M) => void = () => undefined,
  config: Partial<DriverConfig> = {},
  mounts: M = new FakeMounts() as M,
) {
  const store = new FakeStore();
  prepare(store, mounts);
  const driver = new SharedpropDriver({
    dataRoot: '/fake/data',
    mountRoot: MOUNT_ROOT,
    logger: silentLogger(),
    store,
    mounts,
    statusMaxAgeMs: 0,
    ...config,
  });
  await driver.start();
  return { driver, store, mounts };
}

async function failure(work: Promise<unknown>): Promise<VolumeError> {
  try {
    await work;
  } catch (error) {
    expect(error).toBeInstanceOf(VolumeError);
    return error as VolumeError;
  }
  throw new Error('expected a failure');
}

const noOptions = new Map<string, string>();

/** A Mount whose answer reached dockerd: counted and saved. */
async function mountDelivered(driver: SharedpropDriver, name: string, id: string) {
  const mounted = await driver.mount(name, id);
  mounted.commit();
  return mounted.value;
}

describe('Create', () => {
  it('publishes the volume, mounts it once, and Status is exact at once', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('v1', new Map([['mode', '0700']]));
    expect(store.volumes.get('v1')?.options).toEqual({
      kind: 'directory',
      propagation: 'rshared',
      mode: 0o700,
    });
    expect(mounts.at(mp('v1'))).toHaveLength(1);
    const { status } = await driver.get('v1');
    expect(status).toMatchObject({ mountPoint: 'shared', activeMounts: 0, countsSaved: true });
  });

  it('is idempotent with the same options and refuses different ones', async () => {
    const { driver, mounts } = await setup();
    await driver.create('v1', noOptions);
    await driver.create('v1', new Map([['propagation', 'rshared']]));
    expect(mounts.at(mp('v1'))).toHaveLength(1);
    const error = await failure(driver.create('v1', new Map([['uid', '5']])));
    expect(error.kind).toBe('conflict');
  });

  it('refuses unknown options, __proto__ included, before touching the store', async () => {
    const { driver, store } = await setup();
    const error = await failure(driver.create('v1', new Map([['__proto__', 'x']])));
    expect(error.message).toMatch(/unknown option "__proto__"/);
    expect(store.dirs.size + store.volumes.size).toBe(0);
  });

  it('that fails after publishing is undone: no volume, no mount, its files discarded', async () => {
    const { driver, store, mounts } = await setup();
    mounts.ensureSharedMount = async () => {
      throw new Error('mount: simulated failure');
    };
    await expect(driver.create('v1', noOptions)).rejects.toThrow(/simulated/);
    expect(store.volumes.size).toBe(0);
    expect(store.dirs.size).toBe(0);
    expect(store.discarded).toHaveLength(1);
    expect(await driver.list()).toEqual([]);
  });

  it('on a full data root is refused clearly, leaving nothing', async () => {
    const { driver, store } = await setup();
    store.fail.stage = 'ENOSPC';
    const error = await failure(driver.create('v1', noOptions));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toBe('volume "v1" not created: no space left in the data root');
    expect(store.dirs.size + store.volumes.size).toBe(0);
  });
});

describe('Remove', () => {
  it('is refused while any ID, named like an Object.prototype member or not, holds a mount', async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    for (const id of ['valueOf', 'constructor', '__proto__']) {
      await mountDelivered(driver, 'v1', id);
      const error = await failure(driver.remove('v1'));
      expect(error.kind).toBe('conflict');
      await driver.unmount('v1', id);
    }
    await driver.remove('v1');
    expect(store.volumes.size).toBe(0);
  });

  it('detaches everything, leaves the store, and discards the files', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('v1', noOptions);
    mounts.mountOutside(`${mp('v1')}/leaked`);
    await driver.remove('v1');
    expect(mounts.table).toEqual([]);
    expect(store.volumes.size).toBe(0);
    expect(store.discarded).toEqual([expect.stringMatching(/\.trash-/)]);
    await expect(driver.get('v1')).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('that cannot take the volume out of the store (read-only root) changes nothing', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('v1', noOptions);
    store.fail.retire = 'EROFS';
    const error = await failure(driver.remove('v1'));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/read-only/);
    expect(store.volumes.has('v1')).toBe(true);
    expect(mounts.at(mp('v1'))).toHaveLength(1);
    await driver.remove('v1'); // removable later
  });

  it('that cannot detach a mount puts the volume back, mounted and usable, removable later', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('v1', noOptions);
    mounts.mountOutside(`${mp('v1')}/stuck`);
    mounts.stuck.add(`${mp('v1')}/stuck`);
    // The mount system's own error, passed on unchanged (no errno the driver classifies).
    await expect(driver.remove('v1')).rejects.toMatchObject({
      code: 'EBUSY',
      message: 'EBUSY: simulated',
    });
    expect(store.volumes.has('v1')).toBe(true);
    expect(store.dirs.size).toBe(0);
    expect(await mountDelivered(driver, 'v1', 'c')).toBe(mp('v1'));
    expect(mounts.at(mp('v1'))).toHaveLength(1);
    await driver.unmount('v1', 'c');
    mounts.stuck.clear();
    await driver.remove('v1');
    expect(store.volumes.size).toBe(0);
  });

  it('on a read-only data root is refused before anything is touched', async () => {
    const { driver, store } = await setup((s) => {
      s.volumes.set('v1', {
        name: 'v1',
        createdAt: 't',
        options: { kind: 'directory', propagation: 'rshared' },
        mounts: new Map(),
      });
      s.readOnly = true;
    });
    const error = await failure(driver.remove('v1'));
    expect(error.kind).toBe('unavailable');
    expect(store.volumes.has('v1')).toBe(true);
  });
});

describe('Mount and Unmount', () => {
  it('count per ID; a save that fails keeps the count in memory and is retried', async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    await mountDelivered(driver, 'v1', 'a');
    store.fail.saveCounts = 'ENOSPC';
    await mountDelivered(driver, 'v1', 'a');
    await mountDelivered(driver, 'v1', 'b');
    await driver.unmount('v1', 'b');
    const { status } = await driver.get('v1');
    expect(status?.countsSaved).toBe(false);
    expect(countsToObject(status!.mountIds)).toEqual({ a: 2 });
    expect(countsToObject(store.savedCounts.get('v1')!)).toEqual({ a: 1 });
    expect(driver.unsavedCounts()).toEqual(['v1']);
    delete store.fail.saveCounts;
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // the first retry, after 1 s
    expect(countsToObject(store.savedCounts.get('v1')!)).toEqual({ a: 2 });
    expect((await driver.get('v1')).status?.countsSaved).toBe(true);
  });

  it('an Unmount is never refused because its count could not be saved', async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    await mountDelivered(driver, 'v1', 'a');
    store.readOnly = true;
    await expect(driver.unmount('v1', 'a')).resolves.toBeUndefined();
    expect((await driver.get('v1')).status?.activeMounts).toBe(0);
  });

  it("saves a Mount's count only once its answer was delivered; an undelivered one is taken back", async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    const mounted = await driver.mount('v1', 'a');
    expect(mounted.value).toBe(mp('v1'));
    // Counted at once: Status shows it and Remove refuses; but nothing is saved yet.
    expect((await driver.get('v1')).status?.activeMounts).toBe(1);
    expect((await failure(driver.remove('v1'))).kind).toBe('conflict');
    expect(store.savedCounts.get('v1')?.size ?? 0).toBe(0);
    // Another ID's delivered Mount saves only its own count.
    await mountDelivered(driver, 'v1', 'b');
    expect(countsToObject(store.savedCounts.get('v1')!)).toEqual({ b: 1 });
    // The answer never reached dockerd (a cut connection): the count is taken back.
    mounted.abandon();
    mounted.commit(); // the first call decided
    expect(countsToObject((await driver.get('v1')).status!.mountIds)).toEqual({ b: 1 });
    expect(countsToObject(store.savedCounts.get('v1')!)).toEqual({ b: 1 });
    await driver.unmount('v1', 'b');
    await driver.remove('v1');
  });

  it('a delivery settled after the Unmount of the same ID leaves nothing counted', async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    const mounted = await driver.mount('v1', 'a');
    await driver.unmount('v1', 'a');
    mounted.commit();
    expect((await driver.get('v1')).status?.activeMounts).toBe(0);
    expect(store.savedCounts.get('v1')?.size ?? 0).toBe(0);
    await driver.remove('v1');
  });

  it('a delivered Mount is saved, so it outlives the driver', async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    await mountDelivered(driver, 'v1', 'a');
    await mountDelivered(driver, 'v1', 'a');
    expect(countsToObject(store.savedCounts.get('v1')!)).toEqual({ a: 2 });
  });

  it('repairs stacked or missing mounts at the mount point', async () => {
    const { driver, mounts } = await setup();
    await driver.create('v1', noOptions);
    mounts.mountOutside(mp('v1'), 'ext4', 99); // stacked by hand
    await mountDelivered(driver, 'v1', 'a');
    expect(mounts.at(mp('v1'))).toHaveLength(1);
    await mounts.detachAll(mp('v1'), { includeSelf: true }); // unmounted behind our back
    await mountDelivered(driver, 'v1', 'b');
    expect(mounts.at(mp('v1'))).toHaveLength(1);
  });
});

describe('start-up', () => {
  const held = (s: FakeStore) => {
    s.volumes.set('v1', {
      name: 'v1',
      createdAt: 't',
      options: { kind: 'directory', propagation: 'rshared' },
      mounts: new Map(),
    });
    s.savedCounts.set('v1', new Map([['gone', 1]]));
  };

  it('voids the counts of an earlier boot', async () => {
    const { driver, store } = await setup((s) => {
      held(s);
      s.rebooted = true;
    });
    expect((await driver.get('v1')).status?.activeMounts).toBe(0);
    expect(store.savedCounts.get('v1')?.size).toBe(0);
  });

  const TRASH = '/fake/data/volumes/.trash-killed';
  const removedRecord = {
    name: 'removed',
    createdAt: 't',
    options: { kind: 'directory', propagation: 'rshared' },
    mounts: new Map(),
  } as const;

  it('detaches, in this view only, the bind of a trashed volume (a Remove killed after retiring it), and keeps the others', async () => {
    let othersMount: MountEntry | undefined;
    const { mounts } = await setup((s, m) => {
      held(s);
      s.dirs.set(TRASH, { ...removedRecord, mounts: new Map() });
      m.bindOutside(mp('removed'), `${TRASH}/_data`, 7);
      m.mountOutside(`${mp('removed')}/sub`);
      // The others are mounted too, as after a restart of the driver alone.
      othersMount = m.bindOutside(mp('v1'), s.dataDir('v1'), 8);
    });
    expect(mounts.at(mp('removed'))).toEqual([]);
    expect(await mounts.readAbout(mp('removed'))).toEqual([]);
    expect(mounts.calls).toContain(`detach-view ${mp('removed')}`);
    expect(mounts.at(mp('v1'))).toEqual([othersMount]);
    expect(mounts.calls.filter((call) => call.includes(mp('v1')))).toEqual([]);
  });

  it("leaves alone, and logs, mounts under the mount root that are not its own (a host tmpfs, a host bind, an adopted directory's view whose record is gone)", async () => {
    const placed: MountEntry[] = [];
    const { mounts } = await setup((_s, m) => {
      placed.push(m.mountOutside(mp('host-tmpfs'), 'tmpfs', 3));
      placed.push(m.bindOutside(mp('host-bind'), '/srv/elsewhere'));
      placed.push(m.bindOutside(mp('adopted-gone'), '/run/netns', 9));
      placed.push(m.mountOutside(`${mp('adopted-gone')}/ns1`, 'nsfs', 9));
    });
    expect(mounts.table).toEqual(placed);
    expect(mounts.calls.filter((call) => call.startsWith('detach'))).toEqual([]);
  });

  it('recognises a tmpfs it made by the identity its trash recorded, in this boot only', async () => {
    const { mounts } = await setup((s, m) => {
      const mine = m.mountOutside(mp('mine'), 'tmpfs', 4);
      const reused = m.mountOutside(mp('reused'), 'tmpfs', 5);
      const earlier = m.mountOutside(mp('earlier'), 'tmpfs', 6);
      for (const [dir, identity] of [
        [`${TRASH}-1`, { bootId: 'boot-1', device: mine.device, mountId: mine.id }],
        // The same device number, but another mount: the kernel reuses numbers.
        [`${TRASH}-2`, { bootId: 'boot-1', device: reused.device, mountId: reused.id + 1 }],
        [`${TRASH}-3`, { bootId: 'boot-0', device: earlier.device, mountId: earlier.id }],
      ] as const) {
        s.dirs.set(dir, undefined);
        s.identities.set(dir, identity);
      }
    });
    expect(mounts.at(mp('mine'))).toEqual([]);
    expect(mounts.at(mp('reused'))).toHaveLength(1);
    expect(mounts.at(mp('earlier'))).toHaveLength(1);
  });

  it('records the identity of the tmpfs it mounts, and start-up finds it in the trash of a killed Remove', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('t1', new Map([['type', 'tmpfs']]));
    const tmpfs = mounts.at(mp('t1'))[0]!;
    expect(store.identities.get(`${store.root}/t1`)).toEqual({
      bootId: 'boot-1',
      device: tmpfs.device,
      mountId: tmpfs.id,
    });
    // A Remove killed after retiring the record: the identity went with it into the trash.
    await store.retire('t1');
    const again = new SharedpropDriver({
      dataRoot: '/fake/data',
      mountRoot: MOUNT_ROOT,
      logger: silentLogger(),
      store,
      mounts,
    });
    await again.start();
    expect(mounts.at(mp('t1'))).toEqual([]);
    expect(mounts.calls).toContain(`detach-view ${mp('t1')}`);
  });

  it('collects leftovers and deletes them only when asked (after listening)', async () => {
    const { driver, store } = await setup((s) => {
      s.dirs.set('/fake/data/volumes/.trash-old', undefined);
    });
    expect(store.discarded).toEqual([]);
    await driver.deleteLeftovers();
    expect(store.discarded).toEqual(['/fake/data/volumes/.trash-old']);
  });

  it('makes a shared data root private before anything else when told to (the managed plugin)', async () => {
    const sharedData = (_s: FakeStore, m: FakeMounts) => m.mountOutside('/fake/data', 'ext4', 32);
    const told = await setup(sharedData, { privateDataRoot: true });
    expect(told.mounts.calls[0]).toBe('make-rprivate /fake/data');
    expect(told.mounts.at('/fake/data')[0]?.sharedGroup).toBeUndefined();
    // Not told (a host process): the host's mount is left as it is.
    const untold = await setup(sharedData);
    expect(untold.mounts.calls).not.toContain('make-rprivate /fake/data');
    expect(untold.mounts.at('/fake/data')[0]?.sharedGroup).toBe(32);
    // Already private, or no mount point: nothing to do.
    const plain = await setup(() => undefined, { privateDataRoot: true });
    expect(plain.mounts.calls).not.toContain('make-rprivate /fake/data');
  });

  it('serves before a slow restoration ends: a Mount restores its own volume, a Remove is not undone', async () => {
    // Mount points that take long to put back (a thousand of them do, past dockerd's wait).
    class SlowMounts extends FakeMounts {
      readonly held = new Map<string, () => void>();
      override async ensureSharedMount(...args: Parameters<FakeMounts['ensureSharedMount']>) {
        const [, target] = args;
        if (this.held.has(target)) {
          await new Promise<void>((release) => this.held.set(target, release));
        }
        return super.ensureSharedMount(...args);
      }
    }
    const mounts = new SlowMounts();
    mounts.held.set(mp('v1'), () => undefined);
    // start() returns while v1's mount point is still being put back.
    const { driver } = await setup(
      (s) => {
        for (const name of ['v1', 'v2', 'v3']) {
          s.volumes.set(name, {
            name,
            createdAt: 't',
            options: { kind: 'directory', propagation: 'rshared' },
            mounts: new Map(),
          });
        }
      },
      { restoreInlineMs: 0 },
      mounts,
    );
    expect(mounts.at(mp('v1'))).toEqual([]);
    // Questions are answered; a volume not restored yet says so.
    expect((await driver.get('v2')).status?.mountPoint).toBe('0 mounts');
    // A Mount does not wait for the restoration of other volumes: it restores its own.
    expect(await mountDelivered(driver, 'v3', 'c')).toBe(mp('v3'));
    expect(mounts.at(mp('v3'))).toHaveLength(1);
    await driver.remove('v2');
    mounts.held.get(mp('v1'))?.();
    await driver.restored();
    expect(mounts.at(mp('v1'))).toHaveLength(1);
    expect(mounts.at(mp('v2'))).toEqual([]); // removed meanwhile: not put back
    // v3 was put back once, by its Mount: the restoration found it sound.
    expect(mounts.calls.filter((call) => call === `bind ${mp('v3')}`)).toHaveLength(1);
    expect(mounts.at(mp('v3'))).toHaveLength(1);
  });

  it('on a read-only data root serves read-only: Mount works, Create is refused', async () => {
    const { driver } = await setup((s) => {
      held(s);
      s.readOnly = true;
    });
    expect(await mountDelivered(driver, 'v1', 'c')).toBe(mp('v1'));
    const error = await failure(driver.create('v2', noOptions));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/read-only/);
  });
});

describe('Status', () => {
  it('is the same object while nothing changed, and a new one after a Mount, a mount or a failed save', async () => {
    const { driver, mounts, store } = await setup();
    await driver.create('v1', noOptions);
    const first = await driver.get('v1');
    expect(await driver.get('v1')).toBe(first);

    mounts.mountOutside(`${mp('v1')}/ns`, 'nsfs');
    await new Promise((resolve) => setTimeout(resolve, 5)); // older than the snapshot's bound (0)
    const mounted = await driver.get('v1');
    expect(mounted).not.toBe(first);
    expect(mounted.status?.submounts).toEqual([expect.objectContaining({ path: '/ns' })]);
    expect(await driver.get('v1')).toBe(mounted);

    await mountDelivered(driver, 'v1', 'c1');
    const used = await driver.get('v1');
    expect(used.status).toMatchObject({ activeMounts: 1, countsSaved: true });

    store.fail.saveCounts = 'ENOSPC';
    await mountDelivered(driver, 'v1', 'c2');
    expect((await driver.get('v1')).status).toMatchObject({ activeMounts: 2, countsSaved: false });
    delete store.fail.saveCounts;
    await driver.unmount('v1', 'c2');
    expect((await driver.get('v1')).status).toMatchObject({ activeMounts: 1, countsSaved: true });

    // A volume removed and created again under the same name is not answered from before.
    await driver.unmount('v1', 'c1');
    mounts.table = mounts.table.filter((e) => e.mountPoint !== `${mp('v1')}/ns`);
    await driver.remove('v1');
    await driver.create('v1', new Map([['propagation', 'shared']]));
    expect((await driver.get('v1')).status).toMatchObject({
      propagation: 'shared',
      activeMounts: 0,
    });
  });

  it('shows a change made outside the driver once the snapshot is older than its bound', async () => {
    const { driver, mounts } = await setup();
    await driver.create('v1', noOptions);
    expect((await driver.get('v1')).status?.submounts).toEqual([]);
    mounts.mountOutside(`${mp('v1')}/ns`, 'nsfs');
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await driver.get('v1')).status?.submounts).toEqual([
      expect.objectContaining({ path: '/ns', fsType: 'nsfs' }),
    ]);
  });
});

describe('a tmpfs volume', () => {
  const tmpfs = (extra: [string, string][] = []) => new Map([['type', 'tmpfs'], ...extra]);

  it('is a tmpfs of its own with its size, owner and mode, and Status says so', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create(
      't1',
      tmpfs([
        ['size', '8M'],
        ['uid', '7'],
        ['mode', '0700'],
      ]),
    );
    expect(store.volumes.get('t1')?.options).toEqual({
      kind: 'tmpfs',
      propagation: 'rshared',
      size: '8388608',
      uid: 7,
      mode: 0o700,
    });
    expect(mounts.calls).toContain(`tmpfs ${mp('t1')} nosuid,nodev,mode=0700,uid=7,size=8388608`);
    expect(mounts.at(mp('t1')).map((e) => e.fsType)).toEqual(['tmpfs']);
    const { status } = await driver.get('t1');
    expect(status).toMatchObject({ type: 'tmpfs', size: '8388608', mountPoint: 'shared' });
    expect(status?.dataPath).toBeUndefined();
    expect((await driver.get('t1')).status).not.toHaveProperty('dataPath');
  });

  it('keeps the tmpfs it finds at Mount; one unmounted behind its back is put back fresh', async () => {
    const { driver, mounts } = await setup();
    await driver.create('t1', tmpfs());
    const [first] = mounts.at(mp('t1'));
    await mountDelivered(driver, 't1', 'a');
    expect(mounts.at(mp('t1'))).toEqual([first]);
    await mounts.detachAll(mp('t1'), { includeSelf: true });
    mounts.calls.length = 0;
    await mountDelivered(driver, 't1', 'b');
    expect(mounts.calls).toEqual([`tmpfs ${mp('t1')} nosuid,nodev,mode=0755`]);
    expect(mounts.at(mp('t1'))).toHaveLength(1);
    expect(mounts.at(mp('t1'))[0]?.id).not.toBe(first?.id);
  });

  it('a mount of another kind at its mount point is not taken for its tmpfs', async () => {
    const { driver, mounts } = await setup();
    await driver.create('t1', tmpfs());
    await mounts.detachAll(mp('t1'), { includeSelf: true });
    mounts.mountOutside(mp('t1'), 'ext4', 42);
    mounts.calls.length = 0;
    await mountDelivered(driver, 't1', 'a');
    expect(mounts.calls).toEqual([`tmpfs ${mp('t1')} nosuid,nodev,mode=0755`]);
  });

  it('is put back at start-up when the reboot took its mount, and needs no data directory', async () => {
    const { store, mounts } = await setup(async () => undefined);
    store.volumes.set('t1', {
      name: 't1',
      createdAt: '2026-01-01T00:00:00Z',
      options: { kind: 'tmpfs', propagation: 'rshared' },
      mounts: new Map(),
    });
    const driver = new SharedpropDriver({
      dataRoot: '/fake/data',
      mountRoot: MOUNT_ROOT,
      logger: silentLogger(),
      store,
      mounts,
      statusMaxAgeMs: 0,
    });
    await driver.start();
    expect(mounts.at(mp('t1')).map((e) => e.fsType)).toEqual(['tmpfs']);
    expect(await driver.path('t1')).toBe(mp('t1'));
  });

  it('Remove detaches the tmpfs and discards its record', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('t1', tmpfs());
    mounts.mountOutside(`${mp('t1')}/qrouter-1`, 'nsfs');
    await driver.remove('t1');
    expect(mounts.table).toEqual([]);
    expect(store.volumes.size).toBe(0);
    expect(store.discarded).toHaveLength(1);
  });
});

describe('reap=on-unmount', () => {
  const paths = (mounts: FakeMounts, name: string) =>
    mounts.table.filter((e) => e.mountPoint.startsWith(`${mp(name)}/`)).map((e) => e.mountPoint);

  it('detaches container-root submounts once the last mount ID is unmounted, and keeps nsfs and tmpfs', async () => {
    const { driver, mounts } = await setup();
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await mountDelivered(driver, 'r1', 'a');
    await mountDelivered(driver, 'r1', 'b');
    mounts.mountOverlay(`${mp('r1')}/etc`);
    mounts.mountOutside(`${mp('r1')}/qrouter-1`, 'nsfs');
    mounts.mountOutside(`${mp('r1')}/scratch`, 'tmpfs');
    await driver.unmount('r1', 'a'); // b still holds it: nothing is reaped
    expect(paths(mounts, 'r1')).toHaveLength(3);
    await driver.unmount('r1', 'b');
    expect(paths(mounts, 'r1').sort()).toEqual([`${mp('r1')}/qrouter-1`, `${mp('r1')}/scratch`]);
    expect((await driver.get('r1')).status?.submounts.map((s) => s.path).sort()).toEqual([
      '/qrouter-1',
      '/scratch',
    ]);
  });

  it("keeps an operator's overlay and a read-only one; takes containerd's snapshots too", async () => {
    const { driver, mounts } = await setup();
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await mountDelivered(driver, 'r1', 'a');
    mounts.mountOverlay(`${mp('r1')}/ops`, '/srv/ops');
    mounts.mountOverlay(`${mp('r1')}/evil`, '/var/lib/docker/overlay2-evil');
    mounts.mountOutside(`${mp('r1')}/ro`, 'overlay'); // no upperdir
    mounts.mountOverlay(
      `${mp('r1')}/snap`,
      '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots',
    );
    await driver.unmount('r1', 'a');
    expect(paths(mounts, 'r1').sort()).toEqual([
      `${mp('r1')}/evil`,
      `${mp('r1')}/ops`,
      `${mp('r1')}/ro`,
    ]);
  });

  it('takes overlays only from the configured storage roots (a moved data root)', async () => {
    const { driver, mounts } = await setup(undefined, { engineStorage: ['/srv/docker/overlay2'] });
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await mountDelivered(driver, 'r1', 'a');
    mounts.mountOverlay(`${mp('r1')}/moved`, '/srv/docker/overlay2');
    mounts.mountOverlay(`${mp('r1')}/default`);
    await driver.unmount('r1', 'a');
    // engineStorage replaces the default here: `serve` is what adds the defaults to it.
    expect(paths(mounts, 'r1')).toEqual([`${mp('r1')}/default`]);
  });

  it('is off by default: a leak stays until sharedprop prune', async () => {
    const { driver, mounts } = await setup();
    await driver.create('r1', noOptions);
    await mountDelivered(driver, 'r1', 'a');
    mounts.mountOverlay(`${mp('r1')}/etc`);
    await driver.unmount('r1', 'a');
    expect(paths(mounts, 'r1')).toEqual([`${mp('r1')}/etc`]);
  });

  it('keeps a leak that has a namespace file beneath it, and reaps its leaked neighbour', async () => {
    const { driver, mounts } = await setup();
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await mountDelivered(driver, 'r1', 'a');
    mounts.mountOverlay(`${mp('r1')}/etc`);
    mounts.mountOutside(`${mp('r1')}/etc/netns`, 'nsfs');
    mounts.mountOverlay(`${mp('r1')}/other`);
    await driver.unmount('r1', 'a');
    // Nothing is stuck here: /etc stays only because of what lies beneath it.
    expect(paths(mounts, 'r1').sort()).toEqual([`${mp('r1')}/etc`, `${mp('r1')}/etc/netns`]);
  });

  it('an Unmount whose reaping fails still succeeds', async () => {
    const { driver, mounts, store } = await setup();
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await mountDelivered(driver, 'r1', 'a');
    mounts.mountOverlay(`${mp('r1')}/stuck`);
    mounts.stuck.add(`${mp('r1')}/stuck`);
    await driver.unmount('r1', 'a');
    expect(paths(mounts, 'r1')).toEqual([`${mp('r1')}/stuck`]);
    expect(store.savedCounts.get('r1')?.size).toBe(0);
    expect((await driver.get('r1')).status?.activeMounts).toBe(0);
  });

  it('is an option like any other: parsed, compared and refused when unknown', async () => {
    const { driver } = await setup();
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await expect(driver.create('r1', new Map([['reap', 'off']]))).rejects.toThrow(
      /different options \(propagation=rshared reap=on-unmount\)/,
    );
    await expect(driver.create('r2', new Map([['reap', 'always']]))).rejects.toThrow(
      /reap="always" is not one of off, on-unmount/,
    );
  });
});

describe('a volume that adopts a host directory (-o path=)', () => {
  const adopt = (dir: string) => new Map([['path', dir]]);

  async function withDirectories(...dirs: string[]) {
    const world = await setup((_store, mounts) => {
      for (const dir of dirs) mounts.directories.add(dir);
      for (const dir of ['/var/lib/docker', '/fake/data', MOUNT_ROOT]) mounts.directories.add(dir);
    });
    return world;
  }

  it('binds the directory at its mount point, keeps only its record, and Status names the directory', async () => {
    const { driver, store, mounts } = await withDirectories('/run/netns');
    await driver.create('netns', adopt('/run/netns'));
    expect(mounts.calls).toContain(`adopt ${mp('netns')}`);
    expect(mounts.at(mp('netns'))[0]?.root).toBe('/run/netns');
    expect(store.volumes.get('netns')?.options).toEqual({
      kind: 'path',
      propagation: 'rshared',
      path: '/run/netns',
      identity: { device: '8:1', ino: expect.stringMatching(/^\d+$/), boot: 'boot-1' },
    });
    expect(mounts.heldOpen).toEqual([]);
    expect((await driver.get('netns')).status).toMatchObject({
      type: 'path',
      dataPath: '/run/netns',
    });
  });

  it("refuses a missing directory, a symlinked path, and the driver's or dockerd's directories", async () => {
    const { driver, store, mounts } = await withDirectories('/srv/real', '/srv');
    mounts.symlinks.set('/srv/link', '/srv/real');
    const refusals: [string, RegExp][] = [
      ['/srv/missing', /does not exist/],
      ['/srv/link', /has a symlink on its way/],
      ['/fake/data/volumes', /overlaps the driver's own data root/],
      ['/fake', /overlaps the driver's own data root/],
      ['/var/lib/docker/volumes', /overlaps \/var\/lib\/docker, which dockerd or containerd own/],
      ['/var/lib', /overlaps \/var\/lib\/docker/],
    ];
    for (const [dir, message] of refusals) {
      mounts.directories.add(dir === '/srv/missing' ? '/elsewhere' : dir);
      const error = await failure(driver.create('bad', adopt(dir)));
      expect(error.kind).toBe('invalid');
      expect(error.message).toMatch(message);
    }
    expect(store.volumes.size).toBe(0);
  });

  it('refuses a second volume on the same or a nested directory, one Create at a time', async () => {
    const { driver, mounts } = await withDirectories('/srv/a', '/srv/a/b', '/srv');
    const results = await Promise.allSettled([
      driver.create('one', adopt('/srv/a')),
      driver.create('two', adopt('/srv/a/b')),
      driver.create('three', adopt('/srv')),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect(String((r as PromiseRejectedResult).reason)).toMatch(
        /two volumes may not adopt the same or nested directories/,
      );
    }
    expect(mounts.table.filter((e) => e.mountPoint.startsWith(MOUNT_ROOT))).toHaveLength(1);
  });

  it('Remove detaches its mount point in this view only, then drops the record; the directory is untouched', async () => {
    const { driver, store, mounts } = await withDirectories('/run/netns');
    await driver.create('netns', adopt('/run/netns'));
    mounts.mountOutside(`${mp('netns')}/qrouter-1`, 'nsfs');
    mounts.calls.length = 0;
    await driver.remove('netns');
    expect(mounts.calls[0]).toBe(`detach-view ${mp('netns')}`);
    expect(store.volumes.size).toBe(0);
    // What was discarded is the trash that holds the record, never the adopted directory.
    expect(store.discarded).toEqual([
      expect.stringMatching(/^\/fake\/data\/volumes\/\.trash-\d+$/),
    ]);
    expect(store.dirs.size).toBe(0);
    expect(await driver.list()).toEqual([]);
  });

  it('a Create that fails once the directory is mounted is undone in this view only', async () => {
    const { driver, store, mounts } = await withDirectories('/run/netns');
    const ensure = mounts.ensureSharedMount.bind(mounts);
    mounts.ensureSharedMount = async (...args) => {
      await ensure(...args);
      throw new Error('mount: simulated failure after the bind');
    };
    mounts.calls.length = 0;
    await expect(driver.create('netns', adopt('/run/netns'))).rejects.toThrow(/simulated/);
    expect(mounts.calls).toContain(`detach-view ${mp('netns')}`);
    expect(mounts.calls).not.toContain(`detach-all ${mp('netns')}`);
    expect(mounts.at(mp('netns'))).toEqual([]);
    expect(store.volumes.size + store.dirs.size).toBe(0);
  });

  it('a Remove that cannot retire the record puts the mount point back', async () => {
    const { driver, store, mounts } = await withDirectories('/run/netns');
    await driver.create('netns', adopt('/run/netns'));
    store.fail.retire = 'EROFS';
    const error = await failure(driver.remove('netns'));
    expect(error.message).toMatch(/read-only/);
    expect(mounts.at(mp('netns'))).toHaveLength(1);
    expect(store.volumes.has('netns')).toBe(true);
  });

  it('is refused with a clear reason where the driver sees no host directories (the managed plugin)', async () => {
    const { driver } = await setup((_store, mounts) => mounts.directories.add('/run/netns'), {
      hostPaths: false,
    });
    const error = await failure(driver.create('netns', adopt('/run/netns')));
    expect(error.message).toMatch(/managed plugin does not see the host's directories/);
  });
  it('a mount the host put over the directory makes Remove a 409 and is never peeled off', async () => {
    const { driver, store, mounts } = await withDirectories('/run/netns');
    await driver.create('netns', adopt('/run/netns'));
    mounts.mountOutside(mp('netns'), 'tmpfs', 99); // propagated from the host's directory
    await driver.mount('netns', 'c1');
    expect(mounts.at(mp('netns'))).toHaveLength(2);
    await driver.unmount('netns', 'c1');
    const error = await failure(driver.remove('netns'));
    expect(error.kind).toBe('conflict');
    expect(error.message).toMatch(/something is mounted over its adopted directory/);
    expect(mounts.at(mp('netns'))).toHaveLength(2);
    expect(store.volumes.has('netns')).toBe(true);
  });

  it('is not mounted again through a symlink put on its way since Create', async () => {
    const { driver, mounts } = await withDirectories('/srv/netns', '/etc');
    await driver.create('netns', adopt('/srv/netns'));
    mounts.table = mounts.table.filter((e) => e.mountPoint !== mp('netns')); // a reboot
    mounts.symlinks.set('/srv/netns', '/etc');
    const error = await failure(driver.mount('netns', 'c1'));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/is now reached through a symlink/);
    expect(mounts.at(mp('netns'))).toEqual([]);
  });

  it("refuses paths in --reserved-path directories as well as dockerd's defaults", async () => {
    const { driver, store } = await setup(
      (_store, mounts) => {
        for (const dir of ['/srv/docker/volumes', '/var/lib/docker/x', '/srv/other']) {
          mounts.directories.add(dir);
        }
      },
      { reservedPaths: ['/srv/docker'] },
    );
    expect((await failure(driver.create('va', adopt('/srv/docker/volumes')))).message).toMatch(
      /overlaps \/srv\/docker, which dockerd or containerd own/,
    );
    expect((await failure(driver.create('vb', adopt('/var/lib/docker/x')))).message).toMatch(
      /overlaps \/var\/lib\/docker/,
    );
    await driver.create('vc', adopt('/srv/other'));
    expect(store.volumes.has('vc')).toBe(true);
  });
});
