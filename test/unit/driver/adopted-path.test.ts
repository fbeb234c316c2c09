/**
 * A volume that adopts a host directory (-o path=) in the driver, with fakes of the store and the
 * mount system (no root, no mounts): Create's refusals, Remove, and what each failure leaves.
 */
import { failure, MOUNT_ROOT, mp, setup } from './harness.js';

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

  it('completes at start-up a record an older version wrote without the identity, and saves it', async () => {
    const KEPT = { device: '8:1', ino: '77', boot: 'boot-0' };
    const { store, mounts } = await setup((s, mounts) => {
      for (const dir of ['/run/netns', '/var/lib/docker', '/fake/data', MOUNT_ROOT])
        mounts.directories.add(dir);
      s.volumes.set('netns', {
        name: 'netns',
        createdAt: 't',
        options: { kind: 'path', propagation: 'rshared', path: '/run/netns' },
        mounts: new Map(),
      });
      // One that has its identity keeps it as it was recorded.
      s.volumes.set('kept', {
        name: 'kept',
        createdAt: 't',
        options: { kind: 'path', propagation: 'rshared', path: '/run/netns', identity: KEPT },
        mounts: new Map(),
      });
      // Mounted and sound, as after a restart of the driver alone: nothing to mount again.
      mounts.bindOutside('/run/netns', '/run/netns', 9);
      mounts.bindOutside(mp('netns'), '/run/netns', 9);
      mounts.bindOutside(mp('kept'), '/run/netns', 9);
    });
    expect(store.volumes.get('kept')?.options).toMatchObject({ identity: KEPT });
    expect(mounts.calls.filter((call) => call.includes(mp('netns')))).toEqual([]);
    expect(store.volumes.get('netns')?.options).toMatchObject({
      identity: { device: '8:1', ino: expect.stringMatching(/^\d+$/), boot: 'boot-1' },
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
