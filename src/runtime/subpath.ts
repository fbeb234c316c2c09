/**
 * Subpath volume mounts (Docker 26 and later, API 1.45:
 * `--mount type=volume,src=v,dst=/x,volume-subpath=sub`). dockerd does not name the volume's
 * directory in the spec: it binds the subdirectory at a temporary mount point of its own,
 * `<data-root>/tmp/safe-mountNNN`, names that, and unmounts it once the container runs. That
 * bind is a peer of the volume's mount point (a bind of a shared mount joins its peer group).
 *
 * So a source is a sharedprop subpath mount when it is such a temporary mount point and its peer
 * group holds the mount point of a sharedprop volume. With `rshared`, the container's mount then
 * joins that group too, and what is mounted in it reaches the host and other containers; without
 * the wrapper it would stay a slave.
 *
 * The wrapper is its own executable (it imports nothing of src/system), so this reads only the two
 * fields of mountinfo it needs: the mount point and the peer group.
 */
import type { SourcePredicate } from './spec.js';

/** The name of dockerd's temporary mount point for a subpath mount (moby's `safe-mount` prefix). */
export const SUBPATH_SOURCE = /\/safe-mount[^/]*$/;

interface PeerEntry {
  mountPoint: string;
  sharedGroup?: number;
}

const unescape = (text: string) =>
  text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** Mount points and shared peer groups of a mountinfo text; malformed lines are skipped. */
export function readPeers(mountinfo: string): PeerEntry[] {
  const entries: PeerEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator < 0) continue;
    const entry: PeerEntry = { mountPoint: unescape(fields[4] ?? '') };
    for (const optional of fields.slice(6, separator)) {
      if (optional.startsWith('shared:')) entry.sharedGroup = Number(optional.slice(7));
    }
    entries.push(entry);
  }
  return entries;
}

/**
 * Accepts a subpath mount's source whose peer group holds a mount point that `isVolume` accepts.
 * `readMountinfo` runs at most once, and only for a source named like dockerd's temporary mount.
 */
export function subpathSources(
  readMountinfo: () => string,
  isVolume: SourcePredicate,
): SourcePredicate {
  let table: PeerEntry[] | undefined;
  return (source) => {
    if (!SUBPATH_SOURCE.test(source)) return false;
    table ??= readPeers(readMountinfo());
    const group = table.filter((e) => e.mountPoint === source).at(-1)?.sharedGroup;
    if (group === undefined) return false;
    return table.some(
      (e) => e.sharedGroup === group && e.mountPoint !== source && isVolume(e.mountPoint),
    );
  };
}
