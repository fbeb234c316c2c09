/**
 * Whether a mount made in the mount root would also appear somewhere else in this namespace: the
 * mount that holds the root is shared, and another mount of its peer group here shows the same
 * place of the filesystem (its mountinfo `root` contains the mount root's own path in the
 * filesystem). That is a data root bound onto itself inside a shared parent (as `ip netns` binds
 * /run/netns on a systemd host): every volume would show twice, once hidden beneath the data root.
 * A peer that shows another place, or peers in other namespaces only (dockerd's own, which must
 * keep seeing the volumes), are no reason to leave the group.
 */
import path from 'node:path';
import { isWithin } from '../model/paths.js';
import { holderOf, type MountEntry } from './mountinfo.js';

export function mountRootShowsTwice(table: readonly MountEntry[], root: string): boolean {
  // Something mounted at or in it already: left as it is.
  if (table.some((e) => isWithin(e.mountPoint, root))) return false;
  const holder = holderOf(table, root);
  const group = holder?.sharedGroup;
  if (!holder || group === undefined) return false;
  const place = path.posix.join(holder.root, path.posix.relative(holder.mountPoint, root));
  return table.some(
    (e) =>
      e !== holder &&
      e.sharedGroup === group &&
      e.device === holder.device &&
      isWithin(place, e.root),
  );
}
