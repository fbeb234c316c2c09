/**
 * The reliability suite, root tier: each case is a way the driver was broken (issue "Data
 * safety") or could be, tried against the real `sharedprop serve` with real mounts. The README's
 * Reliability table names these tests. This file: the data root held by one driver, read-only, or
 * full.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hostMountsAt, hostMountsWithin } from '../support/host-mounts.js';
import {
  dataDirOf,
  expectConsistent,
  listed,
  mountpointOf,
  statusOf,
  volumesDir,
  waitFor,
} from '../support/volume-checks.js';
import { CLI, type DriverProcess } from '../support/driver-process.js';
import { destroyDrivers, startDriver, unmountLeftovers } from './reliability/harness.js';

jest.setTimeout(180_000);

afterEach(destroyDrivers);
afterAll(unmountLeftovers);

/** A second `sharedprop serve`, expected to refuse: its exit code and output. */
async function secondInstance(socket: string, dataRoot: string) {
  return execa(process.execPath, [CLI, 'serve', '--socket', socket, '--data-root', dataRoot], {
    reject: false,
    timeout: 30_000,
    all: true,
  });
}

describe('one driver per data root', () => {
  it('a second driver on the same data root exits non-zero before it changes anything', async () => {
    const a = await startDriver();
    await a.ok('/VolumeDriver.Create', { Name: 'held', Opts: {} });
    await a.ok('/VolumeDriver.Mount', { Name: 'held', ID: 'ctr' });
    await writeFile(path.join(dataDirOf(a, 'held'), 'precious'), 'data');
    // Bait for recovery: a leftover, and the mount point unmounted behind A's back.
    await mkdir(path.join(volumesDir(a), '.trash-bait'));
    const before = (await hostMountsWithin(a.base)).length;

    const b = await secondInstance(path.join(a.base, 'b.sock'), a.dataRoot);
    expect(b.exitCode).not.toBe(0);
    expect(b.all).toMatch(/another sharedprop driver is already serving the data root/);
    expect((await hostMountsWithin(a.base)).length).toBe(before);
    expect(await readdir(volumesDir(a))).toContain('.trash-bait');
    expect(await readFile(path.join(dataDirOf(a, 'held'), 'precious'), 'utf8')).toBe('data');
    expect((await statusOf(a, 'held')).activeMounts).toBe(1);

    // The lock dies with its holder: after kill -9 the next driver starts at once.
    await a.stop('SIGKILL');
    await a.restart();
    expect(await listed(a)).toEqual(['held']);
  });

  it('a second driver on a socket already served exits non-zero and touches no data root', async () => {
    const a = await startDriver();
    const otherRoot = path.join(a.base, 'other-root');
    const b = await secondInstance(a.socket, otherRoot);
    expect(b.exitCode).not.toBe(0);
    expect(b.all).toMatch(/already serving/);
    await expect(stat(otherRoot)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await a.call('/Plugin.Activate', {})).status).toBe(200);
  });
});

/** Makes the data root a mount of its own, so that it can be made read-only or small. */
function ownMount(kind: 'bind' | 'tmpfs') {
  return async (driver: DriverProcess) => {
    await mkdir(driver.dataRoot, { recursive: true });
    if (kind === 'bind') await execa('mount', ['--bind', driver.dataRoot, driver.dataRoot]);
    else await execa('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'sp-small', driver.dataRoot]);
    await execa('mount', ['--make-private', driver.dataRoot]);
  };
}
const remount = (driver: DriverProcess, mode: 'ro' | 'rw') =>
  execa('mount', ['-o', `remount,bind,${mode}`, driver.dataRoot]);

describe('read-only data root', () => {
  it('a Remove that fails leaves the volume mounted, usable and removable later; Mount and Unmount keep working', async () => {
    const driver = await startDriver({ prepare: ownMount('bind') });
    await driver.ok('/VolumeDriver.Create', { Name: 'ro', Opts: {} });
    await writeFile(path.join(mountpointOf(driver, 'ro'), 'kept'), 'data');
    await remount(driver, 'ro');
    try {
      const refused = await driver.call('/VolumeDriver.Remove', { Name: 'ro' });
      expect(refused.status).toBe(503);
      expect(refused.body.Err).toMatch(/read-only/);
      expect(refused.body.Err).not.toContain(driver.base);
      expect(await hostMountsAt(mountpointOf(driver, 'ro'))).toHaveLength(1);
      expect(await readFile(path.join(mountpointOf(driver, 'ro'), 'kept'), 'utf8')).toBe('data');
      // Counts cannot be saved: kept in memory, never refused.
      await driver.ok('/VolumeDriver.Mount', { Name: 'ro', ID: 'c1' });
      await driver.ok('/VolumeDriver.Mount', { Name: 'ro', ID: 'c2' });
      await driver.ok('/VolumeDriver.Unmount', { Name: 'ro', ID: 'c2' });
      expect(await statusOf(driver, 'ro')).toMatchObject({ activeMounts: 1, countsSaved: false });
      expect((await driver.call('/VolumeDriver.Remove', { Name: 'ro' })).status).toBe(409);
      expect(await driver.log()).toMatch(/could not save mount counts/);
    } finally {
      await remount(driver, 'rw');
    }
    // The background retry saves them once the root is writable again.
    await waitFor('the counts to be saved', async () => (await statusOf(driver, 'ro')).countsSaved);
    await driver.stop('SIGKILL');
    await driver.restart();
    expect((await statusOf(driver, 'ro')).mountIds).toEqual({ c1: 1 });
    await driver.ok('/VolumeDriver.Unmount', { Name: 'ro', ID: 'c1' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'ro' });
    await expectConsistent(driver);
  });

  it('a driver started on a read-only data root serves read-only and says so', async () => {
    const driver = await startDriver({ prepare: ownMount('bind') });
    await driver.ok('/VolumeDriver.Create', { Name: 'before', Opts: {} });
    await driver.stop('SIGTERM');
    await remount(driver, 'ro');
    try {
      await driver.restart();
      expect(await driver.log()).toMatch(/the data root is read-only: serving read-only/);
      expect(await listed(driver)).toEqual(['before']);
      const mp = (await driver.ok('/VolumeDriver.Mount', { Name: 'before', ID: 'c' })) as {
        Mountpoint: string;
      };
      expect(mp.Mountpoint).toBe(mountpointOf(driver, 'before'));
      await driver.ok('/VolumeDriver.Path', { Name: 'before' });
      await driver.ok('/VolumeDriver.Unmount', { Name: 'before', ID: 'c' });
      const create = await driver.call('/VolumeDriver.Create', { Name: 'after', Opts: {} });
      expect(create.status).toBe(503);
      expect(create.body.Err).toMatch(/read-only/);
    } finally {
      await remount(driver, 'rw');
    }
  });
});

describe('full data root', () => {
  it('Mount and Unmount keep saving counts on a full disk; Create is refused clearly', async () => {
    const driver = await startDriver({ prepare: ownMount('tmpfs') });
    await driver.ok('/VolumeDriver.Create', { Name: 'full', Opts: {} });
    // Fill the 4 MiB filesystem to the last block.
    await execa('dd', ['if=/dev/zero', `of=${path.join(driver.dataRoot, 'filler')}`, 'bs=64k'], {
      reject: false,
    });
    await execa(
      'sh',
      ['-c', `for i in $(seq 1 200); do : > ${driver.dataRoot}/f$i || break; done`],
      {
        reject: false,
      },
    );
    for (let i = 0; i < 20; i++) {
      await driver.ok('/VolumeDriver.Mount', { Name: 'full', ID: `c${i}` });
    }
    for (let i = 0; i < 10; i++) {
      await driver.ok('/VolumeDriver.Unmount', { Name: 'full', ID: `c${i}` });
    }
    expect(await statusOf(driver, 'full')).toMatchObject({ activeMounts: 10, countsSaved: true });
    const create = await driver.call('/VolumeDriver.Create', { Name: 'more', Opts: {} });
    expect(create.status).toBe(503);
    expect(create.body.Err).toMatch(/no space left/);
    // Saved, not just in memory: they survive kill -9.
    await driver.stop('SIGKILL');
    await driver.restart();
    expect((await statusOf(driver, 'full')).activeMounts).toBe(10);
    expect((await driver.call('/VolumeDriver.Remove', { Name: 'full' })).status).toBe(409);
    for (let i = 10; i < 20; i++) {
      await driver.ok('/VolumeDriver.Unmount', { Name: 'full', ID: `c${i}` });
    }
    await driver.ok('/VolumeDriver.Remove', { Name: 'full' });
    await expectConsistent(driver);
  });
});
