/**
 * The mount tree as the kernel gives it, by identity: a mount is named by the ID statx(2) reports
 * for a descriptor, and its subtree is found through parent IDs, never by comparing paths.
 *
 * Two ways to read it, chosen once (at first use) and forceable:
 *   - `listmount`: statmount(2)/listmount(2) (6.8+), IDs are the unique 64-bit ones
 *     (STATX_MNT_ID_UNIQUE); one mount is read without touching the rest of the table;
 *   - `mountinfo`: one read of /proc/self/mountinfo per operation (a MountView), IDs are
 *     mountinfo's (STATX_MNT_ID, 5.8+).
 * SHAREDPROP_MOUNT_LAYER=mountinfo (or `{ fallback: true }`) forces the second, so that tests run both.
 */
import { readFileSync } from 'node:fs';
import { isErrno } from './kernel/ffi.js';
import { statx, type Statx } from './kernel/calls.js';
import { LSMT_ROOT, MS_UNBINDABLE } from './kernel/constants.js';
import { listmount, statmount, statmountIfAny, type MountStat } from './kernel/statmount.js';
import { mountOptionsOf } from './kernel/tmpfs.js';
import { aboutPath, parseMountinfo, type MountEntry } from './mountinfo.js';

export type TreeMode = 'listmount' | 'mountinfo';
/** A mount's identity in the running mode: a unique bigint, or mountinfo's number. */
export type MountId = bigint | number;

export interface MountNode {
  id: MountId;
  parent: MountId;
  /** mountinfo's ID, in both modes. */
  oldId: number;
  mountPoint: string;
  sharedGroup?: number;
  masterGroup?: number;
}

/** One operation's view of the tree: in `mountinfo` mode, one read of the table. */
export interface MountView {
  readonly mode: TreeMode;
  get(id: MountId): MountNode | undefined;
  /** Every mount beneath `id` (not `id` itself), with its depth below it (children: 1). */
  below(id: MountId): { node: MountNode; depth: number }[];
  /** True when another mount of this namespace is in `node`'s peer group. */
  hasPeers(node: MountNode): boolean;
  /** The mount as mountinfo would show it (listmount mode: no source, no superblock options). */
  entry(id: MountId): MountEntry | undefined;
  /**
   * False when mount `id` is gone from the namespace; undefined when this view cannot tell
   * without another read (mountinfo mode: its IDs are reused).
   */
  exists(id: MountId): boolean | undefined;
}

export interface MountTreeOptions {
  /** Force the mountinfo fallback (default: env SHAREDPROP_MOUNT_LAYER=mountinfo). */
  fallback?: boolean;
  mountinfo?: string;
}

export class MountTree {
  private detected?: TreeMode;
  private readonly mountinfo: string;

  constructor(private readonly options: MountTreeOptions = {}) {
    this.mountinfo = options.mountinfo ?? '/proc/self/mountinfo';
  }

  /** Which way this kernel is read: decided at first use (ENOSYS, or no unique IDs: fallback). */
  get mode(): TreeMode {
    this.detected ??= this.detect();
    return this.detected;
  }

  private detect(): TreeMode {
    const forced = this.options.fallback ?? process.env.SHAREDPROP_MOUNT_LAYER === 'mountinfo';
    if (forced) return 'mountinfo';
    try {
      const root = statx(-100, '/');
      if (root.uniqueMountId === undefined) return 'mountinfo';
      statmount(root.uniqueMountId);
      return 'listmount';
    } catch (error) {
      // EOPNOTSUPP is ENOTSUP on Linux (95): Node's error map names it ENOTSUP.
      if (isErrno(error, 'ENOSYS', 'EPERM', 'ENOTSUP')) return 'mountinfo';
      throw error;
    }
  }

  /** statx of a descriptor (or a path relative to it), asking for the ID this mode uses. */
  stat(fd: number, path = ''): Statx {
    return statx(fd, path, this.mode === 'listmount');
  }

  /** The identity of the mount that holds what `stat` describes. */
  idOf(stat: Statx): MountId {
    const id = this.mode === 'listmount' ? stat.uniqueMountId : stat.mountId;
    if (id === undefined) throw new Error(`statx gave no mount ID (mask ${stat.mask})`);
    return id;
  }

  /**
   * A view for one operation: in fallback mode, the table is read now, once, and only the lines
   * about `about` are parsed: those that name its path (its mounts and everything beneath) and
   * those of the given mount IDs (the mount that holds it).
   */
  view(about: { path?: string; ids?: readonly MountId[] } = {}): MountView {
    if (this.mode === 'listmount') return new ListmountView();
    const keep =
      about.path === undefined && about.ids === undefined
        ? undefined
        : aboutPath(about.path ?? '\0', (about.ids ?? []).map(Number));
    return new MountinfoView(parseMountinfo(readFileSync(this.mountinfo, 'utf8'), keep));
  }
}

class ListmountView implements MountView {
  readonly mode = 'listmount';
  private readonly cache = new Map<bigint, MountStat>();

  /** A cached statmount, brief (for the walk) unless `full`. */
  private stat(id: MountId, full = false): MountStat | undefined {
    const key = BigInt(id);
    const known = this.cache.get(key);
    if (known && (!full || known.fsType !== '')) return known;
    const stat = statmountIfAny(key, !full);
    if (stat) this.cache.set(key, stat);
    return stat;
  }

  get(id: MountId): MountNode | undefined {
    const stat = this.stat(id);
    return stat && fromStat(stat);
  }

  entry(id: MountId): MountEntry | undefined {
    const stat = this.stat(id, true);
    if (!stat) return undefined;
    return {
      id: stat.oldId,
      parentId: stat.oldParentId,
      device: stat.device,
      root: stat.root,
      mountPoint: stat.mountPoint,
      mountOptions: mountOptionsOf(stat.attributes),
      sharedGroup: stat.sharedGroup,
      masterGroup: stat.masterGroup,
      unbindable: (stat.propagation & MS_UNBINDABLE) !== 0,
      fsType: stat.fsType,
      source: '',
      superOptions: '',
    };
  }

  exists(id: MountId): boolean {
    this.cache.delete(BigInt(id));
    return statmountIfAny(BigInt(id), true) !== undefined;
  }

  below(id: MountId): { node: MountNode; depth: number }[] {
    const root = BigInt(id);
    const found = new Map<bigint, MountNode>();
    // listmount lists a mount's children on some kernels and its whole subtree on others (6.18):
    // on those, one call lists everything, and asking again for each child would cost a walk of
    // the namespace per child.
    const recursive = listsSubtrees();
    const queue = [root];
    while (queue.length > 0) {
      const parent = queue.shift() as bigint;
      for (const child of listmount(parent)) {
        if (found.has(child)) continue;
        const node = this.get(child);
        if (!node) continue;
        found.set(child, node);
        if (!recursive) queue.push(child);
      }
    }
    return withDepths(root, found);
  }

  hasPeers(node: MountNode): boolean {
    return peersInTable(node);
  }
}

class MountinfoView implements MountView {
  readonly mode = 'mountinfo';
  private readonly byId = new Map<number, MountNode>();
  private readonly children = new Map<number, MountNode[]>();

  constructor(private readonly entries: readonly MountEntry[]) {
    for (const e of entries) {
      const node: MountNode = {
        id: e.id,
        parent: e.parentId,
        oldId: e.id,
        mountPoint: e.mountPoint,
        sharedGroup: e.sharedGroup,
        masterGroup: e.masterGroup,
      };
      this.byId.set(e.id, node);
      if (e.parentId !== e.id) {
        const list = this.children.get(e.parentId) ?? [];
        list.push(node);
        this.children.set(e.parentId, list);
      }
    }
  }

  get(id: MountId): MountNode | undefined {
    return this.byId.get(Number(id));
  }

  below(id: MountId): { node: MountNode; depth: number }[] {
    const out: { node: MountNode; depth: number }[] = [];
    const queue: { id: number; depth: number }[] = [{ id: Number(id), depth: 0 }];
    const seen = new Set<number>([Number(id)]);
    while (queue.length > 0) {
      const { id: parent, depth } = queue.shift() as { id: number; depth: number };
      for (const node of this.children.get(parent) ?? []) {
        if (seen.has(node.oldId)) continue;
        seen.add(node.oldId);
        out.push({ node, depth: depth + 1 });
        queue.push({ id: node.oldId, depth: depth + 1 });
      }
    }
    return out;
  }

  entry(id: MountId): MountEntry | undefined {
    return this.entries.find((e) => e.id === Number(id));
  }

  exists(): undefined {
    return undefined;
  }

  hasPeers(node: MountNode): boolean {
    return peersInTable(node);
  }
}

/**
 * True when another mount of this namespace is in `node`'s peer group. No call lists a peer
 * group: its members are found in mountinfo's text, filtered before any parse (one more read,
 * only when a mount is attached under a shared one).
 */
function peersInTable(node: MountNode): boolean {
  if (node.sharedGroup === undefined) return false;
  const needle = ` shared:${node.sharedGroup} `;
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  return parseMountinfo(text, (line) => line.includes(needle)).some((e) => e.id !== node.oldId);
}

let subtrees: boolean | undefined;

/**
 * True when this kernel's listmount lists a mount's whole subtree, not only its children: seen
 * once, in the namespace's root listing, from mounts listed with different parents (direct
 * children all have the same one). Undecided (no nested mount there): false, the safe answer.
 */
export function listsSubtrees(): boolean {
  if (subtrees !== undefined) return subtrees;
  const parents = new Set<bigint>();
  for (const id of listmount(LSMT_ROOT, 256)) {
    const parent = statmountIfAny(id, true)?.parentId;
    if (parent !== undefined) parents.add(parent);
    if (parents.size > 1) return (subtrees = true);
  }
  return (subtrees = false);
}

function fromStat(stat: MountStat): MountNode {
  return {
    id: stat.id,
    parent: stat.parentId,
    oldId: stat.oldId,
    mountPoint: stat.mountPoint,
    sharedGroup: stat.sharedGroup,
    masterGroup: stat.masterGroup,
  };
}

/** Depth of each found mount below `root`, through parent IDs. */
function withDepths(
  root: bigint,
  found: Map<bigint, MountNode>,
): { node: MountNode; depth: number }[] {
  const depths = new Map<bigint, number>([[root, 0]]);
  const depthOf = (id: bigint): number => {
    const known = depths.get(id);
    if (known !== undefined) return known;
    const node = found.get(id);
    // A parent outside the listing (gone meanwhile): counted as a child of the root.
    const depth = node ? depthOf(BigInt(node.parent)) + 1 : 0;
    depths.set(id, depth);
    return depth;
  };
  return [...found.values()].map((node) => ({ node, depth: depthOf(BigInt(node.id)) }));
}
