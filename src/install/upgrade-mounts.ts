/**
 * Keeping running containers' mounts through a plugin upgrade.
 *
 * A managed plugin's volumes reach the host under its propagated mount,
 * `<docker-root>/plugins/<id>/propagated-mount/<volume>`, and every container that uses a volume
 * holds a peer of that mount. When the plugin is disabled, dockerd unmounts everything under the
 * propagated mount, and an unmount propagates to every peer: the network-namespace binds that a
 * running agent made in its volume would vanish from the agent, from the host, and from every other
 * container. So an upgrade, in dockerd's mount namespace:
 *
 * 1. keeps a peer of each volume's mount (with its submounts) in a private keeper directory;
 * 2. detaches everything under the propagated mount itself, each mount made a slave first, so
 *    that nothing propagates to the containers (dockerd then finds nothing left to unmount);
 * 3. after the new version is in place, and before it is enabled, mounts the propagated mount
 *    (as dockerd would) and each kept peer back in it: dockerd hands it to the new plugin, which
 *    finds each volume's mount point already there, shared, and keeps it;
 * 4. releases the keepers, made private first, so that their unmount propagates nowhere.
 *
 * Running containers keep their mounts and submounts, new containers join the same peer group,
 * and the host sees all of it, before, during and after the upgrade.
 *
 * What it cannot do: a mount namespace that is a peer or a slave of dockerd's (a service with a
 * private /tmp, a container given the host's / rshared) keeps its copy of the volumes' mounts as
 * they were before the upgrade, beneath the new ones, until it ends. Removing that copy would take
 * an unmount that reaches the containers as well: they are the same peer group.
 */
import { mkdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { isWithin } from '../model/paths.js';
import { run } from '../system/exec.js';
import { readMountinfo, type MountEntry } from '../system/mountinfo.js';

/** The host's mount table and mount(8), in dockerd's mount namespace. */
export interface HostMountOps {
  table(): Promise<MountEntry[]>;
  mount(args: string[]): Promise<void>;
  umount(args: string[]): Promise<void>;
  mkdir(dir: string): Promise<void>;
  /** Removes an empty directory; never a tree. */
  rmdir(dir: string): Promise<void>;
}

/** The volumes whose mount points sit directly in the propagated mount, sorted, each once. */
export function volumeMountsIn(table: readonly MountEntry[], propagatedMount: string): string[] {
  const names = new Set<string>();
  for (const entry of table) {
    if (path.dirname(entry.mountPoint) === propagatedMount) {
      names.add(path.basename(entry.mountPoint));
    }
  }
  return [...names].sort();
}

const isMountPoint = (table: readonly MountEntry[], dir: string) =>
  table.some((e) => e.mountPoint === dir);

/**
 * Makes `keeperDir` a private mount point and binds into it a peer of every volume mount found
 * in `propagatedMount` (recursively: the submounts too). Returns the volumes kept.
 */
export async function keepVolumeMounts(
  ops: HostMountOps,
  propagatedMount: string,
  keeperDir: string,
): Promise<string[]> {
  const table = await ops.table();
  const volumes = volumeMountsIn(table, propagatedMount);
  if (volumes.length === 0) return volumes;
  await ops.mkdir(keeperDir);
  if (!isMountPoint(table, keeperDir)) await ops.mount(['--bind', keeperDir, keeperDir]);
  // Private: the keepers propagate nowhere, while each of them stays a peer of its volume.
  await ops.mount(['--make-private', keeperDir]);
  for (const volume of volumes) {
    const kept = path.join(keeperDir, volume);
    await ops.mkdir(kept);
    await ops.mount(['--rbind', path.join(propagatedMount, volume), kept]);
  }
  return volumes;
}

/**
 * Detaches every mount at or beneath `dir`, the topmost first, each made a slave (recursively)
 * before it goes, so that no unmount reaches a peer: the containers keep theirs. Mounts hidden
 * beneath others (dockerd's data root is often a peer of the propagated mount) surface as the
 * ones above them go, and are detached the same way.
 */
export async function detachWithoutPropagation(ops: HostMountOps, dir: string): Promise<number> {
  let detached = 0;
  for (;;) {
    const below = (await ops.table()).filter((e) => isWithin(e.mountPoint, dir));
    if (below.length === 0) return detached;
    if (detached > 10_000) throw new Error(`mounts under ${dir} keep coming back`);
    const top = below.reduce((a, b) => (a.mountPoint.length <= b.mountPoint.length ? a : b));
    await ops.mount(['--make-rslave', top.mountPoint]);
    await ops.umount(['-l', top.mountPoint]);
    detached++;
  }
}

/**
 * Before the plugin is enabled again: makes `propagatedMount` a mount point as dockerd does (a
 * self-bind, in its parent's peer group) and binds each kept volume back in it, a peer of the
 * containers' mounts again. dockerd then makes the tree rshared and hands it to the plugin.
 */
export async function restoreVolumeMounts(
  ops: HostMountOps,
  propagatedMount: string,
  keeperDir: string,
  volumes: readonly string[],
): Promise<void> {
  if (volumes.length === 0) return;
  await ops.mkdir(propagatedMount);
  if (!isMountPoint(await ops.table(), propagatedMount)) {
    await ops.mount(['--bind', propagatedMount, propagatedMount]);
  }
  await ops.mount(['--make-rshared', propagatedMount]);
  const table = await ops.table();
  for (const volume of volumes) {
    const target = path.join(propagatedMount, volume);
    if (isMountPoint(table, target)) continue;
    await ops.mkdir(target);
    await ops.mount(['--rbind', path.join(keeperDir, volume), target]);
  }
}

/** Detaches the keepers (made private first: their unmount propagates nowhere) and their dirs. */
export async function releaseKeepers(
  ops: HostMountOps,
  keeperDir: string,
  volumes: readonly string[],
): Promise<void> {
  if (!isMountPoint(await ops.table(), keeperDir)) return;
  await ops.mount(['--make-rprivate', keeperDir]);
  await ops.umount(['-l', keeperDir]);
  for (const volume of volumes) await ops.rmdir(path.join(keeperDir, volume));
  await ops.rmdir(keeperDir);
}

/** The real thing: this process's mount table and mount(8)/umount(8). */
export const hostMountOps: HostMountOps = {
  table: () => readMountinfo(),
  mount: async (args) => {
    await run('mount', args);
  },
  umount: async (args) => {
    await run('umount', args);
  },
  mkdir: async (dir) => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  },
  rmdir: (dir) => rmdir(dir).catch(() => undefined),
};
