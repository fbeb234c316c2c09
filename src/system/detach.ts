/**
 * Detaching mounts by identity: a mount is detached at a path only when that path leads to that
 * very mount (its ID, from statx, is the one listed), right before umount2(2) with
 * UMOUNT_NOFOLLOW. A subtree is listed once and detached deepest first, with no read of the
 * table between two mounts.
 *
 * What remains of the race: umount2 takes a path, not a descriptor, and a descriptor held on the
 * mount would make it busy. Between the statx check and umount2 (two system calls, microseconds),
 * a process that can rename a directory on the way could make the path lead to another mount,
 * which would be detached instead. In listmount mode that is seen afterwards (the checked mount
 * still exists: the operation throws), though not undone. Inside the driver's mount root only
 * root can rename anything.
 */
import { setImmediate } from 'node:timers/promises';
import { AT_FDCWD } from './kernel/constants.js';
import { umount2 } from './kernel/calls.js';
import { isErrno } from './kernel/ffi.js';
import type { MountId, MountNode, MountTree, MountView } from './mount-tree.js';
import type { DetachReport } from './mounts.js';

export type DetachOutcome = 'detached' | 'lazy' | 'elsewhere' | 'gone';

/** True when `path` leads, now, to the root of mount `id`. */
export function pathLeadsTo(tree: MountTree, path: string, id: MountId): boolean {
  try {
    const stat = tree.stat(AT_FDCWD, path);
    return stat.mountRoot && tree.idOf(stat) === id;
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR', 'ELOOP', 'EACCES')) return false;
    throw error;
  }
}

/**
 * Detaches mount `id` at `path` when `path` still leads to it ('elsewhere' when not): unmounted,
 * or when busy detached lazily (the kernel frees it when its last user goes). 'gone': it was no
 * mount point any more when umount2 came (someone else detached it first).
 */
export function detachChecked(
  tree: MountTree,
  view: MountView,
  path: string,
  id: MountId,
): DetachOutcome {
  if (!pathLeadsTo(tree, path, id)) return 'elsewhere';
  let outcome: DetachOutcome = 'detached';
  try {
    umount2(path);
  } catch (error) {
    if (isErrno(error, 'EINVAL')) return 'gone';
    if (!isErrno(error, 'EBUSY')) throw error;
    if (!pathLeadsTo(tree, path, id)) return 'elsewhere';
    umount2(path, { detach: true });
    outcome = 'lazy';
  }
  if (view.exists(id) === true) {
    throw new Error(
      `umount2 of ${JSON.stringify(path)} detached another mount than ${String(id)}: the path changed between the check and the unmount`,
    );
  }
  return outcome;
}

/**
 * Detaches `nodes` (each with its depth below a common mount), deepest first. A mount whose path
 * leads elsewhere (hidden beneath a mount stacked above it) is tried again, before any shallower
 * one, as long as a round detaches something. Returns those never reached.
 */
export async function detachNodes(
  tree: MountTree,
  view: MountView,
  nodes: readonly { node: MountNode; depth: number }[],
  report: DetachReport,
): Promise<MountNode[]> {
  const levels = new Map<number, MountNode[]>();
  for (const { node, depth } of nodes) levels.set(depth, [...(levels.get(depth) ?? []), node]);
  let calls = 0;
  let carried: MountNode[] = [];
  for (const depth of [...levels.keys()].sort((a, b) => b - a)) {
    // The newest first: of a stack, the top.
    let pending = [...carried, ...(levels.get(depth) ?? []).sort((a, b) => (b.id > a.id ? 1 : -1))];
    for (;;) {
      const missed: MountNode[] = [];
      for (const node of pending) {
        const outcome = detachChecked(tree, view, node.mountPoint, node.id);
        if (outcome === 'elsewhere') missed.push(node);
        else if (outcome !== 'gone') {
          report.detached.push(node.mountPoint);
          if (outcome === 'lazy') report.lazy.push(node.mountPoint);
        }
        // Thousands of unmounts in a row: let the event loop breathe.
        if (++calls % 256 === 0) await setImmediate();
      }
      const progress = missed.length < pending.length;
      pending = missed;
      if (missed.length === 0 || !progress) break;
    }
    carried = pending;
  }
  return carried;
}
