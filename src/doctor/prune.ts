/** Detaches leaked submounts (see classifySubmounts); never one a running container still holds. */
import type { EngineClient } from '../docker/engine-client.js';
import { MountSystem, type Mounts } from '../system/mounts.js';
import { classifySubmounts, type Submount } from './volume-checks.js';
import { listOurVolumes, runningRoots } from './gather.js';
import { procHost, type HostProbe } from './host.js';

export interface PruneFailure {
  path: string;
  error: string;
}

export interface PruneResult {
  volume: string;
  /** The leaks detached (with dryRun: those that would be). */
  detached: Submount[];
  /** The leaks that could not be detached, and why. */
  failed: PruneFailure[];
}

/**
 * Finds the leaks of every volume of driver `plugin` and detaches them, deepest first. Finding
 * them needs the engine: its errors (EngineError) are thrown before anything is detached. A leak
 * that cannot be detached is reported in `failed`, and the others are still tried.
 */
export async function pruneLeaks(
  engine: EngineClient,
  plugin: string,
  options: { dryRun?: boolean; mounts?: Pick<Mounts, 'detachAll'>; host?: HostProbe } = {},
): Promise<PruneResult[]> {
  const host = options.host ?? procHost;
  const results: PruneResult[] = [];
  const [volumes, running, table] = await Promise.all([
    listOurVolumes(engine, plugin),
    runningRoots(engine, host),
    host.mounts(),
  ]);
  const mounts = options.mounts ?? new MountSystem();
  for (const volume of volumes) {
    const leaks = classifySubmounts(table, volume.mountpoint, running).filter((s) => s.leaked);
    const result: PruneResult = { volume: volume.name, detached: [], failed: [] };
    if (options.dryRun) {
      result.detached = leaks;
    } else {
      // Deepest first, so that nothing is detached from under another leak.
      for (const leak of [...leaks].reverse()) {
        try {
          await mounts.detachAll(leak.path, { includeSelf: true });
          result.detached.unshift(leak);
        } catch (error) {
          result.failed.unshift({ path: leak.path, error: (error as Error).message });
        }
      }
    }
    results.push(result);
  }
  return results;
}
