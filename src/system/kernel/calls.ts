/**
 * Typed bindings of the mount API's system calls. Each returns what the kernel returns (a
 * descriptor, or nothing) and throws a KernelError (`code: 'EINVAL'`, the call and the path in the
 * message) when it fails. Descriptors are the caller's to close.
 */
import * as C from './constants.js';
import { check, isErrno, KernelError, loadLibc, SYS } from './ffi.js';

/** The name used in messages for a call through a descriptor. */
const fdName = (fd: number, path: string) => (path === '' ? `fd ${fd}` : path);

export interface OpenOptions {
  /** Relative to this descriptor (default: the working directory; `path` absolute ignores it). */
  dirFd?: number;
  /** Extra RESOLVE_* flags (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS are always set). */
  resolve?: number;
}

/**
 * openat2(2) with O_PATH | O_DIRECTORY | O_CLOEXEC and RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS: a descriptor of the directory `path` names, reached without following a
 * symlink anywhere on the way (ELOOP), or ENOTDIR when it is no directory.
 */
export function openDirectory(path: string, options: OpenOptions = {}): number {
  const how = Buffer.alloc(C.OPEN_HOW_SIZE);
  how.writeBigUInt64LE(BigInt(C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC), 0);
  const resolve = C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS | (options.resolve ?? 0);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const libc = loadLibc();
  const dirFd = options.dirFd ?? C.AT_FDCWD;
  return check(libc.sysFdPathPtrInt(SYS.openat2, dirFd, path, how, how.length), 'openat2', path);
}

export interface Statx {
  mask: number;
  attributes: bigint;
  mode: number;
  uid: number;
  gid: number;
  ino: bigint;
  /** The filesystem's device, major:minor as mountinfo writes it. */
  device: string;
  /** mountinfo's mount ID (reused after an unmount). */
  mountId?: number;
  /** The 64-bit mount ID never reused (6.8+); undefined on older kernels. */
  uniqueMountId?: bigint;
  /** True when this is the root of a mount (STATX_ATTR_MOUNT_ROOT). */
  mountRoot: boolean;
  /** Birth time (`seconds.nanoseconds`), where the filesystem keeps one (STATX_BTIME). */
  btime?: string;
}

/** The statx(2) mask that asks for everything Statx holds. */
export const STATX_WANTED =
  C.STATX_TYPE |
  C.STATX_MODE |
  C.STATX_UID |
  C.STATX_GID |
  C.STATX_INO |
  C.STATX_BTIME |
  C.STATX_MNT_ID;

/**
 * statx(2) of a descriptor (AT_EMPTY_PATH), or of `path` relative to it without following a
 * final symlink or triggering an automount. `unique`: ask for STATX_MNT_ID_UNIQUE (a kernel
 * without it answers with the old ID, and `uniqueMountId` stays undefined).
 */
/** One buffer for every statx: the calls are synchronous, and the answer is copied out. */
const statxBuffer = Buffer.alloc(C.STATX_SIZE);

export function statx(fd: number, path = '', unique = true): Statx {
  const buf = statxBuffer;
  const flags = (path === '' ? C.AT_EMPTY_PATH : 0) | C.AT_SYMLINK_NOFOLLOW | C.AT_NO_AUTOMOUNT;
  const wanted = STATX_WANTED | (unique ? C.STATX_MNT_ID_UNIQUE : 0);
  check(loadLibc().statx(fd, path, flags, wanted, buf), 'statx', fdName(fd, path));
  const mask = buf.readUInt32LE(0);
  const attributes = buf.readBigUInt64LE(8);
  const uniqueId = (mask & C.STATX_MNT_ID_UNIQUE) !== 0;
  return {
    mask,
    attributes,
    mode: buf.readUInt16LE(28),
    uid: buf.readUInt32LE(20),
    gid: buf.readUInt32LE(24),
    ino: buf.readBigUInt64LE(32),
    device: `${buf.readUInt32LE(136)}:${buf.readUInt32LE(140)}`,
    mountId: uniqueId ? undefined : buf.readUInt32LE(144),
    uniqueMountId: uniqueId ? buf.readBigUInt64LE(144) : undefined,
    mountRoot: (buf.readUInt32LE(8) & C.STATX_ATTR_MOUNT_ROOT) !== 0,
    btime:
      (mask & C.STATX_BTIME) === 0
        ? undefined
        : `${buf.readBigInt64LE(80)}.${String(buf.readUInt32LE(88)).padStart(9, '0')}`,
  };
}

/**
 * open_tree(2) of the directory `fd` holds (AT_EMPTY_PATH): with `clone`, a detached copy of its
 * mount (with `recursive`, of the whole subtree beneath it too), ready for move_mount.
 */
export function openTree(fd: number, options: { clone: boolean; recursive: boolean }): number {
  const flags =
    C.AT_EMPTY_PATH |
    C.OPEN_TREE_CLOEXEC |
    (options.clone ? C.OPEN_TREE_CLONE : 0) |
    (options.recursive ? C.AT_RECURSIVE : 0);
  return check(loadLibc().sysFdPathInt(SYS.open_tree, fd, '', flags), 'open_tree', `fd ${fd}`);
}

/**
 * move_mount(2) from descriptor to descriptor (MOVE_MOUNT_F_EMPTY_PATH |
 * MOVE_MOUNT_T_EMPTY_PATH): attaches the detached mount `from` (or moves the attached mount it
 * is the root of) onto the directory `to` holds.
 */
export function moveMount(from: number, to: number): void {
  const flags = C.MOVE_MOUNT_F_EMPTY_PATH | C.MOVE_MOUNT_T_EMPTY_PATH;
  const libc = loadLibc();
  check(libc.sysFdPathFdPathInt(SYS.move_mount, from, '', to, '', flags), 'move_mount', `fd ${to}`);
}

export type PropagationType = 'shared' | 'private' | 'slave' | 'unbindable';

const PROPAGATION: Record<PropagationType, number> = {
  shared: C.MS_SHARED,
  private: C.MS_PRIVATE,
  slave: C.MS_SLAVE,
  unbindable: C.MS_UNBINDABLE,
};

export interface MountAttributes {
  /** MOUNT_ATTR_* flags to set and to clear. */
  set?: number;
  clear?: number;
  propagation?: PropagationType;
  /** AT_RECURSIVE: the mount and every mount beneath it. */
  recursive?: boolean;
}

/**
 * mount_setattr(2) on the mount whose root `fd` holds (AT_EMPTY_PATH; EINVAL when `fd` is not a
 * mount's root): propagation, read-only and the other MOUNT_ATTR_* flags.
 */
export function mountSetattr(fd: number, attributes: MountAttributes): void {
  const attr = Buffer.alloc(C.MOUNT_ATTR_SIZE_VER0);
  attr.writeBigUInt64LE(BigInt(attributes.set ?? 0), 0);
  attr.writeBigUInt64LE(BigInt(attributes.clear ?? 0), 8);
  const propagation = attributes.propagation ? PROPAGATION[attributes.propagation] : 0;
  attr.writeBigUInt64LE(BigInt(propagation), 16);
  const flags = C.AT_EMPTY_PATH | (attributes.recursive ? C.AT_RECURSIVE : 0);
  const libc = loadLibc();
  check(
    libc.sysFdPathIntPtrInt(SYS.mount_setattr, fd, '', flags, attr, attr.length),
    'mount_setattr',
    `fd ${fd}`,
  );
}

/** fsopen(2): a filesystem context for `fsType` (e.g. tmpfs), to configure with fsconfig. */
export function fsopen(fsType: string): number {
  return check(loadLibc().sysStrInt(SYS.fsopen, fsType, C.FSOPEN_CLOEXEC), 'fsopen', fsType);
}

/** fsconfig(2) FSCONFIG_SET_STRING (a `key=value` option), or FSCONFIG_SET_FLAG without a value. */
export function fsconfigSet(fsFd: number, key: string, value?: string): void {
  const cmd = value === undefined ? C.FSCONFIG_SET_FLAG : C.FSCONFIG_SET_STRING;
  const libc = loadLibc();
  const shown = value === undefined ? key : `${key}=${value}`;
  check(libc.sysIntIntStrStrInt(SYS.fsconfig, fsFd, cmd, key, value ?? null, 0), 'fsconfig', shown);
}

/** fsconfig(2) FSCONFIG_CMD_CREATE: makes the superblock from the options given. */
export function fsconfigCreate(fsFd: number): void {
  const libc = loadLibc();
  const result = libc.sysIntIntStrStrInt(SYS.fsconfig, fsFd, C.FSCONFIG_CMD_CREATE, null, null, 0);
  check(result, 'fsconfig', 'create');
}

/** fsmount(2): a detached mount of the created filesystem, with MOUNT_ATTR_* `attributes`. */
export function fsmount(fsFd: number, attributes: number): number {
  const libc = loadLibc();
  return check(libc.sysIntIntInt(SYS.fsmount, fsFd, C.FSMOUNT_CLOEXEC, attributes), 'fsmount');
}

/**
 * umount2(2) of the mount at `path`, never following a final symlink (UMOUNT_NOFOLLOW);
 * `detach`: MNT_DETACH (lazy: gone from the tree now, freed when its last user goes).
 */
export function umount2(path: string, options: { detach?: boolean } = {}): void {
  const flags = C.UMOUNT_NOFOLLOW | (options.detach ? C.MNT_DETACH : 0);
  check(loadLibc().umount2(path, flags), 'umount2', path);
}

/** mount(2), for what the descriptor API cannot do on the running kernel. */
export function mount(
  source: string | null,
  target: string,
  fsType: string | null,
  flags: number,
  data: string | null = null,
): void {
  check(loadLibc().mount(source, target, fsType, flags, data), 'mount', target);
}

const POLLPRI = 0x2;
const POLLERR = 0x8;
const POLLNVAL = 0x20;
const EBADF = 9;

/**
 * poll(2) of one descriptor for POLLPRI, without waiting: true when the kernel reports an event.
 * On an open /proc/self/mountinfo that is "this namespace's mount table changed since the last
 * poll of this descriptor" (proc(5)). Retried when a signal interrupts it; a descriptor that is
 * not open (POLLNVAL) is an EBADF, never "no event".
 */
export function pollPriority(fd: number): boolean {
  // struct pollfd { int fd; short events; short revents; }
  const pollfd = Buffer.alloc(8);
  pollfd.writeInt32LE(fd, 0);
  pollfd.writeInt16LE(POLLPRI, 4);
  for (;;) {
    try {
      check(loadLibc().poll(pollfd, 1, 0), 'poll', `fd ${fd}`);
      break;
    } catch (error) {
      if (!isErrno(error, 'EINTR')) throw error;
    }
  }
  const revents = pollfd.readInt16LE(6);
  if (revents & POLLNVAL) throw new KernelError('poll', EBADF, `fd ${fd}`);
  return (revents & (POLLPRI | POLLERR)) !== 0;
}

/** close(2); EBADF is a bug in the caller and throws. */
export function close(fd: number): void {
  check(loadLibc().close(fd), 'close', `fd ${fd}`);
}

/** Runs `work` with a descriptor, and closes it whatever happens. */
export function withFd<T>(fd: number, work: (fd: number) => T): T {
  try {
    return work(fd);
  } finally {
    close(fd);
  }
}
