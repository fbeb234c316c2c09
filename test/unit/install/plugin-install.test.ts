/**
 * `sharedprop plugin install|uninstall` with a fake engine and a fake `run`: which volumes are the
 * plugin's, the refusal while running containers use them, the docker commands issued, the data
 * directory, the messages and the exit codes. No root, no docker.
 */
import { Command } from 'commander';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ContainerDetails, PluginSummary } from '../../../src/docker/engine-client.js';
import {
  containersUsingVolumes,
  isPluginReference,
  volumesOfPlugin,
} from '../../../src/docker/plugin-volumes.js';
import { isOurDriver } from '../../../src/doctor/gather.js';
import { registerPluginCommands } from '../../../src/commands/plugin.js';
import {
  installPlugin,
  PluginInstallError,
  uninstallPlugin,
  type PluginDeps,
} from '../../../src/install/plugin-install.js';
import { CommandError, type RunResult } from '../../../src/system/exec.js';
import { FakeEngine, socketError, type FakeEngineState } from '../../support/cli-fakes.js';
import { FakeHostMounts, hostEntry } from '../../support/host-mount-fakes.js';

const volume = (name: string, driver: string) => ({ name, driver, mountpoint: `/mnt/${name}` });
const container = (name: string, volumes: string[], running = true): ContainerDetails => ({
  id: `id-${name}`,
  name,
  running,
  pid: running ? 100 : 0,
  mounts: volumes.map((v) => ({
    type: 'volume',
    name: v,
    driver: 'sharedprop',
    destination: '/mnt',
  })),
});
const plugin = (name: string, enabled = true): PluginSummary => ({
  id: `id-${name}`,
  name,
  enabled,
});

const VOLUMES = [
  volume('plain', 'sharedprop'),
  volume('tagged', 'sharedprop:latest'),
  volume('other-tag', 'sharedprop:v2'),
  volume('prefix', 'sharedprop-old:latest'),
  volume('local', 'local'),
];

/** A `run` that records every command and answers from `answers` (by its joined arguments). */
function fakeRun(answers: Record<string, string | CommandError> = {}) {
  const commands: string[][] = [];
  const run = async (command: string, args: readonly string[]): Promise<RunResult> => {
    commands.push([command, ...args]);
    const answer = answers[args.join(' ')];
    if (answer instanceof CommandError) throw answer;
    return { stdout: answer ?? '', stderr: '' };
  };
  return { run, commands };
}

const failed = (args: string[]) =>
  new CommandError('docker', args, 1, 'Error response from daemon');

function depsFor(state: FakeEngineState, answers: Record<string, string | CommandError> = {}) {
  const { run, commands } = fakeRun(answers);
  const lines: string[] = [];
  const deps: PluginDeps = { engine: new FakeEngine(state), run, say: (l) => lines.push(l) };
  return { deps, commands, lines };
}

describe('which volumes belong to the plugin', () => {
  it.each([
    ['sharedprop', 'sharedprop', true],
    ['sharedprop:latest', 'sharedprop', true],
    ['sharedprop', 'sharedprop:latest', true],
    ['sharedprop:latest', 'sharedprop:latest', true],
    ['sharedprop:v2', 'sharedprop:v2', true],
    ['sharedprop:v2', 'sharedprop', false],
    ['sharedprop', 'sharedprop:v2', false],
    ['sharedprop-old', 'sharedprop', false],
    ['sharedprop-old:latest', 'sharedprop', false],
    ['sharedpro', 'sharedprop', false],
    ['localhost:5000/sharedprop', 'localhost:5000/sharedprop:latest', true],
    ['localhost:5000/sharedprop', 'sharedprop', false],
    ['local', 'sharedprop', false],
  ])('driver %s is plugin %s: %s', (driver, name, expected) => {
    expect(isPluginReference(driver, name)).toBe(expected);
    // The doctor asks the same question and gets the same answer.
    expect(isOurDriver(driver, name)).toBe(expected);
  });

  it('lists the volumes of NAME and NAME:latest, not another tag or a plugin with a common prefix', async () => {
    const engine = new FakeEngine({ volumes: VOLUMES });
    expect(await volumesOfPlugin(engine, 'sharedprop')).toEqual(['plain', 'tagged']);
    expect(await volumesOfPlugin(engine, 'sharedprop:latest')).toEqual(['plain', 'tagged']);
    expect(await volumesOfPlugin(engine, 'sharedprop:v2')).toEqual(['other-tag']);
    expect(await volumesOfPlugin(engine, 'sharedprop-old')).toEqual(['prefix']);
  });

  it('finds the running containers that use them', async () => {
    const engine = new FakeEngine({
      volumes: VOLUMES,
      containers: [
        container('web', ['tagged', 'local']),
        container('db', ['plain']),
        container('stopped', ['plain'], false),
        container('elsewhere', ['prefix', 'other-tag']),
      ],
    });
    expect(await containersUsingVolumes(engine, 'sharedprop')).toEqual([
      { container: 'db', volume: 'plain' },
      { container: 'web', volume: 'tagged' },
    ]);
  });
});

describe('plugin install', () => {
  let dir: string;
  let pluginDir: string;
  let dataDir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'plugin-install-'));
    pluginDir = path.join(dir, 'plugin');
    mkdirSync(path.join(pluginDir, 'rootfs'), { recursive: true });
    writeFileSync(path.join(pluginDir, 'config.json'), '{}');
    dataDir = path.join(dir, 'var', 'lib', 'sharedprop');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const options = (extra: Partial<Parameters<typeof installPlugin>[0]> = {}) => ({
    source: { dir: pluginDir },
    name: 'sharedprop',
    dataDir,
    force: false,
    ...extra,
  });
  /** The one `plugin set` of the data directory: the mount's source, and HOST_DATA_DIR with it. */
  const setDataDir = () => [
    'docker',
    'plugin',
    'set',
    'sharedprop',
    `data.source=${dataDir}`,
    `HOST_DATA_DIR=${dataDir}`,
  ];

  it('creates the data directory 0700, then creates, configures and enables the plugin', async () => {
    const { deps, commands, lines } = depsFor({});
    const umask = process.umask(0o022);
    try {
      await installPlugin(options({ logLevel: 'debug' }), deps);
    } finally {
      process.umask(umask);
    }
    expect(statSync(dataDir).isDirectory()).toBe(true);
    expect(statSync(dataDir).mode & 0o7777).toBe(0o700);
    expect(commands).toEqual([
      ['docker', '--version'],
      ['docker', 'plugin', 'create', 'sharedprop', pluginDir],
      [...setDataDir(), 'LOG_LEVEL=debug'],
      ['docker', 'plugin', 'enable', 'sharedprop'],
    ]);
    expect(lines).toEqual([
      `created ${dataDir} (mode 0700)`,
      `installed plugin sharedprop (data: ${dataDir}); volumes: docker volume create -d sharedprop NAME`,
    ]);
  });

  it("tells the plugin a moved data root's storage, so that reap=on-unmount recognises its containers", async () => {
    const { deps, commands } = depsFor({ info: { dockerRootDir: '/srv/docker' } });
    await installPlugin(options(), deps);
    const storage =
      'SHAREDPROP_ENGINE_STORAGE=/srv/docker/overlay2:/srv/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots';
    expect(commands.slice(2)).toEqual([
      setDataDir(),
      ['docker', 'plugin', 'set', 'sharedprop', storage],
      ['docker', 'plugin', 'enable', 'sharedprop'],
    ]);
  });

  it("passes --tmpfs-max-size and --engine-storage on as the plugin's settings, with the engine's own storage", async () => {
    const { deps, commands } = depsFor({ info: { dockerRootDir: '/srv/docker' } });
    await installPlugin(
      options({
        tmpfsMaxSize: '25%',
        engineStorage: ['/srv/other//overlay2/', '/var/lib/docker/overlay2'],
      }),
      deps,
    );
    expect(commands.slice(2)).toEqual([
      setDataDir(),
      [
        'docker',
        'plugin',
        'set',
        'sharedprop',
        'SHAREDPROP_TMPFS_MAX_SIZE=25%',
        'SHAREDPROP_ENGINE_STORAGE=/srv/other/overlay2:/srv/docker/overlay2:/srv/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots',
      ],
      ['docker', 'plugin', 'enable', 'sharedprop'],
    ]);
  });

  it.each([
    [{ tmpfsMaxSize: 'lots' }, /--tmpfs-max-size "lots"/],
    [{ tmpfsMaxSize: '17179869184g' }, /--tmpfs-max-size "17179869184g"/],
    [{ engineStorage: ['overlay2'] }, /--engine-storage: .*"overlay2" must be an absolute path/],
    [{ engineStorage: ['/srv/a:b'] }, /none can contain ':'/],
  ])('refuses %j before it changes anything: %s', async (extra, message) => {
    const { deps, commands } = depsFor({ plugins: [] });
    await expect(installPlugin(options(extra), deps)).rejects.toThrow(message);
    expect(commands).toEqual([['docker', '--version']]);
  });

  it('a plugin that does not take a setting the user gave is an error, and is not enabled', async () => {
    const args = ['plugin', 'set', 'sharedprop', 'SHAREDPROP_TMPFS_MAX_SIZE=1g'];
    const { deps, commands } = depsFor({}, { [args.join(' ')]: failed(args) });
    await expect(installPlugin(options({ tmpfsMaxSize: '1g' }), deps)).rejects.toThrow(
      /sharedprop is installed \(disabled\) but does not take SHAREDPROP_TMPFS_MAX_SIZE: /,
    );
    expect(commands.at(-1)).toEqual(['docker', ...args]);
  });

  it('a plugin that does not take the storage setting (an older release) is installed all the same', async () => {
    const storage =
      'SHAREDPROP_ENGINE_STORAGE=/srv/docker/overlay2:/srv/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots';
    const args = ['plugin', 'set', 'sharedprop', storage];
    const { deps, commands, lines } = depsFor(
      { info: { dockerRootDir: '/srv/docker' } },
      { [args.join(' ')]: failed(args) },
    );
    await installPlugin(options(), deps);
    expect(commands.at(-1)).toEqual(['docker', 'plugin', 'enable', 'sharedprop']);
    expect(lines).toContain(
      'sharedprop does not take SHAREDPROP_ENGINE_STORAGE: reap=on-unmount recognises only containers in /var/lib/docker/overlay2, /var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots, /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots',
    );
  });

  it('leaves an existing data directory as it is, and sets no LOG_LEVEL unless asked', async () => {
    mkdirSync(dataDir, { recursive: true, mode: 0o755 });
    const { deps, commands, lines } = depsFor({});
    await installPlugin(options(), deps);
    expect(statSync(dataDir).mode & 0o777).toBe(0o755);
    expect(commands.some((c) => c.some((a) => a.startsWith('LOG_LEVEL=')))).toBe(false);
    expect(lines[0]).toMatch(/^installed plugin sharedprop/);
  });

  it('replaces the installed plugin (an upgrade) when no running container uses its volumes', async () => {
    const { deps, commands, lines } = depsFor({
      plugins: [plugin('sharedprop:latest'), plugin('sharedprop-old:latest')],
      volumes: VOLUMES,
      containers: [container('other', ['prefix', 'local']), container('stopped', ['plain'], false)],
    });
    await installPlugin(options(), deps);
    expect(commands.slice(1)).toEqual([
      ['docker', 'plugin', 'disable', '-f', 'sharedprop'],
      ['docker', 'plugin', 'rm', '-f', 'sharedprop'],
      ['docker', 'plugin', 'create', 'sharedprop', pluginDir],
      setDataDir(),
      ['docker', 'plugin', 'enable', 'sharedprop'],
    ]);
    expect(lines).toContain(
      'replacing the installed sharedprop (volume data stays in its data directory)',
    );
  });

  it('does not disable a plugin that is disabled already', async () => {
    const { deps, commands } = depsFor({ plugins: [plugin('sharedprop:latest', false)] });
    await installPlugin(options(), deps);
    expect(commands[1]).toEqual(['docker', 'plugin', 'rm', '-f', 'sharedprop']);
  });

  it('refuses while a running container uses a volume of the plugin, unless forced', async () => {
    const state = {
      plugins: [plugin('sharedprop:latest')],
      volumes: VOLUMES,
      containers: [container('web', ['tagged']), container('db', ['plain'])],
    };
    const refused = depsFor(state);
    const error = await installPlugin(options(), refused.deps).catch((e: Error) => e);
    expect(error).toBeInstanceOf(PluginInstallError);
    expect((error as Error).message).toBe(
      'running containers use volumes of sharedprop: db(plain) web(tagged); stop them first, or use --force (make: FORCE=1) to replace the plugin anyway',
    );
    expect(refused.commands).toEqual([['docker', '--version']]);

    const forced = depsFor(state);
    await installPlugin(options({ force: true }), forced.deps);
    expect(forced.commands.map((c) => c.slice(1, 3).join(' '))).toEqual([
      '--version',
      'plugin disable',
      'plugin rm',
      'plugin create',
      'plugin set',
      'plugin enable',
    ]);
  });

  it('installs from a registry reference with its settings, disabled until it is configured', async () => {
    const ref = '127.0.0.1:5000/sharedprop:1.2.3';
    const { deps, commands, lines } = depsFor({});
    await installPlugin(options({ source: { ref }, logLevel: 'warn' }), deps);
    expect(commands.slice(1)).toEqual([
      [
        'docker',
        'plugin',
        'install',
        '--grant-all-permissions',
        '--disable',
        '--alias',
        'sharedprop',
        ref,
        `data.source=${dataDir}`,
        `HOST_DATA_DIR=${dataDir}`,
        'LOG_LEVEL=warn',
      ],
      ['docker', 'plugin', 'enable', 'sharedprop'],
    ]);
    expect(lines).toContain(`pulling ${ref}`);
  });

  it('says so when the plugin does not start', async () => {
    const { deps } = depsFor({}, { 'plugin enable sharedprop': failed(['plugin', 'enable']) });
    await expect(installPlugin(options(), deps)).rejects.toThrow(
      "sharedprop was created but does not start; dockerd's log holds the plugin's output",
    );
  });

  it('refuses a directory that is not a built plugin, and a relative data directory', async () => {
    const { deps, commands } = depsFor({});
    await expect(installPlugin(options({ source: { dir } }), deps)).rejects.toThrow(
      `${dir} has no config.json and rootfs/: run 'make plugin' first`,
    );
    await expect(installPlugin(options({ dataDir: 'data' }), deps)).rejects.toThrow(
      'the data directory must be an absolute path, not data',
    );
    expect(commands).toEqual([]);
  });
});

describe('plugin uninstall', () => {
  const mounts = JSON.stringify([
    { Name: 'data', Source: '/srv/sharedprop', Destination: '/data' },
  ]);
  const inspect = 'plugin inspect --format {{json .Settings.Mounts}} sharedprop';
  const options = { name: 'sharedprop', force: false, fallbackDataDir: '/var/lib/sharedprop' };

  it('disables with -f, removes, and says where the data is kept and how many volumes', async () => {
    const { deps, commands, lines } = depsFor(
      { plugins: [plugin('sharedprop:latest')], volumes: VOLUMES },
      { [inspect]: mounts },
    );
    await uninstallPlugin(options, deps);
    expect(commands).toEqual([
      ['docker', '--version'],
      ['docker', 'plugin', 'inspect', '--format', '{{json .Settings.Mounts}}', 'sharedprop'],
      ['docker', 'plugin', 'disable', '-f', 'sharedprop'],
      ['docker', 'plugin', 'rm', '-f', 'sharedprop'],
    ]);
    expect(lines).toEqual([
      'removed plugin sharedprop',
      'volume data is kept in /srv/sharedprop (2 volume(s)): install the plugin again with DATA_DIR=/srv/sharedprop to use them, or delete that directory to discard them',
    ]);
  });

  it('does nothing when the plugin is not installed (a plugin with a common prefix is not it)', async () => {
    const { deps, commands, lines } = depsFor({ plugins: [plugin('sharedprop-old:latest')] });
    await uninstallPlugin(options, deps);
    expect(commands).toEqual([['docker', '--version']]);
    expect(lines).toEqual(['no plugin named sharedprop is installed; nothing to do']);
  });

  it('refuses while a running container uses a volume, unless forced', async () => {
    const state = {
      plugins: [plugin('sharedprop:latest')],
      volumes: VOLUMES,
      containers: [container('web', ['plain'])],
    };
    const refused = depsFor(state, { [inspect]: mounts });
    await expect(uninstallPlugin(options, refused.deps)).rejects.toThrow(
      'running containers use volumes of sharedprop: web(plain); stop them first, or use --force (make: FORCE=1) to remove the plugin anyway',
    );
    expect(refused.commands).toEqual([['docker', '--version']]);

    const forced = depsFor(state, { [inspect]: mounts });
    await uninstallPlugin({ ...options, force: true }, forced.deps);
    expect(forced.commands.at(-1)).toEqual(['docker', 'plugin', 'rm', '-f', 'sharedprop']);
  });

  it('reports the fallback data directory when the plugin has no data mount source', async () => {
    const { deps, lines } = depsFor(
      { plugins: [plugin('sharedprop:latest')] },
      { [inspect]: '[]' },
    );
    await uninstallPlugin(options, deps);
    expect(lines[1]).toMatch(/^volume data is kept in \/var\/lib\/sharedprop \(0 volume\(s\)\)/);
  });
});

describe('the plugin commands', () => {
  async function cli(args: string[], state: FakeEngineState, answers = {}) {
    const { run } = fakeRun(answers);
    let stdout = '';
    let stderr = '';
    let code = 0;
    const program = new Command().exitOverride();
    registerPluginCommands(program, {
      connect: async () => new FakeEngine(state),
      run,
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      setExitCode: (c) => (code = c),
      env: {},
      mounts: new FakeHostMounts([hostEntry('/')]),
    });
    await program.parseAsync(['node', 'sharedprop', 'plugin', ...args]);
    return { stdout, stderr, code };
  }

  it('exits 3 with one line when the engine cannot be reached', async () => {
    const result = await cli(['uninstall'], { failAll: socketError('ECONNREFUSED') });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /^sharedprop plugin uninstall: cannot reach the Docker engine at .*\n$/,
    );
  });

  it('exits 1 with one line when it refuses', async () => {
    const result = await cli(['uninstall', '--name', 'sharedprop'], {
      plugins: [plugin('sharedprop:latest')],
      volumes: VOLUMES,
      containers: [container('web', ['plain'])],
    });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')).toEqual([
      'sharedprop plugin uninstall: running containers use volumes of sharedprop: web(plain); stop them first, or use --force (make: FORCE=1) to remove the plugin anyway',
      '',
    ]);
  });

  it('exits 1 when the docker CLI is missing', async () => {
    const result = await cli(['uninstall'], {}, { '--version': failed(['--version']) });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('sharedprop plugin uninstall: the docker CLI is required\n');
  });

  it('exits 0 and prints what it did', async () => {
    const result = await cli(['uninstall'], {});
    expect(result).toEqual({
      stdout: 'no plugin named sharedprop is installed; nothing to do\n',
      stderr: '',
      code: 0,
    });
  });
});
