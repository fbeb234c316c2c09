/**
 * The driver's start-up with fakes of the store and the mount system (no root, no mounts): what
 * it restores, detaches, leaves alone and collects, and how it serves meanwhile.
 */
import { SharedpropDriver } from '../../../src/driver/sharedprop-driver.js';
import { FakeMounts, FakeStore } from '../../support/driver-fakes.js';
import { silentLogger } from '../../support/silent-logger.js';
import type { MountEntry } from '../../../src/system/mountinfo.js';
import type { VolumeRecord } from '../../../src/model/record.js';
import { failure, MOUNT_ROOT, mountDelivered, mp, noOptions, setup } from './harness.js';

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

  it('voids the counts of an earlier boot, then records this one', async () => {
    const { driver, store } = await setup((s) => {
      held(s);
      s.rebooted = true;
    });
    expect((await driver.get('v1')).status?.activeMounts).toBe(0);
    expect(store.savedCounts.get('v1')?.size).toBe(0);
    expect(store.bootRecorded).toBe(1);
  });

  it('marks the mount root as its own, naming its data root (the runtime wrapper reads it)', async () => {
    const { mounts } = await setup();
    expect(mounts.markers).toEqual([
      {
        root: MOUNT_ROOT,
        name: '.sharedprop-mountroot',
        content: `${JSON.stringify({ dataRoot: '/fake/data' })}\n`,
      },
    ]);
  });

  it('mounts again a volume whose view it finds private, and keeps one that is shared (and a slave)', async () => {
    const { driver, mounts } = await setup((s, m) => {
      held(s);
      m.bindOutside(mp('v1'), s.dataDir('v1'));
      s.volumes.set('v2', { ...(s.volumes.get('v1') as VolumeRecord), name: 'v2' });
      // As in the managed plugin's namespace: shared, and a slave of the host's copy.
      m.bindOutside(mp('v2'), s.dataDir('v2'), 12).masterGroup = 4;
    });
    await driver.restored();
    expect(mounts.at(mp('v1')).at(-1)?.sharedGroup).toBeDefined();
    expect(mounts.calls).toContain(`bind ${mp('v1')}`);
    expect(mounts.calls.filter((call) => call.includes(mp('v2')))).toEqual([]);
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
    const { driver, store } = await setup((s) => {
      held(s);
      s.readOnly = true;
    });
    expect(await mountDelivered(driver, 'v1', 'c')).toBe(mp('v1'));
    const error = await failure(driver.create('v2', noOptions));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/read-only/);
    expect(store.bootRecorded).toBe(0); // nothing is written
  });

  it('on a read-only data root leaves the leftovers of interrupted operations for a later start', async () => {
    const { driver, store, mounts } = await setup((s) => {
      s.readOnly = true;
      s.dirs.set('/fake/data/volumes/.trash-old', undefined);
    });
    await driver.deleteLeftovers();
    expect(store.discarded).toEqual([]);
    expect(mounts.calls.filter((call) => call.includes('.trash-old'))).toEqual([]);
  });
});
