/**
 * `sharedprop plugin restart`: disables the managed plugin, waits until dockerd has let go of its
 * mounts, and enables it. While running containers use its volumes, what they mounted in them is
 * kept through the restart as `sharedprop upgrade` keeps it (plugin-cycle.ts).
 * A plain `docker plugin disable && docker plugin enable` can lose the propagated mount on
 * Docker 20.10 and 26.1, and then every container sees its volumes empty.
 */
import path from 'node:path';
import { containersUsingVolumes, findPlugin } from '../docker/plugin-volumes.js';
import { docker, PluginInstallError, requireDocker } from './plugin-install.js';
import {
  assertInDaemonNamespace,
  bringBackWithMounts,
  pluginPlaces,
  takeDownKeepingMounts,
  type CycleDeps,
} from './plugin-cycle.js';

export interface PluginRestartOptions {
  name: string;
  /** Where the mounts are kept while the plugin is down (default /run/sharedprop). */
  keeperRoot?: string;
}

export async function restartPlugin(options: PluginRestartOptions, deps: CycleDeps): Promise<void> {
  const { name } = options;
  await requireDocker(deps);
  const installed = await findPlugin(deps.engine, name);
  if (!installed) {
    throw new PluginInstallError(`no plugin named ${name} is installed; nothing was restarted`);
  }
  const { dockerRootDir } = await deps.engine.info();
  const places = pluginPlaces(
    name,
    dockerRootDir,
    installed.id,
    path.join(options.keeperRoot ?? '/run/sharedprop', `restart-${installed.id.slice(0, 12)}`),
  );
  const started = Date.now();
  let kept: string[] = [];
  if (installed.enabled) {
    await assertInDaemonNamespace(places, deps, 'sharedprop plugin restart');
    if ((await containersUsingVolumes(deps.engine, name)).length === 0) {
      // Nothing runs on its volumes: dockerd's own unmount takes nothing anyone needs.
      await docker(deps, ['plugin', 'disable', '-f', name]);
    } else {
      kept = await takeDownKeepingMounts(places, deps, {
        command: 'sharedprop plugin restart',
        failed: 'nothing was restarted',
        through: 'restart',
      });
    }
    deps.say(`disabled ${name}; waiting until dockerd has let go of its mounts`);
  } else {
    deps.say(`${name} was disabled; it is enabled`);
  }
  await bringBackWithMounts(places, kept, deps).catch((error: unknown) => {
    if (error instanceof PluginInstallError) throw error;
    throw new PluginInstallError(
      `${name} could not be brought back: ${error instanceof Error ? error.message : String(error)}; see docker plugin ls`,
    );
  });
  deps.say(
    `restarted ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s; its volumes and running containers' mounts are kept`,
  );
}

/** `docker plugin enable` alone, for a plugin found disabled (exported for doctor --fix). */
export const enablePlugin = (deps: CycleDeps, name: string) =>
  docker(deps, ['plugin', 'enable', name]);
