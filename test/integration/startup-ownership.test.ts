/**
 * Integration tier: start-up touches only what is provably the driver's own. Under the mount
 * root, a mount is an orphan (detached) only when it is, by identity, a bind of one of the
 * driver's volume directories or a tmpfs it made; anything else is left alone. And one mount
 * root serves one driver. Real `sharedprop serve`, real mounts (root), in temporary directories.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CRASH_POINTS } from '../../src/driver/crash-points.js';
import { hostMountsAt, mountTmpfs } from '../support/host-mounts.js';
import { expectConsistent, listed, mountpointOf, volumesDir } from '../support/volume-checks.js';
import { CLI, DriverProcess } from '../support/driver-process.js';

jest.setTimeout(120_000);

const drivers: DriverProcess[] = [];
async function startDriver(options: Parameters<typeof DriverProcess.start>[0] = {}) {
  const driver = await DriverProcess.start(options);
  drivers.push(driver);
  return driver;
}
afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.destroy();
});

/** Runs `op` with the driver told to kill itself at `point`, then starts it again normally. */
async function killedAt(driver: DriverProcess, point: string, op: () => Promise<unknown>) {
  expect(CRASH_POINTS).toContain(point);
  await driver.stop();
  driver.env = { SHAREDPROP_CRASH_AT: point };
  await driver.restart();
  await expect(op()).rejects.toThrow();
  await driver.restartAfterCrash();
}

describe('start-up and the mount root', () => {
  it('leaves a host tmpfs (with a file) and a host bind already under the mount root as they are', async () => {
    let hostSource = '';
    const driver = await startDriver({
      prepare: async (d) => {
        await mkdir(path.join(d.mountRoot, 'host-tmpfs'), { recursive: true });
        await mountTmpfs(path.join(d.mountRoot, 'host-tmpfs'));
        await writeFile(path.join(d.mountRoot, 'host-tmpfs', 'file'), 'tmpfs contents\n');
        hostSource = path.join(d.base, 'host-source');
        await mkdir(hostSource);
        await writeFile(path.join(hostSource, 'file'), 'bind contents\n');
        await mkdir(path.join(d.mountRoot, 'host-bind'));
        await execa('mount', ['--bind', hostSource, path.join(d.mountRoot, 'host-bind')]);
      },
    });
    expect(await hostMountsAt(path.join(driver.mountRoot, 'host-tmpfs'))).toHaveLength(1);
    expect(await hostMountsAt(path.join(driver.mountRoot, 'host-bind'))).toHaveLength(1);
    expect(await readFile(path.join(driver.mountRoot, 'host-tmpfs', 'file'), 'utf8')).toBe(
      'tmpfs contents\n',
    );
    expect(await readFile(path.join(driver.mountRoot, 'host-bind', 'file'), 'utf8')).toBe(
      'bind contents\n',
    );
    expect(await driver.log()).toMatch(
      /not the driver's own.*left alone|left alone.*not the driver's own/,
    );
    // And after a restart too.
    await driver.stop();
    await driver.restart();
    expect(await readFile(path.join(driver.mountRoot, 'host-tmpfs', 'file'), 'utf8')).toBe(
      'tmpfs contents\n',
    );
    expect(await hostMountsAt(path.join(driver.mountRoot, 'host-bind'))).toHaveLength(1);
  });

  it('two drivers with different data roots on one mount root: the second refuses to start', async () => {
    const a = await startDriver();
    await a.ok('/VolumeDriver.Create', { Name: 'first', Opts: {} });
    await writeFile(path.join(mountpointOf(a, 'first'), 'precious'), 'data\n');
    const b = await execa(
      process.execPath,
      [
        CLI,
        'serve',
        '--socket',
        path.join(a.base, 'b.sock'),
        '--data-root',
        path.join(a.base, 'other-data-root'),
        '--mount-root',
        a.mountRoot,
      ],
      { reject: false, timeout: 30_000, all: true },
    );
    expect(b.exitCode).not.toBe(0);
    expect(b.all).toMatch(/another sharedprop driver is already using the mount root/);
    expect(await hostMountsAt(mountpointOf(a, 'first'))).toHaveLength(1);
    expect(await readFile(path.join(mountpointOf(a, 'first'), 'precious'), 'utf8')).toBe('data\n');
    expect(await listed(a)).toEqual(['first']);
  });

  it("an adopted volume whose record was moved away while stopped: its directory's own submounts stay", async () => {
    const driver = await startDriver();
    const hostDir = path.join(driver.base, 'run-netns');
    await mkdir(hostDir);
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { path: hostDir } });
    // What `ip netns` would put there: a mount of the host's own in the adopted directory.
    await mkdir(path.join(hostDir, 'ns1'));
    await mountTmpfs(path.join(hostDir, 'ns1'));
    await writeFile(path.join(hostDir, 'ns1', 'file'), 'host mount\n');
    expect(await hostMountsAt(path.join(mountpointOf(driver, 'netns'), 'ns1'))).toHaveLength(1);
    await driver.stop();
    await rename(path.join(volumesDir(driver), 'netns'), path.join(driver.base, 'moved-record'));
    await driver.restart();
    expect(await hostMountsAt(path.join(hostDir, 'ns1'))).toHaveLength(1);
    expect(await readFile(path.join(hostDir, 'ns1', 'file'), 'utf8')).toBe('host mount\n');
    expect(await listed(driver)).toEqual([]);
  });

  it('a genuine orphan (a Remove killed after it retired the record) is still detached', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'dir', Opts: {} });
    await driver.ok('/VolumeDriver.Create', { Name: 'mem', Opts: { type: 'tmpfs' } });
    await driver.ok('/VolumeDriver.Create', { Name: 'kept', Opts: {} });
    for (const name of ['dir', 'mem']) {
      await killedAt(driver, 'remove:retired', () =>
        driver.call('/VolumeDriver.Remove', { Name: name }),
      );
    }
    expect(await hostMountsAt(mountpointOf(driver, 'dir'))).toEqual([]);
    expect(await hostMountsAt(mountpointOf(driver, 'mem'))).toEqual([]);
    expect(await expectConsistent(driver)).toEqual(['kept']);
  });
});
