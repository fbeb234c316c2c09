/**
 * The mount system layer: the only code that changes the mount table. Every decision is taken
 * from a fresh read of mountinfo, never from device numbers.
 */
import { chmod, lstat, mkdir, open, realpath, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { CommandError, run } from './exec.js';
import type { DirectoryIdentity } from '../model/directory-identity.js';
import { holdDirectory, identityBeneath, type HeldDirectory } from './held-directory.js';
import { bindTree, sharedMountPointAt } from './held-bind.js';
import { openDirectory, withFd } from './kernel/calls.js';
import type { MountReader } from './mount-snapshot.js';
import {
  aboutPath,
  MountEntry,
  MountinfoReader,
  mountsAt,
  mountsBelow,
  readMountinfo,
} from './mountinfo.js';

export type SharedMode = 'rshared' | 'shared';

/** What a volume's mount point shows: a directory bound there, a tmpfs, or an adopted directory. */
export type MountSource =
  | { kind: 'bind'; directory: string }
  /** `options`: mount(8) options, e.g. `nosuid,nodev,mode=0755,size=64m`. */
  | { kind: 'tmpfs'; options: string }
  /**
   * A host directory adopted as it is: made a shared mount point of its own, and bound at the
   * target in its peer group, so that what is mounted in the volume shows in the directory too.
   */
  | {
      kind: 'adopt';
      directory: string;
      /**
       * The directory as it was checked, held by descriptor: the bind is made through it, so
       * nothing swapped at the name since (a rename, a symlink) can redirect it.
       */
      held?: HeldDirectory;
    };

/** A host directory as the kernel resolves it (symlinks followed). */
/** A view that cannot be detached without reaching the directory it shows: mounts are stacked. */
export class StackedMountsError extends Error {
  constructor(readonly count: number) {
    super(`${count} mounts are stacked at the mount point`);
  }
}

export interface ResolvedDirectory {
  realPath: string;
  isDirectory: boolean;
}

export interface MountTable {
  /** The mount table, or only the lines `keep` accepts. */
  read(keep?: (line: string) => boolean): Promise<MountEntry[]>;
  /** For repeated reads of the same lines: one that may skip the parse when nothing changed. */
  reader(keep: (line: string) => boolean): MountReader;
}

const MOUNTINFO = '/proc/self/mountinfo';

export const procMountTable: MountTable = {
  read: (keep) => readMountinfo(MOUNTINFO, keep),
  reader: (keep) => new MountinfoReader(MOUNTINFO, keep),
};

export interface DetachReport {
  /** Mount points detached, deepest first. */
  detached: string[];
  /** Those that were busy and had to be detached lazily. */
  lazy: string[];
}

/** What the driver needs of the mount table and of mount point directories (faked in unit tests). */
export interface Mounts {
  read(keep?: (line: string) => boolean): Promise<MountEntry[]>;
  readAbout(dir: string): Promise<MountEntry[]>;
  /**
   * For questions asked again and again (the driver's snapshot): reads what readAbout(dir) does,
   * returning the same, frozen array while the table has not changed.
   */
  readerAbout(dir: string): MountReader;
  ensureSharedMount(source: MountSource, target: string, mode: SharedMode): Promise<MountEntry>;
  detachAll(dir: string, options: { includeSelf: boolean }): Promise<DetachReport>;
  /**
   * Detaches the mount at `mountpoint` and everything beneath it in this view only: they are made
   * private first, so that no unmount propagates to the peers (an adopted directory keeps its
   * own submounts, namespace files included).
   */
  detachView(mountpoint: string): Promise<DetachReport>;
  /** Where `dir` really is, and whether it is a directory; undefined when it does not exist. */
  resolveDirectory(dir: string): Promise<ResolvedDirectory | undefined>;
  /**
   * Opens the directory `dir` names, no symlink on its way, and takes its identity and those of
   * the directories above it (held-directory.ts); errors carry ENOENT, ELOOP or ENOTDIR.
   */
  holdDirectory(dir: string): Promise<HeldDirectory>;
  /** The identity of the directory `dir` names beneath whatever is mounted over it. */
  identityBeneath(dir: string): Promise<DirectoryIdentity>;
  /** True when `mountpoint` shows the directory `source` (the same inode): a cheap health check. */
  showsDirectory(mountpoint: string, source: string): Promise<boolean>;
  /** True when `mountpoint` shows the filesystem `device` (major:minor): a cheap health check. */
  showsDevice(mountpoint: string, device: string): Promise<boolean>;
  /** Removes an empty mount point directory; never anything else (rmdir). */
  removeMountPoint(mountpoint: string): Promise<void>;
  /** Makes the mount root and writes `file` (name, content) into it. */
  prepareMountRoot(root: string, file: { name: string; content: string }): Promise<void>;
  /**
   * Makes the mount at `dir` and everything beneath it private in this mount namespace, when
   * `dir` is a mount point that is shared or a slave; true when it changed anything. Other
   * namespaces' copies are not touched.
   */
  privatizeMountPoint(dir: string): Promise<boolean>;
}

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
    const held = source.kind === 'adopt' ? source.held : undefined;
    if (source.kind === 'adopt' && !held) await this.ensureSharedMountPoint(source.directory);
    const shown = held && (await sharedMountPointAt(held, (id) => this.isShared(held.path, id)));
    let stack: MountEntry[];
    /** A mount made here that is already shared and holds no other (a bind or tmpfs, not rbind). */
    let freshShared = false;
    try {
      stack = mountsAt(await this.readAbout(target), target);
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

  /** Whether the mount with this (mountinfo) ID, read about `dir`, is shared. */
  private async isShared(dir: string, id: number): Promise<boolean> {
    const entries = await this.readAbout(dir, [id]);
    return entries.find((e) => e.id === id)?.sharedGroup !== undefined;
  }

  /**
   * Makes `dir` a shared mount point with a peer group of its own, as `ip netns add` does for
   * /run/netns: a self-bind when it is no mount point yet (made private first, so that it does
   * not join its parent's group), or `--make-shared` when it is one that is not shared.
   */
  private async ensureSharedMountPoint(dir: string): Promise<void> {
    const stack = mountsAt(await this.readAbout(dir), dir);
    if (stack.length === 0) {
      // Recursive, as `ip netns` binds /run/netns: the mounts already in it stay visible there.
      await this.mount(['--rbind', dir, dir]);
      await this.mount(['--make-private', dir]);
      await this.mount(['--make-shared', dir]);
    } else if (stack.at(-1)?.sharedGroup === undefined) {
      await this.mount(['--make-shared', dir]);
    }
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

  async holdDirectory(dir: string): Promise<HeldDirectory> {
    return holdDirectory(dir);
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

  async removeMountPoint(mountpoint: string): Promise<void> {
    await rmdir(mountpoint).catch(() => undefined);
  }

  async privatizeMountPoint(dir: string): Promise<boolean> {
    const top = mountsAt(await this.readAbout(dir), dir).at(-1);
    if (!top || (top.sharedGroup === undefined && top.masterGroup === undefined)) return false;
    await this.mount(['--make-rprivate', dir]);
    return true;
  }

  /**
   * The runtime wrapper trusts the marker only when root owns it and the mount root and no one
   * else can write either (src/runtime/root-file.ts): whatever the umask, a new root is 0755 and
   * an old one loses group and other write, and the file is written anew (exclusive create,
   * 0644, renamed into place), so an old one's owner, mode or symlink does not survive.
   */
  async prepareMountRoot(root: string, file: { name: string; content: string }): Promise<void> {
    const made = await mkdir(root, { recursive: true, mode: 0o755 });
    const { mode } = await stat(root);
    const wanted = made === undefined ? mode & 0o7755 : 0o755; // an old root: less others' write
    if ((mode & 0o7777) !== wanted) await chmod(root, wanted);
    const temp = path.join(root, `${file.name}.tmp`);
    await rm(temp, { force: true });
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.chmod(0o644);
      await handle.writeFile(file.content);
    } finally {
      await handle.close();
    }
    await rename(temp, path.join(root, file.name));
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
