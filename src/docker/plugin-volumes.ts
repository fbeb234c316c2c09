/**
 * The one answer to "which volumes belong to the plugin", for `plugin install|uninstall` and for
 * the doctor. dockerd names a managed plugin by a reference, `NAME:TAG` (`NAME` alone means
 * `NAME:latest`), and records a volume's driver as the reference it was created with: `NAME` or
 * `NAME:latest` for the same plugin. Two references name the same plugin when they are equal once
 * the tag `latest` is made explicit; a plugin whose name only starts the same is another plugin.
 */
import { EngineError, type EngineClient, type PluginSummary } from './engine-client.js';

/** `reference` with its tag made explicit: `sharedprop` is `sharedprop:latest`. */
export function normalizeReference(reference: string): string {
  const lastSlash = reference.lastIndexOf('/');
  // A colon before the last slash is a registry's port (localhost:5000/name), not a tag.
  return reference.indexOf(':', lastSlash + 1) === -1 ? `${reference}:latest` : reference;
}

/** True when `reference` (a plugin's name, a volume's driver) names the plugin `plugin`. */
export function isPluginReference(reference: string, plugin: string): boolean {
  return normalizeReference(reference) === normalizeReference(plugin);
}

/** The managed plugin `plugin`, when one is installed. */
export async function findPlugin(
  engine: EngineClient,
  plugin: string,
): Promise<PluginSummary | undefined> {
  return (await engine.listPlugins()).find((p) => isPluginReference(p.name, plugin));
}

/** The names of the volumes whose driver is `plugin`, sorted. */
export async function volumesOfPlugin(engine: EngineClient, plugin: string): Promise<string[]> {
  return (await engine.listVolumes())
    .filter((v) => isPluginReference(v.driver, plugin))
    .map((v) => v.name)
    .sort();
}

export interface VolumeUser {
  container: string;
  volume: string;
}

const isNotFound = (error: unknown) => error instanceof EngineError && error.statusCode === 404;

/**
 * The running containers that use a volume of `plugin`, one entry per container and volume,
 * sorted by volume, then container. A container that is gone since the list is left out.
 */
export async function containersUsingVolumes(
  engine: EngineClient,
  plugin: string,
): Promise<VolumeUser[]> {
  const volumes = new Set(await volumesOfPlugin(engine, plugin));
  if (volumes.size === 0) return [];
  const users: VolumeUser[] = [];
  for (const summary of await engine.listContainers()) {
    const container = await engine.inspectContainer(summary.id).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    if (!container?.running) continue;
    for (const mount of container.mounts) {
      if (mount.type === 'volume' && mount.name !== undefined && volumes.has(mount.name)) {
        users.push({ container: container.name, volume: mount.name });
      }
    }
  }
  return users.sort(
    (a, b) => a.volume.localeCompare(b.volume) || a.container.localeCompare(b.container),
  );
}
