/**
 * The Mounts interface on system calls, with no child process: every directory acted on is
 * opened first (openat2, no symlink anywhere on the way), checked through that descriptor
 * (statx: mount ID, mount root) and acted on through it (open_tree, move_mount, mount_setattr,
 * fsmount with AT_EMPTY_PATH). Only umount2 takes a path: see detach.ts for how it is checked.
 *
 * The mount tree is read by ID (statmount/listmount, 6.8+) or, on older kernels, from one read of
 * mountinfo per operation (mount-tree.ts); never once per submount.
 *
 * The questions (read, readAbout, readerAbout) read mountinfo as MountSystem does: they are the
 * driver's snapshot, whose callers filter its text.
 */
import { mkdir, rmdir } from 'node:fs/promises';
import { close, moveMount, mountSetattr, openDirectory, openTree, statx } from './kernel/calls.js';
import { isErrno } from './kernel/ffi.js';
import { newTmpfs } from './kernel/tmpfs.js';
import { sharedMountPointAt } from './held-bind.js';
import type { DirectoryIdentity } from '../model/directory-identity.js';
import { holdDirectory, identityBeneath, type HeldDirectory } from './held-directory.js';
import { detachChecked, detachNodes } from './detach.js';
import type { MountReader } from './mount-snapshot.js';
import { writeMountRootMarker } from './mount-root-marker.js';
import { scanForMounts, type MountsWithin } from './mounts-within.js';
import {
  ensureSharedMountPoint,
  entryOfRoot,
  holdMountPoint,
  holdOrCreate,
  separateMountRoot,
  type Held,
} from './held-mount.js';
import { MountTree, type MountNode, type MountTreeOptions, type MountView } from './mount-tree.js';
import { aboutPath, isWithin, propagationOf, type MountEntry } from './mountinfo.js';
import { PeersHere, type TableChanged } from './peers-here.js';
import {
  ForeignMountPointError,
  isCutOff,
  MountSystem,
  procMountTable,
  StackedMountsError,
  type DetachReport,
  type Mounts,
  type MountSource,
  type MountTable,
  type ResolvedDirectory,
  type SharedMode,
  viewKeptAsItIs,
} from './mounts.js';

export interface SyscallMountsOptions extends MountTreeOptions {
  /** Where the questions read the table (default: this process's mountinfo). */
  table?: MountTable;
  /** Called between the check of a target and the act on it: for tests that race the two. */
  betweenCheckAndAct?: (target: string) => void;
  /** Whether the mount table changed since last asked (default: poll of mountinfo). */
  tableChanged?: TableChanged;
}

export class SyscallMounts implements Mounts {
  readonly tree: MountTree;
  private readonly table: MountTable;
  /** Only for what has nothing to do with mounts (resolveDirectory, showsDirectory...). */
  private readonly paths: MountSystem;
  private readonly betweenCheckAndAct: (target: string) => void;
  /** For directories that are no mount point, in listmount mode: see detachAll. */
  private tableTree?: MountTree;
  /** Whether the mount root's mount has peers here, remembered between own changes. */
  private readonly peers: PeersHere;

  constructor(options: SyscallMountsOptions = {}) {
    this.betweenCheckAndAct = options.betweenCheckAndAct ?? (() => undefined);
    this.tree = new MountTree(options);
    this.table = options.table ?? procMountTable;
    this.paths = new MountSystem(this.table);
    this.peers = new PeersHere(options.tableChanged);
  }

  read(keep?: (line: string) => boolean): Promise<MountEntry[]> {
    return this.table.read(keep);
  }

  readAbout(dir: string): Promise<MountEntry[]> {
    return this.table.read(aboutPath(dir));
  }

  readerAbout(dir: string): MountReader {
    return this.table.reader(aboutPath(dir));
  }

  /**
   * By identity where the kernel reads one mount by ID (statmount): the mount the directory is
   * on and those beneath it at the same place, with no read of the table. On the mountinfo
   * fallback, undefined: the driver's snapshot (one read for many questions) is cheaper.
   */
  async stackAt(mountpoint: string): Promise<MountEntry[] | undefined> {
    if (this.tree.mode !== 'listmount') return undefined;
    let held: Held;
    try {
      held = holdMountPoint(this.tree, mountpoint);
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR', 'ELOOP')) return [];
      throw error;
    }
    close(held.fd);
    return held.stack.map((node) => {
      const entry = held.view.entry(node.id);
      if (!entry)
        throw new Error(`mount ${String(node.id)} is gone from ${JSON.stringify(mountpoint)}`);
      return entry;
    });
  }

  async ensureSharedMount(
    source: MountSource,
    target: string,
    mode: SharedMode,
  ): Promise<MountEntry> {
    if (source.kind === 'adopt' && source.keepView) return viewKeptAsItIs(this, target);
    const adopted = source.kind === 'adopt' ? source.held : undefined;
    let directory =
      source.kind === 'adopt' && !adopted
        ? ensureSharedMountPoint(this.tree, source.directory)
        : undefined;
    // A mount point the driver did not make is refused, never made shared (sharedOrRefused).
    const shown =
      adopted && (await sharedMountPointAt(adopted, (id) => this.sharedOrRefused(adopted, id)));
    let held: Held;
    try {
      if (shown !== undefined) directory = [entryOfRoot(this.tree, shown)];
      held = await holdOrCreate(this.tree, target);
      if (directory && isCutOff(held.stack, directory)) {
        // Cut off from the directory (a kill between the two steps of a Remove): what is mounted
        // in it reaches no one. Detached in this view only, and bound again from the directory.
        close(held.fd);
        await this.detachView(target);
        held = holdMountPoint(this.tree, target);
      }
    } catch (error) {
      if (shown !== undefined) close(shown);
      throw error;
    }
    const view = held.view;
    try {
      if (held.stack.length === 0) return this.attach(source, held, view, mode, shown);
      if (source.kind === 'adopt' && held.stack.length > 1) {
        // Something was mounted over the adopted directory on the host and propagated here:
        // peeling it off would unmount the host's mount too. The volume shows what it shows.
        return entryOfRoot(this.tree, held.fd, view);
      }
      let changed = false;
      while (held.stack.length > 1) {
        // Our own mount stacked on itself: peel the top ones off so that exactly one remains.
        // The descriptor would keep the top busy: it is closed first, and the path checked.
        const top = held.stack.at(-1) as MountNode;
        const below = held.stack.at(-2) as MountNode;
        close(held.fd);
        held.fd = -1;
        const outcome = detachChecked(this.tree, view, target, top.id);
        held = holdMountPoint(this.tree, target, view);
        if (outcome === 'elsewhere' || held.mount.id !== below.id) {
          throw new Error(`${JSON.stringify(target)} changed while its stacked mounts were peeled`);
        }
        changed = true;
      }
      const top = held.stack[0] as MountNode;
      if (top.sharedGroup === undefined || mode === 'rshared') {
        mountSetattr(held.fd, { propagation: 'shared', recursive: mode === 'rshared' });
        changed = true;
      }
      return entryOfRoot(this.tree, held.fd, changed ? undefined : view);
    } finally {
      if (held.fd >= 0) close(held.fd);
      if (shown !== undefined) close(shown);
    }
  }

  async refuseForeignMountPoint(held: HeldDirectory): Promise<void> {
    const stat = statx(held.fd, '', false);
    if (stat.mountRoot) this.sharedOrRefused(held, stat.mountId as number);
  }

  /**
   * Whether the mount (by its mountinfo ID) the held directory is the root of is shared: one
   * read. One that is not, or is no longer in the table, is refused (ForeignMountPointError).
   */
  private sharedOrRefused(directory: HeldDirectory, id: number): true {
    this.tableTree ??= new MountTree({ fallback: true });
    const mount = this.tableTree.view({ path: directory.path, ids: [id] }).entry(id);
    if (mount?.sharedGroup !== undefined) return true;
    throw new ForeignMountPointError(directory.path, mount ? propagationOf(mount) : 'detached');
  }

  /**
   * Makes a new mount of `source`, attaches it at `held` and makes it shared. A bind leaves its
   * source's peer group before it is attached; under a shared parent the kernel then gives it a
   * group of its own, shared with the copies at the parent's peers: kept when none of those is
   * in this namespace (in the managed plugin, the host's view of the propagated mount), left for
   * a new group otherwise. An adopted directory's bind stays in the directory's group: that is
   * the point.
   */
  private attach(
    source: MountSource,
    held: Held,
    view: MountView,
    mode: SharedMode,
    shown?: number,
  ): MountEntry {
    const mountFd =
      source.kind === 'tmpfs'
        ? newTmpfs(source.options)
        : shown !== undefined
          ? openTree(shown, { clone: true, recursive: true })
          : this.withDirectory(source.directory, (fd) =>
              // An adopted directory's own submounts are part of what it shows (as with ip netns).
              openTree(fd, { clone: true, recursive: source.kind === 'adopt' }),
            );
    try {
      this.betweenCheckAndAct(held.path);
      // The parent's peers are not changed by what is attached beneath it: asked before.
      const parentShared = held.mount.sharedGroup !== undefined;
      const peersHere =
        source.kind !== 'adopt' &&
        parentShared &&
        this.peers.has(held.mount, (node) => view.hasPeers(node));
      this.peers.ownChange(() => {
        if (source.kind === 'adopt') {
          moveMount(mountFd, held.fd);
          if (mode === 'rshared') mountSetattr(mountFd, { propagation: 'shared', recursive: true });
          return;
        }
        mountSetattr(mountFd, { propagation: 'private' });
        moveMount(mountFd, held.fd);
        if (peersHere) mountSetattr(mountFd, { propagation: 'private' });
        if (!parentShared || peersHere) {
          // A fresh bind or tmpfs holds no other mount: recursive or not is the same.
          mountSetattr(mountFd, { propagation: 'shared' });
        }
      });
      return entryOfRoot(this.tree, mountFd);
    } finally {
      close(mountFd);
    }
  }

  private withDirectory<T>(dir: string, work: (fd: number) => T): T {
    const fd = openDirectory(dir);
    try {
      return work(fd);
    } finally {
      close(fd);
    }
  }

  async detachView(mountpoint: string): Promise<DetachReport> {
    let held: Held;
    try {
      held = holdMountPoint(this.tree, mountpoint);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return { detached: [], lazy: [] };
      throw error;
    }
    try {
      if (held.stack.length === 0) return { detached: [], lazy: [] };
      // Only the top of a stack can be made private; detaching it would propagate through the
      // lower one, in the host directory's peer group, and unmount the host's own mount.
      if (held.stack.length > 1) throw new StackedMountsError(held.stack.length);
      mountSetattr(held.fd, { propagation: 'private', recursive: true });
    } finally {
      close(held.fd);
    }
    return this.detachHeld(held, true);
  }

  async detachAll(dir: string, options: { includeSelf: boolean }): Promise<DetachReport> {
    let held: Held;
    try {
      held = holdMountPoint(this.tree, dir);
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return { detached: [], lazy: [] };
      throw error;
    }
    close(held.fd);
    if (held.stack.length === 0 && held.view.mode === 'listmount') {
      // No mount point: what lies within it belongs to the enclosing mount's subtree, often `/`
      // and the whole table, which statmount would read one call per mount. One filtered read
      // of mountinfo finds them instead (identity then by mountinfo's IDs).
      this.tableTree ??= new MountTree({ fallback: true });
      held = holdMountPoint(this.tableTree, dir);
      close(held.fd);
      return this.detachHeld(held, options.includeSelf, this.tableTree);
    }
    return this.detachHeld(held, options.includeSelf);
  }

  /**
   * Detaches what is beneath the held directory, listed once: deepest first, then (with
   * `includeSelf`) the stack at it, top first. A mount point hidden beneath a stack is reached
   * once the stack above it is gone. Throws when a listed mount is still there at the end.
   */
  private async detachHeld(
    held: Held,
    includeSelf: boolean,
    tree = this.tree,
  ): Promise<DetachReport> {
    const view = held.view;
    const report: DetachReport = { detached: [], lazy: [] };
    const bottom = held.stack[0];
    let nodes: { node: MountNode; depth: number }[];
    if (!bottom) {
      // No mount point: the mounts of the enclosing mount that lie within the directory.
      nodes = view.below(held.mount.id).filter((n) => isWithin(n.node.mountPoint, held.path));
    } else if (includeSelf) {
      nodes = [...view.below(bottom.id), { node: bottom, depth: 0 }];
    } else {
      nodes = view.below(held.mount.id);
    }
    const missed = await detachNodes(tree, view, nodes, report);
    const left = missed.filter((node) => view.exists(node.id) !== false);
    if (left.length > 0 && view.mode === 'mountinfo') {
      // Gone along with a lazily detached parent, or still there: one more read tells.
      const now = tree.view({ path: held.path });
      const still = left.filter((n) => now.get(n.id)?.mountPoint === n.mountPoint);
      if (still.length === 0) return report;
      left.splice(0, left.length, ...still);
    }
    if (left.length > 0) {
      throw new Error(
        `${left.length} mounts beneath ${JSON.stringify(held.path)} could not be reached to be detached (first: ${JSON.stringify(left[0]?.mountPoint)})`,
      );
    }
    return report;
  }

  async privatizeMountPoint(dir: string): Promise<boolean> {
    const held = holdMountPoint(this.tree, dir);
    try {
      const top = held.stack.at(-1);
      if (!top || (top.sharedGroup === undefined && top.masterGroup === undefined)) return false;
      mountSetattr(held.fd, { propagation: 'private', recursive: true });
      return true;
    } finally {
      close(held.fd);
    }
  }

  resolveDirectory(dir: string): Promise<ResolvedDirectory | undefined> {
    return this.paths.resolveDirectory(dir);
  }

  async holdDirectory(dir: string, places = false): Promise<HeldDirectory> {
    const reading = this.tree.mode === 'listmount' ? 'statmount' : 'mountinfo';
    return holdDirectory(dir, places ? reading : undefined);
  }

  async identityBeneath(dir: string): Promise<DirectoryIdentity> {
    return identityBeneath(dir);
  }

  showsDirectory(mountpoint: string, source: string): Promise<boolean> {
    return this.paths.showsDirectory(mountpoint, source);
  }

  showsDevice(mountpoint: string, device: string): Promise<boolean> {
    return this.paths.showsDevice(mountpoint, device);
  }

  async mountsWithin(dir: string): Promise<MountsWithin> {
    return scanForMounts(dir);
  }

  async removeMountPoint(mountpoint: string): Promise<void> {
    await rmdir(mountpoint).catch(() => undefined);
  }

  /** A mount root of its own where it needs one, and the marker the runtime wrapper trusts. */
  async prepareMountRoot(root: string, file: { name: string; content: string }): Promise<void> {
    const made = await mkdir(root, { recursive: true, mode: 0o755 });
    const within = (await this.readAbout(root)).some((e) => isWithin(e.mountPoint, root));
    if (!within) separateMountRoot(this.tree, root);
    await writeMountRootMarker(root, file, made !== undefined);
  }
}

/** The mount layer on system calls (SHAREDPROP_MOUNT_LAYER=mountinfo: without statmount/listmount). */
export function createSyscallMounts(options: SyscallMountsOptions = {}): SyscallMounts {
  return new SyscallMounts(options);
}
