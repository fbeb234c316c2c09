/**
 * Integration tier: the real driver process, real mounts in temporary directories, as root. This
 * file: Mount and Unmount, their counts across kill -9, restarts and reboots, and under load.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { propagationOf } from '../../src/system/mountinfo.js';
import { hostMountsWithin } from '../support/host-mounts.js';
import { countMountsAt } from '../support/driver-process.js';
import { destroyDriver, driver, entryAt, mountpointOf, startDriver } from './driver/harness.js';

jest.setTimeout(120_000);

beforeEach(startDriver);
afterEach(destroyDriver);

describe('Mount and Unmount', () => {
  it('count per ID, durably across kill -9 and restart', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'counted', Opts: {} });
    const mp = mountpointOf('counted');
    expect(await driver.ok('/VolumeDriver.Mount', { Name: 'counted', ID: 'ctr-a' })).toEqual({
      Mountpoint: mp,
    });
    await driver.ok('/VolumeDriver.Mount', { Name: 'counted', ID: 'ctr-a' });
    await driver.ok('/VolumeDriver.Mount', { Name: 'counted', ID: 'ctr-b' });
    // A Mount's count is saved once its answer is out, before the next request is served.
    await driver.ok('/Plugin.Activate', {});

    const killed = await driver.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    await driver.restart(); // the stale socket file is replaced
    expect(await countMountsAt(mp)).toBe(1);
    const socket = await stat(driver.socket);
    expect(socket.mode & 0o077).toBe(0);

    const get = (await driver.ok('/VolumeDriver.Get', { Name: 'counted' })) as {
      Volume: { Status: Record<string, unknown> };
    };
    expect(get.Volume.Status).toMatchObject({
      activeMounts: 3,
      mountIds: { 'ctr-a': 2, 'ctr-b': 1 },
    });
    const refused = await driver.call('/VolumeDriver.Remove', { Name: 'counted' });
    expect(refused.status).toBe(409);
    expect(refused.body.Err).toMatch(/volume "counted" is in use \(3 active mounts/);

    await driver.ok('/VolumeDriver.Unmount', { Name: 'counted', ID: 'ctr-a' });
    expect((await driver.call('/VolumeDriver.Remove', { Name: 'counted' })).status).toBe(409);
    await driver.ok('/VolumeDriver.Unmount', { Name: 'counted', ID: 'ctr-a' });
    await driver.ok('/VolumeDriver.Unmount', { Name: 'counted', ID: 'ctr-b' });
    // An Unmount nobody counted (dockerd after a restart) is harmless.
    await driver.ok('/VolumeDriver.Unmount', { Name: 'counted', ID: 'ctr-b' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'counted' });
    expect(await countMountsAt(mp)).toBe(0);
  });

  it('after a host reboot, counts of the earlier boot are void and Remove works', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'rebooted', Opts: {} });
    await driver.ok('/VolumeDriver.Mount', { Name: 'rebooted', ID: 'gone-with-the-boot' });
    await driver.ok('/Plugin.Activate', {}); // the count is saved by now
    await driver.stop('SIGKILL');
    await driver.restart(); // the same boot: the count stays
    expect((await driver.call('/VolumeDriver.Remove', { Name: 'rebooted' })).status).toBe(409);
    await driver.stop('SIGKILL');
    await writeFile(driver.bootIdFile, 'boot-2\n');
    await driver.restart();
    const get = (await driver.ok('/VolumeDriver.Get', { Name: 'rebooted' })) as {
      Volume: { Status: { activeMounts: number } };
    };
    expect(get.Volume.Status.activeMounts).toBe(0);
    await driver.ok('/VolumeDriver.Remove', { Name: 'rebooted' });
    expect(await driver.log()).toMatch(/host rebooted since the last start: mount counts reset/);
  });

  it('Mount and start-up put back a missing mount point, without duplicating it', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'reboot', Opts: {} });
    const mp = mountpointOf('reboot');
    await writeFile(path.join(mp, 'kept'), 'data');
    await execa('umount', [mp]);
    expect(await countMountsAt(mp)).toBe(0);
    await driver.ok('/VolumeDriver.Mount', { Name: 'reboot', ID: 'x' });
    expect(await countMountsAt(mp)).toBe(1);
    expect(await readFile(path.join(mp, 'kept'), 'utf8')).toBe('data');

    await driver.stop('SIGTERM');
    await execa('umount', [mp]);
    await driver.restart();
    expect(await countMountsAt(mp)).toBe(1);
    expect(propagationOf((await entryAt(mp))[0]!)).toBe('shared');
    await driver.stop('SIGTERM');
    await driver.restart();
    expect(await countMountsAt(mp)).toBe(1);
  });

  it('200 concurrent Mount/Unmount calls over 20 volumes keep exact counts and a flat mount table', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `conc${i}`);
    // This driver's mounts only: other runs on the machine may mount and unmount meanwhile.
    const ours = async () => (await hostMountsWithin(driver.base)).length;
    const start = await ours();
    await Promise.all(names.map((Name) => driver.ok('/VolumeDriver.Create', { Name, Opts: {} })));
    const withVolumes = await ours();
    expect(withVolumes).toBe(start + 20);

    const activeMounts = async (Name: string) => {
      const get = (await driver.ok('/VolumeDriver.Get', { Name })) as {
        Volume: { Status: { activeMounts: number } };
      };
      return get.Volume.Status.activeMounts;
    };
    const calls = Array.from({ length: 200 }, (_, i) => ({
      Name: names[i % 20]!,
      ID: `c${i % 3}`,
    }));
    const mounted = await Promise.all(calls.map((c) => driver.call('/VolumeDriver.Mount', c)));
    expect(mounted.every((a) => a.status === 200)).toBe(true);
    for (const Name of names) {
      expect(await activeMounts(Name)).toBe(10);
    }
    // Unmounts and more Mounts interleaved: 100 unmounts while 100 mounts run.
    const mixed = await Promise.all([
      ...calls.slice(0, 100).map((c) => driver.call('/VolumeDriver.Unmount', c)),
      ...calls.slice(0, 100).map((c) => driver.call('/VolumeDriver.Mount', c)),
    ]);
    expect(mixed.every((a) => a.status === 200)).toBe(true);
    const unmounted = await Promise.all(calls.map((c) => driver.call('/VolumeDriver.Unmount', c)));
    expect(unmounted.every((a) => a.status === 200)).toBe(true);
    for (const Name of names) {
      expect(await activeMounts(Name)).toBe(0);
    }
    expect(await ours()).toBe(withVolumes);
    await Promise.all(names.map((Name) => driver.ok('/VolumeDriver.Remove', { Name })));
    expect(await ours()).toBe(start);
  });
});
