/**
 * What a Remove and a Mount's health check read of the mount table, which can hold tens of
 * thousands of lines: a Remove reads none when the kernel tells that nothing is left at the mount
 * point or in the volume's files (the mount point's mounts are found by identity, the rest by a
 * walk), once when it cannot tell, twice when something must be detached in the files; a health check asks the mount layer by identity where it can,
 * and falls back to the snapshot where it cannot.
 */
import { directoryKind } from '../../src/driver/kinds/directory.js';
import type { RecordOf } from '../../src/driver/kinds/kind.js';
import { tmpfsKind } from '../../src/driver/kinds/tmpfs.js';
import { SharedpropDriver } from '../../src/driver/sharedprop-driver.js';
import { VolumeError } from '../../src/model/errors.js';
import { parseOptions } from '../../src/model/options.js';
import { MountSnapshot } from '../../src/system/mount-snapshot.js';
import type { DetachReport } from '../../src/system/mounts.js';
import { FakeMounts, FakeStore } from '../support/driver-fakes.js';
import { KIND_MOUNT_ROOT, kindContext, recordOf } from '../support/kind-context.js';
import { silentLogger } from '../support/silent-logger.js';

const mp = (name: string) => `${KIND_MOUNT_ROOT}/${name}`;
const dir = () => recordOf('d1', parseOptions('d1', {})) as RecordOf<'directory'>;
const mem = () => recordOf('t1', parseOptions('t1', { type: 'tmpfs' })) as RecordOf<'tmpfs'>;

/** A kind context whose store mounts something in each volume's trash as it retires it. */
function withMountInTrash(mounts?: FakeMounts) {
  const made = kindContext(mounts ? { mounts } : {});
  const { store } = made;
  const fake = made.ctx.mounts as FakeMounts;
  const retire = store.retire.bind(store);
  const trashes: string[] = [];
  store.retire = async (name: string) => {
    const trash = await retire(name);
    trashes.push(trash);
    fake.mountOutside(`${trash}/inside`);
    return trash;
  };
  return { ...made, trashes };
}

describe('Remove of a volume whose data is its own', () => {
  it('with nothing in its files: no read of the table (the kernel walks find nothing), no detach there', async () => {
    const { ctx, mounts, store } = kindContext();
    const record = dir();
    store.volumes.set('d1', record);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 3);
    const outcome = await directoryKind(ctx).remove(record);
    expect(mounts.tableReads).toBe(0);
    expect(mounts.readsAbout).toEqual([]);
    expect(mounts.calls).toEqual([
      `detach-all ${mp('d1')}`,
      `scan ${mp('d1')}`,
      expect.stringMatching(/^scan .*\.trash-/),
    ]);
    expect(outcome.trashMounts).toEqual([]);
    expect(mounts.table).toEqual([]);
  });

  it('where the walk cannot tell (a large tree, mount(8)): one read of the table proves it', async () => {
    class Unsure extends FakeMounts {
      override async mountsWithin(): Promise<'unknown'> {
        return 'unknown';
      }
    }
    const mounts = new Unsure();
    const { ctx, store } = kindContext({ mounts });
    const record = dir();
    store.volumes.set('d1', record);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 3);
    const outcome = await directoryKind(ctx).remove(record);
    expect(mounts.tableReads).toBe(1);
    expect(outcome.trashMounts).toEqual([]);
  });

  it('with a mount left at the mount point (hidden beneath the volume): refused with a 409, volume put back', async () => {
    class Hiding extends FakeMounts {
      override async detachAll(
        path: string,
        options: { includeSelf: boolean },
      ): Promise<DetachReport> {
        const report = await super.detachAll(path, options);
        // Revealed once the volume's mount is gone: a mount nobody listed beneath it.
        if (path === mp('d1')) this.mountOutside(`${path}/hidden`);
        return report;
      }
    }
    const mounts = new Hiding();
    const { ctx, store } = kindContext({ mounts });
    const record = dir();
    store.volumes.set('d1', record);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 3);
    let error: unknown;
    await directoryKind(ctx)
      .remove(record)
      .catch((e: unknown) => (error = e));
    expect(error).toBeInstanceOf(VolumeError);
    expect((error as VolumeError).message).toMatch(/^volume "d1" not removed: a mount inside it/);
    expect(store.volumes.get('d1')).toBe(record);
  });

  it('with a mount left in its files: detached there, and the table read again to prove it gone', async () => {
    const { ctx, mounts, store, trashes } = withMountInTrash();
    const record = dir();
    store.volumes.set('d1', record);
    const outcome = await directoryKind(ctx).remove(record);
    const trash = trashes[0] as string;
    expect(mounts.calls).toEqual([
      `detach-all ${mp('d1')}`,
      `scan ${mp('d1')}`,
      `scan ${trash}`,
      `detach-all ${trash} (below)`,
    ]);
    expect(mounts.tableReads).toBe(2);
    expect(outcome.details).toEqual({ submountsDetached: [`${trash}/inside`] });
    expect(mounts.table).toEqual([]);
  });

  it('with a mount in its files that stays: refused with a 409, and the volume put back', async () => {
    class Stubborn extends FakeMounts {
      override async detachAll(
        path: string,
        options: { includeSelf: boolean },
      ): Promise<DetachReport> {
        if (!options.includeSelf) return { detached: [], lazy: [] };
        return super.detachAll(path, options);
      }
    }
    const { ctx, store } = withMountInTrash(new Stubborn());
    const record = dir();
    store.volumes.set('d1', record);
    let error: unknown;
    await directoryKind(ctx)
      .remove(record)
      .catch((e: unknown) => (error = e));
    expect(error).toBeInstanceOf(VolumeError);
    expect((error as VolumeError).message).toBe(
      'volume "d1" not removed: a mount inside it could not be detached; it is mounted and usable as before',
    );
    expect(store.volumes.get('d1')).toBe(record);
  });
});

describe('the driver deleting what a Remove retired', () => {
  async function driverOver(mounts: FakeMounts, store: FakeStore) {
    const driver = new SharedpropDriver({
      dataRoot: '/fake/data',
      mountRoot: KIND_MOUNT_ROOT,
      logger: silentLogger(),
      store,
      mounts,
      statusMaxAgeMs: 0,
    });
    await driver.start();
    return driver;
  }

  it("takes the kind's read of the trash: no other read about it", async () => {
    const mounts = new FakeMounts();
    const store = new FakeStore();
    const driver = await driverOver(mounts, store);
    await driver.create('d1', new Map());
    mounts.readsAbout = [];
    await driver.remove('d1');
    expect(mounts.readsAbout).toEqual([]);
    expect(store.discarded).toEqual([expect.stringMatching(/\.trash-/)]);
  });

  it('reads about the trash itself when the kind did not (an adopted directory)', async () => {
    const mounts = new FakeMounts();
    const store = new FakeStore();
    for (const known of ['/srv/adopted', '/var/lib/docker', '/fake/data', KIND_MOUNT_ROOT]) {
      mounts.directories.add(known);
    }
    const driver = await driverOver(mounts, store);
    await driver.create('a1', new Map([['path', '/srv/adopted']]));
    mounts.readsAbout = [];
    await driver.remove('a1');
    const trash = store.discarded[0] as string;
    expect(trash).toMatch(/\.trash-/);
    expect(mounts.readsAbout).toContain(trash);
  });
});

describe("a Mount's health check", () => {
  /** A context whose snapshot stays a minute: stale once the table changes. */
  function staleContext() {
    const made = kindContext();
    const snapshot = new MountSnapshot(made.mounts.readerAbout(KIND_MOUNT_ROOT), 60_000);
    return { ...made, ctx: { ...made.ctx, snapshot } };
  }

  it('asks the mount layer by identity where it can: a mount gone since the snapshot is seen', async () => {
    const { ctx, mounts, store } = staleContext();
    mounts.byIdentity = true;
    const record = dir();
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 3);
    expect(await directoryKind(ctx).isSound(record)).toBe(true);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 4); // stacked now
    expect(await directoryKind(ctx).isSound(record)).toBe(false);
  });

  it('falls back to the snapshot where it cannot (up to one snapshot period old)', async () => {
    const { ctx, mounts, store } = staleContext();
    const record = dir();
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 3);
    expect(await directoryKind(ctx).isSound(record)).toBe(true);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 4);
    expect(await directoryKind(ctx).isSound(record)).toBe(true);
  });

  it.each([
    [true, false],
    [false, true],
  ])(
    'a tmpfs too: by identity (%s), one made private since the snapshot is seen (sound: %s)',
    async (byIdentity, sound) => {
      const { ctx, mounts } = staleContext();
      mounts.byIdentity = byIdentity;
      mounts.mountOutside(mp('t1'), 'tmpfs', 3);
      expect(await tmpfsKind(ctx).isSound(mem())).toBe(true);
      // The same mount (its device), no longer shared: a new entry, the snapshot keeps the old.
      mounts.table = mounts.table.map((e) => ({ ...e, sharedGroup: undefined }));
      expect(await tmpfsKind(ctx).isSound(mem())).toBe(sound);
    },
  );
});
