/**
 * Deletes a directory tree without ever crossing a mount boundary or following a symlink.
 *
 * The walk itself is done by `sharedprop-rmtree` (src/native/rmtree.c; kept running, see
 * rmtree-server.ts), which traverses by file
 * descriptor with openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_BENEATH) and unlinkat:
 * the kernel enforces both rules, so a process inside the tree that swaps a directory for a
 * symlink mid-walk (CVE-2018-15664) cannot make it delete anything outside. A path-based
 * lstat-then-act walk in JavaScript cannot close that race, so there is no fallback to one: without
 * the helper, nothing is deleted.
 *
 * The mount table is checked first as well (cheap, it names the mount in the error, and it
 * deletes nothing); the helper's own check covers mounts made after the table was read.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isWithin, type MountEntry } from './mountinfo.js';
import { rmtreePool, type HelperAnswer } from './rmtree-server.js';
import { IS_STANDALONE } from './version.js';

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
    /** The helper's exit code, when it ran. */
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

/** The helper's exit codes (the contract is in rmtree.c's header). */
export const RMTREE_EXIT = { ok: 0, usage: 2, boundary: 3, left: 4, noOpenat2: 5 } as const;

/** Half an hour: a hostile tree can be huge, and a killed helper leaves a partial tree, safely. */
const HELPER_TIMEOUT_MS = 30 * 60_000;

/**
 * Where the helper is: SHAREDPROP_RMTREE; in the standalone executable of a release, beside it
 * (the release ships the two together); else dist/native/ beside the compiled module (also in
 * the plugin's rootfs), else the repository's dist/native/ (tests that run from src/).
 */
export function helperPath(
  env: NodeJS.ProcessEnv = process.env,
  standalone: boolean = IS_STANDALONE,
): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = env.SHAREDPROP_RMTREE
    ? [env.SHAREDPROP_RMTREE]
    : standalone
      ? [path.join(path.dirname(process.execPath), HELPER_NAME)]
      : [
          path.join(here, '..', 'native', HELPER_NAME),
          path.join(here, '..', '..', 'dist', 'native', HELPER_NAME),
        ];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new DeleteError(
      `${HELPER_NAME} is missing (looked for ${candidates.join(', ')}); run npm run build. ` +
        'Nothing was deleted',
    );
  }
  return found;
}

/** `dir` as the helper's PARENT and NAME; refuses what is not an absolute path below /. */
function splitTarget(dir: string): { parent: string; name: string } {
  const components = dir.split('/');
  if (!path.isAbsolute(dir) || components.includes('.') || components.includes('..')) {
    throw new DeleteError(
      `refusing to delete ${JSON.stringify(dir)}: not an absolute path without . or ..`,
    );
  }
  const clean = path.resolve(dir); // only // and a trailing / are left to tidy
  const parent = path.dirname(clean);
  if (parent === clean) throw new DeleteError('refusing to delete /');
  return { parent, name: path.basename(clean) };
}

/** Translates the helper's failure; the text of its diagnostics only goes into the message. */
function helperFailure(dir: string, answer: HelperAnswer): Error {
  const code = answer.exitCode;
  if (code === RMTREE_EXIT.boundary) return new MountBoundaryError(dir);
  const details = answer.diagnostics.trim().slice(0, 2000);
  const why =
    code === RMTREE_EXIT.noOpenat2
      ? 'the kernel has no usable openat2 (5.6 or later is needed to delete safely); nothing was deleted'
      : code === RMTREE_EXIT.usage
        ? `${HELPER_NAME} refused its arguments: ${details}`
        : code === undefined
          ? `${HELPER_NAME} did not finish (${details}); what is left stays`
          : `some entries could not be deleted: ${details}`;
  return new DeleteError(`${dir}: ${why}`, code);
}

/**
 * Deletes `dir` (a file, a symlink, or a directory and everything in it). A missing `dir` is
 * already deleted. Throws MountBoundaryError when a mount is in the way (found in `entries`:
 * nothing is deleted; found by the kernel: everything else is), DeleteError when anything else
 * is left.
 */
export async function deleteTree(dir: string, entries: readonly MountEntry[]): Promise<void> {
  const { parent, name } = splitTarget(dir);
  assertNoMountsWithin(entries, path.join(parent, name));
  if (!existsSync(parent)) return;
  const answer = await rmtreePool(helperPath()).delete(parent, name, HELPER_TIMEOUT_MS);
  if (answer.exitCode !== RMTREE_EXIT.ok) throw helperFailure(dir, answer);
}
