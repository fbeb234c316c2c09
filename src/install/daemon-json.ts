/**
 * dockerd's daemon.json, as data: registering and unregistering the sharedprop runtime under
 * `runtimes`, leaving every other key as it was. Pure; reading and writing is runtime-install.ts.
 */

export const RUNTIME_NAME = 'sharedprop';

export type DaemonConfig = Record<string, unknown>;

export class DaemonJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonJsonError';
  }
}

export interface DaemonJsonEdit {
  config: DaemonConfig;
  changed: boolean;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Parses daemon.json text; like dockerd, an empty file is an empty configuration. */
export function parseDaemonJson(text: string, file: string): DaemonConfig {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DaemonJsonError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) throw new DaemonJsonError(`${file} is not a JSON object`);
  return value;
}

export function formatDaemonJson(config: DaemonConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}

function runtimesOf(config: DaemonConfig): Record<string, unknown> | undefined {
  const runtimes = config.runtimes;
  if (runtimes === undefined) return undefined;
  if (!isObject(runtimes)) throw new DaemonJsonError('"runtimes" in daemon.json is not an object');
  return runtimes;
}

/** Sets `runtimes.<name>.path`, keeping the entry's other keys (runtimeArgs) if it had any. */
export function addRuntime(
  config: DaemonConfig,
  binaryPath: string,
  name = RUNTIME_NAME,
): DaemonJsonEdit {
  const runtimes = runtimesOf(config) ?? {};
  const current = runtimes[name];
  if (current !== undefined && !isObject(current)) {
    throw new DaemonJsonError(`"runtimes.${name}" in daemon.json is not an object`);
  }
  if (current?.path === binaryPath) return { config, changed: false };
  return {
    config: { ...config, runtimes: { ...runtimes, [name]: { ...current, path: binaryPath } } },
    changed: true,
  };
}

/**
 * Removes `runtimes.<name>`, leaving `"runtimes": {}` when it was the only one: dockerd's reload
 * (SIGHUP) replaces its runtimes only when the key is in the file, so without it the removed
 * runtime would stay registered until dockerd restarts. Refuses while the runtime is dockerd's
 * `default-runtime`: dockerd would not start without it.
 */
export function removeRuntime(config: DaemonConfig, name = RUNTIME_NAME): DaemonJsonEdit {
  const runtimes = runtimesOf(config);
  if (config['default-runtime'] === name) {
    throw new DaemonJsonError(
      `daemon.json makes ${name} the default-runtime; set "default-runtime" to another runtime (runc) first`,
    );
  }
  if (!runtimes || !Object.hasOwn(runtimes, name)) return { config, changed: false };
  const rest = Object.fromEntries(Object.entries(runtimes).filter(([key]) => key !== name));
  return { config: { ...config, runtimes: rest }, changed: true };
}
