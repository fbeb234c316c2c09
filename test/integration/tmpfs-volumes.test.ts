/**
 * Integration tier: `-o type=tmpfs` volumes on the real driver process, as root. A tmpfs volume
 * behaves like the /run directory it replaces: one shared tmpfs of its own, whose contents (files
 * and network-namespace binds) survive a driver crash and restart, and which is empty after a
 * reboot. Nothing of it but its record is written to the data root.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { lstat, mkdtemp, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { propagationOf } from '../../src/system/mountinfo.js';
import { CLI, countMountsAt, DriverProcess } from '../support/driver-process.js';
import {
  addNetnsElsewhere,
  hostMountsAt,
  hostMountsWithin,
  unmountEverythingUnder,
} from '../support/host-mounts.js';

jest.setTimeout(120_000);

let driver: DriverProcess;
beforeEach(async () => {
  driver = await DriverProcess.start();
});
afterEach(async () => {
  await driver.destroy();
});

const mountpointOf = (name: string) => path.join(driver.mountRoot, name);
const volumeDirOf = (name: string) => path.join(driver.dataRoot, 'volumes', name);

interface Status {
  type: string;
  size?: string;
  mountPoint: string;
  dataPath?: string;
  submounts: { path: string; fsType: string }[];
}

async function statusOf(name: string): Promise<Status> {
  const got = (await driver.ok('/VolumeDriver.Get', { Name: name })) as {
    Volume: { Status: Status };
  };
  return got.Volume.Status;
}

/** From another mount namespace (another agent), enter the namespace bound at `file`. */
async function enterNetnsElsewhere(file: string): Promise<string> {
  const { stdout } = await execa('unshare', [
    '-m',
    '--propagation',
    'unchanged',
    'nsenter',
    `--net=${file}`,
    'readlink',
    '/proc/self/ns/net',
  ]);
  return stdout.trim();
}

describe('a tmpfs volume', () => {
  it('is one shared tmpfs of its own, with its size, owner and mode; only its record is on disk', async () => {
    await driver.ok('/VolumeDriver.Create', {
      Name: 'netns',
      Opts: { type: 'tmpfs', size: '8m', uid: '1234', gid: '4321', mode: '0710' },
    });
    const mp = mountpointOf('netns');
    const stack = await hostMountsAt(mp);
    expect(stack).toHaveLength(1);
    expect(stack[0]!.fsType).toBe('tmpfs');
    expect(propagationOf(stack[0]!)).toBe('shared');
    expect(stack[0]!.superOptions).toMatch(/size=8192k/);
    expect(stack[0]!.mountOptions).toMatch(/nosuid/);
    const st = await stat(mp);
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }).toEqual({
      uid: 1234,
      gid: 4321,
      mode: 0o710,
    });
    // Its contents live in memory: the data root holds the record, the counts and the tmpfs's
    // identity (for start-up to know it for its own), nothing else.
    const files = ['mounts.json', 'tmpfs.json', 'volume.json'];
    expect((await readdir(volumeDirOf('netns'))).sort()).toEqual(files);
    await writeFile(path.join(mp, 'file'), 'in memory');
    expect((await readdir(volumeDirOf('netns'))).sort()).toEqual(files);
    const identity = JSON.parse(
      await readFile(path.join(volumeDirOf('netns'), 'tmpfs.json'), 'utf8'),
    ) as { device: string; mountId: number };
    expect(identity).toMatchObject({ device: stack[0]!.device, mountId: stack[0]!.id });

    const status = await statusOf('netns');
    expect(status).toMatchObject({ type: 'tmpfs', size: '8388608', mountPoint: 'shared' });
    expect(status.dataPath).toBeUndefined();
    // Create again with the same options is fine; a directory volume of that name is not.
    await driver.ok('/VolumeDriver.Create', {
      Name: 'netns',
      Opts: { type: 'tmpfs', size: '8M', uid: '1234', gid: '4321', mode: '710' },
    });
    const other = await driver.call('/VolumeDriver.Create', { Name: 'netns', Opts: {} });
    expect(other.status).toBe(409);
    expect(String(other.body.Err)).toMatch(/type=tmpfs/);
  });

  it('refuses a size without type=tmpfs, an unknown type and a malformed size, creating nothing', async () => {
    for (const [opts, message] of [
      [{ size: '8m' }, /size applies only to type=tmpfs/],
      [{ type: 'ramfs' }, /type="ramfs" is not one of directory, tmpfs/],
      [{ type: 'tmpfs', size: '8 m,exec' }, /is not a size such as/],
      [
        { type: 'tmpfs', size: '101%' },
        /above the limit: the limit is \d+ bytes.*the host's memory/,
      ],
      [{ type: 'tmpfs', size: '17179869184g' }, /does not fit in the kernel's 64 bits/],
      [
        { type: 'tmpfs', size: '16777216g' },
        /is 18014398509481984 bytes \(16 PiB\), above the limit/,
      ],
      [{ type: 'tmpfs', size: '9999999999999999' }, /above the limit/],
      [{ type: 'tmpfs', size: '0' }, /is zero, which the kernel reads as no limit/],
    ] as const) {
      const answer = await driver.call('/VolumeDriver.Create', { Name: 'bad', Opts: opts });
      expect(answer.status).toBe(400);
      expect(String(answer.body.Err)).toMatch(message);
    }
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
    expect(await hostMountsWithin(driver.mountRoot)).toEqual([]);
  });

  it("carries one agent's network namespace to another and to the host, and keeps it through kill -9 and restart", async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { type: 'tmpfs' } });
    const mp = mountpointOf('netns');
    await driver.ok('/VolumeDriver.Mount', { Name: 'netns', ID: 'l3-agent' });
    await driver.ok('/Plugin.Activate', {}); // the count is saved by now
    const ns = path.join(mp, 'qrouter-1');
    await addNetnsElsewhere(ns);
    // The host sees the binding, once, and another agent enters the same namespace.
    const bound = await hostMountsAt(ns);
    expect(bound).toHaveLength(1);
    expect(bound[0]!.fsType).toBe('nsfs');
    const seen = await enterNetnsElsewhere(ns);
    expect(seen).toMatch(/^net:\[\d+\]$/);
    expect(await enterNetnsElsewhere(ns)).toBe(seen);
    await writeFile(path.join(mp, 'agent.pid'), '42');

    await driver.stop('SIGKILL');
    await driver.restart();
    expect(await countMountsAt(mp)).toBe(1);
    expect(await enterNetnsElsewhere(ns)).toBe(seen);
    expect(await readFile(path.join(mp, 'agent.pid'), 'utf8')).toBe('42');
    // A Mount after the restart keeps the tmpfs it finds: nothing is lost, nothing stacked.
    await driver.ok('/VolumeDriver.Mount', { Name: 'netns', ID: 'dhcp-agent' });
    expect(await countMountsAt(mp)).toBe(1);
    expect(await readFile(path.join(mp, 'agent.pid'), 'utf8')).toBe('42');
    const status = await statusOf('netns');
    expect(status.submounts).toEqual([
      expect.objectContaining({ path: '/qrouter-1', fsType: 'nsfs' }),
    ]);
  });

  it('is empty after a reboot: every mount of it gone, a fresh tmpfs at the next start', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { type: 'tmpfs' } });
    const mp = mountpointOf('netns');
    await driver.ok('/VolumeDriver.Mount', { Name: 'netns', ID: 'before-reboot' });
    await driver.ok('/Plugin.Activate', {});
    await addNetnsElsewhere(path.join(mp, 'qrouter-1'));
    await writeFile(path.join(mp, 'stale'), 'from the last boot');

    // The reboot: the driver stops, every mount goes, the boot id changes.
    await driver.stop('SIGKILL');
    expect(await unmountEverythingUnder(driver.mountRoot)).toEqual([]);
    await writeFile(driver.bootIdFile, 'boot-2\n');
    await driver.restart();

    const stack = await hostMountsAt(mp);
    expect(stack).toHaveLength(1);
    expect(stack[0]!.fsType).toBe('tmpfs');
    expect(propagationOf(stack[0]!)).toBe('shared');
    expect(await readdir(mp)).toEqual([]);
    expect(await hostMountsWithin(mp)).toHaveLength(1);
    const status = await statusOf('netns');
    expect(status).toMatchObject({ type: 'tmpfs', mountPoint: 'shared', submounts: [] });
    // The counts of the earlier boot are void, so the volume can be removed.
    await driver.ok('/VolumeDriver.Remove', { Name: 'netns' });
  });

  it('a tmpfs unmounted by hand is put back, empty, by the next Mount', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'scratch', Opts: { type: 'tmpfs' } });
    const mp = mountpointOf('scratch');
    await writeFile(path.join(mp, 'x'), 'y');
    await execa('umount', [mp]);
    await driver.ok('/VolumeDriver.Mount', { Name: 'scratch', ID: 'c1' });
    const stack = await hostMountsAt(mp);
    expect(stack).toHaveLength(1);
    expect(stack[0]!.fsType).toBe('tmpfs');
    expect(await readdir(mp)).toEqual([]);
  });

  it('Remove detaches the tmpfs and what was mounted in it, and leaves nothing behind', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'netns', Opts: { type: 'tmpfs' } });
    const mp = mountpointOf('netns');
    await addNetnsElsewhere(path.join(mp, 'qrouter-1'));
    await writeFile(path.join(mp, 'file'), 'gone with the volume');
    await driver.ok('/VolumeDriver.Remove', { Name: 'netns' });
    expect(await hostMountsWithin(mp)).toEqual([]);
    await expect(lstat(mp)).rejects.toThrow(/ENOENT/);
    await expect(lstat(volumeDirOf('netns'))).rejects.toThrow(/ENOENT/);
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
  });
});

/** The limit the kernel keeps for the tmpfs at `dir`: statfs's f_blocks × f_bsize. */
async function tmpfsLimitOf(dir: string): Promise<bigint> {
  const st = await statfs(dir, { bigint: true });
  return st.blocks * st.bsize;
}

async function memTotal(): Promise<bigint> {
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  return BigInt(/^MemTotal:\s+(\d+) kB$/m.exec(meminfo)?.[1] ?? '0') * 1024n;
}

describe("a tmpfs volume's size", () => {
  it('is the limit the kernel keeps, exactly (statfs), whatever the spelling; a write beyond it fails', async () => {
    const memory = await memTotal();
    const pageSize = BigInt((await execa('getconf', ['PAGESIZE'])).stdout.trim());
    const roundUp = (n: bigint) => ((n + pageSize - 1n) / pageSize) * pageSize;
    const cases: [string, bigint][] = [
      ['4m', 4n * 1024n ** 2n],
      ['4097', roundUp(4097n)],
      ['1G', 1024n ** 3n],
      ['10%', roundUp((10n * memory) / 100n)],
      ['100%', memory],
    ];
    for (const [i, [size, bytes]] of cases.entries()) {
      const name = `sized-${i}`;
      await driver.ok('/VolumeDriver.Create', { Name: name, Opts: { type: 'tmpfs', size } });
      expect({ size, limit: await tmpfsLimitOf(mountpointOf(name)) }).toEqual({
        size,
        limit: bytes,
      });
      expect((await statusOf(name)).size).toBe(bytes.toString());
    }
    // 4 MiB is a limit: the fifth MiB does not fit.
    await writeFile(path.join(mountpointOf('sized-0'), 'a'), Buffer.alloc(3 * 1024 ** 2));
    await expect(
      writeFile(path.join(mountpointOf('sized-0'), 'b'), Buffer.alloc(2 * 1024 ** 2)),
    ).rejects.toThrow(/ENOSPC/);
  });

  it('with serve --tmpfs-max-size: the cap is the default size and the maximum', async () => {
    await driver.stop();
    driver.env = { SHAREDPROP_TMPFS_MAX_SIZE: '16m' };
    await driver.restart();
    await driver.ok('/VolumeDriver.Create', { Name: 'capped', Opts: { type: 'tmpfs' } });
    expect(await tmpfsLimitOf(mountpointOf('capped'))).toBe(16n * 1024n ** 2n);
    expect((await statusOf('capped')).size).toBe('16777216');
    // Idempotent: the same Create again is no conflict.
    await driver.ok('/VolumeDriver.Create', { Name: 'capped', Opts: { type: 'tmpfs' } });
    await driver.ok('/VolumeDriver.Create', { Name: 'small', Opts: { type: 'tmpfs', size: '8m' } });
    expect(await tmpfsLimitOf(mountpointOf('small'))).toBe(8n * 1024n ** 2n);
    const above = await driver.call('/VolumeDriver.Create', {
      Name: 'above',
      Opts: { type: 'tmpfs', size: '17m' },
    });
    expect(above.status).toBe(400);
    expect(String(above.body.Err)).toBe(
      'volume "above": option size="17m" is 17825792 bytes (17 MiB), above the limit: the limit is 16777216 bytes (16 MiB), serve --tmpfs-max-size',
    );
    expect((await readdir(path.join(driver.dataRoot, 'volumes'))).sort()).toEqual([
      'capped',
      'small',
    ]);
    expect(await hostMountsAt(mountpointOf('above'))).toEqual([]);
  });

  it('serve refuses to start on a bad --tmpfs-max-size, with a clear message, touching nothing', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'sharedprop-it-'));
    try {
      for (const [value, message] of [
        ['17179869184g', `--tmpfs-max-size "17179869184g" does not fit in the kernel's 64 bits`],
        ['1p', "above the host's memory"],
        ['64mb', '--tmpfs-max-size "64mb" is not a size such as 64m'],
      ] as const) {
        const result = await execa(
          process.execPath,
          [
            CLI,
            'serve',
            '--socket',
            path.join(base, 'sp.sock'),
            '--data-root',
            path.join(base, 'data'),
            '--tmpfs-max-size',
            value,
          ],
          { reject: false, timeout: 30_000 },
        );
        expect(result.exitCode).toBe(1);
        const lines = `${result.stdout}\n${result.stderr}`
          .split('\n')
          .filter((l) => l.startsWith('{'));
        const logged = lines.map((l) => JSON.parse(l) as { message: string; error?: string });
        expect(logged).toContainEqual(
          expect.objectContaining({
            message: 'cannot start',
            error: expect.stringContaining(message),
          }),
        );
      }
      expect(await readdir(base)).toEqual([]);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
