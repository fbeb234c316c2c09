/**
 * `sharedprop plugin install` with a fake engine and a fake `run`: the refusal while running
 * containers use the plugin's volumes, the docker commands issued, the data directory, the
 * settings and the messages. No root, no docker.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { installPlugin, PluginInstallError } from '../../../src/install/plugin-install.js';
import { container, depsFor, failed, plugin, VOLUMES } from './plugin-harness.js';

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
