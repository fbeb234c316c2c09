/** Detaches leaked submounts (see classifySubmounts); never one a running container still holds. */
import type Docker from 'dockerode';
import { MountSystem } from '../system/mounts.js';
import { readMountinfo } from '../system/mountinfo.js';
import { classifySubmounts, type Submount } from './checks.js';
import { listOurVolumes, runningRoots } from './gather.js';

export interface PruneResult {
  volume: string;
  detached: Submount[];
}

export async function pruneLeaks(
  docker: Docker,
  plugin: string,
  options: { dryRun?: boolean; mounts?: MountSystem } = {},
): Promise<PruneResult[]> {
  const mounts = options.mounts ?? new MountSystem();
  const results: PruneResult[] = [];
  const [volumes, running, table] = await Promise.all([
    listOurVolumes(docker, plugin),
    runningRoots(docker),
    readMountinfo(),
  ]);
  for (const volume of volumes) {
    const leaks = classifySubmounts(table, volume.mountpoint, running).filter((s) => s.leaked);
    if (!options.dryRun) {
      // Deepest first, so that nothing is detached from under another leak.
      for (const leak of [...leaks].reverse())
        await mounts.detachAll(leak.path, { includeSelf: true });
    }
    results.push({ volume: volume.name, detached: leaks });
  }
  return results;
}
