/**
 * The driver's settings that `sharedprop install` passes on, the same for both ways of running
 * it: the tmpfs size cap and the engine storage roots. Checked before anything is installed, so
 * that a bad value is a clear error at install and never a driver that does not start; then given
 * as `serve` options (host process) or as the managed plugin's environment.
 */
import type { HostMemory } from '../model/tmpfs-size.js';
import { tmpfsSizeLimits } from '../model/tmpfs-size.js';
import {
  DEFAULT_ENGINE_STORAGE,
  dockerStorageRoots,
  engineStorageRoots,
} from '../system/engine-storage.js';

export const TMPFS_MAX_SIZE_ENV = 'SHAREDPROP_TMPFS_MAX_SIZE';
export const ENGINE_STORAGE_ENV = 'SHAREDPROP_ENGINE_STORAGE';

export interface ServeSettings {
  /** `serve --tmpfs-max-size`, as given (the driver reads it against the host's memory). */
  tmpfsMaxSize?: string;
  /** Engine storage roots beyond the defaults: given ones, then the engine's own. */
  engineStorage: string[];
}

/**
 * Checks what the user gave and adds the storage roots of the engine being installed on when its
 * data root is not the default one (reap=on-unmount must recognise its containers). Throws with
 * the option's name on a value `serve` would refuse.
 */
export function serveSettings(
  given: { tmpfsMaxSize?: string; engineStorage?: readonly string[] },
  host: HostMemory,
  dockerRootDir: string | undefined,
): ServeSettings {
  if (given.tmpfsMaxSize !== undefined) {
    // `serve` reads it the same way, against the same host's memory.
    tmpfsSizeLimits(host, given.tmpfsMaxSize);
  }
  let roots: string[];
  try {
    roots = engineStorageRoots(given.engineStorage ?? []);
  } catch (error) {
    throw new Error(`--engine-storage: ${(error as Error).message}`);
  }
  const engine = dockerRootDir === undefined ? [] : dockerStorageRoots(dockerRootDir);
  const extra = [...new Set([...roots, ...engine])].filter(
    (root) => !DEFAULT_ENGINE_STORAGE.includes(root),
  );
  return { tmpfsMaxSize: given.tmpfsMaxSize, engineStorage: extra };
}

/** The settings as options of `sharedprop serve` (the host process's unit), last on its line. */
export function serveArguments(settings: ServeSettings): string[] {
  return [
    ...(settings.tmpfsMaxSize === undefined ? [] : ['--tmpfs-max-size', settings.tmpfsMaxSize]),
    ...(settings.engineStorage.length === 0 ? [] : ['--engine-storage', ...settings.engineStorage]),
  ];
}

/** The settings as the managed plugin's environment (`docker plugin set NAME K=V...`). */
export function pluginEnvironment(settings: ServeSettings): string[] {
  const colon = settings.engineStorage.find((root) => root.includes(':'));
  if (colon !== undefined) {
    throw new Error(
      `--engine-storage ${JSON.stringify(colon)}: the plugin takes its roots colon-separated (${ENGINE_STORAGE_ENV}), so none can contain ':'`,
    );
  }
  return [
    ...(settings.tmpfsMaxSize === undefined
      ? []
      : [`${TMPFS_MAX_SIZE_ENV}=${settings.tmpfsMaxSize}`]),
    ...(settings.engineStorage.length === 0
      ? []
      : [`${ENGINE_STORAGE_ENV}=${settings.engineStorage.join(':')}`]),
  ];
}
