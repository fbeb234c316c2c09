/**
 * `sharedprop upgrade REF`: moves the installed managed plugin to another version from a
 * registry, with its volumes existing and containers running.
 *
 * `docker plugin upgrade` keeps the plugin's id and its volumes, but the plugin it starts does not
 * get the settings it had (its data directory above all): they are read before and set again.
 * Disabling the plugin would unmount what running containers mounted in its volumes; the mounts
 * are kept through it (upgrade-mounts.ts). Runs in dockerd's mount namespace, as root.
 */
import path from 'node:path';
import { findPlugin } from '../docker/plugin-volumes.js';
import { docker, PluginInstallError, requireDocker, type PluginDeps } from './plugin-install.js';
import { ENGINE_STORAGE_ENV, TMPFS_MAX_SIZE_ENV } from './serve-settings.js';
import {
  bringBackWithMounts,
  messageOf,
  pluginPlaces,
  takeDownKeepingMounts,
  type CycleDeps,
} from './plugin-cycle.js';
import { volumeMountsIn } from './upgrade-mounts.js';

/** The settings carried over: the data directory, and the env a user or `install` sets. */
const CARRIED_ENV = ['LOG_LEVEL', 'HOST_DATA_DIR', ENGINE_STORAGE_ENV, TMPFS_MAX_SIZE_ENV];

export interface PluginUpgradeOptions {
  /** The new version: a registry reference (`make push`: HOST:PORT/sharedprop:VERSION). */
  ref: string;
  name: string;
  /** Where the mounts are kept while the plugin is down (default /run/sharedprop). */
  keeperRoot?: string;
}

export type UpgradeDeps = CycleDeps;

interface PluginSettings {
  Env?: string[];
  Mounts?: { Name?: string; Source?: string | null }[];
}

/** `docker plugin set` arguments that put the plugin's current settings back. */
export function settingsToCarry(settings: PluginSettings): string[] {
  const args: string[] = [];
  const data = settings.Mounts?.find((m) => m.Name === 'data');
  if (data?.Source) args.push(`data.source=${data.Source}`);
  for (const entry of settings.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0 && CARRIED_ENV.includes(entry.slice(0, eq))) args.push(entry);
  }
  return args;
}

async function readSettings(deps: PluginDeps, name: string): Promise<PluginSettings> {
  const { stdout } = await docker(deps, [
    'plugin',
    'inspect',
    '--format',
    '{{json .Settings}}',
    name,
  ]);
  try {
    return JSON.parse(stdout) as PluginSettings;
  } catch {
    throw new PluginInstallError(`cannot read the settings of ${name}: ${stdout.slice(0, 200)}`);
  }
}

export async function upgradePlugin(
  options: PluginUpgradeOptions,
  deps: UpgradeDeps,
): Promise<void> {
  const { ref, name } = options;
  await requireDocker(deps);
  const installed = await findPlugin(deps.engine, name);
  if (!installed) {
    throw new PluginInstallError(
      `no plugin named ${name} is installed; install it with: sharedprop install --plugin ${ref}`,
    );
  }
  const settings = settingsToCarry(await readSettings(deps, name));
  const { dockerRootDir } = await deps.engine.info();
  const places = pluginPlaces(
    name,
    dockerRootDir,
    installed.id,
    path.join(options.keeperRoot ?? '/run/sharedprop', `upgrade-${installed.id.slice(0, 12)}`),
  );

  let kept: string[] = [];
  // A run killed after it took the plugin down left the plugin disabled and its keepers mounted:
  // this run finishes that one, putting the mounts back and enabling the plugin again.
  const resuming =
    !installed.enabled && volumeMountsIn(await deps.mounts.table(), places.keeper).length > 0;
  if (resuming) {
    kept = volumeMountsIn(await deps.mounts.table(), places.keeper);
    deps.say(
      `an interrupted upgrade left the mounts of ${kept.length} volume(s) in ${places.keeper}; they are put back`,
    );
  }
  if (installed.enabled) {
    kept = await takeDownKeepingMounts(places, deps, {
      command: 'sharedprop upgrade',
      failed: 'nothing was upgraded',
      through: 'upgrade',
    });
  }

  let failure: unknown;
  try {
    deps.say(`upgrading ${name} (${installed.version ?? 'unknown version'}) to ${ref}`);
    await docker(deps, [
      'plugin',
      'upgrade',
      '--grant-all-permissions',
      '--skip-remote-check',
      name,
      ref,
    ]);
  } catch (error) {
    failure = error;
  }
  // Whether the upgrade happened or not, the plugin gets its settings and its mounts back.
  try {
    if (settings.length > 0) await docker(deps, ['plugin', 'set', name, ...settings]);
  } finally {
    if (installed.enabled || resuming) await bringBackWithMounts(places, kept, deps);
  }
  if (failure !== undefined) {
    throw new PluginInstallError(
      `upgrade to ${ref} failed, and ${name} runs its previous version again: ${messageOf(failure)}`,
    );
  }
  const version = (await findPlugin(deps.engine, name))?.version;
  deps.say(
    `upgraded ${name} to ${ref}${version ? ` (version ${version})` : ''}; its volumes and running containers' mounts are kept`,
  );
}
