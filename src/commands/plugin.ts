/** `sharedprop plugin install|uninstall`: the managed plugin on the engine DOCKER_HOST names. */
import type { Command } from 'commander';
import { connectEngine, EngineError, type EngineClient } from '../docker/engine-client.js';
import { EXIT } from '../doctor/report.js';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_PLUGIN_NAME,
  installPlugin,
  uninstallPlugin,
  type PluginDeps,
} from '../install/plugin-install.js';
import { restartPlugin } from '../install/plugin-restart.js';
import { hostMountOps, type HostMountOps } from '../install/upgrade-mounts.js';
import { run } from '../system/exec.js';

export interface PluginCommandDeps {
  connect: () => Promise<EngineClient>;
  run: PluginDeps['run'];
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  setExitCode: (code: number) => void;
  env: NodeJS.ProcessEnv;
  /** dockerd's mount table and mount(8), for restart (it runs in dockerd's mount namespace). */
  mounts: HostMountOps;
}

const defaultDeps: PluginCommandDeps = {
  connect: connectEngine,
  run,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
  env: process.env,
  mounts: hostMountOps,
};

/** The one line a failure prints, and its exit code: 3 when the engine cannot answer. */
export function failure(error: unknown): { message: string; code: number } {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
  if (error instanceof EngineError) return { message, code: EXIT.couldNotCheck };
  return { message, code: EXIT.failed };
}

export function registerPluginCommands(
  program: Command,
  deps: PluginCommandDeps = defaultDeps,
): void {
  const plugin = program
    .command('plugin')
    .description('install, restart or remove the sharedprop managed plugin (volume driver)');

  async function perform(verb: string, action: (d: PluginDeps) => Promise<void>) {
    try {
      const engine = await deps.connect();
      await action({ engine, run: deps.run, say: (line) => deps.stdout(line + '\n') });
    } catch (error) {
      const { message, code } = failure(error);
      deps.stderr(`sharedprop plugin ${verb}: ${message}\n`);
      deps.setExitCode(code);
    }
  }

  plugin
    .command('install')
    .description('install the plugin, or replace the installed one (an upgrade; volumes are kept)')
    .requiredOption('--dir <dir>', 'the plugin directory (make plugin: build/plugin)')
    .option('--name <name>', 'name of the plugin and of the volume driver', DEFAULT_PLUGIN_NAME)
    .option(
      '--data-dir <dir>',
      "host directory for every volume's data and state (created 0700 when missing)",
      DEFAULT_DATA_DIR,
    )
    .option('--log-level <level>', "the plugin's log level (error, warn, info, debug)")
    .option('--force', 'replace the plugin even while running containers use its volumes', false)
    .action(
      (options: {
        dir: string;
        name: string;
        dataDir: string;
        logLevel?: string;
        force: boolean;
      }) =>
        perform('install', (d) => installPlugin({ ...options, source: { dir: options.dir } }, d)),
    );

  plugin
    .command('restart')
    .description(
      "disable and enable the plugin, waiting in between until dockerd has let go of its mounts; running containers' mounts in its volumes are kept",
    )
    .option('--name <name>', 'name of the plugin', DEFAULT_PLUGIN_NAME)
    .action((options: { name: string }) =>
      perform('restart', (d) => restartPlugin(options, { ...d, mounts: deps.mounts })),
    );

  plugin
    .command('uninstall')
    .description('disable and remove the plugin; volume data stays in its data directory')
    .option('--name <name>', 'name of the plugin', DEFAULT_PLUGIN_NAME)
    .option('--force', 'remove the plugin even while running containers use its volumes', false)
    .action((options: { name: string; force: boolean }) =>
      perform('uninstall', (d) =>
        uninstallPlugin({ ...options, fallbackDataDir: deps.env.DATA_DIR || DEFAULT_DATA_DIR }, d),
      ),
    );
}
