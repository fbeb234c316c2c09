/**
 * Integration tier: `-o path=` volumes, which adopt an existing host directory, on the real driver
 * process as root. What containers mount in the volume shows in the directory (as `ip netns add`
 * on the host shows in /run/netns), and nothing in the directory is ever deleted or detached by
 * the driver: not by Remove, not through symlinks or races, not after kill -9.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { propagationOf } from '../../src/system/mountinfo.js';
import { countMountsAt, DriverProcess } from '../support/driver-process.js';
import {
  addNetnsElsewhere,
  hostMountsAt,
  hostMountsWithin,
  unmountEverythingUnder,
} from '../support/host-mounts.js';

jest.setTimeout(180_000);

let driver: DriverProcess;
/** A host directory outside the driver's own, like /run/netns; and one a symlink points into. */
let hostDir: string;
let outside: string;
let work: string;

beforeEach(async () => {
  driver = await DriverProcess.start();
  work = await mkdtemp(path.join(tmpdir(), 'sharedprop-adopt-'));
  hostDir = path.join(work, 'run-netns');
  outside = path.join(work, 'outside');
  await mkdir(path.join(hostDir, 'subdir'), { recursive: true });
  await writeFile(path.join(hostDir, 'kept'), 'host file\n');
  await writeFile(path.join(hostDir, 'subdir', 'nested'), 'nested file\n');
  await mkdir(outside);
  await writeFile(path.join(outside, 'precious'), 'outside\n');
  await symlink(outside, path.join(hostDir, 'link-out'));
});

afterEach(async () => {
  await driver.destroy();
  const stuck = await unmountEverythingUnder(work);
  if (stuck.length === 0) await rm(work, { recursive: true, force: true });
});

const mountpointOf = (name: string) => path.join(driver.mountRoot, name);

async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

async function netnsOf(file: string): Promise<string> {
  const { stdout } = await execa('nsenter', [`--net=${file}`, 'readlink', '/proc/self/ns/net']);
  return stdout.trim();
}

describe('a volume that adopts a host directory', () => {
  it('shows the directory, and a namespace made in the volume from another namespace shows in the directory', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { path: hostDir } });
    const mp = mountpointOf('netns');
    expect(await readFile(path.join(mp, 'kept'), 'utf8')).toBe('host file\n');
    const atMp = await hostMountsAt(mp);
    expect(atMp).toHaveLength(1);
    expect(propagationOf(atMp[0]!)).toBe('shared');
    // The directory became a shared mount point in the same peer group.
    const atDir = await hostMountsAt(hostDir);
    expect(atDir.at(-1)?.sharedGroup).toBe(atMp[0]!.sharedGroup);
    // Nothing of it in the data root but its record.
    expect((await readdir(path.join(driver.dataRoot, 'volumes', 'netns'))).sort()).toEqual([
      'mounts.json',
      'volume.json',
    ]);

    await addNetnsElsewhere(path.join(mp, 'qrouter-1'));
    const onHost = await hostMountsAt(path.join(hostDir, 'qrouter-1'));
    expect(onHost).toHaveLength(1);
    expect(onHost[0]!.fsType).toBe('nsfs');
    expect(await netnsOf(path.join(hostDir, 'qrouter-1'))).toBe(
      await netnsOf(path.join(mp, 'qrouter-1')),
    );
    // The other way too: `ip netns add` on the host shows in the volume.
    await execa('sh', ['-c', ': > "$1" && unshare --net="$1" true', 'sh', `${hostDir}/qhost`]);
    expect(await hostMountsAt(path.join(mp, 'qhost'))).toHaveLength(1);

    const got = (await driver.ok('/VolumeDriver.Get', { Name: 'netns' })) as {
      Volume: { Status: Record<string, unknown> };
    };
    expect(got.Volume.Status).toMatchObject({ type: 'path', dataPath: hostDir });
  });

  it('Remove detaches the volume and keeps the directory whole: its files, symlink targets and namespace files', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { path: hostDir } });
    const mp = mountpointOf('netns');
    await addNetnsElsewhere(path.join(mp, 'qrouter-1'));
    await writeFile(path.join(mp, 'written-in-volume'), 'stays\n');
    const before = await tree(hostDir);
    const ns = await netnsOf(path.join(hostDir, 'qrouter-1'));

    await driver.ok('/VolumeDriver.Remove', { Name: 'netns' });

    expect(await hostMountsWithin(mp)).toEqual([]);
    await expect(lstat(mp)).rejects.toThrow(/ENOENT/);
    await expect(lstat(path.join(driver.dataRoot, 'volumes', 'netns'))).rejects.toThrow(/ENOENT/);
    expect(await tree(hostDir)).toEqual(before);
    expect(await readFile(path.join(hostDir, 'kept'), 'utf8')).toBe('host file\n');
    expect(await readFile(path.join(outside, 'precious'), 'utf8')).toBe('outside\n');
    // The namespace file is still bound in the directory, and still the same namespace.
    expect(await hostMountsAt(path.join(hostDir, 'qrouter-1'))).toHaveLength(1);
    expect(await netnsOf(path.join(hostDir, 'qrouter-1'))).toBe(ns);
    // And the directory can be adopted again.
    await driver.ok('/VolumeDriver.Create', { Name: 'again', Opts: { path: hostDir } });
    expect(await readFile(path.join(mountpointOf('again'), 'kept'), 'utf8')).toBe('host file\n');
  });

  it('refuses the same or nested directories, symlinked paths, missing ones and the data root', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'first', Opts: { path: hostDir } });
    await symlink(hostDir, path.join(work, 'via-link'));
    const cases: [string, number, RegExp][] = [
      [hostDir, 409, /two volumes may not adopt the same or nested directories/],
      [path.join(hostDir, 'subdir'), 409, /overlaps/],
      [work, 409, /overlaps/],
      [path.join(work, 'via-link'), 400, /has a symlink on its way/],
      [path.join(hostDir, 'link-out'), 400, /has a symlink on its way/],
      [path.join(work, 'missing'), 400, /does not exist/],
      [path.join(hostDir, 'kept'), 400, /is not a directory/],
      [driver.dataRoot, 400, /overlaps the driver's own data root/],
      [path.join(driver.dataRoot, 'volumes', 'first'), 400, /overlaps the driver's own/],
      [driver.base, 400, /overlaps the driver's own/],
    ];
    for (const [dir, status, message] of cases) {
      const answer = await driver.call('/VolumeDriver.Create', {
        Name: 'second',
        Opts: { path: dir },
      });
      expect([dir, answer.status]).toEqual([dir, status]);
      expect(String(answer.body.Err)).toMatch(message);
    }
    expect(await hostMountsWithin(mountpointOf('second'))).toEqual([]);
    await expect(stat(path.join(driver.dataRoot, 'volumes', 'second'))).rejects.toThrow(/ENOENT/);
  });

  it('a mount already in the directory stays there and shows in the volume (adopted recursively)', async () => {
    await mkdir(path.join(hostDir, 'disk'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'host-disk', path.join(hostDir, 'disk')]);
    await writeFile(path.join(hostDir, 'disk', 'on-disk'), 'disk file\n');
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { path: hostDir } });
    // The host still sees its disk at the same place, and so does the volume.
    expect(await readFile(path.join(hostDir, 'disk', 'on-disk'), 'utf8')).toBe('disk file\n');
    const mp = mountpointOf('netns');
    expect(await readFile(path.join(mp, 'disk', 'on-disk'), 'utf8')).toBe('disk file\n');
    await driver.ok('/VolumeDriver.Remove', { Name: 'netns' });
    expect(await hostMountsWithin(mp)).toEqual([]);
    expect((await hostMountsAt(path.join(hostDir, 'disk'))).map((e) => e.fsType)).toContain(
      'tmpfs',
    );
    expect(await readFile(path.join(hostDir, 'disk', 'on-disk'), 'utf8')).toBe('disk file\n');
  });

  it('a mount the host puts over the directory is never peeled off: Mount works, Remove is refused until the host unmounts it', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { path: hostDir } });
    const mp = mountpointOf('netns');
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'host-over', hostDir]);
    await writeFile(path.join(hostDir, 'over'), 'on top\n');
    const covering = async () =>
      (await hostMountsAt(hostDir)).filter((e) => e.source === 'host-over').length;
    expect(await covering()).toBe(1);

    const mounted = await driver.ok('/VolumeDriver.Mount', { Name: 'netns', ID: 'c1' });
    expect(mounted.Mountpoint).toBe(mp);
    expect(await readFile(path.join(mp, 'over'), 'utf8')).toBe('on top\n');
    await driver.ok('/VolumeDriver.Unmount', { Name: 'netns', ID: 'c1' });
    expect(await covering()).toBe(1);

    const refused = await driver.call('/VolumeDriver.Remove', { Name: 'netns' });
    expect(refused.status).toBe(409);
    expect(String(refused.body.Err)).toMatch(/something is mounted over its adopted directory/);
    expect(await covering()).toBe(1);
    expect(await readFile(path.join(hostDir, 'over'), 'utf8')).toBe('on top\n');

    await driver.stop('SIGKILL');
    await driver.restart();
    expect(await covering()).toBe(1);

    await execa('umount', [hostDir]); // the host's own mount, by the host
    await driver.ok('/VolumeDriver.Remove', { Name: 'netns' });
    expect(await hostMountsWithin(mp)).toEqual([]);
    expect(await readFile(path.join(hostDir, 'kept'), 'utf8')).toBe('host file\n');
  });

  it('outlives kill -9: the restart mounts it again, still shared with the directory', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { path: hostDir } });
    const mp = mountpointOf('netns');
    await driver.stop('SIGKILL');
    await execa('umount', [mp]); // as a reboot would leave it
    await driver.restart();
    expect(await countMountsAt(mp)).toBe(1);
    await addNetnsElsewhere(path.join(mp, 'after-restart'));
    expect(await hostMountsAt(path.join(hostDir, 'after-restart'))).toHaveLength(1);
    expect(await readFile(path.join(mp, 'kept'), 'utf8')).toBe('host file\n');
  });

  it('a process racing symlinks in the directory during Remove changes nothing outside it, and Remove deletes nothing', async () => {
    for (let i = 0; i < 300; i++) {
      await mkdir(path.join(hostDir, 'race', `s${i}`), { recursive: true });
      await writeFile(path.join(hostDir, 'race', `s${i}`, 'file'), `${i}`);
      await symlink(outside, path.join(hostDir, 'race', `l${i}`));
    }
    const files = async (dir: string) =>
      (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())
        .length;
    const before = { inDir: await files(hostDir), outside: await tree(outside) };
    for (let round = 0; round < 3; round++) {
      await driver.ok('/VolumeDriver.Create', { Name: 'raced', Opts: { path: hostDir } });
      const racer = execa(
        'sh',
        [
          '-c',
          // -T: never into a directory (or a symlink to one): the racer itself moves nothing out.
          'cd "$1" && while :; do for i in $(seq 0 299); do mv -T s$i t$i && mv -T l$i s$i && mv -T t$i l$i; done; done',
          'sh',
          path.join(mountpointOf('raced'), 'race'),
        ],
        { reject: false },
      );
      try {
        await new Promise((resolve) => setTimeout(resolve, 200));
        await driver.ok('/VolumeDriver.Remove', { Name: 'raced' });
      } finally {
        racer.kill('SIGKILL');
        await racer;
      }
      expect(await tree(outside)).toEqual(before.outside);
      expect(await files(hostDir)).toBe(before.inDir);
    }
  });
});
