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
import { CommandError } from '../system/exec.js';
import { docker, PluginInstallError, requireDocker, type PluginDeps } from './plugin-install.js';
import {
  detachWithoutPropagation,
  keepVolumeMounts,
  releaseKeepers,
  restoreVolumeMounts,
  volumeMountsIn,
  type HostMountOps,
} from './upgrade-mounts.js';

/** The settings carried over: the data directory, and the env a user or `install` sets. */
const CARRIED_ENV = ['LOG_LEVEL', 'HOST_DATA_DIR', 'SHAREDPROP_ENGINE_STORAGE'];

export interface PluginUpgradeOptions {
  /** The new version: a registry reference (`make push`: HOST:PORT/sharedprop:VERSION). */
  ref: string;
  name: string;
  /** Where the mounts are kept while the plugin is down (default /run/sharedprop). */
  keeperRoot?: string;
}

export interface UpgradeDeps extends PluginDeps {
  mounts: HostMountOps;
}

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

const messageOf = (error: unknown) =>
  (
    (error instanceof CommandError ? error.stderr.trim() : '') ||
    (error instanceof Error ? error.message : String(error))
  ).split('\n')[0] ?? '';

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
  const propagated = path.join(dockerRootDir, 'plugins', installed.id, 'propagated-mount');
  const keeper = path.join(
    options.keeperRoot ?? '/run/sharedprop',
    `upgrade-${installed.id.slice(0, 12)}`,
  );

  let kept: string[] = [];
  // A run killed after it took the plugin down left the plugin disabled and its keepers mounted:
  // this run finishes that one, putting the mounts back and enabling the plugin again.
  const resuming =
    !installed.enabled && volumeMountsIn(await deps.mounts.table(), keeper).length > 0;
  if (resuming) {
    kept = volumeMountsIn(await deps.mounts.table(), keeper);
    deps.say(
      `an interrupted upgrade left the mounts of ${kept.length} volume(s) in ${keeper}; they are put back`,
    );
  }
  if (installed.enabled) {
    const table = await deps.mounts.table();
    if (!table.some((e) => e.mountPoint === propagated)) {
      throw new PluginInstallError(
        `${propagated} is not mounted here: run sharedprop upgrade in dockerd's mount namespace (on its host, as root)`,
      );
    }
    try {
      kept = await keepVolumeMounts(deps.mounts, propagated, keeper);
      if (kept.length > 0) {
        deps.say(`keeping the mounts of ${kept.length} volume(s) through the upgrade`);
      }
      await detachWithoutPropagation(deps.mounts, propagated);
      await docker(deps, ['plugin', 'disable', '-f', name]);
    } catch (error) {
      // The plugin still runs: put the host's view of its volumes back (peers of the containers'
      // mounts again), and leave nothing kept behind.
      await restoreVolumeMounts(deps.mounts, propagated, keeper, kept).catch(() => undefined);
      await releaseKeepers(deps.mounts, keeper, kept).catch(() => undefined);
      throw new PluginInstallError(
        `nothing was upgraded: could not take ${name} down with its mounts kept: ${messageOf(error)}`,
      );
    }
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
    if (installed.enabled || resuming) {
      await restoreVolumeMounts(deps.mounts, propagated, keeper, kept);
      await docker(deps, ['plugin', 'enable', name]);
    }
  } finally {
    await releaseKeepers(deps.mounts, keeper, kept);
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
