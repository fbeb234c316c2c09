/**
 * Integration tier: the driver makes and takes down mounts with system calls, never with a
 * mount(8) or umount(8) process. The real driver runs under `strace -f -e trace=execve` (every
 * program it or its children start) through Create, Mount, Unmount and Remove of a directory, a
 * tmpfs and an adopted volume, and a restart after a reboot that lost every mount point
 * (start-up recovery puts them back). The trace must show no mount or umount, and must show
 * what the driver does start (sharedprop-rmtree, the delete helper): a trace that recorded
 * nothing would pass the first check on its own.
 *
 * Both ways of reading the mount tree run: by ID (statmount/listmount) and the mountinfo
 * fallback (SHAREDPROP_MOUNT_LAYER=mountinfo, for kernels before 6.8).
 *
 * strace comes from scripts/install-test-deps.sh (make test-deps); without it the test fails.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, countMountsAt, DriverProcess } from '../support/driver-process.js';
import { unmountEverythingUnder } from '../support/host-mounts.js';

jest.setTimeout(180_000);

let work: string;
let traceFile: string;
let driver: DriverProcess | undefined;

beforeEach(async () => {
  const which = await execa('sh', ['-c', 'command -v strace'], { reject: false });
  if (which.exitCode !== 0) {
    throw new Error('strace is not installed: run scripts/install-test-deps.sh (make test-deps)');
  }
  work = await mkdtemp(path.join(tmpdir(), 'sharedprop-strace-'));
  traceFile = path.join(work, 'execve.trace');
});

afterEach(async () => {
  if (driver) await stopTraced(driver);
  await driver?.destroy();
  driver = undefined;
  const stuck = await unmountEverythingUnder(work);
  if (stuck.length === 0) await rm(work, { recursive: true, force: true });
});

/** The driver's own process: strace's child. */
async function innerPid(traced: DriverProcess): Promise<number> {
  const text = await readFile(`/proc/${traced.pid}/task/${traced.pid}/children`, 'utf8');
  const pid = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`strace has no child: "${text}"`);
  return pid;
}

const alive = async (pid: number) =>
  readFile(`/proc/${pid}/stat`, 'utf8').then(
    () => true,
    () => false,
  );

/**
 * SIGTERM to the driver itself (strace, signalled, would only detach from it), and a wait for it
 * to end (strace ends with its last tracee); killed if it does not end in time.
 */
async function stopTraced(traced: DriverProcess): Promise<void> {
  if (traced.pid === undefined) return;
  const pid = await innerPid(traced);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while ((await alive(pid)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (await alive(pid)) process.kill(pid, 'SIGKILL');
  await traced.stop('SIGKILL'); // strace: already gone, or killed now that nothing is traced
}

/** Every program the trace saw started (execve's first argument), with strace's own first. */
async function programsStarted(): Promise<string[]> {
  const text = await readFile(traceFile, 'utf8');
  return [...text.matchAll(/execve\("([^"]*)"/g)].map((m) => m[1] as string);
}

const layers: [string, Record<string, string>, string][] = [
  ['statmount/listmount', {}, 'listmount'],
  ['the mountinfo fallback', { SHAREDPROP_MOUNT_LAYER: 'mountinfo' }, 'mountinfo'],
];

describe.each(layers)('the driver on %s', (_name, env, tree) => {
  it('starts no mount(8) or umount(8) through every operation of every kind, and a restart', async () => {
    const hostDir = path.join(work, 'run-netns');
    await mkdir(hostDir);
    await writeFile(path.join(hostDir, 'kept'), 'host file\n');
    const traced = await DriverProcess.start({
      env,
      command: [
        'strace',
        '-f',
        '--seccomp-bpf',
        '-qq',
        '-A', // appended to by the restart
        '-e',
        'trace=execve',
        '-o',
        traceFile,
        process.execPath,
        CLI,
      ],
    });
    driver = traced;
    const volumes: [string, Record<string, string>][] = [
      ['plain', {}],
      ['fast', { type: 'tmpfs', size: '8m' }],
      ['adopted', { path: hostDir }],
    ];
    const mountAndUnmount = async (id: string) => {
      for (const [name] of volumes) {
        const answer = await traced.ok('/VolumeDriver.Mount', { Name: name, ID: id });
        await writeFile(path.join(answer.Mountpoint as string, `from-${id}`), id);
        await traced.ok('/VolumeDriver.Unmount', { Name: name, ID: id });
      }
    };
    for (const [name, opts] of volumes) {
      await traced.ok('/VolumeDriver.Create', { Name: name, Opts: opts });
    }
    await mountAndUnmount('first');

    // A reboot: every mount point gone (taken down here, not by the driver), a new boot id.
    await stopTraced(traced);
    for (const [name] of volumes) await execa('umount', [path.join(traced.mountRoot, name)]);
    await writeFile(traced.bootIdFile, 'boot-2\n');
    await traced.restart(); // it answers once start-up put the mount points back
    for (const [name] of volumes) {
      expect(await countMountsAt(path.join(traced.mountRoot, name))).toBe(1);
    }
    await mountAndUnmount('second');
    for (const [name] of volumes) await traced.ok('/VolumeDriver.Remove', { Name: name });
    expect(await readFile(path.join(hostDir, 'from-second'), 'utf8')).toBe('second');
    await stopTraced(traced);

    const programs = await programsStarted();
    // The positive control: the trace saw the driver start, and the delete helper at Remove.
    expect(programs).toContain(process.execPath);
    expect(programs.filter((p) => path.basename(p) === 'sharedprop-rmtree').length).toBeGreaterThan(
      0,
    );
    expect(programs.filter((p) => /^u?mount$/.test(path.basename(p)))).toEqual([]);
    const log = await traced.log();
    expect(log).toContain(`"message":"mount layer: system calls"`);
    expect(log).toContain(`"tree":"${tree}"`);
  });
});
