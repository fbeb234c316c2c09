import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  installRuntime,
  reloadDockerd,
  uninstallRuntime,
} from '../../../src/install/runtime-install.js';

/** A stand-in dockerd: named dockerd (so /proc/PID/comm says so), counting its SIGHUPs. */
const FAKE_DOCKERD = `#!/bin/sh
trap 'echo hup >> "$1"' HUP
echo ready >> "$1"
while :; do sleep 0.05; done
`;

describe('installing the runtime wrapper', () => {
  let dir: string;
  let binary: string;
  let target: { dir: string; daemonJson: string; pidfile: string };
  let dockerd: ChildProcess | undefined;
  let hups: string;

  const hupCount = () =>
    readFileSync(hups, 'utf8')
      .split('\n')
      .filter((l) => l === 'hup').length;
  const waitFor = async (predicate: () => boolean) => {
    for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(predicate()).toBe(true);
  };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-install-'));
    binary = path.join(dir, 'build/sharedprop-runtime');
    mkdirSync(path.dirname(binary));
    writeFileSync(binary, 'binary v1');
    target = {
      dir: path.join(dir, 'bin'),
      daemonJson: path.join(dir, 'etc/docker/daemon.json'),
      pidfile: path.join(dir, 'docker.pid'),
    };
    const script = path.join(dir, 'dockerd');
    writeFileSync(script, FAKE_DOCKERD, { mode: 0o755 });
    hups = path.join(dir, 'hups');
    writeFileSync(hups, '');
    dockerd = spawn(script, [hups], { stdio: 'ignore' });
    writeFileSync(target.pidfile, `${dockerd.pid}\n`);
    await waitFor(() => readFileSync(hups, 'utf8').includes('ready'));
  });

  afterEach(async () => {
    if (dockerd && dockerd.exitCode === null && dockerd.signalCode === null) {
      const exited = once(dockerd, 'exit');
      dockerd.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs the binary (0755) and registers it, with no backup when there was no daemon.json', async () => {
    const report = await installRuntime({ ...target, binary });
    const installed = path.join(target.dir, 'sharedprop-runtime');
    expect(report).toMatchObject({
      binaryPath: installed,
      binaryChanged: true,
      daemonJsonChanged: true,
      backup: undefined,
      reload: { kind: 'signalled', pid: dockerd?.pid },
    });
    expect(readFileSync(installed, 'utf8')).toBe('binary v1');
    expect(statSync(installed).mode & 0o7777).toBe(0o755);
    expect(JSON.parse(readFileSync(target.daemonJson, 'utf8'))).toEqual({
      runtimes: { sharedprop: { path: installed } },
    });
    expect(existsSync(target.daemonJson + '.sharedprop-backup')).toBe(false);
    await waitFor(() => hupCount() === 1);
    expect(readdirSync(target.dir)).toEqual(['sharedprop-runtime']);
  });

  it('backs up an existing daemon.json, keeps its keys and mode', async () => {
    mkdirSync(path.dirname(target.daemonJson), { recursive: true });
    const original = '{ "log-driver": "journald", "live-restore": true }\n';
    writeFileSync(target.daemonJson, original);
    chmodSync(target.daemonJson, 0o600);
    const report = await installRuntime({ ...target, binary });
    expect(report.backup).toBe(target.daemonJson + '.sharedprop-backup');
    expect(readFileSync(report.backup as string, 'utf8')).toBe(original);
    expect(JSON.parse(readFileSync(target.daemonJson, 'utf8'))).toEqual({
      'log-driver': 'journald',
      'live-restore': true,
      runtimes: { sharedprop: { path: path.join(target.dir, 'sharedprop-runtime') } },
    });
    expect(statSync(target.daemonJson).mode & 0o7777).toBe(0o600);
  });

  it('is idempotent: a second run changes nothing and does not signal dockerd', async () => {
    await installRuntime({ ...target, binary });
    await waitFor(() => hupCount() === 1);
    const before = statSync(target.daemonJson);
    const binaryBefore = statSync(path.join(target.dir, 'sharedprop-runtime'));
    const report = await installRuntime({ ...target, binary });
    expect(report).toMatchObject({
      binaryChanged: false,
      daemonJsonChanged: false,
      reload: { kind: 'not-needed' },
    });
    expect(statSync(target.daemonJson).mtimeMs).toBe(before.mtimeMs);
    expect(statSync(path.join(target.dir, 'sharedprop-runtime')).ino).toBe(binaryBefore.ino);
    expect(existsSync(target.daemonJson + '.sharedprop-backup')).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(hupCount()).toBe(1);
  });

  it('replaces a changed binary by rename, without touching daemon.json or dockerd', async () => {
    await installRuntime({ ...target, binary });
    await waitFor(() => hupCount() === 1);
    const installed = path.join(target.dir, 'sharedprop-runtime');
    const oldInode = statSync(installed).ino;
    writeFileSync(binary, 'binary v2');
    const report = await installRuntime({ ...target, binary });
    expect(report).toMatchObject({ binaryChanged: true, daemonJsonChanged: false });
    expect(readFileSync(installed, 'utf8')).toBe('binary v2');
    expect(statSync(installed).ino).not.toBe(oldInode);
    expect(hupCount()).toBe(1);
  });

  it('changes nothing when daemon.json is garbled', async () => {
    mkdirSync(path.dirname(target.daemonJson), { recursive: true });
    writeFileSync(target.daemonJson, '{"debug": tru');
    await expect(installRuntime({ ...target, binary })).rejects.toThrow(/is not valid JSON/);
    expect(readFileSync(target.daemonJson, 'utf8')).toBe('{"debug": tru');
    expect(existsSync(target.dir)).toBe(false);
    expect(hupCount()).toBe(0);
  });

  it('refuses a missing binary', async () => {
    await expect(installRuntime({ ...target, binary: path.join(dir, 'nope') })).rejects.toThrow(
      /is not a file \(build it with make runtime\)/,
    );
    expect(existsSync(target.daemonJson)).toBe(false);
  });

  it('uninstall removes only our key and the binary, then nothing the second time', async () => {
    mkdirSync(path.dirname(target.daemonJson), { recursive: true });
    const original = { debug: true, runtimes: { other: { path: '/usr/bin/other' } } };
    writeFileSync(target.daemonJson, JSON.stringify(original));
    await installRuntime({ ...target, binary });
    await waitFor(() => hupCount() === 1);

    const report = await uninstallRuntime(target);
    expect(report).toMatchObject({
      binaryRemoved: true,
      daemonJsonChanged: true,
      backup: target.daemonJson + '.sharedprop-backup',
      reload: { kind: 'signalled' },
    });
    expect(JSON.parse(readFileSync(target.daemonJson, 'utf8'))).toEqual(original);
    expect(existsSync(path.join(target.dir, 'sharedprop-runtime'))).toBe(false);
    await waitFor(() => hupCount() === 2);

    const again = await uninstallRuntime(target);
    expect(again).toMatchObject({
      binaryRemoved: false,
      daemonJsonChanged: false,
      reload: { kind: 'not-needed' },
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(hupCount()).toBe(2);
  });

  it('uninstall with no daemon.json at all changes nothing', async () => {
    await expect(uninstallRuntime(target)).resolves.toMatchObject({
      binaryRemoved: false,
      daemonJsonChanged: false,
    });
    expect(existsSync(target.daemonJson)).toBe(false);
  });

  describe('reloading dockerd', () => {
    it('skips a missing pidfile, a dead pid and garbage', async () => {
      await expect(reloadDockerd(path.join(dir, 'none.pid'))).resolves.toMatchObject({
        kind: 'skipped',
        reason: expect.stringMatching(/dockerd is not running/),
      });
      const pidfile = path.join(dir, 'x.pid');
      writeFileSync(pidfile, 'garbage');
      await expect(reloadDockerd(pidfile)).resolves.toMatchObject({
        reason: expect.stringMatching(/does not hold a process id/),
      });
      const exited = once(dockerd as ChildProcess, 'exit');
      dockerd?.kill('SIGKILL');
      await exited;
      await expect(reloadDockerd(target.pidfile)).resolves.toMatchObject({
        reason: expect.stringMatching(/is not running/),
      });
    });

    it('does not signal a process that is not dockerd (a stale pidfile)', async () => {
      const other = spawn('sleep', ['30'], { stdio: 'ignore' });
      try {
        const pidfile = path.join(dir, 'stale.pid');
        writeFileSync(pidfile, String(other.pid));
        await expect(reloadDockerd(pidfile)).resolves.toEqual({
          kind: 'skipped',
          reason: `pid ${other.pid} in ${pidfile} is sleep, not dockerd; not signalled`,
        });
        expect(other.exitCode).toBeNull();
        expect(other.signalCode).toBeNull();
      } finally {
        other.kill('SIGKILL');
      }
    });
  });
});
