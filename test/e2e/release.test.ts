/**
 * End-to-end: sharedprop as a released product. Two releases (`make release`) are pushed to a
 * local registry (`make push`, Debian's docker-registry on 127.0.0.1), then, on a private dockerd
 * with no Node on PATH, the standalone CLI of the first one installs the plugin and the runtime,
 * a network namespace made in a running container propagates, `sharedprop upgrade` moves to the
 * second version while the containers run (their namespaces stay, on the host and in each other),
 * and `sharedprop uninstall` keeps the data.
 *
 * The releases are built by `make e2e-releases` (a prerequisite of `make test-e2e`).
 */
import { execa } from 'execa';
import { createServer } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DockerDaemon, REPO_ROOT, hostMountsAt, onEngine } from './harness/index.js';
import { buildBusyboxImage } from './harness/busybox-image.js';
import { MAKE_QROUTER_NETNS, WITH_RUNTIME, waitForFile } from './harness/containers.js';
import { volumeHostPath } from './harness/plugin.js';
import { DriverProcess } from '../support/driver-process.js';

const SETUP_MS = 600_000;
const TEST_MS = 300_000;
/** The versions `make e2e-releases` builds (Makefile: E2E_RELEASES). */
const V1 = '0.0.0-e2e.1';
const V2 = '0.0.0-e2e.2';
const PLUGIN = 'sharedprop';

const releaseDir = (version: string) => path.join(REPO_ROOT, 'build', 'release', version);
const tarballOf = (version: string) => `sharedprop-${version}-linux-amd64.tar.gz`;

let daemon: DockerDaemon;
let image: string;
let work: string;
let registry: { port: number; stop: () => Promise<void> } | undefined;
/** PATH for the standalone CLI: docker, mount, umount and flock, and no node. */
let noNodePath: string;
let cliDir: string;
let dataDir: string;
let runtimeDir: string;
let nsenter: string;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Debian's docker-registry, on 127.0.0.1 (which dockerd trusts without TLS), for this run. */
async function startRegistry(dir: string) {
  const port = await freePort();
  const config = path.join(dir, 'registry.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'registry-data')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = execa('docker-registry', ['serve', config], { reject: false, all: true });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${String((await child).all ?? '')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

/** The standalone CLI of release V1, in dockerd's mount namespace, with no Node on PATH. */
function sharedprop(args: string[]) {
  // nsenter by its full path: PATH has no nsenter either.
  const [, ...prefix] = daemon.inNamespace();
  return execa(nsenter, [...prefix, path.join(cliDir, 'sharedprop'), ...args], {
    env: { ...daemon.cliEnv(), PATH: noNodePath },
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 300_000,
  });
}

async function sharedpropOk(args: string[]): Promise<string> {
  const result = await sharedprop(args);
  if (result.exitCode !== 0) {
    throw new Error(
      `sharedprop ${args.join(' ')} exited ${result.exitCode}:\n${String(result.all)}\n--- dockerd:\n${await daemon.logTail(40)}`,
    );
  }
  return String(result.all);
}

const docker = (args: string[]) => daemon.dockerOk(args);

async function pluginInspect(): Promise<{
  Enabled: boolean;
  Config: { Description: string; Env: { Name: string; Value: string }[] };
  Settings: { Env: string[]; Mounts: { Name: string; Source: string }[] };
}> {
  return (JSON.parse(await docker(['plugin', 'inspect', PLUGIN])) as never[])[0] as never;
}

const configVersion = (p: Awaited<ReturnType<typeof pluginInspect>>) =>
  p.Config.Env.find((e) => e.Name === 'SHAREDPROP_VERSION')?.Value;

/** How many mounts dockerd's namespace has at `target`. */
async function daemonMountsAt(target: string): Promise<number> {
  const [command, ...prefix] = daemon.inNamespace();
  const table = await execa(command as string, [...prefix, 'cat', '/proc/self/mountinfo']);
  return table.stdout.split('\n').filter((line) => line.split(' ')[4] === target).length;
}

/** The network namespace a container reaches through /run/netns/qrouter-1. */
async function routerSeenBy(container: string): Promise<string> {
  return (
    await docker([
      'exec',
      container,
      'nsenter',
      '--net=/run/netns/qrouter-1',
      'readlink',
      '/proc/self/ns/net',
    ])
  ).trim();
}

async function routerSeenByHost(hostPath: string): Promise<string> {
  const result = await execa('nsenter', [
    `--net=${path.join(hostPath, 'qrouter-1')}`,
    'readlink',
    '/proc/self/ns/net',
  ]);
  return result.stdout.trim();
}

beforeAll(async () => {
  for (const version of [V1, V2]) {
    await stat(path.join(releaseDir(version), tarballOf(version))).catch(() => {
      throw new Error(`release ${version} is missing: run make e2e-releases first`);
    });
  }
  work = await mkdtemp('/tmp/sharedprop-e2e-release-');
  noNodePath = path.join(work, 'path');
  await mkdir(noNodePath);
  for (const tool of ['docker', 'mount', 'umount', 'flock']) {
    const found = (await execa('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    await symlink(found, path.join(noNodePath, tool));
  }
  nsenter = (await execa('sh', ['-c', 'command -v nsenter'])).stdout.trim();
  registry = await startRegistry(work);
  daemon = await DockerDaemon.start({
    keepLogAs: path.join(REPO_ROOT, 'build', 'e2e-logs', 'release.dockerd.log'),
  });
  image = await buildBusyboxImage(daemon);
  dataDir = path.join(daemon.base, 'plugin-data');
  runtimeDir = path.join(daemon.base, 'bin');
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
    'make release: the plugin stamped with its version, a standalone CLI and runtime, a tarball and its checksum',
    async () => {
      const dir = releaseDir(V1);
      const check = await execa('sha256sum', ['-c', `${tarballOf(V1)}.sha256`], { cwd: dir });
      expect(check.stdout).toBe(`${tarballOf(V1)}: OK`);
      await execa('tar', ['-xzf', path.join(dir, tarballOf(V1)), '-C', work]);
      cliDir = path.join(work, `sharedprop-${V1}`);
      const env = { PATH: noNodePath };
      const cli = await execa(path.join(cliDir, 'sharedprop'), ['--version'], {
        env,
        extendEnv: false,
      });
      expect(cli.stdout).toBe(V1);
      // The wrapper's line first; runc's follow (dockerd reads the last "version" line: runc's).
      const runtime = await execa(path.join(cliDir, 'sharedprop-runtime'), ['--version']);
      const lines = runtime.stdout.split('\n');
      expect(lines[0]).toBe(`sharedprop-runtime version ${V1}`);
      expect(lines[1]).toMatch(/^runc version /);
      const config = JSON.parse(
        await readFile(path.join(dir, 'plugin', 'config.json'), 'utf8'),
      ) as {
        description: string;
        env: { name: string; value: string }[];
      };
      expect(config.description).toMatch(new RegExp(`^sharedprop ${V1.replace(/\./g, '\\.')}:`));
      expect(config.env.find((e) => e.name === 'SHAREDPROP_VERSION')?.value).toBe(V1);
      const sizes = await execa(
        'du',
        ['-sm', 'plugin/rootfs', 'sharedprop', 'sharedprop-runtime-create', tarballOf(V1)],
        {
          cwd: dir,
        },
      );
      console.log(`release sizes (MB):\n${sizes.stdout}`);
    },
    TEST_MS,
  );

  it(
    "the release's sharedprop serves by itself, with no Node on PATH: Create, Mount, and a Remove that deletes the data",
    async () => {
      const driver = await DriverProcess.start({
        parentDir: work,
        command: [path.join(cliDir, 'sharedprop')],
        env: { PATH: noNodePath },
      });
      try {
        expect(await driver.ok('/Plugin.Activate', {})).toEqual({ Implements: ['VolumeDriver'] });
        await driver.ok('/VolumeDriver.Create', { Name: 'standalone' });
        const { Mountpoint } = (await driver.ok('/VolumeDriver.Mount', {
          Name: 'standalone',
          ID: 'c1',
        })) as { Mountpoint: string };
        await writeFile(path.join(Mountpoint, 'payload'), 'kept until Remove\n');
        await driver.ok('/VolumeDriver.Unmount', { Name: 'standalone', ID: 'c1' });
        await driver.ok('/VolumeDriver.Remove', { Name: 'standalone' });
        // Deleted, not left in the trash: the delete helper travels beside the executable.
        expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
        expect(await driver.log()).not.toMatch(
          /sharedprop-rmtree is missing|could not all be deleted/,
        );
      } finally {
        await driver.destroy();
      }
    },
    TEST_MS,
  );

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
