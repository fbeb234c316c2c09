/**
 * A fresh tmpfs as a detached mount (fsopen, fsconfig, fsmount), from the option string the
 * driver gives mount(8): `nosuid,nodev,mode=0755,uid=..,gid=..,size=..`. Flags that are mount
 * attributes (nosuid, nodev, noexec, ro) go to fsmount; `key=value` pairs to fsconfig.
 */
import * as C from './constants.js';
import { close, fsconfigCreate, fsconfigSet, fsmount, fsopen } from './calls.js';

const ATTRIBUTES: Record<string, number> = {
  ro: C.MOUNT_ATTR_RDONLY,
  nosuid: C.MOUNT_ATTR_NOSUID,
  nodev: C.MOUNT_ATTR_NODEV,
  noexec: C.MOUNT_ATTR_NOEXEC,
  noatime: C.MOUNT_ATTR_NOATIME,
  nosymfollow: C.MOUNT_ATTR_NOSYMFOLLOW,
};

/** Options that mean nothing to a new mount (mount(8) defaults). */
const IGNORED = new Set(['rw', 'suid', 'dev', 'exec', 'relatime', 'defaults']);

/** A detached tmpfs mount (its descriptor), named `source` in the mount table. */
export function newTmpfs(options: string, source = 'sharedprop'): number {
  let attributes = 0;
  const pairs: [string, string | undefined][] = [];
  for (const option of options.split(',').filter(Boolean)) {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    const flag = ATTRIBUTES[key];
    if (eq < 0 && flag !== undefined) attributes |= flag;
    else if (eq < 0 && IGNORED.has(key)) continue;
    else pairs.push([key, eq < 0 ? undefined : option.slice(eq + 1)]);
  }
  const fsFd = fsopen('tmpfs');
  try {
    fsconfigSet(fsFd, 'source', source);
    for (const [key, value] of pairs) fsconfigSet(fsFd, key, value);
    fsconfigCreate(fsFd);
    return fsmount(fsFd, attributes);
  } finally {
    close(fsFd);
  }
}

/** mountinfo's per-mount options (`rw,nosuid,nodev,relatime`) from MOUNT_ATTR_* flags. */
export function mountOptionsOf(attributes: number): string {
  const parts = [attributes & C.MOUNT_ATTR_RDONLY ? 'ro' : 'rw'];
  if (attributes & C.MOUNT_ATTR_NOSUID) parts.push('nosuid');
  if (attributes & C.MOUNT_ATTR_NODEV) parts.push('nodev');
  if (attributes & C.MOUNT_ATTR_NOEXEC) parts.push('noexec');
  if (attributes & C.MOUNT_ATTR_NOSYMFOLLOW) parts.push('nosymfollow');
  const atime = attributes & C.MOUNT_ATTR__ATIME;
  parts.push(
    atime === C.MOUNT_ATTR_NOATIME
      ? 'noatime'
      : atime === C.MOUNT_ATTR_STRICTATIME
        ? ''
        : 'relatime',
  );
  if (attributes & C.MOUNT_ATTR_NODIRATIME) parts.push('nodiratime');
  return parts.filter(Boolean).join(',');
}
