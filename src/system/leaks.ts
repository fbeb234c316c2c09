/**
 * When a submount of a volume is a leak: a mount of (part of) a container's root filesystem
 * whose container is no longer running. It pins the dead container's files. `sharedprop prune`
 * judges with the engine's list of running containers; the driver's `reap=on-unmount` judges
 * when no container holds the volume any more, with none running that could hold it.
 */
import { isWithin, type MountEntry } from './mountinfo.js';

/** What identifies the root filesystems of the containers that are running now. */
export interface RunningRoots {
  /** Devices (major:minor) of their root mounts: an overlay per container. */
  devices: ReadonlySet<string>;
  /** Paths (mountinfo roots) of their root mounts: a directory per container with vfs & co. */
  roots: readonly string[];
  /** The storage driver's directory (`<DockerRootDir>/<Driver>`), where container layers live. */
  layerDir?: string;
}

/**
 * Whether a submount is a leak: a mount of (part of) a container's root filesystem when that
 * container is no longer running. It pins the dead container's files. Everything else (tmpfs,
 * nsfs files, FUSE, NFS, binds from the host or of volumes) is listed but never judged leaked,
 * because a running container may rely on it.
 */
export function leakReason(entry: MountEntry, running: RunningRoots): string | undefined {
  if (entry.fsType === 'overlay') {
    return running.devices.has(entry.device)
      ? undefined
      : `its filesystem (overlay ${entry.device}) is the root of a container that is no longer running`;
  }
  if (running.layerDir && isWithin(entry.root, running.layerDir)) {
    const held = running.roots.some((root) => isWithin(entry.root, root));
    return held
      ? undefined
      : `it comes from ${entry.root}, the layer of a container that is no longer running`;
  }
  return undefined;
}

/** No container is running (that could hold a volume whose last mount ID was unmounted). */
export const NONE_RUNNING: RunningRoots = { devices: new Set(), roots: [] };
