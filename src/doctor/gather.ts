/** Gathers the facts the doctor judges: from the engine's API, /proc and the driver's socket. */
import { statusJsonSchema, type StatusJson } from '../model/status.js';
import { access, constants, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { activate } from '../docker/activate.js';
import { findDaemonPid, unixSocketOf } from '../docker/daemon-process.js';
import { parseMountinfo, readMountinfo, type MountEntry } from '../system/mountinfo.js';
import {
  checkContainerMounts,
  checkDaemonNamespace,
  checkEngine,
  checkPlugin,
  checkRuntime,
  checkVolume,
  type CheckResult,
  type PluginFacts,
  type RunningRoots,
} from './checks.js';

export interface DoctorOptions {
  plugin: string;
  runtime: string;
}

export interface VolumeFacts {
  name: string;
  driver: string;
  mountpoint: string;
  /** Undefined when the plugin's Status is not what this CLI knows (another version). */
  status?: StatusJson;
}

/** True when a volume's driver is our plugin (dockerd may show it as `name` or `name:tag`). */
export function isOurDriver(driver: string, plugin: string): boolean {
  return driver === plugin || driver.startsWith(`${plugin}:`);
}

/** The managed plugin named `plugin`, when one is installed. */
export async function findPlugin(docker: Docker, plugin: string) {
  const plugins = await docker.listPlugins().catch(() => []);
  return plugins.find((p) => p.Name === plugin || p.Name.startsWith(`${plugin}:`));
}

/**
 * The host path of a volume's mount point. dockerd reports a managed plugin's Mountpoint as the
 * plugin sees it (under its propagatedMount); the host has it under
 * `<DockerRootDir>/plugins/<id>/propagated-mount`. Other paths are host paths already.
 */
export function hostMountpoint(
  mountpoint: string,
  plugin: { id: string; propagatedMount?: string } | undefined,
  dockerRoot: string,
): string {
  const inside = plugin?.propagatedMount?.replace(/\/+$/, '');
  if (!plugin || !inside || !(mountpoint === inside || mountpoint.startsWith(`${inside}/`))) {
    return mountpoint;
  }
  return path.join(
    dockerRoot,
    'plugins',
    plugin.id,
    'propagated-mount',
    mountpoint.slice(inside.length),
  );
}

export async function listOurVolumes(docker: Docker, plugin: string): Promise<VolumeFacts[]> {
  const [{ Volumes }, found, info] = await Promise.all([
    docker.listVolumes(),
    findPlugin(docker, plugin),
    docker.info() as Promise<{ DockerRootDir: string }>,
  ]);
  const where = found
    ? { id: found.Id ?? '', propagatedMount: found.Config?.PropagatedMount }
    : undefined;
  const ours = (Volumes ?? []).filter((v) => isOurDriver(v.Driver, plugin));
  return Promise.all(
    ours.map(async (v) => {
      const inspected = (await docker.getVolume(v.Name).inspect()) as unknown as {
        Mountpoint: string;
        Status?: unknown;
      };
      return {
        name: v.Name,
        driver: v.Driver,
        mountpoint: hostMountpoint(inspected.Mountpoint, where, info.DockerRootDir),
        status: statusJsonSchema.safeParse(inspected.Status).data,
      };
    }),
  );
}

/** The root filesystems of every running container, and where container layers live. */
export async function runningRoots(docker: Docker): Promise<RunningRoots> {
  const devices = new Set<string>();
  const roots: string[] = [];
  for (const summary of await docker.listContainers()) {
    const pid = await containerPid(docker, summary.Id);
    if (!pid) continue;
    const mounts = await readMountinfo(`/proc/${pid}/mountinfo`).catch(() => [] as MountEntry[]);
    const root = mounts.filter((e) => e.mountPoint === '/').at(-1);
    if (root) {
      devices.add(root.device);
      roots.push(root.root);
    }
  }
  const info = (await docker.info()) as { DockerRootDir?: string; Driver?: string };
  const layerDir =
    info.DockerRootDir && info.Driver ? path.join(info.DockerRootDir, info.Driver) : undefined;
  return { devices, roots, layerDir };
}

async function containerPid(docker: Docker, id: string): Promise<number | undefined> {
  const info = await docker.getContainer(id).inspect();
  return info.State.Running && info.State.Pid > 0 ? info.State.Pid : undefined;
}

async function pluginFacts(
  docker: Docker,
  name: string,
  daemon: { pid?: number; sameNamespace?: boolean },
): Promise<PluginFacts> {
  const facts: PluginFacts = { name };
  const found = await findPlugin(docker, name);
  if (found) {
    facts.plugin = { id: found.Id ?? '', enabled: found.Enabled, reference: found.Name };
    const socketName = found.Config?.Interface?.Socket ?? `${name}.sock`;
    // dockerd keeps managed plugin sockets in /run/docker/plugins/<id>/, whatever its exec root.
    const socket = path.join('/run/docker/plugins', facts.plugin.id, socketName);
    facts.socket =
      daemon.pid !== undefined && daemon.sameNamespace === false
        ? `/proc/${daemon.pid}/root${socket}`
        : socket;
  } else {
    const hostSocket = `/run/docker/plugins/${name}.sock`;
    if (
      await stat(hostSocket).then(
        (s) => s.isSocket(),
        () => false,
      )
    ) {
      facts.socket = hostSocket;
    }
  }
  if (facts.socket && (!facts.plugin || facts.plugin.enabled)) {
    facts.activate = await activate(facts.socket).catch((error: Error) => error);
  }
  return facts;
}

export async function diagnose(docker: Docker, options: DoctorOptions): Promise<CheckResult[]> {
  const version = await docker.version().catch((error: Error) => error);
  const results: CheckResult[] = [checkEngine(version)];
  if (version instanceof Error) return results;

  const daemonPid = await findDaemonPid(unixSocketOf()).catch(() => undefined);
  let daemonMounts: MountEntry[] | undefined;
  let sameNamespace: boolean | undefined;
  if (daemonPid !== undefined) {
    daemonMounts = parseMountinfo(await readFile(`/proc/${daemonPid}/mountinfo`, 'utf8'));
    const [mine, theirs] = await Promise.all([
      readlink('/proc/self/ns/mnt'),
      readlink(`/proc/${daemonPid}/ns/mnt`),
    ]);
    sameNamespace = mine === theirs;
  }
  const plugin = await pluginFacts(docker, options.plugin, { pid: daemonPid, sameNamespace });
  results.push(checkPlugin(plugin));

  const info = (await docker.info()) as {
    DockerRootDir: string;
    Runtimes?: Record<string, { path?: string }>;
    DefaultRuntime?: string;
  };
  const hostMounts = await readMountinfo();
  results.push(
    checkDaemonNamespace({
      pid: daemonPid,
      sameNamespace,
      daemonMounts,
      hostMounts,
      dataRoot: info.DockerRootDir,
      propagatedMount: plugin.plugin
        ? path.join(info.DockerRootDir, 'plugins', plugin.plugin.id, 'propagated-mount')
        : undefined,
    }),
  );

  const runtimePath = info.Runtimes?.[options.runtime]?.path;
  const executable = runtimePath
    ? await access(runtimePath, constants.X_OK).then(
        () => true,
        () => false,
      )
    : false;
  results.push(
    checkRuntime(
      { runtimes: info.Runtimes, defaultRuntime: info.DefaultRuntime, executable },
      options.runtime,
    ),
  );

  const running = await runningRoots(docker);
  for (const volume of await listOurVolumes(docker, options.plugin)) {
    results.push(checkVolume(volume.name, volume.mountpoint, hostMounts, running));
  }
  return results;
}

export async function diagnoseContainer(
  docker: Docker,
  container: string,
  plugin: string,
): Promise<CheckResult[]> {
  const info = await docker.getContainer(container).inspect();
  if (!info.State.Running) {
    return [{ check: `container ${container}`, verdict: 'fail', detail: 'is not running' }];
  }
  const mounts = (
    info.Mounts as { Type: string; Name?: string; Driver?: string; Destination: string }[]
  ).filter((m) => m.Type === 'volume' && m.Driver !== undefined && isOurDriver(m.Driver, plugin));
  const table = await readMountinfo(`/proc/${info.State.Pid}/mountinfo`);
  return checkContainerMounts(
    info.Name.replace(/^\//, ''),
    mounts.map((m) => ({
      destination: m.Destination,
      volume: m.Name ?? '?',
      entry: table.filter((e) => e.mountPoint === m.Destination).at(-1),
    })),
  );
}
