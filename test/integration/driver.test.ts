/**
 * Integration tier: the real driver process, real mounts in temporary directories, as root.
 * Propagation is proven from separate mount namespaces made with unshare.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseMountinfo, propagationOf } from '../../src/system/mountinfo.js';
import { MountSystem } from '../../src/system/mounts.js';
import {
  hostMountsWithin,
  mountTmpfsElsewhere,
  unmountEverythingUnder,
} from '../support/host-mounts.js';
import { countMountsAt, DriverProcess, hostMountinfo } from '../support/driver-process.js';
import { PluginClient } from '../support/plugin-client.js';

jest.setTimeout(120_000);

let driver: DriverProcess;
beforeEach(async () => {
  driver = await DriverProcess.start();
});
afterEach(async () => {
  await driver.destroy();
});

const mountpointOf = (name: string) => path.join(driver.mountRoot, name);
const dataDirOf = (name: string) => path.join(driver.dataRoot, 'volumes', name, '_data');

async function entryAt(target: string) {
  return parseMountinfo((await hostMountinfo()).join('\n')).filter((e) => e.mountPoint === target);
}

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

describe('Create', () => {
  it('gives exactly one shared mount, with the requested owner and mode', async () => {
    await driver.ok('/VolumeDriver.Create', {
      Name: 'vol1',
      Opts: { uid: '1234', gid: '4321', mode: '0710' },
    });
    const stack = await entryAt(mountpointOf('vol1'));
    expect(stack).toHaveLength(1);
    expect(propagationOf(stack[0]!)).toBe('shared');
    expect(stack[0]!.root).toBe(dataDirOf('vol1'));
    const st = await stat(mountpointOf('vol1'));
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }).toEqual({
      uid: 1234,
      gid: 4321,
      mode: 0o710,
    });
    const state = await stat(path.join(driver.dataRoot, 'volumes', 'vol1', 'volume.json'));
    expect(state.mode & 0o777).toBe(0o600);
  });

  it('is idempotent, serialised, and refuses different options', async () => {
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        driver.call('/VolumeDriver.Create', { Name: 'same', Opts: {} }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(await countMountsAt(mountpointOf('same'))).toBe(1);
    const other = await driver.call('/VolumeDriver.Create', { Name: 'same', Opts: { uid: '5' } });
    expect(other.status).toBe(409);
    expect(other.body.Err).toMatch(/volume "same" already exists with different options/);
  });

  it('an invalid Create leaves nothing behind', async () => {
    const before = await readdir(path.join(driver.dataRoot, 'volumes'));
    const answer = await driver.call('/VolumeDriver.Create', {
      Name: 'bad1',
      Opts: { mode: '99' },
    });
    expect(answer.status).toBe(400);
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual(before);
    expect(await countMountsAt(mountpointOf('bad1'))).toBe(0);
  });
});

describe('a Create that fails half-way', () => {
  it('leaves nothing behind: no volume directory, no staging or trash, no mount', async () => {
    // A file where the mount point must go: Create gets as far as publishing the volume's
    // directory, then cannot mount it.
    await writeFile(mountpointOf('halfway'), 'not a directory');
    const answer = await driver.call('/VolumeDriver.Create', { Name: 'halfway', Opts: {} });
    expect(answer.status).toBe(500);
    expect(answer.body.Err).toMatch(/EEXIST|ENOTDIR|not a directory/);
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
    expect(await countMountsAt(mountpointOf('halfway'))).toBe(0);
    expect((await driver.call('/VolumeDriver.Get', { Name: 'halfway' })).status).toBe(404);
    expect(await readFile(mountpointOf('halfway'), 'utf8')).toBe('not a directory');
  });
});

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

describe('Remove', () => {
  it('detaches submounts and deletes the volume, leaving a bind-mounted sentinel and symlink targets untouched', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'sharedprop-sentinel-'));
    try {
      await mkdir(path.join(outside, 'bound'));
      await writeFile(path.join(outside, 'bound', 'precious'), 'keep me');
      await mkdir(path.join(outside, 'linked'));
      await writeFile(path.join(outside, 'linked', 'precious'), 'keep me too');
      await writeFile(path.join(outside, 'file-target'), 'and me');

      await driver.ok('/VolumeDriver.Create', { Name: 'safe', Opts: {} });
      const mp = mountpointOf('safe');
      await mkdir(path.join(mp, 'bind'));
      await execa('mount', ['--bind', path.join(outside, 'bound'), path.join(mp, 'bind')]);
      await mkdir(path.join(mp, 'deep', 'tmp'), { recursive: true });
      await execa('mount', ['-t', 'tmpfs', 'sp-deep', path.join(mp, 'deep', 'tmp')]);
      await mkdir(path.join(mp, 'deep', 'tmp', 'inner'));
      await execa('mount', [
        '--bind',
        path.join(outside, 'bound'),
        path.join(mp, 'deep', 'tmp', 'inner'),
      ]);
      await mkdir(path.join(dataDirOf('safe'), 'direct'));
      await execa('mount', [
        '--bind',
        path.join(outside, 'bound'),
        path.join(dataDirOf('safe'), 'direct'),
      ]);
      await symlink(path.join(outside, 'linked'), path.join(mp, 'dirlink'));
      await symlink(path.join(outside, 'file-target'), path.join(mp, 'filelink'));
      await writeFile(path.join(mp, 'ordinary'), 'volume data');

      await driver.ok('/VolumeDriver.Remove', { Name: 'safe' });

      expect(await readFile(path.join(outside, 'bound', 'precious'), 'utf8')).toBe('keep me');
      expect(await readFile(path.join(outside, 'linked', 'precious'), 'utf8')).toBe('keep me too');
      expect(await readFile(path.join(outside, 'file-target'), 'utf8')).toBe('and me');
      const all = parseMountinfo((await hostMountinfo()).join('\n'));
      expect(all.filter((e) => e.mountPoint.startsWith(driver.base))).toEqual([]);
      await expect(lstat(mp)).rejects.toThrow(/ENOENT/);
      await expect(lstat(path.join(driver.dataRoot, 'volumes', 'safe'))).rejects.toThrow(/ENOENT/);
      expect(
        (await readdir(path.join(driver.dataRoot, 'volumes'))).filter((n) => n.startsWith('.')),
      ).toEqual([]);
      expect((await driver.call('/VolumeDriver.Get', { Name: 'safe' })).status).toBe(404);
    } finally {
      await unmountEverythingUnder(outside);
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('of an unknown volume is a clear error', async () => {
    const answer = await driver.call('/VolumeDriver.Remove', { Name: 'ghost' });
    expect(answer).toEqual({ status: 404, body: { Err: 'volume "ghost" does not exist' } });
  });
});

describe('bad input over the socket', () => {
  it('hostile names, malformed JSON and oversized bodies get clear errors and create nothing', async () => {
    const before = await readdir(driver.base);
    for (const Name of [
      '..',
      'a/b',
      '../../etc/evil',
      'nul\u0000byte',
      'x'.repeat(300),
      '.',
      '/abs',
    ]) {
      for (const endpoint of [
        '/VolumeDriver.Create',
        '/VolumeDriver.Mount',
        '/VolumeDriver.Remove',
        '/VolumeDriver.Get',
      ]) {
        const answer = await driver.call(endpoint, { Name, ID: 'id', Opts: {} });
        expect(answer.status).toBe(400);
        expect(answer.body.Err).toMatch(/invalid volume name/);
      }
    }
    expect((await driver.call('/VolumeDriver.Create', null, '{"Name":')).body.Err).toMatch(
      /malformed JSON/,
    );
    expect((await driver.call('/VolumeDriver.Create', { Name: ['x'] })).body.Err).toMatch(
      /Name must be a string/,
    );
    expect((await driver.call('/VolumeDriver.Mount', { Name: 'x1' })).body.Err).toMatch(
      /ID must be a string/,
    );
    const big = await driver.call('/VolumeDriver.Create', {
      Name: 'big',
      Opts: { x: 'y'.repeat(2 * 1024 * 1024) },
    });
    expect(big.status).toBe(413);
    expect((await driver.call('/Nope', {})).status).toBe(404);
    expect(await readdir(driver.base)).toEqual(before);
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
    expect(await readdir(driver.mountRoot)).toEqual(['.sharedprop-mountroot']);
    expect((await driver.call('/Plugin.Activate', {})).status).toBe(200);
  });

  it('a garbled state file is reported and skipped; the driver still starts', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'fine', Opts: {} });
    await driver.ok('/VolumeDriver.Create', { Name: 'garbled', Opts: {} });
    await driver.stop('SIGTERM');
    await writeFile(
      path.join(driver.dataRoot, 'volumes', 'garbled', 'volume.json'),
      '{"version":1,"na\u0000',
    );
    await driver.restart();
    const list = (await driver.ok('/VolumeDriver.List', {})) as { Volumes: { Name: string }[] };
    expect(list.Volumes.map((v) => v.Name)).toEqual(['fine']);
    const get = await driver.call('/VolumeDriver.Get', { Name: 'garbled' });
    expect(get.status).toBe(500);
    expect(get.body.Err).toMatch(
      /"garbled": its state \(volumes\/garbled\/volume\.json in the data root\) is unusable/,
    );
    expect(get.body.Err).not.toContain(driver.dataRoot); // host paths belong in the log
    expect((await driver.call('/VolumeDriver.Create', { Name: 'garbled', Opts: {} })).status).toBe(
      500,
    );
    expect(await driver.log()).toMatch(/volume state unreadable; volume skipped/);
  });
});

describe('process lifecycle', () => {
  it('SIGTERM answers every request in flight, keeps them durable, and exits within 10 s', async () => {
    // A client of its own: DriverProcess.stop closes the default one.
    const client = new PluginClient(driver.socket);
    try {
      const names = Array.from({ length: 12 }, (_, i) => `busy${i}`);
      const inFlight = names.map((Name) =>
        client.request('/VolumeDriver.Create', JSON.stringify({ Name, Opts: {} })),
      );
      // Each Create mounts (milliseconds each): once one is answered, the others are in flight.
      await Promise.race(inFlight);
      const stopping = driver.stop('SIGTERM');
      const answers = await Promise.all(inFlight);
      expect(answers.map((a) => a.status)).toEqual(names.map(() => 200));
      const stopped = await stopping;
      expect(stopped.ms).toBeLessThan(10_000);
      expect(stopped.exitCode).toBe(0);
      await driver.restart();
      const list = (await driver.ok('/VolumeDriver.List', {})) as { Volumes: { Name: string }[] };
      expect(list.Volumes.map((v) => v.Name).sort()).toEqual([...names].sort());
      for (const name of names) expect(await countMountsAt(mountpointOf(name))).toBe(1);
    } finally {
      client.close();
    }
  });

  it('logs one structured JSON line per request', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'logged', Opts: {} });
    await driver.call('/VolumeDriver.Remove', { Name: 'nosuch' });
    // The log line is written when the response closes: give it a moment to reach the file.
    let requests: Record<string, unknown>[] = [];
    for (let i = 0; i < 50 && requests.length < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      requests = (await driver.log())
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((l) => l.message === 'request');
    }
    expect(requests).toContainEqual(
      expect.objectContaining({
        endpoint: '/VolumeDriver.Create',
        volume: 'logged',
        outcome: 'ok',
        durationMs: expect.any(Number),
      }),
    );
    expect(requests).toContainEqual(
      expect.objectContaining({
        endpoint: '/VolumeDriver.Remove',
        volume: 'nosuch',
        outcome: 'error',
        status: 404,
      }),
    );
  });
});
