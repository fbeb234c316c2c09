/**
 * Integration tier: the real driver process, real mounts in temporary directories, as root.
 * Propagation is proven from separate mount namespaces made with unshare. This file: propagation
 * between mount namespaces, on a host whose mounts are shared, and of the managed plugin's data
 * root.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseMountinfo, propagationOf } from '../../src/system/mountinfo.js';
import { MountSystem } from '../../src/system/mounts.js';
import { mountTmpfsElsewhere, unmountEverythingUnder } from '../support/host-mounts.js';
import { countMountsAt, hostMountinfo } from '../support/driver-process.js';
import { destroyDriver, driver, entryAt, mountpointOf, startDriver } from './driver/harness.js';

jest.setTimeout(120_000);

beforeEach(startDriver);
afterEach(destroyDriver);

async function waitForOwnNamespace(pid: number): Promise<void> {
  const mine = await import('node:fs/promises').then((fs) => fs.readlink('/proc/self/ns/mnt'));
  for (let i = 0; i < 200; i++) {
    const theirs = await import('node:fs/promises')
      .then((fs) => fs.readlink(`/proc/${pid}/ns/mnt`))
      .catch(() => mine);
    if (theirs !== mine) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`process ${pid} never entered its own mount namespace`);
}

describe('propagation between mount namespaces', () => {
  it('a tmpfs mounted in one namespace reaches the host and a slave namespace made beforehand, once', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: {} });
    const mp = mountpointOf('netns');
    await mkdir(path.join(mp, 'sub'));
    const watcher = execa('unshare', ['-m', '--propagation', 'slave', 'sleep', '300'], {
      reject: false,
    });
    try {
      await waitForOwnNamespace(watcher.pid!);
      await mountTmpfsElsewhere(path.join(mp, 'sub'), 'greeting', 'hello');
      // The host sees it, exactly once.
      const onHost = await entryAt(path.join(mp, 'sub'));
      expect(onHost).toHaveLength(1);
      expect(onHost[0]!.fsType).toBe('tmpfs');
      expect(await readFile(path.join(mp, 'sub', 'greeting'), 'utf8')).toBe('hello\n');
      // The namespace made beforehand sees it too, exactly once.
      expect(await countMountsAt(path.join(mp, 'sub'), watcher.pid!)).toBe(1);
      expect(await readFile(`/proc/${watcher.pid}/root${mp}/sub/greeting`, 'utf8')).toBe('hello\n');
    } finally {
      watcher.kill('SIGKILL');
      await watcher;
    }
  });
});

describe('on a host whose mounts are shared (systemd)', () => {
  it('a volume, rshared or shared, gets a shared peer group of its own: a submount appears once, not also under the data root', async () => {
    // Make the driver's directory a shared mount, as / is on systemd hosts.
    await execa('mount', ['--bind', driver.base, driver.base]);
    await execa('mount', ['--make-shared', driver.base]);
    try {
      for (const propagation of ['rshared', 'shared']) {
        const name = `peered-${propagation}`;
        await driver.ok('/VolumeDriver.Create', { Name: name, Opts: { propagation } });
        const mp = mountpointOf(name);
        const own = parseMountinfo((await hostMountinfo()).join('\n')).filter(
          (e) => e.mountPoint === mp,
        );
        // A bind whose peer group was the data root's is made private, then shared anew (a
        // `propagation=shared` volume was left private here).
        expect(own.map((e) => propagationOf(e))).toEqual(['shared']);
        await mkdir(path.join(mp, 'sub'));
        await execa('mount', ['-t', 'tmpfs', `sp-peer-${propagation}`, path.join(mp, 'sub')]);
        const copies = parseMountinfo((await hostMountinfo()).join('\n')).filter(
          (e) => e.source === `sp-peer-${propagation}`,
        );
        expect(copies.map((e) => e.mountPoint)).toEqual([path.join(mp, 'sub')]);
        await driver.ok('/VolumeDriver.Remove', { Name: name });
      }
    } finally {
      await unmountEverythingUnder(driver.base);
    }
  });
});

describe('the managed plugin data root (--private-data-root)', () => {
  it("a shared data root is made private in the driver's namespace only, once", async () => {
    const dir = path.join(driver.base, 'shared-data');
    await mkdir(dir);
    await execa('mount', ['--bind', dir, dir]);
    try {
      await execa('mount', ['--make-shared', dir]);
      const mounts = new MountSystem();
      const at = async () =>
        parseMountinfo((await hostMountinfo()).join('\n')).filter((e) => e.mountPoint === dir);
      expect((await at()).map((e) => propagationOf(e))).toEqual(['shared']);
      expect(await mounts.privatizeMountPoint(dir)).toBe(true);
      expect((await at()).map((e) => propagationOf(e))).toEqual(['private']);
      expect(await mounts.privatizeMountPoint(dir)).toBe(false);
      // A directory that is no mount point is left alone.
      expect(await mounts.privatizeMountPoint(driver.base)).toBe(false);
    } finally {
      await unmountEverythingUnder(dir);
    }
  });
});
