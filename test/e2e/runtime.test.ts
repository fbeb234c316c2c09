/**
 * Container-to-container propagation through the sharedprop runtime wrapper, on a private dockerd
 * with the plugin and the runtime installed by `make install`: the seed scenario, Kolla-style
 * network namespaces, and the README's compose example with every compose this engine has. What
 * newer engines change (subpath mounts, `rro`, `features`) is in runtime-newer-engines.test.ts.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  E2eEnvironment,
  REPO_ROOT,
  hasComposeV2,
  hostMountsAt,
  hostMountsWithin,
  onEngine,
} from './harness/index.js';
import { unmountEverythingUnder } from '../support/host-mounts.js';
import { composeFile } from '../support/readme-blocks.js';
import { CAN_MOUNT, MAKE_QROUTER_NETNS, WITH_RUNTIME, waitForFile } from './harness/containers.js';

jest.setTimeout(300_000);

let env: E2eEnvironment;
beforeAll(async () => {
  env = await E2eEnvironment.start();
}, 600_000);
afterAll(() => env?.stop(), 600_000);

/**
 * Starts container A: it marks its own /etc, bind-mounts it onto /mnt/etc in the volume, says
 * so with /mnt/ready, and unmounts when /mnt/done appears (or stays, when `leak`).
 */
async function startMounter(name: string, volume: string, runtime: string[], marker: string) {
  await env.startContainer(
    name,
    [...runtime, '-v', `${volume}:/mnt`],
    [
      'sh',
      '-c',
      `echo ${marker} > /etc/sharedprop-marker && mkdir -p /mnt/etc && mount --bind /etc /mnt/etc && touch /mnt/ready && ` +
        'while [ ! -e /mnt/done ]; do sleep 0.1; done; umount /mnt/etc; rm -f /mnt/ready /mnt/done',
    ],
  );
}

async function finishMounter(name: string, host: string): Promise<void> {
  await writeFile(path.join(host, 'done'), '');
  await env.dockerOk(['wait', name]);
  await env.dockerOk(['rm', name]);
}

describe(onEngine('the seed scenario'), () => {
  it('a bind mount made in A (with the runtime) is seen by B (default runtime) and the host, three times over without growth', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'seed']);
    const host = await env.volumeHostPath('seed');
    const counts: number[] = [];
    for (let round = 1; round <= 3; round++) {
      await startMounter(`seed-a${round}`, 'seed', WITH_RUNTIME, `round-${round}`);
      await waitForFile(path.join(host, 'ready'));
      const seenByB = await env.runOk(['-v', 'seed:/mnt'], ['cat', '/mnt/etc/sharedprop-marker']);
      expect(seenByB.trim()).toBe(`round-${round}`);
      expect((await readFile(path.join(host, 'etc', 'sharedprop-marker'), 'utf8')).trim()).toBe(
        `round-${round}`,
      );
      counts.push((await hostMountsAt(path.join(host, 'etc'))).length);
      await finishMounter(`seed-a${round}`, host);
      expect(await hostMountsAt(path.join(host, 'etc'))).toHaveLength(0);
    }
    expect(counts[0]).toBeGreaterThan(0);
    expect(new Set(counts).size).toBe(1); // the same count every round: no growth
    expect(await hostMountsWithin(path.join(host, 'etc'))).toEqual([]);
  });

  it('without the runtime, B and the host see nothing: why the wrapper exists', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'nowrapper']);
    const host = await env.volumeHostPath('nowrapper');
    await startMounter('nowrap-a', 'nowrapper', CAN_MOUNT, 'hidden');
    try {
      await waitForFile(path.join(host, 'ready'));
      const seenByB = await env.run(
        ['-v', 'nowrapper:/mnt'],
        ['cat', '/mnt/etc/sharedprop-marker'],
      );
      expect(seenByB.exitCode).not.toBe(0);
      expect(await hostMountsAt(path.join(host, 'etc'))).toHaveLength(0);
      await expect(readFile(path.join(host, 'etc', 'sharedprop-marker'))).rejects.toThrow(/ENOENT/);
    } finally {
      await finishMounter('nowrap-a', host);
    }
  });

  it('a container without a sharedprop volume runs unchanged with the runtime', async () => {
    const out = await env.runOk(['--runtime', 'sharedprop'], ['sh', '-c', 'echo hi; exit 0']);
    expect(out.trim()).toBe('hi');
    const code = await env.run(['--runtime', 'sharedprop'], ['sh', '-c', 'exit 7']);
    expect(code.exitCode).toBe(7);
  });
});

describe(onEngine('Kolla-style network namespaces'), () => {
  it('"l3" makes /run/netns/qrouter-1; "dhcp" enters it and is in another namespace than its own', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'netns']);
    const host = await env.volumeHostPath('netns');
    await env.startContainer('l3', [...WITH_RUNTIME, '-v', 'netns:/run/netns'], MAKE_QROUTER_NETNS);
    try {
      await waitForFile(path.join(host, 'qrouter-1.id'));
      const routerNs = (await readFile(path.join(host, 'qrouter-1.id'), 'utf8')).trim();
      const out = await env.runOk(
        [...CAN_MOUNT, '-v', 'netns:/run/netns'],
        [
          'sh',
          '-c',
          'readlink /proc/self/ns/net; nsenter --net=/run/netns/qrouter-1 readlink /proc/self/ns/net',
        ],
      );
      const [own, entered] = out.trim().split('\n');
      expect(entered).toBe(routerNs);
      expect(own).toMatch(/^net:\[\d+\]$/);
      expect(entered).not.toBe(own);
      const onHost = await hostMountsAt(path.join(host, 'qrouter-1'));
      expect(onHost.length).toBeGreaterThan(0);
      expect(onHost[0]?.fsType).toBe('nsfs');
    } finally {
      await env.docker(['rm', '-f', 'l3']);
    }
    // The namespace file outlives l3 (kernel semantics); removing the volume detaches it.
    expect((await hostMountsAt(path.join(host, 'qrouter-1'))).length).toBeGreaterThan(0);
    await env.dockerOk(['volume', 'rm', 'netns']);
    expect(await hostMountsWithin(host)).toEqual([]);
  });
});

describe(onEngine('Kolla-style network namespaces on a tmpfs volume (like /run/netns)'), () => {
  it('agents share a namespace, it survives the plugin killed and restarted, and a reboot leaves the volume empty', async () => {
    await env.dockerOk([
      'volume',
      'create',
      '-d',
      'sharedprop',
      '-o',
      'type=tmpfs',
      '-o',
      'size=16m',
      'runnetns',
    ]);
    expect(await env.volumeStatus('runnetns')).toMatchObject({ type: 'tmpfs', size: '16777216' });
    const host = await env.volumeHostPath('runnetns');
    const atHost = await hostMountsAt(host);
    expect(atHost.length).toBeGreaterThan(0);
    expect(atHost.every((e) => e.fsType === 'tmpfs')).toBe(true);
    const enterRouter = async () =>
      (
        await env.runOk(
          [...CAN_MOUNT, '-v', 'runnetns:/run/netns'],
          ['nsenter', '--net=/run/netns/qrouter-1', 'readlink', '/proc/self/ns/net'],
        )
      ).trim();

    await env.startContainer(
      'l3-tmpfs',
      [...WITH_RUNTIME, '-v', 'runnetns:/run/netns'],
      MAKE_QROUTER_NETNS,
    );
    try {
      await waitForFile(path.join(host, 'qrouter-1.id'));
      const routerNs = (await readFile(path.join(host, 'qrouter-1.id'), 'utf8')).trim();
      expect(await enterRouter()).toBe(routerNs);
      const mountsBefore = (await hostMountsWithin(host)).length;

      // The plugin is killed while l3 runs, and dockerd restarts it: the tmpfs, its files and
      // the namespace stay, for new containers too.
      const before = await env.pluginPid();
      process.kill(before!, 'SIGKILL');
      await env.waitForPlugin({ notPid: before, timeoutMs: 60_000 });
      expect(await enterRouter()).toBe(routerNs);
      expect((await readFile(path.join(host, 'qrouter-1.id'), 'utf8')).trim()).toBe(routerNs);
      expect((await hostMountsWithin(host)).length).toBe(mountsBefore);
      expect(await env.volumeStatus('runnetns')).toMatchObject({ type: 'tmpfs' });
    } finally {
      await env.docker(['rm', '-f', 'l3-tmpfs']);
    }

    // A reboot, simulated: the plugin is down and every mount of the volume is gone.
    await env.disablePlugin();
    expect(await unmountEverythingUnder(host)).toEqual([]);
    await env.dockerOk(['plugin', 'enable', 'sharedprop']);
    const listing = await env.runOk(['-v', 'runnetns:/run/netns'], ['ls', '-A', '/run/netns']);
    expect(listing.trim()).toBe('');
    const fresh = await hostMountsAt(host);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((e) => e.fsType === 'tmpfs' && e.sharedGroup !== undefined)).toBe(true);
    await env.dockerOk(['volume', 'rm', 'runnetns']);
    expect(await hostMountsWithin(host)).toEqual([]);
  });
});

describe(onEngine('reap=on-unmount'), () => {
  it("the last container's exit detaches the bind it leaked, and keeps the namespace it made", async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', '-o', 'reap=on-unmount', 'reaped']);
    const host = await env.volumeHostPath('reaped');
    // The container binds its own /etc into the volume, keeps a network namespace there (as
    // `ip netns add` does), and exits without cleaning up.
    await env.runOk(
      [...WITH_RUNTIME, '-v', 'reaped:/mnt'],
      [
        'sh',
        '-c',
        'mkdir -p /mnt/etc && mount --bind /etc /mnt/etc && ' +
          'touch /mnt/qrouter-1 && unshare --net=/mnt/qrouter-1 true && ' +
          'readlink /proc/self/ns/net > /mnt/own-ns',
      ],
    );
    // dockerd's Unmount of the last mount ID reaped the leak; the namespace file is kept.
    expect(await hostMountsAt(path.join(host, 'etc'))).toEqual([]);
    const ns = await hostMountsAt(path.join(host, 'qrouter-1'));
    expect(ns.length).toBeGreaterThan(0);
    expect(ns.every((e) => e.fsType === 'nsfs')).toBe(true);
    const entered = await env.runOk(
      [...CAN_MOUNT, '-v', 'reaped:/run/netns'],
      ['nsenter', '--net=/run/netns/qrouter-1', 'readlink', '/proc/self/ns/net'],
    );
    expect(entered.trim()).toMatch(/^net:\[\d+\]$/);
    expect(entered.trim()).not.toBe((await readFile(path.join(host, 'own-ns'), 'utf8')).trim());
    const ls = await env.sharedprop(['ls']);
    expect(ls.stdout).toMatch(/reaped +0 +1 /);
    await env.dockerOk(['volume', 'rm', 'reaped']);
    expect(await hostMountsWithin(host)).toEqual([]);
  });
});

/** The compose file of the README's "Compose" section, exactly as written there. */
async function readmeComposeFile(): Promise<string> {
  return composeFile(await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8'));
}

/** The compose implementations of this engine: v1 on bookworm; v2, as CLI plugin and as command, on newer ones. */
const COMPOSE_CLIS = hasComposeV2()
  ? [
      { title: '`docker compose` (the v2 CLI plugin)', command: ['docker', 'compose'], major: '2' },
      { title: '`docker-compose` v2', command: ['docker-compose'], major: '2' },
    ]
  : [{ title: '`docker-compose` v1', command: ['docker-compose'], major: '1' }];

describe.each(COMPOSE_CLIS)(onEngine("the README's compose example with $title"), (cli) => {
  it('l3 (runtime: sharedprop) makes a namespace and a bind that dhcp and the host see; down -v removes everything, host files intact', async () => {
    const dir = await mkdtemp(path.join(env.daemon.base, 'compose-'));
    const sentinel = path.join(dir, 'host-files');
    await mkdir(sentinel);
    await writeFile(path.join(sentinel, 'precious'), 'keep me');
    const project = `spcompose${cli.command.length}`;
    // The README's file as written, and a second file for what it leaves to the reader: the
    // image, what the agents run, and this machine's limits (no network; seccomp's veto).
    await writeFile(path.join(dir, 'docker-compose.yml'), await readmeComposeFile());
    const agent = (command: string[], extra: string[] = []) => [
      `    image: ${env.image}`,
      '    network_mode: none',
      '    security_opt: [seccomp=unconfined, apparmor=unconfined]',
      ...extra,
      // `$$`: compose substitutes `$name` from the environment.
      `    command: ${JSON.stringify(command).replaceAll('$', '$$$$')}`,
    ];
    await writeFile(
      path.join(dir, 'override.yml'),
      [
        'services:',
        '  l3:',
        ...agent(
          [
            'sh',
            '-c',
            'mkdir -p /run/netns/host && mount --bind /sentinel /run/netns/host || exit 1; ' +
              (MAKE_QROUTER_NETNS[2] as string),
          ],
          [`    volumes: ["${sentinel}:/sentinel"]`],
        ),
        '  dhcp:',
        ...agent(['sleep', '3600'], ['    cap_add: [SYS_ADMIN]']),
        '',
      ].join('\n'),
    );
    const [command, ...prefix] = cli.command;
    const compose = (args: string[]) =>
      execa(
        command as string,
        [...prefix, '-p', project, '-f', 'docker-compose.yml', '-f', 'override.yml', ...args],
        {
          cwd: dir,
          env: { ...env.daemon.cliEnv(), COMPOSE_INTERACTIVE_NO_CLI: '1' },
          extendEnv: false,
          reject: false,
          timeout: 180_000,
        },
      );
    try {
      const version = await compose(['version', '--short']);
      expect(version.exitCode).toBe(0);
      expect(version.stdout.trim().replace(/^v/, '').split('.')[0]).toBe(cli.major);

      const up = await compose(['up', '-d']);
      expect({ exitCode: up.exitCode, stderr: up.exitCode === 0 ? '' : up.stderr }).toEqual({
        exitCode: 0,
        stderr: '',
      });
      const host = await env.volumeHostPath(`${project}_netns`);
      await waitForFile(path.join(host, 'qrouter-1.id'));
      const routerNs = (await readFile(path.join(host, 'qrouter-1.id'), 'utf8')).trim();
      const seen = await compose([
        'exec',
        '-T',
        'dhcp',
        'sh',
        '-c',
        'cat /run/netns/host/precious; echo; nsenter --net=/run/netns/qrouter-1 readlink /proc/self/ns/net',
      ]);
      expect(seen.exitCode).toBe(0);
      expect(seen.stdout.trim().split('\n')).toEqual(['keep me', routerNs]);
      expect((await hostMountsAt(path.join(host, 'host'))).length).toBeGreaterThan(0);
      expect((await hostMountsAt(path.join(host, 'qrouter-1')))[0]?.fsType).toBe('nsfs');

      const down = await compose(['down', '-v']);
      expect(down.exitCode).toBe(0);
      expect(await hostMountsWithin(host)).toEqual([]);
      const volumes = await env.dockerOk(['volume', 'ls', '-q']);
      expect(volumes.split('\n')).not.toContain(`${project}_netns`);
      expect(await readFile(path.join(sentinel, 'precious'), 'utf8')).toBe('keep me');
    } finally {
      await compose(['down', '-v', '-t', '1']);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
