/**
 * The doctor's checks of volumes and of the containers that use them: a volume's mount point and
 * its submounts (leaks judged as prune judges them), a container's view of its sharedprop mounts,
 * and subpath mounts. Pure functions of facts gathered elsewhere, like checks.ts.
 */
import { mountsBelow, propagationOf, type MountEntry } from '../system/mountinfo.js';
import { leakReason, type RunningRoots } from '../system/leaks.js';
import {
  DEFAULT_PLUGIN,
  DEFAULT_RUNTIME,
  pluginFlag,
  restartFix,
  type CheckResult,
  type PluginRef,
} from './checks.js';

export interface Submount {
  path: string;
  fsType: string;
  source: string;
  root: string;
  device: string;
  leaked: boolean;
  reason?: string;
}

/**
 * The submounts under `mountpoint`, one per path, shallowest first. Docker's managed-plugin layout
 * shows each mount twice on the host (the data root and the propagated mount share a peer group,
 * so one copy hides beneath the other), and a path may hold a stack of mounts: either way the path
 * is listed once, described by its top mount. Prune detaches a path with all its mounts, so a path
 * is leaked only when every mount at it is.
 */
export function classifySubmounts(
  hostMounts: readonly MountEntry[],
  mountpoint: string,
  running: RunningRoots,
): Submount[] {
  const byPath = new Map<string, MountEntry[]>();
  for (const e of mountsBelow(hostMounts, mountpoint).reverse()) {
    const stack = byPath.get(e.mountPoint);
    if (stack) stack.push(e);
    else byPath.set(e.mountPoint, [e]);
  }
  return [...byPath.values()].map((stack) => {
    const top = topOf(stack);
    const reasons = stack.map((e) => leakReason(e, running));
    const leaked = reasons.every((r) => r !== undefined);
    return {
      path: top.mountPoint,
      fsType: top.fsType,
      source: top.source,
      root: top.root,
      device: top.device,
      leaked,
      reason: leaked ? leakReason(top, running) : undefined,
    };
  });
}

/** The mount on top of a stack at one path: one that no other mount of the stack sits on. */
function topOf(stack: readonly MountEntry[]): MountEntry {
  const tops = stack.filter((e) => !stack.some((other) => other.parentId === e.id));
  return (tops.at(-1) ?? stack.at(-1)) as MountEntry;
}

export function checkVolume(
  name: string,
  mountpoint: string,
  hostMounts: readonly MountEntry[],
  running: RunningRoots,
  plugin: PluginRef = { name: DEFAULT_PLUGIN, managed: true },
): CheckResult {
  const check = `volume ${name}`;
  const stack = hostMounts.filter((e) => e.mountPoint === mountpoint);
  const submounts = classifySubmounts(hostMounts, mountpoint, running);
  const leaks = submounts.filter((s) => s.leaked);
  const data = { mountpoint, submounts };
  if (stack.length === 0) {
    return {
      check,
      verdict: 'fail',
      detail: `its mount point ${mountpoint} is not mounted`,
      fix: `mount the volume in a container (the driver puts the mount point back), or restart the plugin: ${restartFix(plugin)}`,
      data: { ...data, mounted: false },
    };
  }
  // Docker's managed-plugin layout may show one mount twice, in one peer group; that is constant.
  const groups = new Set(stack.map((e) => e.sharedGroup ?? `private-${e.id}`));
  const top = stack.at(-1) as MountEntry;
  if (groups.size > 1) {
    return {
      check,
      verdict: 'fail',
      detail: `${stack.length} mounts are stacked at ${mountpoint} in different peer groups`,
      fix: restartFix(plugin),
      data,
    };
  }
  if (top.sharedGroup === undefined) {
    return {
      check,
      verdict: 'fail',
      detail: `its mount point ${mountpoint} is ${propagationOf(top)}, not shared`,
      fix: `mount --make-rshared ${mountpoint}, or restart the plugin: ${restartFix(plugin)}`,
      data,
    };
  }
  if (leaks.length > 0) {
    return {
      check,
      verdict: 'warn',
      detail: `shared mount point, ${submounts.length} submount(s), ${leaks.length} leaked: ${leaks.map((l) => l.path).join(', ')}`,
      fix: `sharedprop prune${pluginFlag(plugin.name)} (or sharedprop doctor${pluginFlag(plugin.name)} --fix) detaches the leaked ones`,
      data,
    };
  }
  return {
    check,
    verdict: 'ok',
    detail: `shared mount point, ${submounts.length} submount(s)`,
    data,
  };
}

export interface ContainerMountFacts {
  destination: string;
  volume: string;
  /** The mount at `destination` in the container's own mount table. */
  entry?: MountEntry;
}

export function checkContainerMounts(
  container: string,
  mounts: ContainerMountFacts[],
  runtime = DEFAULT_RUNTIME,
  plugin = DEFAULT_PLUGIN,
): CheckResult[] {
  if (mounts.length === 0) {
    return [
      { check: `container ${container}`, verdict: 'warn', detail: `uses no ${plugin} volume` },
    ];
  }
  return mounts.map(({ destination, volume, entry }) => {
    const check = `container ${container}: ${destination}`;
    if (!entry) {
      return {
        check,
        verdict: 'fail' as const,
        detail: `volume ${volume} is not mounted at ${destination}`,
      };
    }
    const propagation = propagationOf(entry);
    if (entry.sharedGroup === undefined) {
      return {
        check,
        verdict: 'fail' as const,
        detail: `volume ${volume} is a ${propagation} mount: the container was started without --runtime ${runtime}, so mounts made under ${destination} stay inside it`,
        fix: `recreate the container with --runtime ${runtime} (compose: runtime: ${runtime}), or make ${runtime} dockerd's default-runtime`,
      };
    }
    return { check, verdict: 'ok' as const, detail: `volume ${volume} is ${propagation}` };
  });
}

/** A running container's subpath mount of a sharedprop volume. */
export interface SubpathMount {
  container: string;
  volume: string;
  destination: string;
  subpath: string;
}

/**
 * Subpath mounts (Docker 26+) behave differently from whole volumes: dockerd binds the
 * subdirectory without what is mounted in it, so the container sees only what is mounted there
 * after it starts. A warning names each one; none, no result.
 */
export function checkSubpathMounts(mounts: readonly SubpathMount[]): CheckResult | undefined {
  if (mounts.length === 0) return undefined;
  const list = mounts
    .map((m) => `${m.container}: ${m.volume}/${m.subpath} at ${m.destination}`)
    .join('; ');
  return {
    check: 'subpath-mounts',
    verdict: 'warn',
    detail: `${mounts.length} subpath mount(s) of sharedprop volumes (${list}): dockerd binds a subpath without the mounts already in it, so such a container sees only what is mounted there after it starts`,
    fix: 'mount the whole volume (-v VOLUME:/dir) where a container must see mounts made before it starts; run the containers that mount with --runtime sharedprop',
    data: { mounts },
  };
}
