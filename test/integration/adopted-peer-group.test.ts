/**
 * Integration tier (issue 25): an adopted directory's volume and the directory share one peer
 * group, and the driver never makes shared a mount it did not make. On the real `sharedprop
 * serve` as root, with real mounts in a directory of the test's own.
 *
 * - A kill between the two steps of an adopted Remove (the view made private, not yet detached)
 *   used to leave a volume whose restart re-shared the view in a group of its own: Get said
 *   `shared`, Mount answered 200, and nothing mounted in the volume reached the directory.
 * - An existing private mount at the adopted path (an operator's private bind, a tmpfs) used to
 *   be made shared by Create, and stayed shared after Remove.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DriverProcess } from '../support/driver-process.js';
import { hostMountsAt, hostMountsWithin, unmountEverythingUnder } from '../support/host-mounts.js';
import { statusOf, waitFor } from '../support/volume-checks.js';

jest.setTimeout(120_000);

let driver: DriverProcess;
let work: string;
let hostDir: string;

beforeEach(async () => {
  driver = await DriverProcess.start();
  work = await mkdtemp(path.join(tmpdir(), 'sharedprop-peers-'));
  hostDir = path.join(work, 'hd');
  await mkdir(hostDir);
  await writeFile(path.join(hostDir, 'kept'), 'host file\n');
});

afterEach(async () => {
  await driver.destroy();
  const stuck = await unmountEverythingUnder(work);
  if (stuck.length === 0) await rm(work, { recursive: true, force: true });
});

const mountpointOf = (name: string) => path.join(driver.mountRoot, name);
const mount = (...args: string[]) => execa('mount', args);

/** Whether a tmpfs mounted in the volume (here, by the test) shows in the adopted directory. */
async function reachesDirectory(name: string, sub: string): Promise<boolean> {
  await mkdir(path.join(mountpointOf(name), sub));
  await mount('-t', 'tmpfs', 'sp-peer', path.join(mountpointOf(name), sub));
  return (await hostMountsAt(path.join(hostDir, sub))).length === 1;
}

async function groupsAt(dir: string): Promise<(number | undefined)[]> {
  return (await hostMountsAt(dir)).map((e) => e.sharedGroup);
}

describe('the peer group of an adopted directory’s volume', () => {
  it('a kill between making the view private and detaching it: the restart joins the view to the directory again', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'cut', Opts: { path: hostDir } });
    const mp = mountpointOf('cut');
    const [dirGroup] = await groupsAt(hostDir);
    expect(await groupsAt(mp)).toEqual([dirGroup]);
    // What removeAdopted's first step leaves when the kill comes before the unmount.
    await driver.stop('SIGKILL');
    await mount('--make-rprivate', mp);
    expect(await groupsAt(mp)).toEqual([undefined]);

    await driver.restart();
    expect(await groupsAt(mp)).toEqual([dirGroup]);
    expect((await statusOf(driver, 'cut')).mountPoint).toBe('shared');
    await driver.ok('/VolumeDriver.Mount', { Name: 'cut', ID: 'c1' });
    expect(await reachesDirectory('cut', 'after-restart')).toBe(true);
  });

  it('a view re-shared in a group of its own is reported cut off by Get, and the next Mount joins it again', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'alone', Opts: { path: hostDir } });
    const mp = mountpointOf('alone');
    const [dirGroup] = await groupsAt(hostDir);
    // What the restart of the code before this fix made of a view cut off by a kill.
    await mount('--make-private', mp);
    await mount('--make-shared', mp);
    const [own] = await groupsAt(mp);
    expect(own).not.toBe(dirGroup);

    await waitFor('Get to see the view cut off', async () => {
      const status = await statusOf(driver, 'alone');
      return status.mountPoint === 'cut off from the peer group of the directory it shows';
    });
    await driver.ok('/VolumeDriver.Mount', { Name: 'alone', ID: 'c1' });
    expect(await groupsAt(mp)).toEqual([dirGroup]);
    expect(await reachesDirectory('alone', 'joined')).toBe(true);
    await waitFor('Get to say shared', async () => {
      return (await statusOf(driver, 'alone')).mountPoint === 'shared';
    });
  });

  it('a view cut off while the driver was down is joined again at start-up, before any Mount', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'down', Opts: { path: hostDir } });
    const mp = mountpointOf('down');
    const [dirGroup] = await groupsAt(hostDir);
    await driver.stop('SIGKILL');
    await mount('--make-private', mp);
    await mount('--make-shared', mp);
    await driver.restart();
    expect(await groupsAt(mp)).toEqual([dirGroup]);
    expect(await reachesDirectory('down', 'at-start')).toBe(true);
  });
});

describe('a mount point the driver did not make', () => {
  const cases: [string, () => Promise<unknown>, string][] = [
    [
      'a private self-bind',
      async () => {
        await mount('--bind', hostDir, hostDir);
        await mount('--make-private', hostDir);
      },
      'private',
    ],
    [
      'a tmpfs',
      async () => {
        await mount('-t', 'tmpfs', '-o', 'size=1m', 'sp-operator', hostDir);
        await mount('--make-private', hostDir);
      },
      'private',
    ],
    [
      'an unbindable bind',
      async () => {
        await mount('--bind', hostDir, hostDir);
        await mount('--make-unbindable', hostDir);
      },
      'unbindable',
    ],
  ];

  it.each(cases)(
    'is refused with a 400 naming the fix, and its propagation is left as it was: %s',
    async (_what, make, propagation) => {
      await make();
      const before = await hostMountsWithin(hostDir);
      const answer = await driver.call('/VolumeDriver.Create', {
        Name: 'foreign',
        Opts: { path: hostDir },
      });
      expect(answer.status).toBe(400);
      expect(String(answer.body.Err)).toContain(
        `is a ${propagation} mount point that sharedprop did not make, and adopting it would make it shared; make it shared yourself (mount --make-shared ${hostDir}) or adopt a directory that is no mount point`,
      );
      expect(await hostMountsWithin(hostDir)).toEqual(before);
      expect((await hostMountsAt(hostDir)).at(-1)?.sharedGroup).toBeUndefined();
      expect(await hostMountsWithin(mountpointOf('foreign'))).toEqual([]);
    },
  );

  it('a shared mount point (as `ip netns` leaves /run/netns) is adopted as it is, and is still one mount after Remove', async () => {
    await mount('--bind', hostDir, hostDir);
    await mount('--make-private', hostDir);
    await mount('--make-shared', hostDir);
    const before = await hostMountsAt(hostDir);
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { path: hostDir } });
    expect(await groupsAt(mountpointOf('netns'))).toEqual([before[0]?.sharedGroup]);
    await driver.ok('/VolumeDriver.Remove', { Name: 'netns' });
    expect(await hostMountsAt(hostDir)).toEqual(before);
  });
});
