/**
 * End-to-end: volumes outlive what happens to the plugin and to dockerd. Removal and
 * reinstallation, an install over the installed plugin, a dockerd restart, and a kill -9 of the
 * plugin process: every time the volumes are listed, mountable, their data intact, and each
 * volume's mount point is there once.
 */
import { execa } from 'execa';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseMountinfo, propagationOf } from '../../src/system/mountinfo.js';
import {
  E2eEnvironment,
  MAKE_NO_REBUILD,
  PLUGIN_NAME,
  REPO_ROOT,
  hostMountsWithin,
  onEngine,
  hostPathOfRoot,
  sharedpropCli,
} from './harness/index.js';
import { waitFor } from '../support/volume-checks.js';

const SETUP_MS = 600_000;
const TEST_MS = 300_000;
const VOLUMES = { plain: 'durable', owned: 'durable-owned' };

let env: E2eEnvironment;
beforeAll(async () => {
  env = await E2eEnvironment.start({ name: 'plugin-lifecycle' });
  await env.dockerOk(['volume', 'create', '-d', PLUGIN_NAME, VOLUMES.plain]);
  await env.dockerOk(['volume', 'create', '-d', PLUGIN_NAME, '-o', 'mode=0750', VOLUMES.owned]);
  for (const volume of Object.values(VOLUMES)) {
    await env.runOk(['-v', `${volume}:/mnt:nocopy`], ['sh', '-c', `echo ${volume} > /mnt/payload`]);
  }
}, SETUP_MS);
afterAll(async () => {
  await env?.stop();
}, SETUP_MS);

async function listed(): Promise<string[]> {
  const out = await env.dockerOk(['volume', 'ls', '--format', '{{.Name}}']);
  return out.split('\n').filter(Boolean).sort();
}

/**
 * Where the volume's mount point is, inside the plugin and on the host. The host shows one
 * mount per parent: dockerd's data root and the plugin's propagated mount are one peer group, so
 * the copy under the data root sits beneath the one under the propagated mount (Docker's layout,
 * constant). Never a mount stacked on one of its own.
 */
async function mountLayout(volume: string) {
  const hostPath = await env.volumeHostPath(volume);
  const host = await env.hostMountsAt(hostPath);
  const pid = await env.pluginPid();
  const mountPoint = path.join((await env.plugin()).propagatedMount, volume);
  const inside = parseMountinfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8')).filter(
    (e) => e.mountPoint === mountPoint,
  );
  const parents = host.map((e) => e.parentId);
  return {
    inside: inside.map((e) => propagationOf(e)),
    hostCount: host.length,
    hostParentsDistinct: new Set(parents).size === parents.length,
    stackedOnItself: host.some((e) => host.some((other) => other.id === e.parentId)),
    roots: [...new Set(await Promise.all(host.map((e) => hostPathOfRoot(e))))],
  };
}

/** Everything a user relies on, for every volume: listed, mountable, data intact, one mount. */
async function expectVolumesIntact(): Promise<void> {
  expect(await listed()).toEqual(Object.values(VOLUMES).sort());
  for (const volume of Object.values(VOLUMES)) {
    const read = await env.runOk(['-v', `${volume}:/mnt`], ['cat', '/mnt/payload']);
    expect(read).toBe(volume);
    expect(await mountLayout(volume)).toEqual({
      inside: ['shared'],
      hostCount: 2,
      hostParentsDistinct: true,
      stackedOnItself: false,
      roots: [path.join(env.dataDir, 'volumes', volume, '_data')],
    });
    expect(await env.volumeStatus(volume)).toMatchObject({ activeMounts: 0 });
  }
  // The volume created with mode=0750 keeps it (dockerd copies an image's mode only into an
  // empty volume, and this one was written to first with nocopy).
  const owned = await stat(path.join(env.dataDir, 'volumes', VOLUMES.owned, '_data'));
  expect(owned.mode & 0o777).toBe(0o750);
}

/** `make uninstall-plugin`, as a user runs it. */
async function uninstall(): Promise<{ exitCode: number; output: string }> {
  const result = await execa(
    'make',
    ['--no-print-directory', ...MAKE_NO_REBUILD, '-C', REPO_ROOT, 'uninstall-plugin'],
    {
      env: { ...env.daemon.cliEnv(), PLUGIN_NAME },
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      all: true,
    },
  );
  return { exitCode: result.exitCode ?? 1, output: String(result.all) };
}

it(
  onEngine('starts with every volume intact'),
  async () => {
    await expectVolumesIntact();
  },
  TEST_MS,
);

it(
  onEngine('keeps volumes and data when the plugin is removed and installed again'),
  async () => {
    const before = await env.plugin();
    const removed = await uninstall();
    expect(removed.exitCode).toBe(0);
    expect(removed.output).toContain(`volume data is kept in ${env.dataDir} (2 volume(s))`);
    expect((await env.docker(['plugin', 'inspect', PLUGIN_NAME])).exitCode).not.toBe(0);
    expect(await hostMountsWithin(path.dirname(before.hostPropagatedMount))).toHaveLength(0);
    expect(
      await readFile(path.join(env.dataDir, 'volumes', VOLUMES.plain, '_data', 'payload'), 'utf8'),
    ).toBe(`${VOLUMES.plain}\n`);

    await env.installPlugin();
    expect((await env.plugin()).id).not.toBe(before.id);
    await expectVolumesIntact();
  },
  TEST_MS,
);

it(
  onEngine('keeps volumes and data when the install runs over the installed plugin'),
  async () => {
    const before = await env.plugin();
    const output = await env.installPlugin();
    expect(output).toContain(`replacing the installed ${PLUGIN_NAME}`);
    expect((await env.plugin()).id).not.toBe(before.id);
    expect(await hostMountsWithin(path.dirname(before.hostPropagatedMount))).toHaveLength(0);
    await expectVolumesIntact();
  },
  TEST_MS,
);

it(
  onEngine('refuses to remove the plugin while a running container uses one of its volumes'),
  async () => {
    const user = await env.startContainer('plugin-user', ['-v', `${VOLUMES.plain}:/mnt`]);
    try {
      const result = await uninstall();
      expect(result.exitCode).not.toBe(0);
      expect(result.output).toContain(
        `running containers use volumes of ${PLUGIN_NAME}: ${user}(${VOLUMES.plain})`,
      );
      expect((await env.plugin()).enabled).toBe(true);
    } finally {
      await env.dockerOk(['rm', '-f', user]);
    }
  },
  TEST_MS,
);

it(
  onEngine('puts every mount point back exactly once after a plugin disable and enable'),
  async () => {
    const pid = await env.pluginPid();
    await env.disablePlugin();
    expect((await env.plugin()).enabled).toBe(false);
    await env.dockerOk(['plugin', 'enable', PLUGIN_NAME]);
    await env.waitForPlugin({ notPid: pid });
    await expectVolumesIntact();
  },
  TEST_MS,
);

it(
  onEngine('keeps volumes and data across a dockerd restart'),
  async () => {
    const before = await env.pluginPid();
    await env.restart();
    expect(await env.pluginPid()).not.toBe(before);
    await expectVolumesIntact();
  },
  TEST_MS,
);

it(
  onEngine('recovers when the plugin process is killed with SIGKILL'),
  async () => {
    const pid = await env.pluginPid();
    expect(pid).toBeDefined();
    process.kill(pid as number, 'SIGKILL');
    const restarted = await env.waitForPlugin({ notPid: pid });
    expect(restarted).not.toBe(pid);
    await expectVolumesIntact();
    // A volume created after the restart works the same way.
    await env.dockerOk(['volume', 'create', '-d', PLUGIN_NAME, 'after-kill']);
    expect(
      await env.runOk(['-v', 'after-kill:/mnt'], ['sh', '-c', 'echo ok > /mnt/f && cat /mnt/f']),
    ).toBe('ok');
    await env.dockerOk(['volume', 'rm', 'after-kill']);
  },
  TEST_MS,
);

it(
  onEngine(
    'with 400 volumes, comes back from a disable in time for dockerd, and a container uses a volume at once',
  ),
  async () => {
    // dockerd stops a managed plugin that does not listen within about 12 s of its start; each
    // mount point takes a few mount(8) calls to put back, and 400 of them used to take longer.
    const names = Array.from({ length: 400 }, (_, i) => `many${i}`);
    let next = 0;
    const inParallel = (work: (name: string) => Promise<unknown>) =>
      Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < names.length) await work(names[next++] as string);
        }),
      ).finally(() => (next = 0));
    await inParallel((Name) => env.client.createVolume({ Name, Driver: PLUGIN_NAME }));
    try {
      const pid = await env.pluginPid();
      // `sharedprop plugin restart` waits between disable and enable until dockerd has let go of
      // the plugin's mounts (20.10 and 26.1 unmount them after disable returned).
      const restart = await sharedpropCli(env.daemon, ['plugin', 'restart', '--name', PLUGIN_NAME]);
      expect({ exitCode: restart.exitCode, stderr: restart.stderr }).toEqual({
        exitCode: 0,
        stderr: '',
      });
      expect(restart.stdout).toMatch(
        /^restarted .* its volumes and running containers' mounts are kept$/m,
      );
      await env.waitForPlugin({ notPid: pid });
      // The last volume's mount point is the last to be put back: its Mount does it first.
      expect(
        await env.runOk(['-v', 'many399:/mnt'], ['sh', '-c', 'echo ok > /mnt/f && cat /mnt/f']),
      ).toBe('ok');
      const root = (await env.plugin()).propagatedMount;
      const mountPoints = async () =>
        parseMountinfo(await readFile(`/proc/${await env.pluginPid()}/mountinfo`, 'utf8'))
          .filter((e) => path.dirname(e.mountPoint) === root)
          .map((e) => `${path.basename(e.mountPoint)} ${propagationOf(e)}`)
          .sort();
      const expected = [...names, ...Object.values(VOLUMES)].map((n) => `${n} shared`).sort();
      await waitFor(
        'every mount point put back once',
        async () => JSON.stringify(await mountPoints()) === JSON.stringify(expected),
        120_000,
      ).catch(() => undefined);
      expect(await mountPoints()).toEqual(expected);
    } finally {
      await inParallel((name) => env.dockerOk(['volume', 'rm', name]));
    }
    await expectVolumesIntact();
  },
  TEST_MS,
);
