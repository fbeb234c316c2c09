/**
 * Which mount sources are sharedprop volumes: a direct child of a directory holding the driver's
 * marker file (one that counts: root's, in root's directory, closed to others; root-file.ts), or
 * anything below a root listed in the runtime's configuration.
 */
import { MOUNT_ROOT_MARKER } from '../mount-root-marker.js';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import type { SourcePredicate } from './spec.js';

const trimSlash = (p: string) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p);

/**
 * `roots` must be absolute; `markerCounts` tells whether a marker file is there and counts
 * (create.ts: checkRootFile, which also reports one that does not).
 */
export function sharedpropSources(
  roots: readonly string[],
  markerCounts: (file: string) => boolean,
): SourcePredicate {
  const prefixes = roots.map((root) => trimSlash(normalize(root)) + '/');
  const markerIn = new Map<string, boolean>();
  return (source) => {
    // Relative sources ("proc", "tmpfs", "shm") name no directory; never look them up.
    if (!isAbsolute(source)) return false;
    const normal = trimSlash(normalize(source));
    if (prefixes.some((prefix) => normal.startsWith(prefix))) return true;
    const parent = dirname(normal);
    if (parent === normal) return false;
    let marked = markerIn.get(parent);
    if (marked === undefined) {
      marked = markerCounts(join(parent, MOUNT_ROOT_MARKER));
      markerIn.set(parent, marked);
    }
    return marked;
  };
}
