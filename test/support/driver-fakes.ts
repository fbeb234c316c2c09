/**
 * In-memory fakes of the driver's two collaborators, the store and the mount system, so that
 * the driver's logic (Create, Remove, Mount, recovery) runs in the unit tier without root.
 * Each fake can be told to fail the way the real one does (errno codes, busy mounts).
 */
import {
  escapeMountPath,
  holderOf,
  isWithin,
  mountsBelow,
  propagationOf,
  type MountEntry,
} from '../../src/system/mountinfo.js';
import type { MountReader } from '../../src/system/mount-snapshot.js';
import type { DirectoryIdentity } from '../../src/model/directory-identity.js';
import type { HeldDirectory } from '../../src/system/held-directory.js';
import { beneathFake, holdFake } from './fake-directories.js';
import {
  ForeignMountPointError,
  StackedMountsError,
  type DetachReport,
  type Mounts,
  type MountSource,
  type ResolvedDirectory,
  type SharedMode,
  viewKeptAsItIs,
} from '../../src/system/mounts.js';
import { errno } from './fake-store.js';
import type { MountsWithin } from '../../src/system/mounts-within.js';

export { errno, FakeStore } from './fake-store.js';

/** The line /proc/self/mountinfo would show for `e` (proc_pid_mountinfo(5)). */
export function mountinfoLine(e: MountEntry): string {
  const optional = [
    e.sharedGroup === undefined ? '' : ` shared:${e.sharedGroup}`,
    e.masterGroup === undefined ? '' : ` master:${e.masterGroup}`,
    e.unbindable ? ' unbindable' : '',
  ].join('');
  const where = `${escapeMountPath(e.root)} ${escapeMountPath(e.mountPoint)}`;
  return `${e.id} ${e.parentId} ${e.device} ${where} ${e.mountOptions}${optional} - ${e.fsType} ${e.source} ${e.superOptions}`;
}

/**
 * The mount table in memory, checked against the real MountSystem by the contract suite
 * (test/unit/system/mounts-contract.test.ts): the same cases, the same answers. It models what
 * the driver depends on: a stack at a mount point (the top one is what the path shows), peer
 * groups (a mount or unmount under a shared mount happens at its peers too, unless made private
 * first), an adopted directory made a shared mount point of its own, and busy mounts.
 */
export class FakeMounts implements Mounts {
  table: MountEntry[] = [];
  /** Mount points that refuse to be detached, even lazily. */
  stuck = new Set<string>();
  /** Mount points in use: detached lazily, as umount -l does. */
  busy = new Set<string>();
  calls: string[] = [];
  private nextId = 100;
  private nextGroup = 1;
  private nextDevice = 50;
  /** The directory each bind mount shows, by mount id (a tmpfs shows its device). */
  private readonly showing = new Map<number, string>();

  at(mountPoint: string): MountEntry[] {
    return this.table.filter((e) => e.mountPoint === mountPoint);
  }

  /**
   * A mount made by someone else (a container, an operator): a filesystem of its own, that
   * propagates to the peers of the mount it lands on, as mount(8) does.
   */
  mountOutside(mountPoint: string, fsType = 'tmpfs', sharedGroup?: number): MountEntry {
    return this.mountPropagating(mountPoint, () =>
      this.entry(mountPoint, '/', fsType, sharedGroup, `0:${this.nextDevice++}`),
    );
  }

  /** A bind of `directory` at `mountPoint`, by the driver or anyone (propagating as mountOutside). */
  bindOutside(mountPoint: string, directory: string, sharedGroup?: number): MountEntry {
    return this.mountPropagating(mountPoint, () => {
      const entry = this.entry(mountPoint, directory, 'ext4', sharedGroup);
      this.showing.set(entry.id, directory);
      return entry;
    });
  }

  /**
   * A bind of part of a container's root overlay, whose upper and work directories lie in
   * `storage` (an engine storage root): what a dead container leaves. With `storage` outside
   * any engine's, an operator's own overlay.
   */
  mountOverlay(mountPoint: string, storage = '/var/lib/docker/overlay2'): void {
    const layer = `${storage}/${this.nextId}`;
    this.table.push({
      ...this.entry(mountPoint, '/etc', 'overlay', undefined, `0:${this.nextDevice++}`),
      superOptions: `rw,lowerdir=${storage}/l/A,upperdir=${layer}/diff,workdir=${layer}/work`,
    });
  }

  /** How many times the whole table was read, and the directories readAbout was asked about. */
  tableReads = 0;
  readsAbout: string[] = [];

  /** As the real read: `keep` sees each entry's mountinfo line, and drops what it refuses. */
  async read(keep: (line: string) => boolean = () => true): Promise<MountEntry[]> {
    this.tableReads++;
    return this.table.filter((entry) => keep(mountinfoLine(entry)));
  }

  /** True: stackAt answers from the table now, as SyscallMounts does by ID (else undefined). */
  byIdentity = false;

  async stackAt(mountpoint: string): Promise<MountEntry[] | undefined> {
    return this.byIdentity ? this.at(mountpoint) : undefined;
  }

  async readAbout(dir: string): Promise<MountEntry[]> {
    this.readsAbout.push(dir);
    return this.readAboutSync(dir);
  }

  /** Like MountinfoReader: the same array while the mounts about `dir` are unchanged. */
  readerAbout(dir: string): MountReader {
    let last: readonly MountEntry[] | undefined;
    return {
      read: async () => {
        const now = this.readAboutSync(dir);
        if (!last || last.length !== now.length || last.some((e, i) => e !== now[i])) {
          last = Object.freeze(now);
        }
        return last;
      },
    };
  }

  async ensureSharedMount(
    source: MountSource,
    target: string,
    _mode: SharedMode,
  ): Promise<MountEntry> {
    this.calls.push(
      source.kind === 'tmpfs' ? `tmpfs ${target} ${source.options}` : `${source.kind} ${target}`,
    );
    if (source.kind === 'adopt' && source.keepView) return viewKeptAsItIs(this, target);
    // An adopted directory becomes a shared mount point of its own, and the volume its peer.
    const adopted = source.kind === 'adopt' ? this.sharedMountPoint(source.directory) : undefined;
    const directory = source.kind === 'tmpfs' ? undefined : source.directory;
    if (this.at(target).length === 0) {
      const fresh =
        directory === undefined
          ? this.entry(target, '/', 'tmpfs', this.nextGroup++, `0:${this.nextDevice++}`)
          : this.entry(target, directory, 'ext4', adopted?.sharedGroup ?? this.nextGroup++);
      this.table.push(fresh);
      if (directory !== undefined) this.showing.set(fresh.id, directory);
      // --rbind: the adopted directory's submounts show in the volume too, as peers.
      for (const below of adopted ? mountsBelow(this.table, directory!).reverse() : []) {
        const copy = this.entry(
          target + below.mountPoint.slice(directory!.length),
          below.root,
          below.fsType,
          below.sharedGroup,
          below.device,
        );
        this.table.push(copy);
      }
    }
    // As the real one: a stack over an adopted directory is the host's, and never peeled.
    if (source.kind === 'adopt' && this.at(target).length > 1) return this.at(target).at(-1)!;
    while (this.at(target).length > 1) this.removeTop(target);
    const top = this.at(target)[0]!;
    top.sharedGroup ??= this.nextGroup++;
    return top;
  }

  async detachAll(dir: string, options: { includeSelf: boolean }): Promise<DetachReport> {
    this.calls.push(`detach-all ${dir}${options.includeSelf ? '' : ' (below)'}`);
    return this.detachEntries(dir, options);
  }

  private detachEntries(dir: string, options: { includeSelf: boolean }): DetachReport {
    const report: DetachReport = { detached: [], lazy: [] };
    const order = [
      ...mountsBelow(this.table, dir),
      ...(options.includeSelf ? this.at(dir).reverse() : []),
    ];
    for (const entry of order) {
      if (!this.table.includes(entry)) continue; // gone with a peer's unmount
      if (this.stuck.has(entry.mountPoint)) throw errno('EBUSY');
      this.unmountPropagating(entry);
      report.detached.push(entry.mountPoint);
      if (this.busy.has(entry.mountPoint)) report.lazy.push(entry.mountPoint);
    }
    return report;
  }

  async detachView(mountpoint: string): Promise<DetachReport> {
    this.calls.push(`detach-view ${mountpoint}`);
    if (this.at(mountpoint).length > 1) throw new StackedMountsError(this.at(mountpoint).length);
    if (this.at(mountpoint).length === 0) return { detached: [], lazy: [] };
    this.makePrivate(mountpoint);
    return this.detachEntries(mountpoint, { includeSelf: true });
  }

  /** Directories that exist (by their real path), and symlinks to them. */
  directories = new Set<string>();
  symlinks = new Map<string, string>();

  /** Files that exist (not directories). */
  files = new Set<string>();

  /** Bind aliases: a path that shows another directory (`mount --bind <target> <alias>`). */
  aliases = new Map<string, string>();
  /** Directories replaced since (`mv; mkdir`): each replacement gives a new inode. */
  replaced = new Map<string, number>();
  /** Directories something is mounted over: their name shows another identity. */
  mountedOver = new Set<string>();
  /** Paths of the directories held and not yet released. */
  heldOpen: string[] = [];
  readonly inodes = new Map<string, number>();

  async holdDirectory(dir: string, places = false): Promise<HeldDirectory> {
    return holdFake(this, dir, places);
  }

  async identityBeneath(dir: string): Promise<DirectoryIdentity> {
    return beneathFake(this, dir);
  }

  /** Follows symlinks in every component, as realpath(3) does. */
  async resolveDirectory(dir: string): Promise<ResolvedDirectory | undefined> {
    let real = '';
    for (const name of dir.split('/').filter((n) => n !== '')) {
      real = `${real}/${name}`;
      for (let hops = 0; this.symlinks.has(real) && hops < 40; hops++) {
        real = this.symlinks.get(real)!;
      }
    }
    real ||= '/';
    if (real === '/' || this.directories.has(real)) return { realPath: real, isDirectory: true };
    return this.files.has(real) ? { realPath: real, isDirectory: false } : undefined;
  }

  /** What the path shows is its top mount's: a stack answers for the mount on top. */
  async showsDirectory(mountpoint: string, source: string): Promise<boolean> {
    const top = this.at(mountpoint).at(-1);
    return top !== undefined && this.showing.get(top.id) === source;
  }

  /** As the real layer: the device of the top mount at the path, whoever made it. */
  async showsDevice(mountpoint: string, device: string): Promise<boolean> {
    return this.at(mountpoint).at(-1)?.device === device;
  }

  /** As the kernel walk answers, from the table: at or within `dir`, or not. */
  async mountsWithin(dir: string): Promise<MountsWithin> {
    this.calls.push(`scan ${dir}`);
    return this.table.some((e) => isWithin(e.mountPoint, dir)) ? 'some' : 'none';
  }

  async removeMountPoint(mountpoint: string): Promise<void> {
    this.calls.push(`rmdir ${mountpoint}`);
  }

  /** The marker each prepareMountRoot wrote in the mount root. */
  readonly markers: { root: string; name: string; content: string }[] = [];

  async prepareMountRoot(root: string, marker: { name: string; content: string }): Promise<void> {
    this.markers.push({ root, ...marker });
  }

  async privatizeMountPoint(dir: string): Promise<boolean> {
    const top = this.at(dir).at(-1);
    if (!top || (top.sharedGroup === undefined && top.masterGroup === undefined)) return false;
    this.calls.push(`make-rprivate ${dir}`);
    this.makePrivate(dir);
    return true;
  }

  /** --make-rprivate: the mounts at and under `dir` leave their peer groups. */
  private makePrivate(dir: string): void {
    for (const entry of this.readAboutSync(dir)) {
      delete entry.sharedGroup;
      delete entry.masterGroup;
    }
  }

  /** The peers of `parent` (same shared group), each with the path matching `at` there. */
  private peersAt(parent: MountEntry | undefined, at: string): string[] {
    if (parent?.sharedGroup === undefined) return [];
    return this.table
      .filter((e) => e !== parent && e.sharedGroup === parent.sharedGroup)
      .map((peer) => peer.mountPoint + at.slice(parent.mountPoint.length));
  }

  /** Mounts at `mountPoint` and at the peers of the mount it lands on (one new peer group). */
  private mountPropagating(mountPoint: string, make: () => MountEntry): MountEntry {
    const peers = this.peersAt(holderOf(this.table, mountPoint), mountPoint);
    const entry = make();
    this.table.push(entry);
    if (peers.length > 0) entry.sharedGroup ??= this.nextGroup++;
    for (const at of peers) this.table.push({ ...entry, id: this.nextId++, mountPoint: at });
    return entry;
  }

  /** Removes `entry`, and the top mount at the same place under each peer of its parent. */
  private unmountPropagating(entry: MountEntry): void {
    const rest = this.table.filter((e) => e !== entry);
    const peers = this.peersAt(holderOf(rest, entry.mountPoint), entry.mountPoint);
    this.table = rest;
    for (const at of peers) {
      if (mountsBelow(this.table, at).length === 0) this.removeTop(at);
    }
  }

  /**
   * As the real layers: the mount point the held directory is, by what its name shows here. A
   * bind alias (`aliases`) is a mount point in the kernel, whose propagation the fake does not
   * know: it counts as none here, so a test that adopts through an alias must put it in `table`.
   */
  async refuseForeignMountPoint(held: HeldDirectory): Promise<void> {
    const top = this.at(held.path).at(-1);
    if (top && top.sharedGroup === undefined) throw foreignMountPoint(held.path, top);
  }

  /**
   * Makes `dir` a shared mount point with a group of its own, as MountSystem does. As the real
   * layers: a mount point that is not shared is someone else's, never made shared.
   */
  private sharedMountPoint(dir: string): MountEntry {
    let top = this.at(dir).at(-1);
    if (top && top.sharedGroup === undefined) throw foreignMountPoint(dir, top);
    if (!top) {
      top = this.entry(dir, dir, 'ext4');
      this.showing.set(top.id, dir);
      // --rbind dir dir: the submounts already there show on the new mount point too.
      const below = mountsBelow(this.table, dir).reverse();
      this.table.push(top);
      for (const e of below) this.table.push({ ...e, id: this.nextId++ });
    }
    top.sharedGroup ??= this.nextGroup++;
    return top;
  }

  private readAboutSync(dir: string): MountEntry[] {
    return this.table.filter((e) => isWithin(e.mountPoint, dir));
  }

  private removeTop(mountPoint: string): void {
    const top = this.at(mountPoint).at(-1);
    this.table = this.table.filter((e) => e !== top);
  }

  private entry(
    mountPoint: string,
    root: string,
    fsType: string,
    group?: number,
    device = '0:1',
  ): MountEntry {
    return {
      id: this.nextId++,
      parentId: 1,
      device,
      root,
      mountPoint,
      mountOptions: 'rw',
      sharedGroup: group,
      unbindable: false,
      fsType,
      source: fsType,
      superOptions: 'rw',
    };
  }
}

function foreignMountPoint(dir: string, top: MountEntry): ForeignMountPointError {
  return new ForeignMountPointError(dir, propagationOf(top));
}
