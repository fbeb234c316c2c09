/**
 * Deletes a directory tree without ever crossing a mount boundary or following a symlink.
 *
 * The walk itself is done by `sharedprop-rmtree` (src/native/rmtree.c), which traverses by file
 * descriptor with openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_BENEATH) and unlinkat:
 * the kernel enforces both rules, so a process inside the tree that swaps a directory for a
 * symlink mid-walk (CVE-2018-15664) cannot make it delete anything outside. A path-based
 * lstat-then-act walk in JavaScript cannot close that race, so there is no fallback to one: without
 * the helper, nothing is deleted.
 *
 * The mount table is checked first as well (cheap, and it names the mount in the error).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandError, run } from './exec.js';
import { isWithin, type MountEntry } from './mountinfo.js';

export class MountBoundaryError extends Error {
  constructor(readonly mountPoint: string) {
    super(`refusing to delete across the mount point ${mountPoint}`);
    this.name = 'MountBoundaryError';
  }
}

/** The tree could not be deleted whole; what is left stays where it was. */
export class DeleteError extends Error {
  constructor(
    message: string,
    readonly exitCode?: number,
  ) {
    super(message);
    this.name = 'DeleteError';
  }
}

/** Throws MountBoundaryError, deleting nothing, if any mount lies at or under `dir`. */
export function assertNoMountsWithin(entries: readonly MountEntry[], dir: string): void {
  const found = entries.find((e) => isWithin(e.mountPoint, dir));
  if (found) throw new MountBoundaryError(found.mountPoint);
}

export const HELPER_NAME = 'sharedprop-rmtree';

/** The helper's exit codes (see rmtree.c). */
const EXIT = { boundary: 3, left: 4, noOpenat2: 5 } as const;

/**
 * Where the helper is: SHAREDPROP_RMTREE, else dist/native/ beside the compiled module (also in
 * the plugin's rootfs), else the repository's dist/native/ (tests that run from src/).
 */
export function helperPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SHAREDPROP_RMTREE) return env.SHAREDPROP_RMTREE;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, '..', 'native', HELPER_NAME),
    path.join(here, '..', '..', 'dist', 'native', HELPER_NAME),
  ];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new DeleteError(
      `${HELPER_NAME} is missing (looked in ${candidates.join(', ')}); run npm run build. Nothing was deleted`,
    );
  }
  return found;
}

/**
 * Deletes `dir` (a file, or a directory and everything in it). A missing `dir` is already
 * deleted. Throws MountBoundaryError when a mount is in the way (everything else is deleted),
 * DeleteError when anything else is left.
 */
export async function deleteTree(dir: string, entries: readonly MountEntry[]): Promise<void> {
  assertNoMountsWithin(entries, dir);
  const parent = path.dirname(dir);
  const name = path.basename(dir);
  if (!path.isAbsolute(dir) || parent === dir) {
    throw new DeleteError(
      `refusing to delete ${JSON.stringify(dir)}: not an absolute path below /`,
    );
  }
  if (!existsSync(parent)) return;
  try {
    await run(helperPath(), [parent, name], { timeout: 30 * 60_000 });
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    if (error.exitCode === EXIT.boundary) throw new MountBoundaryError(dir);
    const why =
      error.exitCode === EXIT.noOpenat2
        ? 'the kernel has no openat2 (5.6 or later is needed to delete safely); nothing was deleted'
        : `some entries could not be deleted: ${error.stderr.trim().slice(0, 2000)}`;
    throw new DeleteError(`${dir}: ${why}`, error.exitCode);
  }
}
