/**
 * Taking the managed plugin down and bringing it back without losing what running containers
 * mounted in its volumes: the two halves that `sharedprop upgrade` and `sharedprop plugin
 * restart` share. Runs in dockerd's mount namespace, as root.
 *
 * Down: a peer of every volume's mount is kept in a private keeper directory, the host's view of
 * the propagated mount is detached without propagating, then the plugin is disabled. Up: wait
 * until dockerd has let go of the plugin's mounts (plugin-release-wait.ts), bind the kept volumes
 * back, enable, and check that the propagated mount is still there on the host.
 */
import path from 'node:path';
import { CommandError } from '../system/exec.js';
import { docker, PluginInstallError, type PluginDeps } from './plugin-install.js';
import { waitForPluginRelease, type ReleaseWaitOptions } from './plugin-release-wait.js';
import {
  detachWithoutPropagation,
  keepVolumeMounts,
  releaseKeepers,
  restoreVolumeMounts,
  type HostMountOps,
} from './upgrade-mounts.js';

export interface CycleDeps extends PluginDeps {
  mounts: HostMountOps;
  /** Overrides of the release wait (tests make it short). */
  releaseWait?: ReleaseWaitOptions & {
    sleep?: (ms: number) => Promise<void>;
    now?: () => number;
  };
}

/** Where a plugin's files and mounts are on the host, and where its mounts are kept meanwhile. */
export interface PluginPlaces {
  name: string;
  /** `<docker root>/plugins/<id>`: everything dockerd unmounts after a disable. */
  pluginDir: string;
  propagated: string;
  keeper: string;
}

export function pluginPlaces(
  name: string,
  dockerRootDir: string,
  id: string,
  keeper: string,
): PluginPlaces {
  const pluginDir = path.join(dockerRootDir, 'plugins', id);
  return { name, pluginDir, propagated: path.join(pluginDir, 'propagated-mount'), keeper };
}

export const messageOf = (error: unknown) =>
  (
    (error instanceof CommandError ? error.stderr.trim() : '') ||
    (error instanceof Error ? error.message : String(error))
  ).split('\n')[0] ?? '';

/** An enabled plugin's propagated mount is in dockerd's mount namespace: refuses anywhere else. */
export async function assertInDaemonNamespace(
  places: PluginPlaces,
  deps: CycleDeps,
  command: string,
): Promise<void> {
  if (!(await deps.mounts.table()).some((e) => e.mountPoint === places.propagated)) {
    throw new PluginInstallError(
      `${places.propagated} is not mounted here: run ${command} in dockerd's mount namespace (on its host, as root)`,
    );
  }
}

/**
 * Disables the running plugin with its volumes' mounts kept; returns the volumes kept. On a
 * failure the host's view is put back, nothing is kept, and `what` says what did not happen.
 */
export async function takeDownKeepingMounts(
  places: PluginPlaces,
  deps: CycleDeps,
  what: { command: string; failed: string; through: string },
): Promise<string[]> {
  const { name, propagated, keeper } = places;
  await assertInDaemonNamespace(places, deps, what.command);
  let kept: string[] = [];
  try {
    kept = await keepVolumeMounts(deps.mounts, propagated, keeper);
    if (kept.length > 0)
      deps.say(`keeping the mounts of ${kept.length} volume(s) through the ${what.through}`);
    await detachWithoutPropagation(deps.mounts, propagated);
    await docker(deps, ['plugin', 'disable', '-f', name]);
    return kept;
  } catch (error) {
    // The plugin still runs: put the host's view of its volumes back (peers of the containers'
    // mounts again), and leave nothing kept behind.
    await restoreVolumeMounts(deps.mounts, propagated, keeper, kept).catch(() => undefined);
    await releaseKeepers(deps.mounts, keeper, kept).catch(() => undefined);
    throw new PluginInstallError(
      `${what.failed}: could not take ${name} down with its mounts kept: ${messageOf(error)}`,
    );
  }
}

/**
 * Waits until dockerd has let go of the disabled plugin's mounts, binds the kept volumes back,
 * enables it, and releases the keepers whatever happens. Throws when the propagated mount is
 * not on the host after the enable (dockerd unmounted it late: the plugin would serve volumes
 * that containers see empty).
 */
export async function bringBackWithMounts(
  places: PluginPlaces,
  kept: readonly string[],
  deps: CycleDeps,
): Promise<void> {
  const { name, pluginDir, propagated, keeper } = places;
  try {
    await waitForPluginRelease(
      pluginDir,
      { table: () => deps.mounts.table(), ...deps.releaseWait },
      deps.releaseWait,
    );
    await restoreVolumeMounts(deps.mounts, propagated, keeper, kept);
    await docker(deps, ['plugin', 'enable', name]);
  } finally {
    await releaseKeepers(deps.mounts, keeper, kept);
  }
  if (!(await deps.mounts.table()).some((e) => e.mountPoint === propagated)) {
    throw new PluginInstallError(
      `${name} is enabled, but its propagated mount ${propagated} is not mounted on the host (dockerd unmounted it after the enable); containers would see empty volumes: run sharedprop plugin restart again`,
    );
  }
}
