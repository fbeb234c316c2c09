/**
 * The driver and the peer group of an adopted directory (issue 25), over the fakes: a view cut
 * off from the directory's group is never sound, never reported `shared`, and is joined again at
 * start-up and at Mount; a mount point the driver did not make is refused at Create (400) and at
 * a remount (503), never made shared.
 */
import { jest } from '@jest/globals';
import { adoptedKind } from '../../src/driver/kinds/adopted.js';
import {
  adoptedViewIsSound,
  assertNotForeignMountPoint,
  viewJoinsDirectory,
} from '../../src/driver/kinds/adopted-peers.js';
import type { RecordOf } from '../../src/driver/kinds/kind.js';
import { VolumeInfoCache } from '../../src/driver/info-cache.js';
import { SharedpropDriver } from '../../src/driver/sharedprop-driver.js';
import { CUT_OFF } from '../../src/driver/status-view.js';
import { VolumeError } from '../../src/model/errors.js';
import { parseOptions } from '../../src/model/options.js';
import type { MountEntry } from '../../src/system/mountinfo.js';
import {
  ForeignMountPointError,
  type MountSource,
  type SharedMode,
} from '../../src/system/mounts.js';
import { FakeMounts, FakeStore } from '../support/driver-fakes.js';
import { kindContext, recordOf } from '../support/kind-context.js';
import { silentLogger } from '../support/silent-logger.js';

const MOUNT_ROOT = '/fake/mounts';
const DIR = '/srv/hd';
const mp = (name: string) => `${MOUNT_ROOT}/${name}`;
const adopted = (name = 'a1') =>
  recordOf(name, parseOptions(name, { path: DIR })) as RecordOf<'path'>;

async function failure(work: Promise<unknown>): Promise<VolumeError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof VolumeError))
    throw new Error(`expected a VolumeError, got ${String(error)}`);
  return error;
}

async function driverWith(
  mounts: FakeMounts,
  prepare: (store: FakeStore) => void = () => undefined,
) {
  const store = new FakeStore();
  for (const dir of [DIR, '/fake/data', MOUNT_ROOT]) mounts.directories.add(dir);
  prepare(store);
  const logger = silentLogger();
  const info = jest.spyOn(logger, 'info');
  const driver = new SharedpropDriver({
    dataRoot: '/fake/data',
    mountRoot: MOUNT_ROOT,
    logger,
    store,
    mounts,
    statusMaxAgeMs: -1, // every question reads the fake table again
  });
  await driver.start();
  await driver.restored();
  /** How many mount points start-up found to put back (its 'driver started' line). */
  const calls = info.mock.calls as unknown as [string, { mountPointsToRestore: number }][];
  const toRestore = calls
    .filter(([message]) => message === 'driver started')
    .map(([, meta]) => meta.mountPointsToRestore);
  return { driver, store, toRestore };
}

/** Moves the view at `at` into another peer group (a new entry, as a new table read gives). */
function regroup(mounts: FakeMounts, at: string, group: number | undefined) {
  mounts.table = mounts.table.map((e) => (e.mountPoint === at ? { ...e, sharedGroup: group } : e));
}

const adoptCalls = (mounts: FakeMounts, name: string) =>
  mounts.calls.filter((c) => c === `adopt ${mp(name)}`).length;

describe('the adopted kind’s peer-group checks', () => {
  function world(dirGroup?: number, viewGroup?: number) {
    const w = kindContext();
    w.mounts.directories.add(DIR);
    if (dirGroup !== undefined || viewGroup !== undefined)
      w.mounts.mountOutside(DIR, 'ext4', dirGroup);
    if (viewGroup !== undefined) w.mounts.bindOutside(mp('a1'), DIR, viewGroup);
    return w;
  }
  const view = (sharedGroup?: number) => ({ mountPoint: mp('a1'), sharedGroup }) as MountEntry;

  it('viewJoinsDirectory: true only when the view is in a group of the directory’s mounts', async () => {
    const { mounts } = world(7);
    expect(await viewJoinsDirectory(mounts, DIR, view(7))).toBe(true);
    expect(await viewJoinsDirectory(mounts, DIR, view(8))).toBe(false);
    expect(await viewJoinsDirectory(mounts, DIR, view(undefined))).toBe(false);
    mounts.mountOutside(DIR, 'tmpfs', 9); // a stack at the directory: either group will do
    expect(await viewJoinsDirectory(mounts, DIR, view(7))).toBe(true);
  });

  it('adoptedViewIsSound: one shared bind of the directory, in its group', async () => {
    expect(await adoptedViewIsSound(world(7, 7).ctx, adopted())).toBe(true);
    expect(await adoptedViewIsSound(world(7, 8).ctx, adopted())).toBe(false);
    expect(await adoptedViewIsSound(world(7).ctx, adopted())).toBe(false); // nothing mounted
    const other = world(7);
    other.mounts.directories.add('/srv/other');
    other.mounts.bindOutside(mp('a1'), '/srv/other', 7); // another directory, in the group
    expect(await adoptedViewIsSound(other.ctx, adopted())).toBe(false);
    // Another volume's view, listed first in the table, in another group: not the one asked about.
    const crowded = world(7);
    crowded.mounts.directories.add('/srv/other');
    crowded.mounts.bindOutside(mp('a0'), '/srv/other', 8);
    crowded.mounts.bindOutside(mp('a1'), DIR, 7);
    expect(await adoptedViewIsSound(crowded.ctx, adopted())).toBe(true);
  });

  it('the kind answers inPeerGroup from the directory’s mounts', async () => {
    const kind = adoptedKind(world(7, 7).ctx);
    expect(await kind.inPeerGroup?.(adopted(), view(7))).toBe(true);
    expect(await kind.inPeerGroup?.(adopted(), view(3))).toBe(false);
  });

  it('assertNotForeignMountPoint: a directory that is no mount point or a shared one passes', async () => {
    for (const { mounts } of [world(), world(7)]) {
      const held = await mounts.holdDirectory(DIR);
      await expect(assertNotForeignMountPoint(mounts, 'a1', DIR, held)).resolves.toBeUndefined();
    }
  });

  it.each([
    ['a private tmpfs', (m: FakeMounts) => m.mountOutside(DIR, 'tmpfs'), 'private'],
    [
      'an unbindable bind',
      (m: FakeMounts) => Object.assign(m.mountOutside(DIR, 'ext4'), { unbindable: true }),
      'unbindable',
    ],
  ])(
    'a mount point that is not shared (%s) is a 400 at Create, naming the fix',
    async (_what, make, propagation) => {
      const { ctx, mounts } = world();
      make(mounts);
      const expected = `volume "a1": option path="${DIR}" is a ${propagation} mount point that sharedprop did not make, and adopting it would make it shared; make it shared yourself (mount --make-shared ${DIR}) or adopt a directory that is no mount point`;
      const held = await mounts.holdDirectory(DIR);
      const direct = await failure(assertNotForeignMountPoint(mounts, 'a1', DIR, held));
      expect([direct.kind, direct.message]).toEqual(['invalid', expected]);
      const viaKind = await failure(adoptedKind(ctx).checkCreate('a1', adopted().options));
      expect([viaKind.kind, viaKind.message]).toEqual(['invalid', expected]);
    },
  );
});

describe('the driver and a view cut off from its directory', () => {
  it('Get reports it cut off, and Mount binds it again', async () => {
    const mounts = new FakeMounts();
    const { driver } = await driverWith(mounts);
    await driver.create('a1', new Map([['path', DIR]]));
    const [dirGroup] = mounts.at(DIR).map((e) => e.sharedGroup);
    expect(mounts.at(mp('a1'))[0]?.sharedGroup).toBe(dirGroup);
    expect((await driver.get('a1')).status?.mountPoint).toBe('shared');
    const before = adoptCalls(mounts, 'a1');

    regroup(mounts, mp('a1'), 999);
    expect((await driver.get('a1')).status?.mountPoint).toBe(CUT_OFF);
    // What is mounted in the view changes nothing: the view itself is what is cut off.
    const sub = mounts.mountOutside(`${mp('a1')}/sub`, 'tmpfs', 999);
    expect((await driver.get('a1')).status?.mountPoint).toBe(CUT_OFF);
    mounts.table = mounts.table.filter((e) => e !== sub);
    await driver.mount('a1', 'c1');
    expect(adoptCalls(mounts, 'a1')).toBe(before + 1);
    // Joined again: Get says so, and the next Mount binds nothing.
    regroup(mounts, mp('a1'), dirGroup);
    expect((await driver.get('a1')).status?.mountPoint).toBe('shared');
    await driver.mount('a1', 'c2');
    expect(adoptCalls(mounts, 'a1')).toBe(before + 1);
  });

  it('Get of a volume with no mount at its mount point reads nothing about the directory', async () => {
    const mounts = new FakeMounts();
    const { driver } = await driverWith(mounts);
    await driver.create('a1', new Map([['path', DIR]]));
    mounts.table = mounts.table.filter((e) => e.mountPoint !== mp('a1'));
    const readAbout = jest.spyOn(mounts, 'readAbout');
    expect((await driver.get('a1')).status?.mountPoint).toBe('0 mounts');
    expect(readAbout.mock.calls.filter(([dir]) => dir === DIR)).toEqual([]);
  });

  it.each([
    ['cut off', 8, 1],
    ['joined', 7, 0],
  ])('start-up binds a view %s again (%s), else leaves it', async (_what, viewGroup, calls) => {
    const mounts = new FakeMounts();
    mounts.mountOutside(DIR, 'ext4', 7);
    mounts.bindOutside(mp('a1'), DIR, viewGroup);
    const { toRestore } = await driverWith(mounts, (store) => store.volumes.set('a1', adopted()));
    expect(adoptCalls(mounts, 'a1')).toBe(calls);
    expect(toRestore).toEqual([calls]);
  });

  it('a directory volume’s one shared mount is left alone at start-up (no peer group to join)', async () => {
    const mounts = new FakeMounts();
    mounts.bindOutside(mp('d1'), '/fake/data/volumes/d1/_data', 5);
    const { toRestore } = await driverWith(mounts, (store) =>
      store.volumes.set('d1', recordOf('d1', parseOptions('d1', {}))),
    );
    expect(toRestore).toEqual([0]);
    expect(mounts.calls.filter((c) => c.includes(mp('d1')))).toEqual([]);
  });
});

describe('a remount that would make shared what the driver did not make', () => {
  class Refusing extends FakeMounts {
    error: Error = new ForeignMountPointError(DIR, 'private');
    refuse = false;
    override async ensureSharedMount(source: MountSource, target: string, mode: SharedMode) {
      if (this.refuse) throw this.error;
      return super.ensureSharedMount(source, target, mode);
    }
  }

  it('is a 503 naming the directory; any other failure passes as it is', async () => {
    const mounts = new Refusing();
    const { driver } = await driverWith(mounts);
    await driver.create('a1', new Map([['path', DIR]]));
    regroup(mounts, mp('a1'), undefined); // not sound: Mount mounts again
    mounts.refuse = true;
    const error = await failure(driver.mount('a1', 'c1'));
    expect([error.kind, error.message]).toEqual([
      'unavailable',
      `volume "a1": ${DIR} is a private mount point that sharedprop did not make; making it shared would change what is not the driver's: not mounted (make it shared yourself, or unmount it)`,
    ]);
    mounts.error = new ForeignMountPointError(DIR, 'detached');
    const gone = await failure(driver.mount('a1', 'c1'));
    expect([gone.kind, gone.message]).toEqual([
      'unavailable',
      `volume "a1": ${DIR} was unmounted while sharedprop held it; try again`,
    ]);
    mounts.error = new Error('something else');
    await expect(driver.mount('a1', 'c1')).rejects.toThrow(new Error('something else'));
  });

  it('a directory unmounted while Create checked it is a 409 to try again, not a 400', async () => {
    class Unmounted extends FakeMounts {
      override async refuseForeignMountPoint(): Promise<void> {
        throw new ForeignMountPointError(DIR, 'detached');
      }
    }
    const mounts = new Unmounted();
    const { driver } = await driverWith(mounts);
    const error = await failure(driver.create('a1', new Map([['path', DIR]])));
    expect([error.kind, error.message]).toEqual([
      'conflict',
      `volume "a1": option path="${DIR}" was a mount point unmounted while it was checked; try again`,
    ]);
    expect(mounts.heldOpen).toEqual([]);
  });
});

describe('VolumeInfoCache and the peer group', () => {
  it('builds again when only `joined` changed', () => {
    const cache = new VolumeInfoCache();
    const sources = { record: adopted(), mounts: [], countsSaved: true };
    const first = cache.get({ ...sources, joined: true }, () => ({ name: 'first' }) as never);
    expect(cache.get({ ...sources, joined: true }, () => ({ name: 'x' }) as never)).toBe(first);
    const second = cache.get({ ...sources, joined: false }, () => ({ name: 'second' }) as never);
    expect(second).not.toBe(first);
    expect(second).toEqual({ name: 'second' });
  });
});
