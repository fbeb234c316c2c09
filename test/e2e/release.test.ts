/**
 * End-to-end: sharedprop as a released product. Two releases (`make release`) are pushed to a
 * local registry (`make push`, Debian's docker-registry on 127.0.0.1), then, on a private dockerd
 * with no Node on PATH, the standalone CLI of the first one installs the plugin and the runtime,
 * a network namespace made in a running container propagates, `sharedprop upgrade` moves to the
 * second version while the containers run (their namespaces stay, on the host and in each other),
 * and `sharedprop uninstall` keeps the data. The tests run in order: each starts from what the
 * one before left. What `make release` builds is checked in release-artifacts.test.ts.
 *
 * The releases are built by `make e2e-releases` (a prerequisite of `make test-e2e`).
 */
import { execa } from 'execa';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DockerDaemon, REPO_ROOT, hostMountsAt, onEngine } from './harness/index.js';
import { buildBusyboxImage } from './harness/busybox-image.js';
import { MAKE_QROUTER_NETNS, WITH_RUNTIME, waitForFile } from './harness/containers.js';
import { volumeHostPath } from './harness/plugin.js';
import { startRegistry } from './harness/registry.js';
import {
  PLUGIN,
  SETUP_MS,
  StandaloneCli,
  TEST_MS,
  V1,
  V2,
  configVersion,
  inspectPlugin,
  namespaceMountsAt,
  releaseWorkDir,
  routerSeenByHost,
  routerSeenIn,
} from './harness/release.js';

let daemon: DockerDaemon;
let image: string;
let work: string;
let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
/** The standalone CLI of release V1, unpacked as the first release test does. */
let cli: StandaloneCli;
let dataDir: string;
let runtimeDir: string;

const sharedprop = (args: string[]) => cli.run(args);
const sharedpropOk = (args: string[]) => cli.ok(args);
const docker = (args: string[]) => daemon.dockerOk(args);
const pluginInspect = () => inspectPlugin(daemon);
/** How many mounts dockerd's namespace has at `target`. */
const daemonMountsAt = (target: string) => namespaceMountsAt(daemon, target);
const routerSeenBy = (container: string) => routerSeenIn(daemon, container);

beforeAll(async () => {
  const made = await releaseWorkDir();
  work = made.work;
  registry = await startRegistry(work);
  daemon = await DockerDaemon.start({
    keepLogAs: path.join(REPO_ROOT, 'build', 'e2e-logs', 'release.dockerd.log'),
  });
  image = await buildBusyboxImage(daemon);
  dataDir = path.join(daemon.base, 'plugin-data');
  runtimeDir = path.join(daemon.base, 'bin');
  cli = await StandaloneCli.unpack(V1, work, made.noNodePath, daemon);
}, SETUP_MS);

afterAll(async () => {
  await daemon?.stop();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
}, SETUP_MS);

describe(onEngine('a release, from a registry, upgraded with containers running'), () => {
  let hostPath: string;
  let routerNs: string;

  it(
    'make push puts both versions in the registry',
    async () => {
      for (const version of [V1, V2]) {
        const result = await execa(
          'make',
          [
            '--no-print-directory',
            '-C',
            REPO_ROOT,
            'push',
            `REGISTRY=127.0.0.1:${registry?.port}`,
            `VERSION=${version}`,
          ],
          { env: daemon.cliEnv(), extendEnv: false, reject: false, all: true, timeout: 300_000 },
        );
        expect({ exitCode: result.exitCode, all: result.exitCode ? result.all : '' }).toEqual({
          exitCode: 0,
          all: '',
        });
      }
      const tags = (await (
        await fetch(`http://127.0.0.1:${registry?.port}/v2/sharedprop/tags/list`)
      ).json()) as { tags: string[] };
      expect(tags.tags.sort()).toEqual([V1, V2]);
      // Nothing of the push is left on the engine.
      expect(await docker(['plugin', 'ls', '--format', '{{.Name}}'])).toBe('');
    },
    TEST_MS,
  );

  it(
    'sharedprop install, with no Node on PATH, installs the plugin from the registry with its settings, and the runtime',
    async () => {
      const started = Date.now();
      const output = await sharedpropOk([
        'install',
        '--plugin',
        `127.0.0.1:${registry?.port}/sharedprop:${V1}`,
        '--data-dir',
        dataDir,
        '--log-level',
        'debug',
        '--tmpfs-max-size',
        '64m',
        '--daemon-json',
        daemon.configFile,
        '--pidfile',
        daemon.pidFile,
        '--runtime-dir',
        runtimeDir,
      ]);
      console.log(`sharedprop install took ${Date.now() - started} ms:\n${output}`);
      const plugin = await pluginInspect();
      expect(plugin.Enabled).toBe(true);
      expect(configVersion(plugin)).toBe(V1);
      expect(plugin.Settings.Mounts.find((m) => m.Name === 'data')?.Source).toBe(dataDir);
      expect(plugin.Settings.Env).toEqual(
        expect.arrayContaining([
          `HOST_DATA_DIR=${dataDir}`,
          'LOG_LEVEL=debug',
          'SHAREDPROP_TMPFS_MAX_SIZE=64m',
        ]),
      );
      const runtimes = JSON.parse(
        await docker(['info', '--format', '{{json .Runtimes}}']),
      ) as Record<string, { path: string }>;
      expect(runtimes.sharedprop?.path).toBe(path.join(runtimeDir, 'sharedprop-runtime'));
      expect(output).toMatch(new RegExp(`installed plugin sharedprop ${V1.replace(/\./g, '\\.')}`));
    },
    TEST_MS,
  );

  it(
    'a namespace made in a running container is seen on the host and in a container already running',
    async () => {
      await docker(['volume', 'create', '-d', PLUGIN, 'netns']);
      await docker([
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        'netns:/run/netns',
        image,
        'sh',
        '-c',
        'echo kept > /run/netns/payload',
      ]);
      // dhcp first: it must receive what l3 mounts later.
      for (const [name, command] of [
        ['dhcp', ['sleep', '3600']],
        ['l3', MAKE_QROUTER_NETNS],
      ] as const) {
        await docker([
          'run',
          '-d',
          '--name',
          name,
          '--network',
          'none',
          ...WITH_RUNTIME,
          '-v',
          'netns:/run/netns',
          image,
          ...command,
        ]);
      }
      hostPath = await volumeHostPath(daemon, 'netns');
      await waitForFile(path.join(hostPath, 'qrouter-1.id'));
      routerNs = (await readFile(path.join(hostPath, 'qrouter-1.id'), 'utf8')).trim();
      expect(await routerSeenByHost(hostPath)).toBe(routerNs);
      expect(await routerSeenBy('dhcp')).toBe(routerNs);

      // The standalone CLI's other commands work with no Node: ls and doctor see it all, and the
      // CLI, the runtime and the plugin are of one version.
      const listed = JSON.parse(await sharedpropOk(['ls', '--json'])) as unknown;
      expect(JSON.stringify(listed)).toContain('qrouter-1');
      const doctor = await sharedprop(['doctor']);
      expect(String(doctor.all)).toMatch(
        new RegExp(
          `^ok +versions: CLI ${V1}, runtime ${V1}, plugin ${V1}$`.replace(/\./g, '\\.'),
          'm',
        ),
      );
    },
    TEST_MS,
  );

  it(
    'sharedprop upgrade moves to the next version: settings, volumes and the running agents’ namespaces stay; new containers join them',
    async () => {
      const mountsBefore = await daemonMountsAt(path.join(hostPath, 'qrouter-1'));
      const output = await sharedpropOk([
        'upgrade',
        `127.0.0.1:${registry?.port}/sharedprop:${V2}`,
      ]);
      console.log(`sharedprop upgrade:\n${output}`);
      expect(output).toContain('keeping the mounts of 1 volume(s) through the upgrade');
      const plugin = await pluginInspect();
      expect(plugin.Enabled).toBe(true);
      expect(configVersion(plugin)).toBe(V2);
      expect(plugin.Config.Description).toMatch(/^sharedprop 0\.0\.0-e2e\.2:/);
      expect(plugin.Settings.Mounts.find((m) => m.Name === 'data')?.Source).toBe(dataDir);
      expect(plugin.Settings.Env).toEqual(
        expect.arrayContaining([
          `HOST_DATA_DIR=${dataDir}`,
          'LOG_LEVEL=debug',
          'SHAREDPROP_TMPFS_MAX_SIZE=64m',
        ]),
      );
      // The volume is still the driver's, with its data, at the same host path.
      expect(await docker(['volume', 'ls', '--format', '{{.Name}}'])).toBe('netns');
      expect(await volumeHostPath(daemon, 'netns')).toBe(hostPath);
      // The running agents keep their namespace, and so does the host.
      expect(await routerSeenBy('l3')).toBe(routerNs);
      expect(await routerSeenBy('dhcp')).toBe(routerNs);
      expect(await routerSeenByHost(hostPath)).toBe(routerNs);
      // In dockerd's namespace, the namespace's bind is there once, as before.
      expect(await daemonMountsAt(path.join(hostPath, 'qrouter-1'))).toBe(mountsBefore);
      // Only the plugin was upgraded: doctor says the parts differ.
      const doctor = await sharedprop(['doctor']);
      expect(String(doctor.all)).toMatch(
        new RegExp(
          `^warn +versions: the parts of sharedprop are of different versions: CLI ${V1}, runtime ${V1}, plugin ${V2}$`.replace(
            /\./g,
            '\\.',
          ),
          'm',
        ),
      );
      // A container started after the upgrade sees all of it; what it mounts reaches the agents
      // and the host (the same peer group), and its unmount too.
      await docker([
        'run',
        '-d',
        '--name',
        'metadata',
        '--network',
        'none',
        ...WITH_RUNTIME,
        '-v',
        'netns:/run/netns',
        image,
        'sleep',
        '3600',
      ]);
      expect(await docker(['exec', 'metadata', 'cat', '/run/netns/payload'])).toBe('kept');
      expect(await routerSeenBy('metadata')).toBe(routerNs);
      await docker([
        'exec',
        'metadata',
        'sh',
        '-c',
        'mkdir /run/netns/late && mount -t tmpfs late /run/netns/late',
      ]);
      const fsAt = async (container: string) =>
        (
          await docker([
            'exec',
            container,
            'sh',
            '-c',
            'awk \'$5 == "/run/netns/late" {print $9}\' /proc/self/mountinfo',
          ])
        ).trim();
      for (const container of ['dhcp', 'l3']) expect(await fsAt(container)).toBe('tmpfs');
      expect((await hostMountsAt(path.join(hostPath, 'late')))[0]?.fsType).toBe('tmpfs');
      await docker(['exec', 'metadata', 'umount', '/run/netns/late']);
      for (const container of ['dhcp', 'l3']) expect(await fsAt(container)).toBe('');
      await docker(['rm', '-f', 'metadata']);
      // Nothing of the upgrade is left mounted in dockerd's namespace.
      const [command, ...prefix] = daemon.inNamespace();
      const left = await execa(command as string, [
        ...prefix,
        'sh',
        '-c',
        'grep -c " /run/sharedprop/" /proc/self/mountinfo || true',
      ]);
      expect(left.stdout.trim()).toBe('0');
    },
    TEST_MS,
  );

  it(
    "docker's own sequence (README) keeps volumes and data once the settings are set again; a running agent loses its namespace bind, which is why sharedprop upgrade exists",
    async () => {
      await docker(['plugin', 'disable', '-f', PLUGIN]);
      await docker([
        'plugin',
        'upgrade',
        '--grant-all-permissions',
        '--skip-remote-check',
        PLUGIN,
        `127.0.0.1:${registry?.port}/sharedprop:${V1}`,
      ]);
      // docker plugin inspect still shows the data directory, but the plugin would start on the
      // default one: the settings are set again, as the README says.
      await docker(['plugin', 'set', PLUGIN, `data.source=${dataDir}`, `HOST_DATA_DIR=${dataDir}`]);
      await docker(['plugin', 'enable', PLUGIN]);
      expect(configVersion(await pluginInspect())).toBe(V1);
      expect(await docker(['volume', 'ls', '--format', '{{.Name}}'])).toBe('netns');
      const read = await docker([
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        'netns:/run/netns',
        image,
        'cat',
        '/run/netns/payload',
      ]);
      expect(read).toBe('kept');
      // dockerd's unmount of the propagated mount reached the running agent's namespace bind.
      const binds = await docker([
        'exec',
        'l3',
        'sh',
        '-c',
        'awk \'$5 == "/run/netns/qrouter-1"\' /proc/self/mountinfo | wc -l',
      ]);
      expect(binds.trim()).toBe('0');
    },
    TEST_MS,
  );

  it(
    'sharedprop uninstall removes the plugin and the runtime, and keeps the data',
    async () => {
      await docker(['rm', '-f', 'l3', 'dhcp']);
      const output = await sharedpropOk([
        'uninstall',
        '--daemon-json',
        daemon.configFile,
        '--pidfile',
        daemon.pidFile,
        '--runtime-dir',
        runtimeDir,
      ]);
      console.log(`sharedprop uninstall:\n${output}`);
      expect(output).toContain(`volume data is kept in ${dataDir} (1 volume(s))`);
      expect(await docker(['plugin', 'ls', '--format', '{{.Name}}'])).toBe('');
      // dockerd rereads daemon.json on SIGHUP, in the background.
      const registered = async () =>
        'sharedprop' in
        (JSON.parse(await docker(['info', '--format', '{{json .Runtimes}}'])) as object);
      const deadline = Date.now() + 20_000;
      while ((await registered()) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 200));
      expect(await registered()).toBe(false);
      expect(
        await readFile(path.join(dataDir, 'volumes', 'netns', '_data', 'payload'), 'utf8'),
      ).toBe('kept\n');
    },
    TEST_MS,
  );
});
