/**
 * The mount system layer: the only code that changes the mount table. Every decision is taken
 * from a fresh read of mountinfo, never from device numbers.
 */
import type { MountsWithin } from './mounts-within.js';
import { lstat, mkdir, realpath, rmdir, stat } from 'node:fs/promises';
import { CommandError, run } from './exec.js';
import { writeMountRootMarker } from './mount-root-marker.js';
import { mountRootShowsTwice } from './mount-root-peers.js';
import type { DirectoryIdentity } from '../model/directory-identity.js';
import { holdDirectory, identityBeneath, type HeldDirectory } from './held-directory.js';
import { bindTree, sharedMountPointAt } from './held-bind.js';
import { openDirectory, statx, withFd } from './kernel/calls.js';
import { heldOrUnavailable } from './held-or-unavailable.js';
import type { MountReader } from './mount-snapshot.js';
import { aboutPath, MountEntry, mountsAt, mountsBelow, propagationOf } from './mountinfo.js';

export * from './mounts-api.js';
import {
  ForeignMountPointError,
  isCutOff,
  procMountTable,
  StackedMountsError,
  type DetachReport,
  type Mounts,
  type MountSource,
  type MountTable,
  type ResolvedDirectory,
  type SharedMode,
  viewKeptAsItIs,
} from './mounts-api.js';

export class MountSystem implements Mounts {
  constructor(
    private readonly table: MountTable = procMountTable,
    private readonly mountBin = 'mount',
    private readonly umountBin = 'umount',
  ) {}

  read(keep?: (line: string) => boolean): Promise<MountEntry[]> {
    return this.table.read(keep);
  }

  /** The mounts at or under `dir` (and those with the given ids), parsing nothing else. */
  readAbout(dir: string, ids: readonly number[] = []): Promise<MountEntry[]> {
    return this.table.read(aboutPath(dir, ids));
  }

  readerAbout(dir: string): MountReader {
    return this.table.reader(aboutPath(dir));
  }

  /** Only from the table: the snapshot answers. */
  async stackAt(): Promise<undefined> {
    return undefined;
  }

  /**
   * Makes `target` show `source` (a bind of a directory, or a fresh tmpfs) with shared
   * propagation, exactly once. An existing mount at `target` is kept (made shared if it is not);
   * extra mounts stacked on it are removed. A fresh mount that joined an existing peer group is
   * given a peer group of its own, so that nothing propagated into it shows up twice.
   */
  async ensureSharedMount(
    source: MountSource,
    target: string,
    mode: SharedMode,
  ): Promise<MountEntry> {
    if (source.kind === 'adopt' && source.keepView) return viewKeptAsItIs(this, target);
    const held = source.kind === 'adopt' ? source.held : undefined;
    let directory: readonly { sharedGroup?: number }[] | undefined;
    if (source.kind === 'adopt' && !held) {
      directory = await this.ensureSharedMountPoint(source.directory);
    }
    // A mount point the driver did not make is refused, never made shared (sharedOrRefused).
    const shown = held && (await sharedMountPointAt(held, (id) => this.sharedOrRefused(held, id)));
    let stack: MountEntry[];
    /** A mount made here that is already shared and holds no other (a bind or tmpfs, not rbind). */
    let freshShared = false;
    try {
      if (held && shown !== undefined) {
        const id = statx(shown, '', false).mountId as number;
        directory = (await this.readAbout(held.path, [id])).filter((e) => e.id === id);
      }
      stack = mountsAt(await this.readAbout(target), target);
      if (directory && isCutOff(stack, directory)) {
        // Cut off from the directory (a kill between the two steps of a Remove): what is mounted
        // in it reaches no one. Detached in this view only, and bound again from the directory.
        await this.detachView(target);
        stack = [];
      }
      if (stack.length === 0 && shown !== undefined) {
        await mkdir(target, { recursive: true });
        withFd(openDirectory(target), (to) => bindTree(shown, to, mode));
        stack = mountsAt(await this.readAbout(target), target);
        freshShared = stack.length === 1 && stack[0]?.sharedGroup !== undefined;
      }
    } finally {
      if (shown !== undefined) withFd(shown, () => undefined);
    }
    if (stack.length === 0) {
      await mkdir(target, { recursive: true });
      await this.mount(
        source.kind === 'tmpfs'
          ? ['-t', 'tmpfs', '-o', source.options, 'sharedprop', target]
          : // An adopted directory's own submounts are part of what it shows (as with ip netns).
            [source.kind === 'adopt' ? '--rbind' : '--bind', source.directory, target],
      );
      stack = mountsAt(await this.readAbout(target), target);
      const fresh = stack.at(-1);
      if (!fresh) {
        throw new Error(`the ${source.kind} mount on ${target} did not appear in mountinfo`);
      }
      // A bind joins the peer group of its source's mount when that is shared (on systemd hosts,
      // the root's): whatever is later mounted in the volume would then also appear at the source
      // and at every peer. A group that only this mount has in this namespace is new (in the
      // managed plugin, shared with the host's view of the propagated mount) and is kept.
      const group = fresh.sharedGroup;
      // An adopted directory's bind stays in the directory's own peer group: that is the point.
      if (group !== undefined && source.kind !== 'adopt') {
        const peers = await this.read((line) => line.includes(` shared:${group} `));
        if (peers.some((e) => e.id !== fresh.id)) {
          await this.mount(['--make-private', target]);
          stack = mountsAt(await this.readAbout(target), target);
        } else {
          freshShared = stack.length === 1;
        }
      }
    }
    if (source.kind === 'adopt' && stack.length > 1) {
      // Something was mounted over the adopted directory on the host and propagated here. Peeling
      // it off would unmount the host's mount too (the lower mount is in the directory's peer
      // group): the volume shows what the directory shows.
      return stack.at(-1) as MountEntry;
    }
    while (stack.length > 1) {
      // Our own mount stacked on itself (an older run, or a duplicate propagated back): peel the
      // top ones off so that exactly one remains.
      await this.umount([target]);
      stack = mountsAt(await this.readAbout(target), target);
    }
    let top = stack[0];
    if (!top) throw new Error(`no mount at ${target}`);
    // `--make-rshared` also makes the mounts beneath it shared; a fresh one has none (one mount(8)
    // fewer at every Create and every restored mount point).
    if (top.sharedGroup === undefined || (mode === 'rshared' && !freshShared)) {
      await this.mount([mode === 'rshared' ? '--make-rshared' : '--make-shared', target]);
      top = mountsAt(await this.readAbout(target), target)[0] ?? top;
    }
    return top;
  }

  async refuseForeignMountPoint(held: HeldDirectory): Promise<void> {
    const stat = statx(held.fd, '', false);
    if (stat.mountRoot) await this.sharedOrRefused(held, stat.mountId as number);
  }

  /** Whether the mount of this ID (the held directory's) is shared; refused when it is not. */
  private async sharedOrRefused(held: HeldDirectory, id: number): Promise<true> {
    const mount = (await this.readAbout(held.path, [id])).find((e) => e.id === id);
    if (mount?.sharedGroup !== undefined) return true;
    throw new ForeignMountPointError(held.path, mount ? propagationOf(mount) : 'detached');
  }

  /**
   * Makes `dir` a shared mount point with a peer group of its own, as `ip netns add` does for
   * /run/netns: a self-bind when it is no mount point yet (made private first, so that it does
   * not join its parent's group). A mount point that is not shared is someone else's: refused,
   * never made shared. Returns the mounts at `dir`.
   */
  private async ensureSharedMountPoint(dir: string): Promise<MountEntry[]> {
    const stack = mountsAt(await this.readAbout(dir), dir);
    const top = stack.at(-1);
    if (!top) {
      // Recursive, as `ip netns` binds /run/netns: the mounts already in it stay visible there.
      await this.mount(['--rbind', dir, dir]);
      await this.mount(['--make-private', dir]);
      await this.mount(['--make-shared', dir]);
      return mountsAt(await this.readAbout(dir), dir);
    }
    if (top.sharedGroup === undefined) throw new ForeignMountPointError(dir, propagationOf(top));
    return stack;
  }

  async detachView(mountpoint: string): Promise<DetachReport> {
    const stack = mountsAt(await this.readAbout(mountpoint), mountpoint);
    if (stack.length === 0) return { detached: [], lazy: [] };
    if (stack.length > 1) {
      // Only the top of a stack can be made private; detaching it would propagate through the
      // lower one, in the host directory's peer group, and unmount the host's own mount.
      throw new StackedMountsError(stack.length);
    }
    await this.mount(['--make-rprivate', mountpoint]);
    return this.detachAll(mountpoint, { includeSelf: true });
  }

  /** Through the system calls even here: adoption decides by identity (see heldOrUnavailable). */
  async holdDirectory(dir: string, places = false): Promise<HeldDirectory> {
    return heldOrUnavailable(() => holdDirectory(dir, places ? 'mountinfo' : undefined));
  }

  async identityBeneath(dir: string): Promise<DirectoryIdentity> {
    return identityBeneath(dir);
  }

  async resolveDirectory(dir: string): Promise<ResolvedDirectory | undefined> {
    try {
      const realPath = await realpath(dir);
      return { realPath, isDirectory: (await stat(realPath)).isDirectory() };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async showsDirectory(mountpoint: string, source: string): Promise<boolean> {
    try {
      const [shown, data] = await Promise.all([stat(mountpoint), lstat(source)]);
      return shown.ino === data.ino && shown.dev === data.dev;
    } catch {
      return false;
    }
  }

  async showsDevice(mountpoint: string, device: string): Promise<boolean> {
    try {
      return deviceNumber((await stat(mountpoint, { bigint: true })).dev) === device;
    } catch {
      return false;
    }
  }

  /** mount(8) has no cheaper way than the table: the caller reads it. */
  async mountsWithin(): Promise<MountsWithin> {
    return 'unknown';
  }

  async removeMountPoint(mountpoint: string): Promise<void> {
    await rmdir(mountpoint).catch(() => undefined);
  }

  async privatizeMountPoint(dir: string): Promise<boolean> {
    const top = mountsAt(await this.readAbout(dir), dir).at(-1);
    if (!top || (top.sharedGroup === undefined && top.masterGroup === undefined)) return false;
    await this.mount(['--make-rprivate', dir]);
    return true;
  }

  async prepareMountRoot(root: string, file: { name: string; content: string }): Promise<void> {
    const made = await mkdir(root, { recursive: true, mode: 0o755 });
    await this.separateMountRoot(root);
    await writeMountRootMarker(root, file, made !== undefined);
  }

  /**
   * A mount root held by a shared mount with a peer in this namespace (a data root bound onto
   * itself in its parent's peer group, as `ip netns` binds /run/netns on a systemd host) becomes a
   * mount of its own in a group of its own: else every volume mounted in it would also appear at
   * each peer, hidden beneath the data root. Only while nothing is mounted at or in it.
   */
  private async separateMountRoot(root: string): Promise<void> {
    if (!mountRootShowsTwice(await this.read(), root)) return;
    await this.mount(['--bind', root, root]);
    await this.mount(['--make-private', root]);
    await this.mount(['--make-shared', root]);
  }

  /** Detaches every mount beneath `dir` (deepest first), then every mount at `dir` itself. */
  async detachAll(dir: string, options: { includeSelf: boolean }): Promise<DetachReport> {
    const report: DetachReport = { detached: [], lazy: [] };
    for (const entry of mountsBelow(await this.readAbout(dir), dir)) {
      await this.detachOne(entry.mountPoint, report);
    }
    if (options.includeSelf) {
      for (let i = mountsAt(await this.readAbout(dir), dir).length; i > 0; i--) {
        await this.detachOne(dir, report);
      }
    }
    return report;
  }

  /**
   * Detaches the top mount at `mountPoint`. A failure is judged by the mount table, never by
   * umount's message (it is translated): still there means busy, so it is detached lazily (the
   * kernel frees it when its last user goes); gone means someone else detached it first.
   */
  private async detachOne(mountPoint: string, report: DetachReport): Promise<void> {
    const count = async () => mountsAt(await this.readAbout(mountPoint), mountPoint).length;
    const before = await count();
    if (before === 0) return;
    try {
      await this.umount([mountPoint]);
      report.detached.push(mountPoint);
      return;
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      if ((await count()) < before) return;
    }
    await this.umount(['-l', mountPoint]);
    report.detached.push(mountPoint);
    report.lazy.push(mountPoint);
  }

  private async mount(args: string[]): Promise<void> {
    await run(this.mountBin, args);
  }

  private async umount(args: string[]): Promise<void> {
    await run(this.umountBin, args);
  }
}

/** A stat(2) device number as mountinfo writes it (major:minor), decoded as glibc's makedev. */
export function deviceNumber(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}
