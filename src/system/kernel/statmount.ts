/**
 * statmount(2) and listmount(2) (Linux 6.8): one mount read by its unique 64-bit ID, and the IDs
 * of a mount's children, without reading or parsing the mount table. ENOSYS on older kernels:
 * callers fall back to mountinfo (see mount-tree.ts).
 */
import * as C from './constants.js';
import { check, KernelError, loadLibc, SYS } from './ffi.js';

export interface MountStat {
  /** Unique 64-bit ID (never reused). */
  id: bigint;
  parentId: bigint;
  /** mountinfo's IDs (reused after an unmount). */
  oldId: number;
  oldParentId: number;
  /** major:minor of the filesystem. */
  device: string;
  /** MOUNT_ATTR_* flags. */
  attributes: number;
  /** MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE bits. */
  propagation: number;
  /** The peer group, when shared. */
  sharedGroup?: number;
  /** The group it receives from, when a slave. */
  masterGroup?: number;
  fsType: string;
  /** The path inside the filesystem that is mounted. */
  root: string;
  /** Where it is mounted, relative to the caller's root. */
  mountPoint: string;
}

const STATMOUNT_MASK =
  C.STATMOUNT_SB_BASIC |
  C.STATMOUNT_MNT_BASIC |
  C.STATMOUNT_MNT_ROOT |
  C.STATMOUNT_MNT_POINT |
  C.STATMOUNT_FS_TYPE;
/** What a walk of the tree needs (IDs, propagation, mount point): fewer strings to make. */
const TREE_MASK = C.STATMOUNT_MNT_BASIC | C.STATMOUNT_MNT_POINT;
/** Where struct statmount's strings start (after its fixed part and 50 spare u64s). */
const STRINGS = 512;

function request(id: bigint, param: bigint): Buffer {
  const req = Buffer.alloc(C.MNT_ID_REQ_SIZE_VER0);
  req.writeUInt32LE(C.MNT_ID_REQ_SIZE_VER0, 0);
  req.writeBigUInt64LE(id, 8);
  req.writeBigUInt64LE(param, 16);
  return req;
}

/** One buffer reused by every call: the calls are synchronous and one at a time. */
let buffer = Buffer.alloc(STRINGS + 8192);

const ENOENT = 2;
const EOVERFLOW = 75;

/**
 * statmount(2) of the mount with unique ID `id`; ENOENT when there is none (any longer).
 * `brief`: only what a walk of the tree needs (device, root and fsType left empty).
 */
export function statmount(id: bigint, brief = false): MountStat {
  const stat = statmountIfAny(id, brief);
  if (!stat) throw new KernelError('statmount', ENOENT, `mount ${id}`);
  return stat;
}

/** statmount(2), or undefined when there is no such mount (without the cost of an error). */
export function statmountIfAny(id: bigint, brief = false): MountStat | undefined {
  const libc = loadLibc();
  const req = request(id, BigInt(brief ? TREE_MASK : STATMOUNT_MASK));
  for (;;) {
    const result = Number(libc.sysPtrPtrIntInt(SYS.statmount, req, buffer, buffer.length, 0));
    if (result >= 0) break;
    const errno = libc.errno();
    if (errno === ENOENT) return undefined;
    // EOVERFLOW: the strings (paths) did not fit.
    if (errno === EOVERFLOW && buffer.length < 1 << 20) buffer = Buffer.alloc(buffer.length * 4);
    else throw new KernelError('statmount', errno, `mount ${id}`);
  }
  return decode(buffer, brief);
}

function decode(buf: Buffer, brief: boolean): MountStat {
  const str = (offset: number) => {
    if (brief && offset !== 108) return '';
    const start = STRINGS + buf.readUInt32LE(offset);
    return buf.toString('utf8', start, buf.indexOf(0, start));
  };
  const propagation = Number(buf.readBigUInt64LE(72));
  const stat: MountStat = {
    id: buf.readBigUInt64LE(40),
    parentId: buf.readBigUInt64LE(48),
    oldId: buf.readUInt32LE(56),
    oldParentId: buf.readUInt32LE(60),
    device: brief ? '' : `${buf.readUInt32LE(16)}:${buf.readUInt32LE(20)}`,
    attributes: Number(buf.readBigUInt64LE(64)),
    propagation,
    fsType: str(36),
    root: str(104),
    mountPoint: str(108),
  };
  if (propagation & C.MS_SHARED) stat.sharedGroup = Number(buf.readBigUInt64LE(80));
  if (propagation & C.MS_SLAVE) stat.masterGroup = Number(buf.readBigUInt64LE(88));
  return stat;
}

const PAGE = 512;

/**
 * listmount(2): the unique IDs of the mounts directly beneath mount `id` (LSMT_ROOT: the
 * namespace's root), read in pages; at least `limit` of them when there are that many.
 */
export function listmount(id: bigint, limit = Infinity): bigint[] {
  const libc = loadLibc();
  const ids: bigint[] = [];
  const page = new BigUint64Array(PAGE);
  let last = 0n;
  for (;;) {
    const req = request(id, last);
    const n = check(
      libc.sysPtrPtrIntInt(SYS.listmount, req, page, PAGE, 0),
      'listmount',
      `mount ${id}`,
    );
    for (let i = 0; i < n; i++) ids.push(page[i] as bigint);
    if (n < PAGE || ids.length >= limit) return ids;
    last = page[n - 1] as bigint;
  }
}
