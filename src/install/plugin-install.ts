/**
 * Installing the sharedprop managed plugin on the engine DOCKER_HOST names, replacing the one
 * installed (an upgrade), and removing it. Volume data lives in the plugin's data directory on the
 * host (its `data` mount), which neither touches: every volume comes back with the same one.
 *
 * The engine is read through the typed EngineClient; what changes it goes through the docker CLI
 * (`docker plugin create` tars the plugin directory), run with argument arrays.
 */
import { mkdir, stat, chmod } from 'node:fs/promises';
import path from 'node:path';
import type { EngineClient } from '../docker/engine-client.js';
import {
  containersUsingVolumes,
  findPlugin,
  volumesOfPlugin,
  type VolumeUser,
} from '../docker/plugin-volumes.js';
import { CommandError, type run as runCommand } from '../system/exec.js';
import { DEFAULT_ENGINE_STORAGE } from '../system/engine-storage.js';
import { hostMemory } from '../system/host-memory.js';
import { pluginEnvironment, serveSettings } from './serve-settings.js';

export const DEFAULT_PLUGIN_NAME = 'sharedprop';
export const DEFAULT_DATA_DIR = '/var/lib/sharedprop';

/** A failure the user can act on; the message is one line. */
export class PluginInstallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginInstallError';
  }
}

export interface PluginDeps {
  engine: EngineClient;
  run: typeof runCommand;
  /** Progress and results, one line at a time. */
  say: (line: string) => void;
}

export interface PluginInstallOptions {
  /**
   * Where the plugin comes from: a plugin directory (`make plugin`: build/plugin, config.json and
   * rootfs/) or a registry reference (`make push`: HOST:PORT/sharedprop:VERSION).
   */
  source: { dir: string } | { ref: string };
  name: string;
  dataDir: string;
  logLevel?: string;
  /** serve --tmpfs-max-size, as SHAREDPROP_TMPFS_MAX_SIZE. */
  tmpfsMaxSize?: string;
  /** More engine storage roots (besides the engine's own), as SHAREDPROP_ENGINE_STORAGE. */
  engineStorage?: readonly string[];
  force: boolean;
}

export interface PluginUninstallOptions {
  name: string;
  force: boolean;
  /** The data directory to report when the plugin's `data` mount has no source. */
  fallbackDataDir: string;
}

export const docker = (deps: PluginDeps, args: string[]) =>
  deps.run('docker', args, { timeout: 600_000 });

async function isDirectory(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isDirectory() ?? false;
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}

/** The docker CLI, which `plugin create` needs (it tars the plugin directory), and the engine. */
export async function requireDocker(deps: PluginDeps): Promise<void> {
  try {
    await docker(deps, ['--version']);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    throw new PluginInstallError('the docker CLI is required');
  }
  await deps.engine.version();
}

/** Fails while running containers use the plugin's volumes, unless `force`. */
export async function refuseWhileBusy(
  deps: PluginDeps,
  name: string,
  force: boolean,
  verb: string,
) {
  const busy: VolumeUser[] = await containersUsingVolumes(deps.engine, name);
  if (busy.length === 0 || force) return;
  const list = busy.map((u) => `${u.container}(${u.volume})`).join(' ');
  throw new PluginInstallError(
    `running containers use volumes of ${name}: ${list}; stop them first, or use --force (make: FORCE=1) to ${verb} the plugin anyway`,
  );
}

/**
 * Disables the plugin (forcefully: dockerd counts every existing volume as a use of its driver)
 * and removes it.
 */
async function removePlugin(deps: PluginDeps, name: string, enabled: boolean): Promise<void> {
  if (enabled) await docker(deps, ['plugin', 'disable', '-f', name]);
  await docker(deps, ['plugin', 'rm', '-f', name]);
}

/** Creates DIR with mode 0700 (its parents as needed) when it is missing; true if it did. */
export async function ensureDataDir(dir: string): Promise<boolean> {
  if (await isDirectory(dir)) return false;
  await mkdir(path.dirname(dir), { recursive: true });
  await mkdir(dir, { mode: 0o700 });
  await chmod(dir, 0o700); // whatever the umask
  return true;
}

export async function installPlugin(
  options: PluginInstallOptions,
  deps: PluginDeps,
): Promise<void> {
  const { source, name, dataDir } = options;
  if (
    'dir' in source &&
    (!(await isFile(path.join(source.dir, 'config.json'))) ||
      !(await isDirectory(path.join(source.dir, 'rootfs'))))
  ) {
    throw new PluginInstallError(
      `${source.dir} has no config.json and rootfs/: run 'make plugin' first`,
    );
  }
  if (!path.isAbsolute(dataDir)) {
    throw new PluginInstallError(`the data directory must be an absolute path, not ${dataDir}`);
  }
  await requireDocker(deps);
  // Checked before anything changes: a value the driver would refuse is an error here.
  const { dockerRootDir } = await deps.engine.info();
  const serve = serveSettings(options, hostMemory(), dockerRootDir);
  const environment = pluginEnvironment(serve);

  if (await ensureDataDir(dataDir)) deps.say(`created ${dataDir} (mode 0700)`);

  const installed = await findPlugin(deps.engine, name);
  if (installed) {
    await refuseWhileBusy(deps, name, options.force, 'replace');
    deps.say(`replacing the installed ${name} (volume data stays in its data directory)`);
    await removePlugin(deps, name, installed.enabled);
  }

  const settings = [`data.source=${dataDir}`, `HOST_DATA_DIR=${dataDir}`];
  if (options.logLevel) settings.push(`LOG_LEVEL=${options.logLevel}`);
  if ('dir' in source) {
    await docker(deps, ['plugin', 'create', name, source.dir]);
    await docker(deps, ['plugin', 'set', name, ...settings]);
  } else {
    deps.say(`pulling ${source.ref}`);
    await docker(deps, [
      'plugin',
      'install',
      '--grant-all-permissions',
      '--disable',
      '--alias',
      name,
      source.ref,
      ...settings,
    ]);
  }
  await setEnvironment(deps, name, environment, options);
  try {
    await docker(deps, ['plugin', 'enable', name]);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    throw new PluginInstallError(
      `${name} was created but does not start; dockerd's log holds the plugin's output`,
    );
  }
  const version = (await findPlugin(deps.engine, name))?.version;
  deps.say(
    `installed plugin ${name}${version ? ` ${version}` : ''} (data: ${dataDir}); volumes: docker volume create -d ${name} NAME`,
  );
}

/**
 * Gives the (disabled) plugin the driver's settings: those the user gave, and where this dockerd
 * keeps containers' layers when its data root is not the default one (so that `reap=on-unmount`
 * recognises them). A plugin that does not take them (an older release) is an error when the
 * user asked for a setting; when only the engine's own storage was to be set, it is installed all
 * the same, and told.
 */
async function setEnvironment(
  deps: PluginDeps,
  name: string,
  environment: string[],
  given: { tmpfsMaxSize?: string; engineStorage?: readonly string[] },
): Promise<void> {
  if (environment.length === 0) return;
  try {
    await docker(deps, ['plugin', 'set', name, ...environment]);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    const names = environment.map((setting) => setting.slice(0, setting.indexOf('=')));
    if (given.tmpfsMaxSize !== undefined || (given.engineStorage ?? []).length > 0) {
      throw new PluginInstallError(
        `${name} is installed (disabled) but does not take ${names.join(', ')}: ${error.message.split('\n')[0] ?? ''}`,
      );
    }
    deps.say(
      `${name} does not take ${names.join(', ')}: reap=on-unmount recognises only containers in ${DEFAULT_ENGINE_STORAGE.join(', ')}`,
    );
  }
}

/** The host directory of the plugin's `data` mount, if it has one. */
export async function pluginDataDir(deps: PluginDeps, name: string): Promise<string | undefined> {
  const { stdout } = await docker(deps, [
    'plugin',
    'inspect',
    '--format',
    '{{json .Settings.Mounts}}',
    name,
  ]);
  let mounts: unknown;
  try {
    mounts = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (!Array.isArray(mounts)) return undefined;
  const data = mounts.find(
    (m): m is { Name: string; Source?: unknown } =>
      m !== null && typeof m === 'object' && (m as { Name?: unknown }).Name === 'data',
  );
  return typeof data?.Source === 'string' && data.Source ? data.Source : undefined;
}

export async function uninstallPlugin(
  options: PluginUninstallOptions,
  deps: PluginDeps,
): Promise<void> {
  const { name } = options;
  await requireDocker(deps);
  const installed = await findPlugin(deps.engine, name);
  if (!installed) {
    deps.say(`no plugin named ${name} is installed; nothing to do`);
    return;
  }
  await refuseWhileBusy(deps, name, options.force, 'remove');
  const dataDir = (await pluginDataDir(deps, name)) ?? options.fallbackDataDir;
  const count = (await volumesOfPlugin(deps.engine, name)).length;
  await removePlugin(deps, name, installed.enabled);
  deps.say(`removed plugin ${name}`);
  deps.say(
    `volume data is kept in ${dataDir} (${count} volume(s)): install the plugin again with DATA_DIR=${dataDir} to use them, or delete that directory to discard them`,
  );
}
