/**
 * The reliability suite, root tier: each case is a way the driver was broken (issue "Data
 * safety") or could be, tried against the real `sharedprop serve` with real mounts. The README's
 * Reliability table names these tests. This file: mount IDs named like prototype members, a
 * German locale, and long names.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { hostMountsWithin } from '../support/host-mounts.js';
import {
  expectConsistent,
  listed,
  mountpointOf,
  statusOf,
  volumesDir,
} from '../support/volume-checks.js';
import { destroyDrivers, startDriver, unmountLeftovers } from './reliability/harness.js';

jest.setTimeout(180_000);

afterEach(destroyDrivers);
afterAll(unmountLeftovers);

describe('prototype-free counts and options', () => {
  it('mount IDs named like Object.prototype members count like any other', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'proto', Opts: {} });
    const ids = ['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'real'];
    for (const id of ids) await driver.ok('/VolumeDriver.Mount', { Name: 'proto', ID: id });
    const status = await statusOf(driver, 'proto');
    expect(status.activeMounts).toBe(6);
    expect(Object.keys(status.mountIds).sort()).toEqual([...ids].sort());
    await driver.stop('SIGKILL');
    await driver.restart();
    expect((await statusOf(driver, 'proto')).activeMounts).toBe(6);
    for (const id of ids.slice(0, -1)) {
      await driver.ok('/VolumeDriver.Unmount', { Name: 'proto', ID: id });
      expect((await driver.call('/VolumeDriver.Remove', { Name: 'proto' })).status).toBe(409);
    }
    await driver.ok('/VolumeDriver.Unmount', { Name: 'proto', ID: 'real' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'proto' });
  });
});

describe('locale', () => {
  it('Remove works in a German locale: decisions come from the mount table, not from messages', async () => {
    // The precondition that makes this a test: umount really speaks German here.
    const german = { LC_ALL: 'de_DE.UTF-8', LANG: 'de_DE.UTF-8', LANGUAGE: 'de' };
    const probe = (env: Record<string, string>) =>
      execa('umount', ['/nonexistent-sharedprop'], { reject: false, env });
    const [inGerman, inC] = await Promise.all([probe(german), probe({ LC_ALL: 'C' })]);
    expect(inGerman.stderr).not.toBe(inC.stderr);

    const driver = await startDriver({ env: german });
    await driver.ok('/VolumeDriver.Create', { Name: 'deutsch', Opts: {} });
    const mp = mountpointOf(driver, 'deutsch');
    await mkdir(path.join(mp, 'self'));
    await mkdir(path.join(mp, 'tmp'));
    await execa('mount', ['--bind', path.join(mp, 'self'), path.join(mp, 'self')]);
    await execa('mount', ['-t', 'tmpfs', 'sp-de', path.join(mp, 'tmp')]);
    await driver.ok('/VolumeDriver.Remove', { Name: 'deutsch' });
    expect(await hostMountsWithin(mp)).toEqual([]);
    expect(await listed(driver)).toEqual([]);
  });
});

describe('long names', () => {
  it.each([240, 241, 242, 255])('a %i-character name is created and removed', async (length) => {
    const driver = await startDriver();
    const name = 'n'.repeat(length);
    await driver.ok('/VolumeDriver.Create', { Name: name, Opts: {} });
    await driver.ok('/VolumeDriver.Mount', { Name: name, ID: 'c' });
    await driver.ok('/VolumeDriver.Unmount', { Name: name, ID: 'c' });
    await driver.ok('/VolumeDriver.Remove', { Name: name });
    await expectConsistent(driver);
  });

  it('a name whose paths would pass PATH_MAX under a deep data root is refused at Create', async () => {
    // 16 components of 248 characters: about 4,000 bytes before the volume's own name.
    const deep = Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(248, 'd')).join('/');
    const driver = await startDriver({ dataRoot: deep });
    const answer = await driver.call('/VolumeDriver.Create', { Name: 'x'.repeat(250), Opts: {} });
    expect(answer.status).toBe(400);
    expect(answer.body.Err).toMatch(/too long for this data root/);
    expect(await readdir(volumesDir(driver))).toEqual([]);
    await driver.ok('/VolumeDriver.Create', { Name: 'short', Opts: {} });
    await driver.ok('/VolumeDriver.Remove', { Name: 'short' });
  });
});
