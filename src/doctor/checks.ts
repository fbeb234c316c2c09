/**
 * The doctor's verdicts, as pure functions of facts gathered elsewhere (the engine's answers and
 * mountinfo tables), so that each one can be tested on recorded samples.
 */
import { isWithin, mountsBelow, propagationOf, type MountEntry } from '../system/mountinfo.js';

export type Verdict = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  check: string;
  verdict: Verdict;
  detail: string;
  fix?: string;
  data?: Record<string, unknown>;
}

export function checkEngine(
  version: { Version?: string; ApiVersion?: string } | Error,
): CheckResult {
  if (version instanceof Error) {
    return {
      check: 'engine',
      verdict: 'fail',
      detail: `cannot reach the Docker engine: ${version.message}`,
      fix: 'start dockerd, or point DOCKER_HOST at the engine to check',
    };
  }
  return {
    check: 'engine',
    verdict: 'ok',
    detail: `Docker Engine ${version.Version ?? '?'} (API ${version.ApiVersion ?? '?'})`,
  };
}

export interface PluginFacts {
  name: string;
  /** Undefined when no managed plugin of that name is installed. */
  plugin?: { id: string; enabled: boolean; reference: string };
  /** The socket the driver serves on, when it was found. */
  socket?: string;
  /** The answer to Plugin.Activate, or the error. */
  activate?: { implements: string[] } | Error;
}

export function checkPlugin(facts: PluginFacts): CheckResult {
  const where = facts.plugin ? `managed plugin ${facts.plugin.reference}` : `driver ${facts.name}`;
  if (!facts.plugin && !facts.socket) {
    return {
      check: 'plugin',
      verdict: 'fail',
      detail: `no managed plugin named ${facts.name} and no driver socket in /run/docker/plugins`,
      fix: 'run `make install`, or start `sharedprop serve` on the host',
    };
  }
  if (facts.plugin && !facts.plugin.enabled) {
    return {
      check: 'plugin',
      verdict: 'fail',
      detail: `${where} is installed but disabled`,
      fix: `docker plugin enable ${facts.plugin.reference}`,
    };
  }
  if (!facts.activate) {
    return {
      check: 'plugin',
      verdict: 'warn',
      detail: `${where} is enabled; its socket was not found, so Activate was not tried`,
    };
  }
  if (facts.activate instanceof Error || !facts.activate.implements.includes('VolumeDriver')) {
    const why = facts.activate instanceof Error ? facts.activate.message : 'not a VolumeDriver';
    return {
      check: 'plugin',
      verdict: 'fail',
      detail: `${where}: its socket ${facts.socket} does not answer Activate (${why})`,
      fix: facts.plugin
        ? `docker plugin disable -f ${facts.plugin.reference} && docker plugin enable ${facts.plugin.reference}; see dockerd's log for the plugin's output`
        : 'restart `sharedprop serve`',
    };
  }
  return {
    check: 'plugin',
    verdict: 'ok',
    detail: `${where} is enabled and answers Activate on ${facts.socket}`,
  };
}

export interface DaemonNamespaceFacts {
  pid?: number;
  /** True when dockerd is in the same mount namespace as this command. */
  sameNamespace?: boolean;
  /** dockerd's mount table. */
  daemonMounts?: MountEntry[];
  /** This command's (the host's) mount table. */
  hostMounts?: MountEntry[];
  /** dockerd's data root (DockerRootDir). */
  dataRoot?: string;
  /** The plugin's propagated mount directory on the host, when there is a managed plugin. */
  propagatedMount?: string;
}

/** The mount that holds `path` in `mounts`: the deepest mount point above it (top of a stack). */
export function holderOf(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const e of mounts) {
    if (!isWithin(path, e.mountPoint)) continue;
    if (!best || e.mountPoint.length >= best.mountPoint.length) best = e;
  }
  return best;
}

export function checkDaemonNamespace(facts: DaemonNamespaceFacts): CheckResult {
  const check = 'daemon-namespace';
  if (facts.pid === undefined || !facts.daemonMounts) {
    return {
      check,
      verdict: 'warn',
      detail:
        'could not find the dockerd process that serves DOCKER_HOST; mount namespace not checked',
      fix: 'run doctor as root on the engine host',
    };
  }
  if (!facts.sameNamespace) {
    // dockerd's namespace is a slave of the host's when its mounts receive from host peer groups.
    const hostGroups = new Set((facts.hostMounts ?? []).map((e) => e.sharedGroup));
    const candidates = [
      holderOf(facts.daemonMounts, '/'),
      facts.dataRoot ? holderOf(facts.daemonMounts, facts.dataRoot) : undefined,
    ];
    const slave = candidates.find(
      (e) => e?.masterGroup !== undefined && hostGroups.has(e.masterGroup),
    );
    if (slave) {
      return {
        check,
        verdict: 'fail',
        detail: `dockerd (pid ${facts.pid}) runs in a mount namespace that is a slave of the host's (its ${slave.mountPoint} receives from the host's peer group ${slave.masterGroup} but never sends back): mounts made in containers never reach the host. This is what systemd's MountFlags=slave does`,
        fix: 'remove MountFlags=slave from docker.service (systemctl edit docker: add [Service] and MountFlags=shared), then systemctl daemon-reload && systemctl restart docker',
        data: { pid: facts.pid, mount: slave.mountPoint, masterGroup: slave.masterGroup },
      };
    }
  }
  if (facts.propagatedMount) {
    const top = facts.daemonMounts.filter((e) => e.mountPoint === facts.propagatedMount).at(-1);
    if (!top || top.sharedGroup === undefined) {
      return {
        check,
        verdict: 'fail',
        detail: `the plugin's propagated mount ${facts.propagatedMount} is ${top ? propagationOf(top) : 'not mounted'} in dockerd's mount namespace, so volume mount points cannot reach containers as shared mounts`,
        fix: 'docker plugin disable -f sharedprop && docker plugin enable sharedprop (dockerd makes it rshared when it enables the plugin)',
      };
    }
  }
  return {
    check,
    verdict: 'ok',
    detail: facts.sameNamespace
      ? `dockerd (pid ${facts.pid}) shares this mount namespace${facts.propagatedMount ? ", and the plugin's propagated mount is shared" : ''}`
      : `dockerd (pid ${facts.pid}) has its own mount namespace, which is not a slave of this one`,
  };
}

export interface RuntimeFacts {
  runtimes?: Record<string, { path?: string }>;
  defaultRuntime?: string;
  executable?: boolean;
}

export function checkRuntime(facts: RuntimeFacts, name = 'sharedprop'): CheckResult {
  const runtime = facts.runtimes?.[name];
  if (!runtime?.path) {
    return {
      check: 'runtime',
      verdict: 'fail',
      detail: `no runtime named ${name} is registered with this daemon: containers cannot make mounts that other containers see`,
      fix: 'make install-runtime (registers it in daemon.json and reloads dockerd)',
    };
  }
  if (!facts.executable) {
    return {
      check: 'runtime',
      verdict: 'fail',
      detail: `runtime ${name} is registered as ${runtime.path}, which is missing or not executable`,
      fix: 'make install-runtime',
    };
  }
  const isDefault = facts.defaultRuntime === name ? ' (the default runtime)' : '';
  return {
    check: 'runtime',
    verdict: 'ok',
    detail: `runtime ${name} -> ${runtime.path}${isDefault}`,
  };
}

export interface Submount {
  path: string;
  fsType: string;
  source: string;
  root: string;
  device: string;
  leaked: boolean;
  reason?: string;
}

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

export function classifySubmounts(
  hostMounts: readonly MountEntry[],
  mountpoint: string,
  running: RunningRoots,
): Submount[] {
  // Docker's managed-plugin layout shows each mount twice on the host (one peer group, one
  // copy hidden beneath the other): list each mount once.
  const seen = new Set<string>();
  return mountsBelow(hostMounts, mountpoint)
    .reverse()
    .filter((e) => {
      const key = `${e.mountPoint}\0${e.device}\0${e.root}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map((e) => {
      const reason = leakReason(e, running);
      return {
        path: e.mountPoint,
        fsType: e.fsType,
        source: e.source,
        root: e.root,
        device: e.device,
        leaked: reason !== undefined,
        reason,
      };
    });
}

export function checkVolume(
  name: string,
  mountpoint: string,
  hostMounts: readonly MountEntry[],
  running: RunningRoots,
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
      fix: 'mount the volume in a container (the driver puts the mount point back), or restart the plugin',
      data,
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
      fix: `docker plugin disable -f sharedprop && docker plugin enable sharedprop`,
      data,
    };
  }
  if (top.sharedGroup === undefined) {
    return {
      check,
      verdict: 'fail',
      detail: `its mount point ${mountpoint} is ${propagationOf(top)}, not shared`,
      fix: `mount --make-rshared ${mountpoint}, or restart the plugin`,
      data,
    };
  }
  if (leaks.length > 0) {
    return {
      check,
      verdict: 'warn',
      detail: `shared mount point, ${submounts.length} submount(s), ${leaks.length} leaked: ${leaks.map((l) => l.path).join(', ')}`,
      fix: 'sharedprop prune (or sharedprop doctor --fix) detaches the leaked ones',
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
): CheckResult[] {
  if (mounts.length === 0) {
    return [
      { check: `container ${container}`, verdict: 'warn', detail: 'uses no sharedprop volume' },
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
        detail: `volume ${volume} is a ${propagation} mount: the container was started without --runtime sharedprop, so mounts made under ${destination} stay inside it`,
        fix: `recreate the container with --runtime sharedprop (compose: runtime: sharedprop), or make sharedprop dockerd's default-runtime`,
      };
    }
    return { check, verdict: 'ok' as const, detail: `volume ${volume} is ${propagation}` };
  });
}
