/**
 * README promises that had no test of their own, each tried on a private dockerd: the runtime as
 * `default-runtime`, a reader started before the writer mounts, a tmpfs submount (not only
 * binds), `sharedprop ls` host paths and `prune --dry-run`, and a host-process `serve` that
 * dockerd finds by its socket.
 */
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  E2eEnvironment,
  REPO_ROOT,
  hostMountsAt,
  installBinDir,
  hostMountsWithin,
  onEngine,
} from './harness/index.js';
import { CAN_MOUNT, MAKE_QROUTER_NETNS, WITH_RUNTIME, waitForFile } from './harness/containers.js';
import { DriverProcess } from '../support/driver-process.js';
import { quickStartCommands } from '../support/readme-blocks.js';

jest.setTimeout(300_000);

let env: E2eEnvironment;
beforeAll(async () => {
  env = await E2eEnvironment.start({ name: 'readme-promises' });
}, 600_000);
afterAll(() => env?.stop(), 600_000);

function sharedprop(args: string[]) {
  return env.sharedprop(args);
}

describe(onEngine('propagation'), () => {
  it('a reader started before the writer mounts sees the tmpfs the writer mounts later', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'early']);
    const host = await env.volumeHostPath('early');
    await env.startContainer('early-reader', ['-v', 'early:/mnt']);
    await env.startContainer(
      'late-writer',
      [...WITH_RUNTIME, '-v', 'early:/mnt'],
      [
        'sh',
        '-c',
        'mkdir -p /mnt/fs && mount -t tmpfs late /mnt/fs && echo in-tmpfs > /mnt/fs/file && ' +
          'touch /mnt/ready && sleep 3600',
      ],
    );
    try {
      await waitForFile(path.join(host, 'ready'));
      const seen = await env.dockerOk(['exec', 'early-reader', 'cat', '/mnt/fs/file']);
      expect(seen.trim()).toBe('in-tmpfs');
      const onHost = await hostMountsAt(path.join(host, 'fs'));
      expect(onHost.map((e) => e.fsType)).toContain('tmpfs');
    } finally {
      await env.docker(['rm', '-f', 'late-writer', 'early-reader']);
    }
    await env.dockerOk(['volume', 'rm', 'early']);
    expect(await hostMountsAt(path.join(host, 'fs'))).toEqual([]);
  });

  it('"default-runtime": "sharedprop" is safe: a plain container runs unchanged, a volume propagates', async () => {
    await env.reconfigure('default-runtime', 'sharedprop');
    try {
      const plain = await env.run([], ['sh', '-c', 'echo plain']);
      expect(plain.exitCode).toBe(0);
      expect(plain.stdout.trim()).toBe('plain');
      await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'defaulted']);
      const host = await env.volumeHostPath('defaulted');
      await env.startContainer(
        'default-writer',
        [...CAN_MOUNT, '-v', 'defaulted:/mnt'], // no --runtime: the default is the wrapper
        [
          'sh',
          '-c',
          'mkdir -p /mnt/etc && mount --bind /etc /mnt/etc && touch /mnt/ready && sleep 3600',
        ],
      );
      try {
        await waitForFile(path.join(host, 'ready'));
        const runtime = await env.dockerOk([
          'inspect',
          '--format',
          '{{.HostConfig.Runtime}}',
          'default-writer',
        ]);
        expect(runtime.trim()).toBe('sharedprop');
        expect((await hostMountsAt(path.join(host, 'etc'))).length).toBeGreaterThan(0);
        const seen = await env.runOk(['-v', 'defaulted:/mnt'], ['ls', '/mnt/etc/hostname']);
        expect(seen.trim()).toBe('/mnt/etc/hostname');
      } finally {
        await env.docker(['rm', '-f', 'default-writer']);
      }
      // dockerd creates managed plugins' containers with the default runtime too, sharedprop's
      // own included: disable and enable, and a dockerd restart, still bring it back.
      await env.disablePlugin();
      await env.dockerOk(['plugin', 'enable', 'sharedprop']);
      await env.waitForPlugin();
      await env.restart();
      const after = await env.runOk(
        ['-v', 'defaulted:/mnt'],
        ['sh', '-c', 'echo again > /mnt/after && cat /mnt/after'],
      );
      expect(after.trim()).toBe('again');
      await env.dockerOk(['volume', 'rm', 'defaulted']);
    } finally {
      await env.reconfigure('default-runtime', undefined);
    }
  });

  it('Swarm: a global service with a sharedprop --mount makes a submount that a plain container sees (default runtime)', async () => {
    await env.reconfigure('default-runtime', 'sharedprop');
    const service = 'sp-global';
    try {
      await env.dockerOk(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
      await env.dockerOk([
        'service',
        'create',
        '--detach',
        '--name',
        service,
        '--mode',
        'global',
        '--cap-add',
        'CAP_SYS_ADMIN',
        '--mount',
        'type=volume,source=swarmvol,target=/mnt,volume-driver=sharedprop',
        env.image,
        'sh',
        '-c',
        'mkdir -p /mnt/etc && mount --bind /etc /mnt/etc && touch /mnt/ready && sleep 3600',
      ]);
      // The task's volume is this node's: local scope, made by the node's driver.
      let host = '';
      const deadline = Date.now() + 90_000;
      while (!host && Date.now() < deadline) {
        host = await env.volumeHostPath('swarmvol').catch(() => '');
        if (!host) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(host).not.toBe('');
      await waitForFile(path.join(host, 'ready'), 90_000);
      const seen = await env.runOk(['-v', 'swarmvol:/mnt'], ['ls', '/mnt/etc/hostname']);
      expect(seen.trim()).toBe('/mnt/etc/hostname');
      const runtimes = await env.dockerOk([
        'ps',
        '--filter',
        `label=com.docker.swarm.service.name=${service}`,
        '--format',
        '{{.ID}}',
      ]);
      const task = runtimes.split('\n')[0] ?? '';
      expect(
        (await env.dockerOk(['inspect', '--format', '{{.HostConfig.Runtime}}', task])).trim(),
      ).toBe('sharedprop');

      await env.dockerOk(['service', 'rm', service]);
      const gone = Date.now() + 60_000;
      while (
        (await env.dockerOk([
          'ps',
          '-aq',
          '--filter',
          `label=com.docker.swarm.service.name=${service}`,
        ])) &&
        Date.now() < gone
      ) {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      await env.dockerOk(['volume', 'rm', 'swarmvol']);
      expect(await hostMountsWithin(host)).toEqual([]);
    } finally {
      await env.docker(['service', 'rm', service]);
      await env.docker(['swarm', 'leave', '--force']);
      await env.reconfigure('default-runtime', undefined);
    }
  });
});

/** The README's quick start, as written: the first sh block under "## Quick start". */
async function quickStart(): Promise<string[]> {
  return quickStartCommands(await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8'));
}

describe(onEngine('the quick start'), () => {
  it('runs as written: A keeps its tmpfs, B prints hello, ls shows it, and clean-up leaves nothing', async () => {
    const commands = await quickStart();
    expect(commands[0]).toMatch(/^make install\b/); // done by the harness, the same way
    // The README's `busybox` is this engine's busybox image.
    await env.dockerOk(['tag', env.image, 'busybox']);
    const outputs: string[] = [];
    const cliEnv = env.daemon.cliEnv();
    const binDir = installBinDir(env.daemon);
    for (const command of commands.slice(1)) {
      // Each line as a user's shell runs it: in the engine's mount namespace (where its plugin
      // sockets are), from the checkout, against this daemon only.
      const result = await execa(
        env.daemon.inNamespace()[0] as string,
        [
          ...env.daemon.inNamespace().slice(1),
          'sh',
          '-c',
          `cd "$0" && ${command.replace(/ +#.*$/, '')}`,
          REPO_ROOT,
        ],
        {
          // `make install` put `sharedprop` in this run's BIN_DIR (see installPlugin): first on PATH.
          env: { ...cliEnv, PATH: `${binDir}:${cliEnv.PATH ?? ''}` },
          extendEnv: false,
          reject: false,
          timeout: 120_000,
        },
      );
      expect({
        command,
        exitCode: result.exitCode,
        stderr: result.exitCode ? result.stderr : '',
      }).toEqual({ command, exitCode: 0, stderr: '' });
      outputs.push(String(result.stdout));
    }
    const at = (prefix: string) => commands.slice(1).findIndex((c) => c.startsWith(prefix));
    expect(outputs[at('docker run --rm')]?.trim()).toBe('hello');
    const listings = commands
      .slice(1)
      .map((c, i) => (c.startsWith('sharedprop ls') ? outputs[i] : undefined))
      .filter((o): o is string => o !== undefined);
    expect(listings).toHaveLength(2);
    const [listed, afterwards] = listings;
    expect(listed).toMatch(/\bdemo +1 +1 /);
    expect(afterwards).not.toMatch(/demo/);
    expect(afterwards).not.toMatch(/leak/i);
    // Nothing of the volume is left on the host: no directory, no mount.
    expect(await env.dockerOk(['volume', 'ls', '-q'])).not.toMatch(/^demo$/m);
    expect(
      (await hostMountsWithin(env.daemon.base)).filter((e) => e.mountPoint.includes('/demo')),
    ).toEqual([]);
    await env.dockerOk(['rmi', 'busybox']);
  });
});

describe(onEngine('the CLI on a leak'), () => {
  it('ls prints host paths that exist; prune --dry-run detaches nothing; prune detaches the leak', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'leaks']);
    const host = await env.volumeHostPath('leaks');
    await env.dockerOk([
      'run',
      '--name',
      'leaker-once',
      '--network',
      'none',
      ...WITH_RUNTIME,
      '-v',
      'leaks:/mnt',
      env.image,
      'sh',
      '-c',
      'mkdir -p /mnt/etc && mount --bind /etc /mnt/etc',
    ]);
    await env.dockerOk(['rm', 'leaker-once']);
    expect((await hostMountsAt(path.join(host, 'etc'))).length).toBeGreaterThan(0);

    const ls = await sharedprop(['ls', '--json']);
    expect(ls.exitCode).toBe(0);
    const row = (
      JSON.parse(ls.stdout) as { name: string; mountpoint: string; dataPath: string }[]
    ).find((r) => r.name === 'leaks');
    expect(row?.mountpoint).toBe(host);
    expect((await stat(row!.dataPath)).isDirectory()).toBe(true);
    expect((await stat(row!.mountpoint)).isDirectory()).toBe(true);

    const dry = await sharedprop(['prune', '--dry-run']);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toMatch(/leaks: would detach .*\/etc/);
    expect((await hostMountsAt(path.join(host, 'etc'))).length).toBeGreaterThan(0);

    const pruned = await sharedprop(['prune']);
    expect(pruned.exitCode).toBe(0);
    expect(await hostMountsAt(path.join(host, 'etc'))).toEqual([]);
    await env.dockerOk(['volume', 'rm', 'leaks']);
  });
});

describe(onEngine('the driver as a host process'), () => {
  /**
   * `sharedprop serve` on the host, under this run's directory; dockerd sees its socket as
   * /run/docker/plugins/NAME.sock and NAME is the driver's name.
   */
  async function startHostDriver(): Promise<{ name: string; driver: DriverProcess }> {
    const name = `sp-e2e-${randomBytes(4).toString('hex')}`;
    const driver = await DriverProcess.start({
      socket: path.join(env.daemon.pluginSocketDir, `${name}.sock`),
      parentDir: env.daemon.base,
    });
    return { name, driver };
  }

  it('dockerd finds `sharedprop serve` by its socket in /run/docker/plugins, and the data lives in its data root', async () => {
    const { name, driver } = await startHostDriver();
    try {
      await env.dockerOk(['volume', 'create', '-d', name, 'hostproc']);
      await env.runOk(['-v', 'hostproc:/mnt'], ['sh', '-c', 'echo from-container > /mnt/file']);
      const file = path.join(driver.dataRoot, 'volumes', 'hostproc', '_data', 'file');
      expect((await readFile(file, 'utf8')).trim()).toBe('from-container');
      await env.dockerOk(['volume', 'rm', 'hostproc']);
    } finally {
      await driver.destroy();
    }
  });

  it('-o path= adopts a /run/netns-like host directory: a namespace made in one container shows on the host and in another; Remove keeps the directory and its files', async () => {
    const { name, driver } = await startHostDriver();
    try {
      // The operator's directory, with a file of its own that must outlive the volume.
      const runNetns = path.join(driver.base, 'run-netns');
      await mkdir(runNetns);
      await writeFile(path.join(runNetns, 'operator-note'), 'keep me\n');
      await env.dockerOk(['volume', 'create', '-d', name, '-o', `path=${runNetns}`, 'adopted']);
      expect(await env.volumeStatus('adopted')).toMatchObject({ type: 'path', dataPath: runNetns });

      await env.startContainer(
        'adopt-l3',
        [...WITH_RUNTIME, '-v', 'adopted:/run/netns'],
        MAKE_QROUTER_NETNS,
      );
      let routerNs: string;
      try {
        await waitForFile(path.join(runNetns, 'qrouter-1.id'));
        routerNs = (await readFile(path.join(runNetns, 'qrouter-1.id'), 'utf8')).trim();
        // On the host, in the adopted directory itself, as `ip netns exec` would enter it.
        const onHost = await execa('nsenter', [
          `--net=${path.join(runNetns, 'qrouter-1')}`,
          'readlink',
          '/proc/self/ns/net',
        ]);
        expect(onHost.stdout.trim()).toBe(routerNs);
        expect((await hostMountsAt(path.join(runNetns, 'qrouter-1')))[0]?.fsType).toBe('nsfs');
        // In another container, which sees the operator's file as well.
        const other = await env.runOk(
          [...CAN_MOUNT, '-v', 'adopted:/run/netns'],
          [
            'sh',
            '-c',
            'cat /run/netns/operator-note; nsenter --net=/run/netns/qrouter-1 readlink /proc/self/ns/net',
          ],
        );
        expect(other.trim().split('\n')).toEqual(['keep me', routerNs]);
      } finally {
        await env.docker(['rm', '-f', 'adopt-l3']);
      }

      await env.dockerOk(['volume', 'rm', 'adopted']);
      // Nothing in the directory was deleted or detached: the namespace still works from the host.
      expect((await readdir(runNetns)).sort()).toEqual([
        'operator-note',
        'qrouter-1',
        'qrouter-1.id',
      ]);
      expect(await readFile(path.join(runNetns, 'operator-note'), 'utf8')).toBe('keep me\n');
      const after = await execa('nsenter', [
        `--net=${path.join(runNetns, 'qrouter-1')}`,
        'readlink',
        '/proc/self/ns/net',
      ]);
      expect(after.stdout.trim()).toBe(routerNs);
      // The volume's own mount point is gone from the driver's mount root.
      expect(await hostMountsWithin(path.join(driver.mountRoot, 'adopted'))).toEqual([]);
    } finally {
      await driver.destroy();
    }
  });
});
