/**
 * The driver's Create and Remove with fakes of the store and the mount system (no root, no
 * mounts): their decisions, and what each failure leaves behind.
 */
import type { VolumeRecord } from '../../../src/model/record.js';
import { isWithin } from '../../../src/system/mountinfo.js';
import { errno } from '../../support/driver-fakes.js';
import { failure, mountDelivered, mp, noOptions, setup } from './harness.js';

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

  it('whose publishing rename cannot be made durable is undone, its mount made meanwhile included', async () => {
    const { driver, store, mounts } = await setup();
    store.fail.publish = 'ENOSPC';
    const error = await failure(driver.create('v1', noOptions));
    expect(error.message).toBe('volume "v1" not created: no space left in the data root');
    expect(mounts.table).toEqual([]);
    expect(store.volumes.size + store.dirs.size).toBe(0);
    expect(store.discarded).toEqual([expect.stringMatching(/\.trash-/)]);
    expect(await driver.list()).toEqual([]);
  });

  it.each(['ENOTEMPTY', 'EEXIST'] as const)(
    'into a name the data root holds as no volume is a 409 that leaves that directory alone (rename: %s)',
    async (code) => {
      const { driver, store, mounts } = await setup();
      store.nameTaken = code;
      const stranger: VolumeRecord = {
        name: 'v1',
        createdAt: '2026-12-07T00:00:00.000Z',
        options: { kind: 'directory', propagation: 'rshared' },
        mounts: new Map(),
      };
      store.volumes.set('v1', stranger);
      const error = await failure(driver.create('v1', noOptions));
      expect(error.kind).toBe('conflict');
      expect(error.message).toMatch(/holds a directory of that name that is no volume/);
      expect(store.volumes.get('v1')).toBe(stranger);
      expect(mounts.table).toEqual([]);
      expect(store.discarded).toEqual([expect.stringMatching(/\.new-/)]);
    },
  );

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
    await mountDelivered(driver, 'v1', 'a');
    await mountDelivered(driver, 'v1', 'b');
    expect((await failure(driver.remove('v1'))).message).toBe(
      'volume "v1" is in use (2 active mounts: a, b); stop the containers that use it first',
    );
    await driver.unmount('v1', 'b');
    expect((await failure(driver.remove('v1'))).message).toMatch(/\(1 active mount: a\);/);
    await driver.unmount('v1', 'a');
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

  it('detaches a mount made in its files, found after they were taken out of the store', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('v1', noOptions);
    await driver.create('v2', noOptions);
    mounts.mountOutside(`${mp('v2')}/kept`);
    const retire = store.retire.bind(store);
    let trash = '';
    store.retire = async (name) => {
      trash = await retire(name);
      mounts.mountOutside(`${trash}/_data/host-made`);
      return trash;
    };
    await driver.remove('v1');
    expect(mounts.table.filter((e) => isWithin(e.mountPoint, trash))).toEqual([]);
    expect(store.discarded).toEqual([trash]);
    expect(mounts.at(`${mp('v2')}/kept`)).toHaveLength(1);
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

  it('whose detaching fails for want of space says so, and leaves the volume usable', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('v1', noOptions);
    const detachAll = mounts.detachAll.bind(mounts);
    mounts.detachAll = async () => {
      mounts.detachAll = detachAll;
      throw errno('ENOSPC');
    };
    const error = await failure(driver.remove('v1'));
    expect(error.message).toBe(
      'volume "v1" not removed; it is mounted and usable as before: no space left in the data root',
    );
    expect(store.volumes.has('v1')).toBe(true);
    expect(mounts.at(mp('v1'))).toHaveLength(1);
  });

  it('that can neither detach a mount nor put the volume back is refused until a restart', async () => {
    const { driver, store, mounts } = await setup();
    await driver.create('v1', noOptions);
    mounts.mountOutside(`${mp('v1')}/stuck`);
    mounts.stuck.add(`${mp('v1')}/stuck`);
    store.fail.restore = 'EIO';
    await expect(driver.remove('v1')).rejects.toMatchObject({ code: 'EBUSY' });
    // Its files are in the trash, not discarded; every later call says why it is refused.
    expect(store.discarded).toEqual([]);
    expect(store.dirs.size).toBe(1);
    for (const call of [
      () => driver.get('v1'),
      () => driver.mount('v1', 'c'),
      () => driver.remove('v1'),
    ]) {
      const error = await failure(call());
      expect(error.kind).toBe('internal');
      expect(error.message).toMatch(/a failed Remove could not be undone.*restart the plugin/);
    }
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
