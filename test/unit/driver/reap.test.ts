/**
 * reap=on-unmount in the driver, with fakes of the store and the mount system (no root, no
 * mounts): which submounts the last Unmount detaches, and which it keeps.
 */
import { FakeMounts } from '../../support/driver-fakes.js';
import { recordingLogger } from '../../support/silent-logger.js';
import { mountDelivered, mp, noOptions, setup } from './harness.js';

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

  it('reaps nothing at an Unmount of an ID it never counted (dockerd repeating one)', async () => {
    const { driver, mounts } = await setup();
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    mounts.mountOverlay(`${mp('r1')}/etc`);
    await driver.unmount('r1', 'never-mounted');
    expect(paths(mounts, 'r1')).toEqual([`${mp('r1')}/etc`]);
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

  it('reaps a tmpfs volume as it does a directory: only when it asked to', async () => {
    const { driver, mounts } = await setup();
    await driver.create(
      't1',
      new Map([
        ['type', 'tmpfs'],
        ['reap', 'on-unmount'],
      ]),
    );
    await driver.create('t2', new Map([['type', 'tmpfs']]));
    for (const name of ['t1', 't2']) {
      await mountDelivered(driver, name, 'a');
      mounts.mountOverlay(`${mp(name)}/etc`);
      await driver.unmount(name, 'a');
    }
    expect(paths(mounts, 't1')).toEqual([]);
    expect(paths(mounts, 't2')).toEqual([`${mp('t2')}/etc`]);
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

  it('logs each submount it detached, and none it could not', async () => {
    const { logger, lines } = recordingLogger();
    const { driver, mounts } = await setup(undefined, { logger });
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    await mountDelivered(driver, 'r1', 'a');
    mounts.mountOverlay(`${mp('r1')}/stuck`);
    mounts.mountOverlay(`${mp('r1')}/gone`);
    mounts.stuck.add(`${mp('r1')}/stuck`);
    await driver.unmount('r1', 'a');
    const reaped = lines().filter((l) => String(l.message).startsWith('reaped a submount'));
    expect(reaped).toEqual([
      expect.objectContaining({ volume: 'r1', path: '/gone', fsType: 'overlay', lazy: false }),
    ]);
    // The stuck one, whichever comes first, stops none of the others, and is said by name.
    expect(paths(mounts, 'r1')).toEqual([`${mp('r1')}/stuck`]);
    expect(lines().filter((l) => l.level === 'error')).toEqual([
      expect.objectContaining({ message: 'could not reap a leaked submount', path: '/stuck' }),
    ]);
  });

  it('what it reaped is gone from Status at once, however long Status is kept', async () => {
    const { driver, mounts } = await setup(undefined, { statusMaxAgeMs: 60_000 });
    await driver.create('r1', new Map([['reap', 'on-unmount']]));
    mounts.mountOverlay(`${mp('r1')}/etc`);
    await mountDelivered(driver, 'r1', 'a');
    expect((await driver.get('r1')).status?.submounts.map((s) => s.path)).toEqual(['/etc']);
    await driver.unmount('r1', 'a');
    expect((await driver.get('r1')).status?.submounts).toEqual([]);
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
