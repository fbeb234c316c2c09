/**
 * `sharedprop doctor`, `ls` and `prune` against real engines: a healthy private dockerd with the
 * plugin and runtime installed, and one started in a slave mount namespace (systemd MountFlags=slave).
 */
import { jest } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DockerDaemon,
  E2eEnvironment,
  hostMountsAt,
  hostMountsWithin,
  sharedpropCli,
  onEngine,
} from './harness/index.js';
import { WITH_RUNTIME, waitForFile } from './harness/containers.js';

jest.setTimeout(300_000);

let env: E2eEnvironment;
beforeAll(async () => {
  env = await E2eEnvironment.start();
}, 600_000);
afterAll(() => env?.stop(), 600_000);

/** The CLI against `daemon` (this file's by default), in its mount namespace. */
function sharedprop(args: string[], daemon: DockerDaemon = env.daemon) {
  return sharedpropCli(daemon, args);
}

describe(onEngine('doctor on a healthy engine'), () => {
  it('exits 0, every check ok, and --json says the same', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'healthy']);
    const text = await sharedprop(['doctor']);
    expect(text.stderr).toBe('');
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(
      /^ok +engine: Docker Engine \S+ \(API [\d.]+\), containerd \S+, runc \S+$/m,
    );
    expect(text.stdout).toMatch(
      /^ok +plugin: managed plugin sharedprop:latest is enabled and answers Activate/m,
    );
    expect(text.stdout).toMatch(/^ok +daemon-namespace:/m);
    expect(text.stdout).toMatch(/^ok +runtime: runtime sharedprop -> /m);
    expect(text.stdout).toMatch(/^ok +volume healthy: shared mount point, 0 submount/m);
    const json = await sharedprop(['doctor', '--json']);
    const doc = JSON.parse(json.stdout) as {
      healthy: boolean;
      checks: { check: string; verdict: string }[];
    };
    expect(doc.healthy).toBe(true);
    expect(doc.checks.map((c) => c.check)).toEqual(
      expect.arrayContaining(['engine', 'plugin', 'daemon-namespace', 'runtime', 'volume healthy']),
    );
  });

  it('--container flags a container started without the runtime and passes one started with it', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'agents']);
    await env.startContainer('with-runtime', [
      '--runtime',
      'sharedprop',
      '-v',
      'agents:/run/netns',
    ]);
    await env.startContainer('without-runtime', ['-v', 'agents:/run/netns']);
    try {
      const good = await sharedprop(['doctor', '--container', 'with-runtime']);
      expect(good.exitCode).toBe(0);
      expect(good.stdout).toMatch(
        /ok +container with-runtime: \/run\/netns: volume agents is shared/,
      );
      const bad = await sharedprop(['doctor', '--container', 'without-runtime']);
      expect(bad.exitCode).not.toBe(0);
      expect(bad.stdout).toMatch(
        /fail +container without-runtime: \/run\/netns: .*started without --runtime sharedprop/,
      );
    } finally {
      await env.docker(['rm', '-f', 'with-runtime', 'without-runtime']);
    }
  });

  it('reports a leaked submount; prune detaches it and leaves the files alone', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'leaky']);
    const host = await env.volumeHostPath('leaky');
    await writeFile(path.join(host, 'data-file'), 'volume data');
    // A container binds its own /etc into the volume and exits without unmounting it.
    // (It stays, stopped: with a directory storage driver, removing it would delete the files.)
    await env.dockerOk([
      'run',
      '--name',
      'leaker',
      '--network',
      'none',
      ...WITH_RUNTIME,
      '-v',
      'leaky:/mnt',
      env.image,
      'sh',
      '-c',
      'echo leaked > /etc/leak-marker && mkdir -p /mnt/etc && mount --bind /etc /mnt/etc',
    ]);
    await waitForFile(path.join(host, 'etc', 'leak-marker'));
    expect((await hostMountsAt(path.join(host, 'etc'))).length).toBeGreaterThan(0);

    const ls = await sharedprop(['ls', '--json']);
    const rows = JSON.parse(ls.stdout) as {
      name: string;
      submounts: { path: string; leaked: boolean }[];
    }[];
    expect(rows.find((r) => r.name === 'leaky')?.submounts).toEqual([
      expect.objectContaining({ path: '/etc', leaked: true }),
    ]);
    const doctor = await sharedprop(['doctor']);
    expect(doctor.stdout).toMatch(/warn +volume leaky: .*1 leaked: .*\/etc/);
    const table = await sharedprop(['ls']);
    expect(table.stdout).toMatch(/^leaky +0 +1 \(1 leaked\)/m);

    const pruned = await sharedprop(['prune']);
    expect(pruned.exitCode).toBe(0);
    expect(pruned.stdout).toMatch(/leaky: detached .*\/etc/);
    expect(await hostMountsWithin(path.join(host, 'etc'))).toEqual([]);
    expect(await readFile(path.join(host, 'data-file'), 'utf8')).toBe('volume data');
    expect((await sharedprop(['doctor'])).stdout).toMatch(
      /^ok +volume leaky: shared mount point, 0 submount/m,
    );
    await env.dockerOk(['rm', 'leaker']);
  });

  it('prune never touches a submount that a running container holds', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'held']);
    const host = await env.volumeHostPath('held');
    await env.startContainer(
      'holder',
      [...WITH_RUNTIME, '-v', 'held:/mnt'],
      [
        'sh',
        '-c',
        'mkdir -p /mnt/etc && mount --bind /etc /mnt/etc && touch /mnt/ready && sleep 3600',
      ],
    );
    try {
      await waitForFile(path.join(host, 'ready'));
      const pruned = await sharedprop(['prune']);
      expect(pruned.stdout).not.toMatch(/held: detached/);
      expect((await hostMountsAt(path.join(host, 'etc'))).length).toBeGreaterThan(0);
    } finally {
      await env.docker(['rm', '-f', 'holder']);
    }
  });
});

describe(onEngine('doctor on an engine in a slave mount namespace'), () => {
  it('exits non-zero and names MountFlags=slave', async () => {
    const slave = await DockerDaemon.start({
      wrapCommand: ['unshare', '-m', '--propagation', 'slave'],
    });
    try {
      const result = await sharedprop(['doctor'], slave);
      expect(result.exitCode).not.toBe(0);
      expect(result.stdout).toMatch(
        /fail +daemon-namespace: dockerd \(pid \d+\) runs in a mount namespace that is a slave of the host's/,
      );
      expect(result.stdout).toMatch(/MountFlags=slave/);
    } finally {
      await slave.stop();
    }
  });
});
