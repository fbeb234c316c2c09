/**
 * A tmpfs volume in the driver, with fakes of the store and the mount system (no root, no mounts):
 * its options, its mount kept or put back, and its Remove.
 */
import { mountDelivered, mp, setup } from './harness.js';

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
    const { driver, mounts } = await setup((store) => {
      store.volumes.set('t1', {
        name: 't1',
        createdAt: '2026-01-01T00:00:00Z',
        options: { kind: 'tmpfs', propagation: 'rshared' },
        mounts: new Map(),
      });
    });
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
