/**
 * The parts the driver delegates to, each on its own: the counts ledger, the reaper, the status
 * view and the registry (start-up recovery is driven through the driver in
 * driver/start-up.test.ts).
 */
import { CountsLedger } from '../../src/driver/counts-ledger.js';
import { VolumeKinds } from '../../src/driver/kinds/index.js';
import { leaksBelow, Reaper } from '../../src/driver/reaper.js';
import { VolumeRegistry } from '../../src/driver/registry.js';
import { StatusView, volumeOfMount } from '../../src/driver/status-view.js';
import { VolumeError } from '../../src/model/errors.js';
import { parseOptions } from '../../src/model/options.js';
import type { MountEntry } from '../../src/system/mountinfo.js';
import { MountSnapshot } from '../../src/system/mount-snapshot.js';
import { FakeMounts, FakeStore } from '../support/driver-fakes.js';
import { KIND_MOUNT_ROOT, kindContext, recordOf } from '../support/kind-context.js';
import { recordingLogger, silentLogger } from '../support/silent-logger.js';

const mp = (name: string) => `${KIND_MOUNT_ROOT}/${name}`;

function ledgerWorld() {
  const registry = new VolumeRegistry();
  const store = new FakeStore();
  registry.set(recordOf('v1', parseOptions('v1', {})));
  return { registry, store, ledger: new CountsLedger(registry, store, silentLogger()) };
}

describe('the counts ledger', () => {
  it('counts a Mount at once and saves it only once delivered', () => {
    const { registry, store, ledger } = ledgerWorld();
    ledger.count('v1', 'a');
    expect(registry.get('v1')?.mounts).toEqual(new Map([['a', 1]]));
    expect(store.savedCounts.get('v1')).toBeUndefined();
    ledger.settle('v1', 'a', true);
    expect(store.savedCounts.get('v1')).toEqual(new Map([['a', 1]]));
    ledger.settle('v1', 'a', false); // settled already: no effect
    expect(registry.get('v1')?.mounts).toEqual(new Map([['a', 1]]));
  });

  it('takes back an undelivered Mount and saves what is left', () => {
    const { registry, store, ledger } = ledgerWorld();
    ledger.count('v1', 'a');
    ledger.settle('v1', 'a', true);
    ledger.count('v1', 'a');
    ledger.settle('v1', 'a', false);
    expect(registry.get('v1')?.mounts).toEqual(new Map([['a', 1]]));
    expect(store.savedCounts.get('v1')).toEqual(new Map([['a', 1]]));
  });

  it('saves delivered counts only, while another Mount of the volume is pending', () => {
    const { store, ledger } = ledgerWorld();
    ledger.count('v1', 'a');
    ledger.count('v1', 'b');
    ledger.settle('v1', 'a', true);
    expect(store.savedCounts.get('v1')).toEqual(new Map([['a', 1]]));
  });

  it('uncounts: an unknown ID is reported, the last one leaves zero', () => {
    const { ledger, store } = ledgerWorld();
    expect(ledger.uncount('v1', 'nobody')).toEqual({ known: false, left: 0 });
    expect(store.savedCounts.get('v1')).toBeUndefined(); // nothing changed: nothing written
    ledger.count('v1', 'a');
    ledger.count('v1', 'b');
    ledger.settle('v1', 'a', true);
    ledger.settle('v1', 'b', true);
    expect(ledger.uncount('v1', 'a')).toEqual({ known: true, left: 1 });
    expect(ledger.uncount('v1', 'b')).toEqual({ known: true, left: 0 });
    expect(store.savedCounts.get('v1')?.size).toBe(0);
  });

  it('an Unmount before the delivery settles takes the pending count: the late settle adds nothing', () => {
    const { registry, store, ledger } = ledgerWorld();
    ledger.count('v1', 'a');
    ledger.uncount('v1', 'a');
    ledger.settle('v1', 'a', true);
    expect(registry.get('v1')?.mounts.size).toBe(0);
    expect(store.savedCounts.get('v1')?.size).toBe(0);
  });

  it('keeps a count it cannot save in memory, and reports it unsaved', () => {
    const { ledger, store } = ledgerWorld();
    store.fail.saveCounts = 'ENOSPC';
    ledger.count('v1', 'a');
    ledger.settle('v1', 'a', true);
    expect(ledger.isSaved('v1')).toBe(false);
    expect(ledger.pending()).toEqual(['v1']);
    ledger.forget('v1');
    expect(ledger.pending()).toEqual([]);
    delete store.fail.saveCounts;
  });
});

/** A mount entry under the reaped volume `r1`. */
function below(sub: string, fsType: string, device = '0:99'): MountEntry {
  return {
    id: 1,
    parentId: 1,
    device,
    root: '/',
    mountPoint: `${mp('r1')}${sub}`,
    mountOptions: 'rw',
    unbindable: false,
    fsType,
    source: fsType,
    // An overlay is a dead container's root only with its upper and work in engine storage.
    superOptions:
      fsType === 'overlay'
        ? 'rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=/var/lib/docker/overlay2/c1/diff,workdir=/var/lib/docker/overlay2/c1/work'
        : 'rw',
  };
}

describe('the reaper', () => {
  it("takes overlays (dead containers' roots), deepest first, and keeps tmpfs, nsfs and binds", () => {
    const entries = [
      below('/a', 'overlay'),
      below('/a/b', 'overlay'),
      below('/tmp', 'tmpfs'),
      below('/ns', 'nsfs'),
    ];
    expect(leaksBelow(entries, mp('r1')).map((l) => l.entry.mountPoint)).toEqual([
      `${mp('r1')}/a/b`,
      `${mp('r1')}/a`,
    ]);
  });

  it('keeps a leak whole when anything that must stay lies beneath it', () => {
    const entries = [below('/etc', 'overlay'), below('/etc/netns', 'nsfs'), below('/x', 'overlay')];
    expect(leaksBelow(entries, mp('r1')).map((l) => l.entry.mountPoint)).toEqual([`${mp('r1')}/x`]);
  });

  it('detaches the leaks only, and logs a failure without throwing', async () => {
    const mounts = new FakeMounts();
    mounts.bindOutside(mp('r1'), '/data', 1);
    mounts.mountOverlay(`${mp('r1')}/etc`);
    mounts.mountOutside(`${mp('r1')}/etc/netns`, 'nsfs');
    mounts.mountOverlay(`${mp('r1')}/dead`);
    const snapshot = new MountSnapshot(mounts.readerAbout(KIND_MOUNT_ROOT), -1);
    await new Reaper(mounts, snapshot, silentLogger()).reap('r1', mp('r1'));
    expect(mounts.table.map((e) => e.mountPoint)).toEqual([
      mp('r1'),
      `${mp('r1')}/etc`,
      `${mp('r1')}/etc/netns`,
    ]);
    mounts.mountOverlay(`${mp('r1')}/stuck`);
    mounts.stuck.add(`${mp('r1')}/stuck`);
    await expect(
      new Reaper(mounts, snapshot, silentLogger()).reap('r1', mp('r1')),
    ).resolves.toBeUndefined();
  });
});

describe('what the reaper logs', () => {
  it('each submount it detached, once; nothing for one gone before it could detach it', async () => {
    class GoneMeanwhile extends FakeMounts {
      override async detachAll(dir: string, options: { includeSelf: boolean }) {
        if (dir.endsWith('/gone')) return { detached: [], lazy: [] };
        return super.detachAll(dir, options);
      }
    }
    const mounts = new GoneMeanwhile();
    mounts.bindOutside(mp('r1'), '/data', 1);
    mounts.mountOverlay(`${mp('r1')}/dead`);
    mounts.mountOverlay(`${mp('r1')}/gone`);
    const { logger, lines } = recordingLogger();
    const snapshot = new MountSnapshot(mounts.readerAbout(KIND_MOUNT_ROOT), -1);
    await new Reaper(mounts, snapshot, logger).reap('r1', mp('r1'));
    const reaped = lines().filter(
      (l) => l.message === 'reaped a submount left by a container that no longer runs',
    );
    expect(reaped.map((l) => [l.volume, l.path, l.fsType, l.lazy])).toEqual([
      ['r1', '/dead', 'overlay', false],
    ]);
  });
});

describe('the status view', () => {
  function viewWorld() {
    const { ctx, mounts } = kindContext();
    const registry = new VolumeRegistry();
    const store = new FakeStore();
    const ledger = new CountsLedger(registry, store, silentLogger());
    const view = new StatusView(
      KIND_MOUNT_ROOT,
      registry,
      ledger,
      new VolumeKinds(ctx),
      ctx.snapshot,
    );
    return { registry, ledger, view, mounts };
  }

  it('names the volume of a mount point under the mount root, and none elsewhere', () => {
    expect(volumeOfMount(`${mp('v1')}/a/b`, KIND_MOUNT_ROOT)).toBe('v1');
    expect(volumeOfMount(mp('v1'), KIND_MOUNT_ROOT)).toBe('v1');
    expect(volumeOfMount(KIND_MOUNT_ROOT, KIND_MOUNT_ROOT)).toBeUndefined();
    expect(volumeOfMount('/fake/mounts-other/v1', KIND_MOUNT_ROOT)).toBeUndefined();
  });

  it("builds Status from the volume's kind, counts and mounts", async () => {
    const { registry, view, mounts, ledger } = viewWorld();
    const record = recordOf(
      't1',
      parseOptions(
        't1',
        { type: 'tmpfs', size: '8m' },
        { tmpfs: { pageSize: 4096, memoryBytes: 2n ** 40n } },
      ),
    );
    registry.set(record);
    ledger.count('t1', 'a');
    mounts.mountOutside(mp('t1'), 'tmpfs', 3);
    mounts.mountOutside(`${mp('t1')}/sub`, 'nsfs');
    mounts.mountOutside(`${mp('t2')}`, 'tmpfs', 4);
    const { status } = await view.get(registry.get('t1')!);
    expect(status).toMatchObject({
      type: 'tmpfs',
      size: '8388608',
      activeMounts: 1,
      mountPoint: 'shared',
      submounts: [{ path: '/sub', fsType: 'nsfs', source: 'nsfs', root: '/' }],
    });
    expect(status).not.toHaveProperty('dataPath');
    const dir = recordOf('d1', parseOptions('d1', {}));
    registry.set(dir);
    expect((await view.get(dir)).status).toMatchObject({
      type: 'directory',
      mountPoint: '0 mounts',
      dataPath: '/host/data/volumes/d1/_data',
    });
  });

  it('lists the same array until a volume comes or goes', () => {
    const { registry, view } = viewWorld();
    const first = view.list();
    expect(first).toEqual([]);
    expect(view.list()).toBe(first);
    registry.set(recordOf('v1', parseOptions('v1', {})));
    const second = view.list();
    expect(second.map((v) => v.name)).toEqual(['v1']);
    registry.set({ ...registry.get('v1')!, mounts: new Map([['a', 1]]) });
    expect(view.list()).toBe(second); // new counts: the same volumes
    registry.delete('v1');
    expect(view.list()).toEqual([]);
    // A volume gone and another come between two lists: as many volumes, not the same ones.
    registry.set(recordOf('v2', parseOptions('v2', {})));
    view.list();
    registry.delete('v2');
    registry.set(recordOf('v3', parseOptions('v3', {})));
    expect(view.list().map((v) => v.name)).toEqual(['v3']);
  });
});

describe('the registry', () => {
  it('refuses unknown and broken volumes with clear errors', () => {
    const registry = new VolumeRegistry();
    expect(() => registry.require('nope')).toThrow(VolumeError);
    registry.markBroken({ name: 'bad', file: 'volumes/bad/volume.json', reason: 'torn' });
    expect(registry.isKnown('bad')).toBe(true);
    expect(() => registry.assertNotBroken('bad')).toThrow(
      'volume "bad": its state (volumes/bad/volume.json in the data root) is unusable (torn); repair or move it, then restart the plugin',
    );
    expect(registry.isKnown('nope')).toBe(false);
  });
});
