/**
 * Waiting for dockerd to let go of a disabled plugin's mounts.
 *
 * `docker plugin disable` returns once the plugin process has exited; dockerd 20.10 and 26.1 only
 * then unmount everything under the plugin's directory (`plugins/<id>`, moby's HandleExitEvent).
 * An `enable` inside that window gets its fresh propagated mount unmounted on the host: the plugin
 * sees its volumes, dockerd's containers see empty directories. So whoever disables and enables
 * waits in between, until no mount is left under the directory, or the same ones have stayed for
 * `settleMs` (an engine that leaves them, as newer moby does).
 */
import { isWithin, type MountEntry } from '../system/mountinfo.js';

export interface ReleaseWaitDeps {
  table(): Promise<MountEntry[]>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface ReleaseWaitOptions {
  /** How long the same mounts must stay to count as left alone (ms, default 2,000). */
  settleMs?: number;
  /** How long dockerd may keep changing them (ms, default 60,000). */
  timeoutMs?: number;
  pollMs?: number;
}

export class PluginReleaseTimeout extends Error {
  constructor(
    readonly dir: string,
    readonly left: number,
  ) {
    super(
      `dockerd kept changing the ${left} mounts under ${dir} after the disable; the plugin was left disabled`,
    );
    this.name = 'PluginReleaseTimeout';
  }
}

/** Resolves with the mounts still under `dir` once dockerd has stopped unmounting there. */
export async function waitForPluginRelease(
  dir: string,
  deps: ReleaseWaitDeps,
  options: ReleaseWaitOptions = {},
): Promise<string[]> {
  const sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const now = deps.now ?? Date.now;
  const settleMs = options.settleMs ?? 2_000;
  const deadline = now() + (options.timeoutMs ?? 60_000);
  let last: string | undefined;
  let since = now();
  for (;;) {
    const left = (await deps.table())
      .filter((entry) => isWithin(entry.mountPoint, dir))
      .map((entry) => entry.mountPoint);
    if (left.length === 0) return left;
    const key = left.join('\n');
    if (key !== last) [last, since] = [key, now()];
    else if (now() - since >= settleMs) return left;
    if (now() > deadline) throw new PluginReleaseTimeout(dir, left.length);
    await sleep(options.pollMs ?? 50);
  }
}
