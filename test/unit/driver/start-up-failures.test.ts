/**
 * Start-up and the leftovers of Removes when something fails (fakes, no root): an unreadable
 * volume is refused alone, a mount point that cannot be restored or an orphan that cannot be
 * detached is logged and the rest served, and a Remove's files that cannot be deleted are kept
 * and deleted later.
 */
import type { MountSource, SharedMode } from '../../../src/system/mounts.js';
import type { MountEntry } from '../../../src/system/mountinfo.js';
import { errno } from '../../support/fake-store.js';
import { FakeMounts } from '../../support/driver-fakes.js';
import { recordingLogger } from '../../support/silent-logger.js';
import { failure, mountDelivered, mp, noOptions, setup } from './harness.js';

const volume = (name: string) => ({
  name,
  createdAt: 't',
  options: { kind: 'directory', propagation: 'rshared' } as const,
  mounts: new Map<string, number>(),
});

/** Mounts whose next `failures` shared mounts fail (as a mount(2) refused by the kernel). */
class FailingMounts extends FakeMounts {
  failures = 0;
  override async ensureSharedMount(
    source: MountSource,
    target: string,
    mode: SharedMode,
  ): Promise<MountEntry> {
    if (this.failures > 0) {
      this.failures--;
      throw errno('EINVAL');
    }
    return super.ensureSharedMount(source, target, mode);
  }
}

describe('start-up when something fails', () => {
  it('refuses an unreadable volume alone, saying which file and why, and serves the others', async () => {
    const { driver } = await setup((s) => {
      s.volumes.set('v1', volume('v1'));
      s.broken.push({ name: 'bad', file: 'volumes/bad/volume.json', reason: 'not JSON' });
    });
    const refused = await failure(driver.mount('bad', 'a'));
    expect(refused.kind).toBe('internal');
    expect(refused.message).toBe(
      'volume "bad": its state (volumes/bad/volume.json in the data root) is unusable (not JSON); repair or move it, then restart the plugin',
    );
    expect((await failure(driver.remove('bad'))).message).toBe(refused.message);
    expect(await mountDelivered(driver, 'v1', 'a')).toBe(mp('v1'));
  });

  it('logs a mount point it cannot restore, serves the others, and the next Mount restores it', async () => {
    const { logger, lines } = recordingLogger();
    const mounts = new FailingMounts();
    mounts.failures = 1;
    const { driver } = await setup(
      (s) => {
        s.volumes.set('v1', volume('v1'));
        s.volumes.set('v2', volume('v2'));
      },
      { logger },
      mounts,
    );
    await driver.restored();
    const done = lines().find((l) => l.message === 'mount points restored');
    expect([done?.restored, done?.failed]).toEqual([1, 1]);
    const failed = lines().filter((l) => l.message === 'could not restore mount point');
    expect(failed.map((l) => l.volume)).toEqual(['v1']);
    expect(mounts.at(mp('v1'))).toHaveLength(0);
    expect(mounts.at(mp('v2'))).toHaveLength(1);
    expect(await mountDelivered(driver, 'v1', 'a')).toBe(mp('v1'));
    expect(mounts.at(mp('v1'))).toHaveLength(1);
  });

  it('logs an orphan of its own it cannot detach, and starts', async () => {
    const { logger, lines } = recordingLogger();
    const trash = '/fake/data/volumes/.trash-killed';
    const { driver, mounts } = await setup(
      (s, m) => {
        s.volumes.set('v1', volume('v1'));
        s.dirs.set(trash, volume('removed'));
        m.bindOutside(mp('removed'), `${trash}/_data`, 7);
        m.stuck.add(mp('removed'));
      },
      { logger },
    );
    expect(mounts.at(mp('removed'))).toHaveLength(1);
    const logged = lines().find(
      (l) => l.message === 'could not detach the mount point of a volume that no longer exists',
    );
    expect(logged?.volume).toBe('removed');
    expect(String(logged?.error)).toContain('EBUSY');
    expect(lines().some((l) => l.message === 'driver started')).toBe(true);
    expect(await mountDelivered(driver, 'v1', 'a')).toBe(mp('v1'));
  });
});

describe("a Remove's files that cannot be deleted", () => {
  it('are kept: the Remove succeeds, and deleteLeftovers deletes them later, again until it works', async () => {
    const { logger, lines } = recordingLogger();
    const { driver, store } = await setup(() => undefined, { logger });
    await driver.create('v1', noOptions);
    store.fail.discard = 'EBUSY';
    await driver.remove('v1');
    expect((await failure(driver.get('v1'))).kind).toBe('not_found');
    const [kept] = [...store.dirs.keys()];
    expect(kept).toMatch(/\.trash-/);
    expect(store.discarded).toEqual([]);
    expect(
      lines().find(
        (l) => l.message === 'volume removed, but what it left could not all be deleted yet',
      )?.path,
    ).toBe(kept);
    // The first try at deleting leftovers fails too: kept for the next.
    store.fail.discard = 'EIO';
    await driver.deleteLeftovers();
    expect(store.discarded).toEqual([]);
    expect(
      lines().find(
        (l) =>
          l.message === 'could not remove leftover; it is kept and tried again at the next start',
      )?.path,
    ).toBe(kept);
    await driver.deleteLeftovers();
    expect(store.discarded).toEqual([kept]);
    await driver.deleteLeftovers();
    expect(store.discarded).toEqual([kept]);
  });
});
