/**
 * Finds the real runc: SHAREDPROP_RUNC, else the configuration's `runc`, else `runc` in PATH,
 * else the usual install locations. The wrapper itself is never the answer, even when it is
 * installed as `runc` (a copy, a symlink or a hard link) or pointed at by mistake.
 */
import { isAbsolute } from 'node:path';

/** Where runc is looked for after PATH. */
export const FALLBACK_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin'];

export class RuncNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuncNotFoundError';
  }
}

/** What the lookup needs from the file system (Bun's natives in the wrapper, node:fs in tests). */
export interface RuncLookupOps {
  /**
   * The executable regular file `command` names: itself when it contains a slash, else the
   * first match in the directories of `searchPath` (colon-separated); null if none.
   */
  which(command: string, searchPath: string): string | null;
  /** True when both paths lead to the same file (after symlinks). */
  sameFile(a: string, b: string): Promise<boolean>;
}

export interface RuncLookup {
  env: Readonly<Record<string, string | undefined>>;
  /** The configuration file's `runc`, if any. */
  configured?: string;
  /** This executable (process.execPath). */
  self: string;
  ops: RuncLookupOps;
}

/** PATH without relative entries: the current directory is the bundle, not a place for runc. */
const absoluteDirs = (searchPath: string | undefined) =>
  (searchPath ?? '').split(':').filter(isAbsolute);

export async function findRunc({ env, configured, self, ops }: RuncLookup): Promise<string> {
  const PATH = absoluteDirs(env.PATH);
  // Started by the sh front (front.sh), which is sharedprop-runtime too: never runc.
  const front = env.SHAREDPROP_RUNTIME_FRONT;
  const isSelf = async (found: string) =>
    (await ops.sameFile(found, self)) ||
    (front !== undefined && (await ops.sameFile(found, front)));
  const explicit = env.SHAREDPROP_RUNC
    ? { value: env.SHAREDPROP_RUNC, from: 'SHAREDPROP_RUNC' }
    : configured
      ? { value: configured, from: 'the configuration file\'s "runc"' }
      : undefined;

  if (explicit) {
    const found = ops.which(explicit.value, PATH.join(':'));
    if (!found) {
      throw new RuncNotFoundError(`${explicit.from} (${explicit.value}) is not an executable file`);
    }
    if (await isSelf(found)) {
      throw new RuncNotFoundError(
        `${explicit.from} (${explicit.value}) is sharedprop-runtime itself, not runc`,
      );
    }
    return found;
  }

  for (const dir of [...PATH, ...FALLBACK_DIRS]) {
    const found = ops.which('runc', dir);
    if (found && !(await isSelf(found))) return found;
  }
  throw new RuncNotFoundError(
    `cannot find runc in PATH or ${FALLBACK_DIRS.join(', ')}; set SHAREDPROP_RUNC or "runc" in the configuration file`,
  );
}
