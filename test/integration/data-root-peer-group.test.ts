/**
 * Integration tier (issue 25, item 4): a data root bound onto itself in its parent's peer group,
 * as `ip netns` binds /run/netns on a systemd host where `/` is shared. Every Create used to fail
 * with a 500 (`no mount at <mount root>/<name>`): the volume's bind propagated to the parent,
 * hidden beneath the data root at the same path, and the driver peeled the wrong one.
 *
 * The world lives in a mount namespace of its own (a holder process: a shared tmpfs T, and T/data
 * bound onto itself), the driver runs in it (nsenter), and a second namespace made from it is a
 * peer of both mounts: what the driver mounts is counted there too.
 */
import { jest } from '@jest/globals';
import { execa, type ResultPromise } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseMountinfo, type MountEntry } from '../../src/system/mountinfo.js';
import { CLI, DriverProcess } from '../support/driver-process.js';

jest.setTimeout(120_000);

const processes: ResultPromise[] = [];
let driver: DriverProcess | undefined;
/** The namespace's holder, and a peer namespace made from it once the world is set up. */
let holderPid: number;
let peerPid: number;

afterEach(async () => {
  await driver?.destroy();
  driver = undefined;
  for (const child of processes.splice(0)) {
    child.kill('SIGKILL'); // by its pid: only what this test started
    await child.catch(() => undefined);
  }
});

/** Starts a process and resolves with its pid once it printed `ready`. */
async function started(command: string, args: string[]): Promise<number> {
  const child = execa(command, args, { reject: false });
  processes.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    void child.then((r) => reject(new Error(`${command} ended: ${String(r.stderr)}`)));
  });
  return child.pid as number;
}

async function tableOf(pid: number): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8'));
}
const countAt = async (pid: number, dir: string) =>
  (await tableOf(pid)).filter((e) => e.mountPoint === dir).length;
const within = async (pid: number, dir: string) =>
  (await tableOf(pid)).filter((e) => e.mountPoint === dir || e.mountPoint.startsWith(dir + '/'));
/** A path as the driver's namespace shows it. */
const seen = (file: string) => `/proc/${holderPid}/root${file}`;

async function startInPeerGroup(): Promise<DriverProcess> {
  driver = await DriverProcess.start({
    dataRoot: 't/data',
    async prepare(d) {
      const parent = path.join(d.base, 't');
      await mkdir(parent);
      holderPid = await started('unshare', [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t tmpfs sp-parent "$1" && mount --make-shared "$1" && mkdir "$1/data" && ' +
          'mount --bind "$1/data" "$1/data" && echo ready && exec sleep 600',
        'sh',
        parent,
      ]);
      peerPid = await started('nsenter', [
        '-t',
        String(holderPid),
        '-m',
        'unshare',
        '--mount',
        '--propagation',
        'unchanged',
        'sh',
        '-c',
        'echo ready && exec sleep 600',
      ]);
      // The precondition that makes this a test: the data root is in its parent's peer group.
      const table = await tableOf(holderPid);
      const [t, data] = [parent, d.dataRoot].map((p) => table.find((e) => e.mountPoint === p));
      expect(data?.sharedGroup).toBeDefined();
      expect(data?.sharedGroup).toBe(t?.sharedGroup);
      d.command = ['nsenter', '-t', String(holderPid), '-m', process.execPath, CLI];
    },
  });
  return driver;
}

describe('a data root in its parent’s peer group', () => {
  it('Create, Mount and Remove work, one mount per volume, none appearing twice in a peer namespace', async () => {
    const d = await startInPeerGroup();
    const names = ['first', 'second'];
    for (const name of names) await d.ok('/VolumeDriver.Create', { Name: name, Opts: {} });
    for (const name of names) {
      const mp = path.join(d.mountRoot, name);
      expect([name, await countAt(holderPid, mp)]).toEqual([name, 1]);
      expect(await countAt(peerPid, mp)).toBeLessThanOrEqual(1);
    }
    const mp = path.join(d.mountRoot, 'first');
    const answer = await d.ok('/VolumeDriver.Mount', { Name: 'first', ID: 'c1' });
    expect(answer.Mountpoint).toBe(mp);
    await writeFile(seen(path.join(mp, 'written')), 'data\n');
    expect(
      await readFile(seen(path.join(d.dataRoot, 'volumes', 'first', '_data', 'written')), 'utf8'),
    ).toBe('data\n');

    // A mount made in the volume (from its namespace) shows there once, and nowhere twice.
    await mkdir(seen(path.join(mp, 'sub')));
    await execa('nsenter', [
      '-t',
      String(holderPid),
      '-m',
      'mount',
      '-t',
      'tmpfs',
      'x',
      path.join(mp, 'sub'),
    ]);
    expect(await countAt(holderPid, path.join(mp, 'sub'))).toBe(1);
    expect(await countAt(peerPid, path.join(mp, 'sub'))).toBeLessThanOrEqual(1);
    await execa('nsenter', ['-t', String(holderPid), '-m', 'umount', path.join(mp, 'sub')]);

    await d.ok('/VolumeDriver.Unmount', { Name: 'first', ID: 'c1' });
    for (const name of names) await d.ok('/VolumeDriver.Remove', { Name: name });
    for (const name of names) {
      const gone = path.join(d.mountRoot, name);
      expect(await within(holderPid, gone)).toEqual([]);
      expect(await within(peerPid, gone)).toEqual([]);
    }

    // And after a restart, a Create again: still one mount.
    await d.stop();
    await d.restart();
    await d.ok('/VolumeDriver.Create', { Name: 'third', Opts: {} });
    expect(await countAt(holderPid, path.join(d.mountRoot, 'third'))).toBe(1);
    expect(await countAt(peerPid, path.join(d.mountRoot, 'third'))).toBeLessThanOrEqual(1);
  });
});
