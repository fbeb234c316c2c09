/**
 * When a submount of a volume is a leak: a mount of (part of) a container's root filesystem
 * whose container is no longer running. It pins the dead container's files. `sharedprop prune`
 * judges with the engine's list of running containers; the driver's `reap=on-unmount` judges
 * when no container holds the volume any more, with none running that could hold it.
 *
 * A container's root is recognised by where the engine keeps it, never by its kind alone: an
 * overlay only when its upper and work directories lie in an engine storage root
 * (engine-storage.ts), a directory root (vfs & co.) only when it is a path in the storage
 * driver's directory on the filesystem that holds that directory. An operator's overlay or bind
 * elsewhere is never a leak.
 */
import { DEFAULT_ENGINE_STORAGE, storageRootOf } from './engine-storage.js';
import { isWithin, type MountEntry } from './mountinfo.js';
import { overlayLayers } from './overlay-options.js';

/** What identifies the root filesystems of the containers that are running now. */
export interface RunningRoots {
  /** Devices (major:minor) of their root mounts: an overlay per container. */
  devices: ReadonlySet<string>;
  /**
   * Their root mounts' filesystems and paths inside them (mountinfo's device and root): a
   * directory per container with vfs & co.
   */
  roots: readonly { device: string; root: string }[];
  /** Engine storage roots: an overlay is a container's root only with upper and work in one. */
  storage: readonly string[];
  /**
   * Where a storage driver with directory roots (vfs & co.) keeps them: the filesystem
   * (major:minor) that holds `<DockerRootDir>/<Driver>`, and that directory's path inside it (in
   * mountinfo's terms: what a bind of a container's directory shows as its root).
   */
  layers?: { device: string; root: string };
}

/**
 * Whether a submount is a leak: a mount of (part of) a container's root filesystem when that
 * container is no longer running. Everything else (an operator's overlay, a read-only overlay,
 * tmpfs, nsfs files, FUSE, NFS, binds from the host or of volumes) is listed but never judged
 * leaked, because a running container or the host may rely on it.
 */
export function leakReason(entry: MountEntry, running: RunningRoots): string | undefined {
  if (entry.fsType === 'overlay') {
    const upper = containerUpperOf(entry, running.storage);
    if (upper === undefined || running.devices.has(entry.device)) return undefined;
    return `its filesystem (overlay ${entry.device}, upper layer ${upper}) is the root of a container that is no longer running`;
  }
  const layers = running.layers;
  if (
    layers &&
    entry.device === layers.device &&
    entry.root !== layers.root &&
    isWithin(entry.root, layers.root)
  ) {
    const held = running.roots.some(
      (held) => held.device === entry.device && isWithin(entry.root, held.root),
    );
    return held
      ? undefined
      : `it comes from ${entry.root}, the layer of a container that is no longer running`;
  }
  return undefined;
}

/** An overlay's upper directory, when it and the work directory lie in one storage root. */
function containerUpperOf(entry: MountEntry, storage: readonly string[]): string | undefined {
  const { upperdir, workdir } = overlayLayers(entry.superOptions);
  if (upperdir === undefined || workdir === undefined) return undefined;
  const root = storageRootOf(upperdir, storage);
  return root !== undefined && storageRootOf(workdir, [root]) === root ? upperdir : undefined;
}

/**
 * No container is running (that could hold a volume whose last mount ID was unmounted), with
 * these engine storage roots (default: dockerd's and containerd's at their default data roots).
 */
export function noneRunningIn(storage: readonly string[] = DEFAULT_ENGINE_STORAGE): RunningRoots {
  return { devices: new Set(), roots: [], storage };
}
