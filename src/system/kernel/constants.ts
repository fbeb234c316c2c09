/**
 * Flags and structure sizes of the Linux mount API (linux/mount.h, linux/openat2.h, linux/stat.h,
 * linux/fcntl.h), as numbers: the C headers of the machines we build on are older than the calls.
 * Every value here is the same on x86_64 and arm64, except O_DIRECTORY (taken from Node).
 */
import { constants as fs } from 'node:fs';

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_NO_AUTOMOUNT = 0x800;
export const AT_EMPTY_PATH = 0x1000;
export const AT_RECURSIVE = 0x8000;

export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;
/** 0o200000 on x86_64, 0o40000 on arm64. */
export const O_DIRECTORY = fs.O_DIRECTORY;

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;

export const STATX_TYPE = 0x1;
export const STATX_MODE = 0x2;
export const STATX_UID = 0x8;
export const STATX_GID = 0x10;
export const STATX_INO = 0x100;
export const STATX_BTIME = 0x800;
export const STATX_BASIC_STATS = 0x7ff;
/** The reusable mount ID of mountinfo's first field (5.8). */
export const STATX_MNT_ID = 0x1000;
/** The 64-bit mount ID that is never reused, as statmount and listmount take it (6.8). */
export const STATX_MNT_ID_UNIQUE = 0x4000;
export const STATX_ATTR_MOUNT_ROOT = 0x2000;

export const OPEN_TREE_CLONE = 1;
export const OPEN_TREE_CLOEXEC = O_CLOEXEC;

export const MOVE_MOUNT_F_EMPTY_PATH = 0x04;
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;

export const FSOPEN_CLOEXEC = 1;
export const FSMOUNT_CLOEXEC = 1;
export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_CMD_CREATE = 6;

export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR__ATIME = 0x70;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR_NODIRATIME = 0x80;
export const MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_UNBINDABLE = 1 << 17;
export const MS_PRIVATE = 1 << 18;
export const MS_SLAVE = 1 << 19;
export const MS_SHARED = 1 << 20;

export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const UMOUNT_NOFOLLOW = 8;

/** statmount(2) request mask. */
export const STATMOUNT_SB_BASIC = 0x1;
export const STATMOUNT_MNT_BASIC = 0x2;
export const STATMOUNT_MNT_ROOT = 0x8;
export const STATMOUNT_MNT_POINT = 0x10;
export const STATMOUNT_FS_TYPE = 0x20;
/** listmount(2): the root of the caller's mount namespace. */
export const LSMT_ROOT = 0xffffffffffffffffn;

export const OPEN_HOW_SIZE = 24;
export const STATX_SIZE = 256;
export const MOUNT_ATTR_SIZE_VER0 = 32;
export const MNT_ID_REQ_SIZE_VER0 = 24;
