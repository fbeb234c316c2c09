/**
 * The driver's Mount, Unmount and Status with fakes of the store and the mount system (no root, no
 * mounts): the counts per ID, when they are saved, and when Status is answered anew.
 */
import { countsToObject } from '../../../src/model/counts.js';
import { failure, mountDelivered, mp, noOptions, setup } from './harness.js';

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

  it('an Unmount between a delivered and an undelivered Mount of one ID leaves no count behind', async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    await mountDelivered(driver, 'v1', 'a');
    const second = await driver.mount('v1', 'a');
    // Which of the two it took is unknown: the delivered one is saved as taken, the other pending.
    await driver.unmount('v1', 'a');
    expect(store.savedCounts.get('v1')?.size ?? 0).toBe(0);
    second.abandon();
    second.commit();
    expect((await driver.get('v1')).status?.activeMounts).toBe(0);
    expect(store.savedCounts.get('v1')?.size ?? 0).toBe(0);
    await driver.remove('v1');
  });

  it('an Unmount that took a pending Mount leaves the next delivered Mount of the ID saved', async () => {
    const { driver, store } = await setup();
    await driver.create('v1', noOptions);
    const first = await driver.mount('v1', 'a');
    await driver.unmount('v1', 'a');
    await mountDelivered(driver, 'v1', 'a');
    expect(countsToObject(store.savedCounts.get('v1')!)).toEqual({ a: 1 });
    first.commit(); // settled late: its count was already taken back
    expect(countsToObject(store.savedCounts.get('v1')!)).toEqual({ a: 1 });
    expect((await driver.get('v1')).status?.activeMounts).toBe(1);
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
