/**
 * Whether a host directory may be adopted (`-o path=`), decided by identity, never by names: the
 * directory is held by descriptor (no symlink on its way), and its identity and those of the
 * directories above it are compared with those of `/`, the driver's own directories, dockerd's
 * and containerd's (and the kernel's trees), whatever names reach them: a bind alias of any of
 * them is the same directory, and a bind of a subdirectory of one is known by where its root lies
 * in its filesystem (liesWithin). The descriptor is what the bind is then made through.
 */
import {
  describeIdentity,
  liesWithin,
  type RecordedIdentity,
} from '../../model/directory-identity.js';
import { conflict, invalid } from '../../model/errors.js';
import { isWithin } from '../../model/paths.js';
import type { PathOptions } from '../../model/options.js';
import { passesThrough, type HeldDirectory } from '../../system/held-directory.js';
import { DEFAULT_RESERVED_PATHS } from '../config.js';
import type { KindContext } from './kind.js';

/** Directories of the kernel's own filesystems: never a volume's data, nor inside one. */
export const KERNEL_TREES = ['/proc', '/sys', '/dev'];

/** Why opening a name failed, as the user is told it. */
export function openFailure(error: unknown): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'ELOOP') return 'has a symlink on its way';
  if (code === 'ENOTDIR') return 'is not a directory';
  return undefined;
}

/** A directory the driver must keep clear of, held while it is compared; none when missing. */
async function holdReserved(ctx: KindContext, dir: string): Promise<HeldDirectory | undefined> {
  try {
    // These names are the operator's and the system's: their symlinks are followed, once.
    const real = (await ctx.mounts.resolveDirectory(dir))?.realPath;
    return real === undefined ? undefined : await ctx.mounts.holdDirectory(real, true);
  } catch (error) {
    if (openFailure(error) === undefined) throw error;
    return undefined;
  }
}

/**
 * Holds `options.path` and checks it; returns it held (the caller releases it) with its identity
 * to record. A 400 when it is missing, reached through a symlink, no directory, or is, contains
 * or lies within a reserved directory; a 409 when it is, contains or lies within a directory
 * another volume adopted.
 */
export async function holdAdoptable(
  ctx: KindContext,
  name: string,
  options: PathOptions,
): Promise<HeldDirectory> {
  const { config } = ctx;
  const dir = options.path;
  const refuse = (why: string) =>
    invalid(`volume ${JSON.stringify(name)}: option path=${JSON.stringify(dir)} ${why}`);
  if (config.hostPaths === false) {
    throw refuse(
      "is refused: the managed plugin does not see the host's directories; run the driver as a host process (sharedprop serve) to adopt one",
    );
  }
  let held: HeldDirectory;
  try {
    held = await ctx.mounts.holdDirectory(dir, true);
  } catch (error) {
    const why = openFailure(error);
    if (why === undefined) throw error;
    throw refuse(
      why === 'does not exist'
        ? 'does not exist; create the directory first'
        : why === 'has a symlink on its way'
          ? "has a symlink on its way; give the directory's real path"
          : why,
    );
  }
  if (held.place === undefined) {
    ctx.log.warn(
      'where an adopted directory lies in its filesystem is unknown (statx gives no mount ID before Linux 5.8, or it moved while checked): binds of subdirectories are compared by identity only',
      { volume: name, path: dir },
    );
  }
  try {
    await assertClearOfReserved(ctx, held, refuse);
    await assertClearOfAdopted(ctx, name, held);
    return held;
  } catch (error) {
    held.release();
    throw error;
  }
}

async function assertClearOfReserved(
  ctx: KindContext,
  held: HeldDirectory,
  refuse: (why: string) => Error,
): Promise<void> {
  const { config } = ctx;
  const own = [config.dataRoot, config.mountRoot, ctx.hostDataRoot()];
  const others = [...DEFAULT_RESERVED_PATHS, ...(config.reservedPaths ?? []), ...KERNEL_TREES];
  for (const dir of ['/', ...own, ...others]) {
    const reserved = await holdReserved(ctx, dir);
    let overlaps: boolean;
    if (reserved) {
      try {
        // Every directory lies within `/`: only `/` itself (by any name) is refused for it.
        const within = dir !== '/' && liesWithin(held, reserved);
        overlaps = within || liesWithin(reserved, held);
      } finally {
        reserved.release();
      }
    } else {
      // Missing now (never `/`): made later, it would be made at that name (dockerd's data root).
      overlaps = isWithin(held.path, dir) || isWithin(dir, held.path);
    }
    if (!overlaps) continue;
    if (dir === '/') throw refuse('is the root directory / (a bind of it, by identity)');
    const whose = own.includes(dir)
      ? `the driver's own data root or mount root (${dir}, `
      : KERNEL_TREES.includes(dir)
        ? `${dir}, the kernel's (`
        : `${dir}, which dockerd or containerd own (`;
    throw refuse(`overlaps ${whose}by identity)`);
  }
}

/**
 * Another volume's adopted directory: its recorded identity (or, in a record without one, what
 * its path holds now), and what its path holds now for what lies above it.
 */
async function assertClearOfAdopted(
  ctx: KindContext,
  name: string,
  held: HeldDirectory,
): Promise<void> {
  for (const other of ctx.records()) {
    if (other.options.kind !== 'path' || other.name === name) continue;
    const theirs = other.options.path;
    const recorded: RecordedIdentity | undefined = other.options.identity;
    const current = await holdReserved(ctx, theirs);
    try {
      const overlaps =
        (recorded !== undefined && passesThrough(held.lineage, recorded)) ||
        (current !== undefined && (liesWithin(held, current) || liesWithin(current, held)));
      if (!overlaps) continue;
    } finally {
      current?.release();
    }
    throw conflict(
      `volume ${JSON.stringify(name)}: option path=${JSON.stringify(held.path)} overlaps ${JSON.stringify(theirs)} (${describeIdentity(held.identity)}, by identity), which volume ${JSON.stringify(other.name)} adopted; two volumes may not adopt the same or nested directories`,
    );
  }
}
