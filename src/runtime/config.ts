/**
 * The wrapper's optional configuration file: `{ "runc"?, "roots"?, "log"? }`. A missing file
 * means defaults; a file that cannot be read or understood is an error, never a silent default.
 * A file that does not count (not root's, or in a directory others can write: root-file.ts) is
 * ignored with a warning, as if missing: it could otherwise choose the runc that runs as root.
 */
import { isAbsolute, normalize } from 'node:path';

export const DEFAULT_CONFIG_FILE = '/etc/sharedprop/runtime.json';

export interface RuntimeConfig {
  /** The real runc (an absolute path, or a name looked up in PATH). */
  runc?: string;
  /** Directories whose descendants are sharedprop volumes, besides those found by the marker. */
  roots: string[];
  /** Where create decisions are logged when runc has no `--log`. */
  log?: string;
  /** Set when the file was there but did not count: the warning to give. */
  ignored?: string;
}

export class ConfigError extends Error {
  constructor(file: string, reason: string) {
    super(`configuration file ${file}: ${reason}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads a whole file as UTF-8; rejects with a Node-style error (`code`) when it cannot, and with
 * an UntrustedFileError when the file is there but does not count.
 */
export type ReadText = (file: string) => Promise<string>;

export class UntrustedFileError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'UntrustedFileError';
  }
}

const KEYS = new Set(['runc', 'roots', 'log']);

export function configFile(env: Readonly<Record<string, string | undefined>>): string {
  return env.SHAREDPROP_RUNTIME_CONFIG || DEFAULT_CONFIG_FILE;
}

/** Validates the text of a configuration file. */
export function parseConfig(text: string, file: string): RuntimeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, `not valid JSON (${(error as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, 'must be a JSON object');
  }
  const object = raw as Record<string, unknown>;
  const unknown = Object.keys(object).filter((key) => !KEYS.has(key));
  if (unknown.length > 0) {
    throw new ConfigError(
      file,
      `unknown key(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: runc, roots, log)`,
    );
  }
  const config: RuntimeConfig = { roots: [] };
  if (object.runc !== undefined) {
    if (typeof object.runc !== 'string' || object.runc === '') {
      throw new ConfigError(file, '"runc" must be a non-empty string');
    }
    if (object.runc.includes('/') && !isAbsolute(object.runc)) {
      throw new ConfigError(file, '"runc" must be an absolute path or a bare command name');
    }
    config.runc = object.runc;
  }
  if (object.roots !== undefined) {
    if (!Array.isArray(object.roots)) throw new ConfigError(file, '"roots" must be a list');
    for (const root of object.roots as unknown[]) {
      if (typeof root !== 'string' || !isAbsolute(root)) {
        throw new ConfigError(
          file,
          `"roots" entry ${JSON.stringify(root)} is not an absolute path`,
        );
      }
      if (normalize(root) === '/') {
        throw new ConfigError(file, '"roots" must not contain "/" (every mount would match)');
      }
      config.roots.push(root);
    }
  }
  if (object.log !== undefined) {
    if (typeof object.log !== 'string' || !isAbsolute(object.log)) {
      throw new ConfigError(file, '"log" must be an absolute path');
    }
    config.log = object.log;
  }
  return config;
}

/** Reads and validates `file`; a file that does not exist gives the defaults. */
export async function loadConfig(file: string, readText: ReadText): Promise<RuntimeConfig> {
  let text: string;
  try {
    text = await readText(file);
  } catch (error) {
    if (error instanceof UntrustedFileError) {
      return { roots: [], ignored: `ignoring configuration file ${file}: ${error.reason}` };
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { roots: [] };
    throw new ConfigError(file, `cannot be read (${code ?? (error as Error).message})`);
  }
  return parseConfig(text, file);
}
