/**
 * `sharedprop install|uninstall|upgrade`: the whole product on the engine DOCKER_HOST names, from
 * a registry, with the standalone CLI of a release (no Node, no sources on the host): the managed
 * plugin with its settings, and the runtime wrapper registered in daemon.json.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectEngine, type EngineClient } from '../docker/engine-client.js';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_PLUGIN_NAME,
  installPlugin,
  uninstallPlugin,
  type PluginDeps,
} from '../install/plugin-install.js';
import { upgradePlugin } from '../install/plugin-upgrade.js';
import { installService, uninstallService, type ServiceReport } from '../install/service-unit.js';
import { serveArguments, serveSettings } from '../install/serve-settings.js';
import type { HostMemory } from '../model/tmpfs-size.js';
import { hostMemory } from '../system/host-memory.js';
import { installRuntime, uninstallRuntime, BINARY_NAME } from '../install/runtime-install.js';
import { hostMountOps, type HostMountOps } from '../install/upgrade-mounts.js';
import { run } from '../system/exec.js';
import { IS_STANDALONE } from '../system/version.js';
import { failure } from './plugin.js';
import { installLines, uninstallLines } from './runtime.js';

export interface LifecycleDeps {
  connect: () => Promise<EngineClient>;
  run: PluginDeps['run'];
  mounts: HostMountOps;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  setExitCode: (code: number) => void;
  installRuntime: typeof installRuntime;
  uninstallRuntime: typeof uninstallRuntime;
  installService: typeof installService;
  uninstallService: typeof uninstallService;
  /** What a host-process service runs `serve` with: this executable, or Node and this module. */
  serveWith: () => { command: string[]; documentation?: string };
  /** The host's memory, against which --tmpfs-max-size is read. */
  hostMemory: () => HostMemory;
}

const defaultDeps: LifecycleDeps = {
  connect: connectEngine,
  run,
  mounts: hostMountOps,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
  installRuntime,
  uninstallRuntime,
  installService,
  uninstallService,
  hostMemory,
  serveWith: () =>
    IS_STANDALONE
      ? { command: [process.execPath] }
      : {
          command: [process.execPath, fileURLToPath(new URL('../cli.js', import.meta.url))],
          documentation: fileURLToPath(new URL('../../README.md', import.meta.url)),
        },
};

function serviceLines(report: ServiceReport, verb: 'install' | 'uninstall'): string[] {
  const done = verb === 'install' ? `wrote ${report.unitFile}` : `removed ${report.unitFile}`;
  switch (report.systemd.kind) {
    case 'enabled':
      return [done, 'systemd: enabled and started (it starts before docker.service)'];
    case 'disabled':
      return [done, 'systemd: stopped and disabled; volume data stays in its data directory'];
    case 'absent':
      return verb === 'install'
        ? [done, `systemd is not running here: start the driver with: ${report.systemd.start}`]
        : [done];
  }
}

/**
 * The runtime wrapper that comes with this CLI: next to the executable in a release, or the one
 * `make runtime` builds in a source checkout.
 */
export function defaultRuntimeBinary(): string {
  return IS_STANDALONE
    ? path.join(path.dirname(process.execPath), BINARY_NAME)
    : fileURLToPath(new URL(`../../build/${BINARY_NAME}`, import.meta.url));
}

interface RuntimeOptions {
  daemonJson: string;
  pidfile: string;
  runtimeDir: string;
}

function withRuntimeOptions(command: Command): Command {
  return command
    .option('--daemon-json <file>', "dockerd's configuration file", '/etc/docker/daemon.json')
    .option('--pidfile <file>', "dockerd's pidfile (it gets a SIGHUP)", '/var/run/docker.pid')
    .option(
      '--runtime-dir <dir>',
      'directory for the sharedprop-runtime wrapper',
      '/usr/local/bin',
    );
}

const runtimeTarget = (options: RuntimeOptions) => ({
  dir: options.runtimeDir,
  daemonJson: options.daemonJson,
  pidfile: options.pidfile,
});

export function registerLifecycleCommands(
  program: Command,
  deps: LifecycleDeps = defaultDeps,
): void {
  const say = (line: string) => deps.stdout(line + '\n');

  async function perform(verb: string, action: (engine: EngineClient) => Promise<void>) {
    try {
      await action(await deps.connect());
    } catch (error) {
      const { message, code } = failure(error);
      deps.stderr(`sharedprop ${verb}: ${message}\n`);
      deps.setExitCode(code);
    }
  }

  withRuntimeOptions(
    program
      .command('install')
      .description(
        'install the plugin from a registry with its settings (or the driver as a host service), and the runtime wrapper; reloads dockerd',
      )
      .option(
        '--plugin <ref>',
        'the managed plugin to install (e.g. registry:5000/sharedprop:1.0.0)',
      )
      .option(
        '--host-process',
        'instead of a managed plugin: the driver as a systemd service on the host, run by the Node and sources this CLI runs from',
        false,
      )
      .option('--unit-dir <dir>', 'where --host-process writes its unit', '/etc/systemd/system')
      .option('--name <name>', 'name of the plugin and of the volume driver', DEFAULT_PLUGIN_NAME)
      .option(
        '--data-dir <dir>',
        "host directory for every volume's data and state (created 0700 when missing)",
        DEFAULT_DATA_DIR,
      )
      .option('--log-level <level>', "the plugin's log level (error, warn, info, debug)")
      .option(
        '--tmpfs-max-size <size>',
        "the largest -o type=tmpfs volume, and the size of one created without -o size (e.g. 1g, 512m or 25%; at most the host's memory): serve --tmpfs-max-size, the plugin's SHAREDPROP_TMPFS_MAX_SIZE",
      )
      .option(
        '--engine-storage <dir...>',
        "more engine storage roots for reap=on-unmount, besides the defaults and this dockerd's own (found from its data-root): serve --engine-storage, the plugin's SHAREDPROP_ENGINE_STORAGE",
      )
      .option(
        '--runtime-binary <file>',
        'the runtime wrapper to install (default: the one next to this executable)',
      )
      .option(
        '--force',
        'replace an installed plugin even while containers use its volumes',
        false,
      ),
  ).action(
    (
      options: RuntimeOptions & {
        plugin?: string;
        hostProcess: boolean;
        unitDir: string;
        name: string;
        dataDir: string;
        logLevel?: string;
        tmpfsMaxSize?: string;
        engineStorage?: string[];
        runtimeBinary?: string;
        force: boolean;
      },
    ) =>
      perform('install', async (engine) => {
        const started = Date.now();
        if (options.hostProcess === (options.plugin !== undefined)) {
          throw new Error('give either --plugin REF (a managed plugin) or --host-process');
        }
        if (options.plugin !== undefined) {
          await installPlugin(
            {
              source: { ref: options.plugin },
              name: options.name,
              dataDir: options.dataDir,
              logLevel: options.logLevel,
              tmpfsMaxSize: options.tmpfsMaxSize,
              engineStorage: options.engineStorage,
              force: options.force,
            },
            { engine, run: deps.run, say },
          );
        } else {
          // The unit starts before dockerd: installing it needs no running engine (then only
          // the default storage roots and those given are known).
          const dockerRootDir = await engine.info().then(
            (info) => info.dockerRootDir,
            () => undefined,
          );
          const settings = serveSettings(options, deps.hostMemory(), dockerRootDir);
          const serve = deps.serveWith();
          const report = await deps.installService({
            name: options.name,
            dataDir: options.dataDir,
            logLevel: options.logLevel,
            unitDir: options.unitDir,
            serveArguments: serveArguments(settings),
            ...serve,
          });
          for (const line of serviceLines(report, 'install')) say(line);
        }
        const target = runtimeTarget(options);
        const binary = options.runtimeBinary ?? defaultRuntimeBinary();
        for (const line of installLines(await deps.installRuntime({ ...target, binary }), target)) {
          say(line);
        }
        say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }),
  );

  withRuntimeOptions(
    program
      .command('uninstall')
      .description(
        'remove the plugin and the runtime wrapper; volume data stays in its data directory',
      )
      .option('--name <name>', 'name of the plugin', DEFAULT_PLUGIN_NAME)
      .option(
        '--host-process',
        'remove the host-process service instead of a managed plugin',
        false,
      )
      .option('--unit-dir <dir>', 'where the --host-process unit is', '/etc/systemd/system')
      .option('--force', 'remove the plugin even while running containers use its volumes', false),
  ).action(
    (
      options: RuntimeOptions & {
        name: string;
        force: boolean;
        hostProcess: boolean;
        unitDir: string;
      },
    ) =>
      perform('uninstall', async (engine) => {
        if (options.hostProcess) {
          const report = await deps.uninstallService({
            name: options.name,
            unitDir: options.unitDir,
          });
          for (const line of serviceLines(report, 'uninstall')) say(line);
        } else {
          await uninstallPlugin(
            { name: options.name, force: options.force, fallbackDataDir: DEFAULT_DATA_DIR },
            { engine, run: deps.run, say },
          );
        }
        const target = runtimeTarget(options);
        for (const line of uninstallLines(await deps.uninstallRuntime(target), target)) say(line);
      }),
  );

  program
    .command('upgrade')
    .description(
      'move the installed plugin to another version; volumes, settings and running containers’ mounts are kept',
    )
    .argument('<ref>', 'the new version (e.g. registry:5000/sharedprop:1.1.0)')
    .option('--name <name>', 'name of the plugin', DEFAULT_PLUGIN_NAME)
    .action((ref: string, options: { name: string }) =>
      perform('upgrade', (engine) =>
        upgradePlugin(
          { ref, name: options.name },
          { engine, run: deps.run, say, mounts: deps.mounts },
        ),
      ),
    );
}
