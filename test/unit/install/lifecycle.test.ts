/**
 * `sharedprop install|uninstall|upgrade` through their real command definitions, with fakes for
 * the engine, docker, the runtime install and systemd: what each does, in order, and the errors a
 * user gets for a command line that cannot work.
 */
import { Command } from 'commander';
import { registerLifecycleCommands, type LifecycleDeps } from '../../../src/commands/lifecycle.js';
import type { RunResult } from '../../../src/system/exec.js';
import { EngineError } from '../../../src/docker/engine-client.js';
import { FakeEngine, type FakeEngineState } from '../../support/cli-fakes.js';

function world(options: { standalone?: boolean; engine?: FakeEngineState } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const calls: string[] = [];
  let exitCode = 0;
  const report = { reload: { kind: 'not-needed' as const }, daemonJsonChanged: true };
  const deps: LifecycleDeps = {
    connect: async () => new FakeEngine(options.engine ?? {}),
    run: async (command: string, args: readonly string[]): Promise<RunResult> => {
      calls.push([command, ...args.slice(0, 3)].join(' '));
      return { stdout: '', stderr: '' };
    },
    mounts: {
      table: async () => [],
      mount: async () => undefined,
      umount: async () => undefined,
      mkdir: async () => undefined,
      rmdir: async () => undefined,
    },
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    setExitCode: (c) => {
      exitCode = c;
    },
    installRuntime: async (o) => {
      calls.push(`runtime install ${o.binary}`);
      return { ...report, binaryPath: `${o.dir}/sharedprop-runtime`, binaryChanged: true };
    },
    uninstallRuntime: async (o) => {
      calls.push(`runtime uninstall ${o.dir}`);
      return { ...report, binaryPath: `${o.dir}/sharedprop-runtime`, binaryRemoved: true };
    },
    installService: async (o) => {
      calls.push(
        `service install ${o.name} ${[...o.command, ...(o.serveArguments ?? [])].join(' ')}`,
      );
      return { unitFile: `${o.unitDir}/${o.name}.service`, systemd: { kind: 'enabled' } };
    },
    uninstallService: async (o) => {
      calls.push(`service uninstall ${o.name}`);
      return { unitFile: `${o.unitDir}/${o.name}.service`, systemd: { kind: 'disabled' } };
    },
    // A host with 8 GiB: --tmpfs-max-size is read against it.
    hostMemory: () => ({ pageSize: 4096, memoryBytes: 8n << 30n }),
    serveWith: () =>
      options.standalone
        ? { command: ['/opt/sp/sharedprop'] }
        : { command: ['/usr/bin/node', '/src/dist/cli.js'] },
  };
  const program = new Command().exitOverride();
  registerLifecycleCommands(program, deps);
  const run = async (args: string[]) => {
    await program.parseAsync(['node', 'sharedprop', ...args]);
    return { out: out.join(''), err: err.join(''), calls, exitCode };
  };
  return { run };
}

describe('sharedprop install', () => {
  it('--plugin REF: installs the managed plugin from the registry, then the runtime', async () => {
    const result = await world().run([
      'install',
      '--plugin',
      'reg:5000/sharedprop:1.0.0',
      '--data-dir',
      '/srv/sp',
      '--runtime-binary',
      '/opt/sp/sharedprop-runtime',
      '--runtime-dir',
      '/opt/bin',
    ]);
    expect(result.err).toBe('');
    expect(result.calls).toEqual([
      'docker --version',
      'docker plugin install --grant-all-permissions',
      'docker plugin enable sharedprop',
      'runtime install /opt/sp/sharedprop-runtime',
    ]);
    expect(result.out).toMatch(/^installed \/opt\/bin\/sharedprop-runtime$/m);
    expect(result.out).toMatch(/^done in \d+\.\d s$/m);
  });

  it('--host-process: writes and enables the service that runs serve with this Node and CLI', async () => {
    const result = await world().run(['install', '--host-process', '--name', 'svc']);
    expect(result.calls).toEqual([
      'service install svc /usr/bin/node /src/dist/cli.js',
      expect.stringMatching(/^runtime install /),
    ]);
    expect(result.out).toMatch(
      /^systemd: enabled and started \(it starts before docker.service\)$/m,
    );
  });

  it("--host-process passes --tmpfs-max-size and --engine-storage to serve, with the engine's own storage", async () => {
    const result = await world({ engine: { info: { dockerRootDir: '/srv/docker' } } }).run([
      'install',
      '--host-process',
      '--tmpfs-max-size',
      '2g',
      '--engine-storage',
      '/srv/a',
      '/var/lib/docker/overlay2',
    ]);
    expect(result.err).toBe('');
    expect(result.calls[0]).toBe(
      'service install sharedprop /usr/bin/node /src/dist/cli.js --tmpfs-max-size 2g --engine-storage /srv/a /srv/docker/overlay2 /srv/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots',
    );
  });

  it('--host-process needs no running dockerd: the given settings only', async () => {
    const down = new EngineError('unreachable', 'cannot connect to the Docker daemon');
    const result = await world({ engine: { failAll: down } }).run([
      'install',
      '--host-process',
      '--engine-storage',
      '/srv/a',
    ]);
    expect(result.err).toBe('');
    expect(result.calls[0]).toBe(
      'service install sharedprop /usr/bin/node /src/dist/cli.js --engine-storage /srv/a',
    );
  });

  it.each([
    [
      ['--tmpfs-max-size', '9g'],
      /--tmpfs-max-size "9g" is 9663676416 bytes \(9 GiB\), above the host's memory/,
    ],
    [['--tmpfs-max-size', '1x'], /--tmpfs-max-size "1x"/],
    [
      ['--engine-storage', 'rel'],
      /--engine-storage: engine storage root "rel" must be an absolute path/,
    ],
  ])('--host-process refuses %j before it installs anything', async (args, message) => {
    const result = await world().run(['install', '--host-process', ...args]);
    expect(result.err).toMatch(message);
    expect(result.exitCode).toBe(1);
    expect(result.calls).toEqual([]);
  });

  it('needs exactly one of --plugin and --host-process', async () => {
    for (const args of [['install'], ['install', '--host-process', '--plugin', 'r/x:1']]) {
      const result = await world().run(args);
      expect(result.err).toBe(
        'sharedprop install: give either --plugin REF (a managed plugin) or --host-process\n',
      );
      expect(result.exitCode).toBe(1);
      expect(result.calls).toEqual([]);
    }
  });

  it("the standalone CLI's service runs the standalone executable itself", async () => {
    const result = await world({ standalone: true }).run(['install', '--host-process']);
    expect(result.err).toBe('');
    expect(result.calls).toEqual([
      'service install sharedprop /opt/sp/sharedprop',
      expect.stringMatching(/^runtime install /),
    ]);
  });
});

describe('sharedprop uninstall', () => {
  it('removes the plugin (data kept), then the runtime; --host-process removes the service', async () => {
    const plugin = await world().run(['uninstall']);
    expect(plugin.calls).toEqual(['docker --version', 'runtime uninstall /usr/local/bin']);
    expect(plugin.out).toMatch(/^no plugin named sharedprop is installed; nothing to do$/m);

    const service = await world().run(['uninstall', '--host-process']);
    expect(service.calls).toEqual([
      'service uninstall sharedprop',
      'runtime uninstall /usr/local/bin',
    ]);
    expect(service.out).toMatch(/volume data stays in its data directory/);
  });
});
