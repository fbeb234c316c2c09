/**
 * Engine storage roots: the directories where container engines keep containers' writable
 * layers. An overlay is a container's root filesystem only when its upper and work directories
 * lie in one (dockerd's `<data-root>/overlay2/<id>/diff`, containerd's
 * `<root>/io.containerd.snapshotter.v1.overlayfs/snapshots/<n>/fs`); an overlay anywhere else is
 * an operator's, and no reaper or prune touches it.
 */
import path from 'node:path';
import { isWithin } from './mountinfo.js';

/** containerd's overlayfs snapshotter's directory of snapshots, under containerd's root. */
export const CONTAINERD_SNAPSHOTS = 'io.containerd.snapshotter.v1.overlayfs/snapshots';

/**
 * The storage roots of a dockerd whose data root (DockerRootDir) is `dockerRootDir`: its overlay2
 * driver's, and the snapshots of the containerd it runs itself (`<data-root>/containerd/daemon`).
 */
export function dockerStorageRoots(dockerRootDir: string): string[] {
  return [
    path.posix.join(dockerRootDir, 'overlay2'),
    path.posix.join(dockerRootDir, 'containerd', 'daemon', CONTAINERD_SNAPSHOTS),
  ];
}

/** dockerd's and containerd's storage roots at their default data roots. */
export const DEFAULT_ENGINE_STORAGE: readonly string[] = Object.freeze([
  ...dockerStorageRoots('/var/lib/docker'),
  `/var/lib/containerd/${CONTAINERD_SNAPSHOTS}`,
]);

/**
 * A path as the kernel recorded it, when it names a place plainly: absolute, without `.` or `..`
 * components (a path walk resolves those, a comparison of names does not), `//` and a trailing
 * `/` dropped. Otherwise undefined.
 */
export function plainAbsolutePath(p: string): string | undefined {
  if (!p.startsWith('/')) return undefined;
  const parts = p.split('/').filter((part) => part !== '');
  if (parts.some((part) => part === '.' || part === '..')) return undefined;
  return '/' + parts.join('/');
}

/** Configured storage roots, checked and normalized; a bad one throws, naming it. */
export function engineStorageRoots(dirs: readonly string[]): string[] {
  return dirs.map((dir) => {
    if (!dir.startsWith('/')) {
      throw new Error(`engine storage root ${JSON.stringify(dir)} must be an absolute path`);
    }
    const plain = plainAbsolutePath(dir);
    if (plain === undefined) {
      throw new Error(
        `engine storage root ${JSON.stringify(dir)} must not contain . or .. components`,
      );
    }
    if (plain === '/') {
      throw new Error(
        `engine storage root ${JSON.stringify(dir)} would make every overlay a container's root`,
      );
    }
    return plain;
  });
}

/** The storage root that `p` lies strictly beneath, if any. */
export function storageRootOf(p: string, storage: readonly string[]): string | undefined {
  const plain = plainAbsolutePath(p);
  if (plain === undefined) return undefined;
  return storage.find((root) => plain !== root && isWithin(plain, root));
}

/** True when `p` lies strictly beneath one of the storage roots. */
export function inEngineStorage(p: string, storage: readonly string[]): boolean {
  return storageRootOf(p, storage) !== undefined;
}
