/** Gathers the facts the doctor judges: from the engine's API, /proc and the driver's socket. */
import { isWithin } from '../model/paths.js';
import { statusJsonSchema, type StatusJson } from '../model/status.js';
import path from 'node:path';
import { EngineError, type EngineClient, type EngineInfo } from '../docker/engine-client.js';
import { findPlugin, isPluginReference } from '../docker/plugin-volumes.js';
import { DEFAULT_ENGINE_STORAGE, dockerStorageRoots } from '../system/engine-storage.js';
import { holderOf, type MountEntry } from '../system/mountinfo.js';
import { VERSION } from '../system/version.js';
import {
  checkDaemonNamespace,
  checkEngine,
  checkPlugin,
  checkRuntime,
  checkVersions,
  couldNotCheck,
  type CheckResult,
  type PluginFacts,
  type PluginRef,
  type RunningRoots,
} from './checks.js';
import {
  checkContainerMounts,
  checkSubpathMounts,
  checkVolume,
  type SubpathMount,
} from './volume-checks.js';
import { procHost, type HostProbe } from './host.js';

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

/** True when a volume's driver is our plugin (src/docker/plugin-volumes.ts has the rule). */
export function isOurDriver(driver: string, plugin: string): boolean {
  return isPluginReference(driver, plugin);
}

const isNotFound = (error: unknown) => error instanceof EngineError && error.statusCode === 404;

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
  if (!plugin || !inside || !isWithin(mountpoint, inside)) {
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

/** The volumes of driver `plugin`; one removed while this runs is left out. */
export async function listOurVolumes(
  engine: EngineClient,
  plugin: string,
  knownInfo?: EngineInfo,
): Promise<VolumeFacts[]> {
  const [volumes, found, info] = await Promise.all([
    engine.listVolumes(),
    findPlugin(engine, plugin),
    knownInfo ?? engine.info(),
  ]);
  const ours = volumes.filter((v) => isOurDriver(v.driver, plugin));
  const facts = await Promise.all(
    ours.map(async (v): Promise<VolumeFacts | undefined> => {
      const inspected = await engine.inspectVolume(v.name).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      if (!inspected) return undefined;
      return {
        name: v.name,
        driver: v.driver,
        mountpoint: hostMountpoint(inspected.mountpoint, found, info.dockerRootDir),
        status: statusJsonSchema.safeParse(inspected.status).data,
      };
    }),
  );
  return facts.filter((v): v is VolumeFacts => v !== undefined);
}

/** The root filesystems of every running container, and where container layers live. */
export async function runningRoots(
  engine: EngineClient,
  host: HostProbe = procHost,
  knownInfo?: EngineInfo,
): Promise<RunningRoots> {
  const devices = new Set<string>();
  const roots: { device: string; root: string }[] = [];
  for (const summary of await engine.listContainers()) {
    const container = await engine.inspectContainer(summary.id).catch((error: unknown) => {
      if (isNotFound(error)) return undefined; // gone since the list
      throw error;
    });
    if (!container?.running || container.pid <= 0) continue;
    // A container that stops meanwhile has no mount table any more.
    const mounts = await host.mountsOf(container.pid).catch(() => [] as MountEntry[]);
    const root = mounts.filter((e) => e.mountPoint === '/').at(-1);
    if (root) {
      devices.add(root.device);
      roots.push({ device: root.device, root: root.root });
    }
  }
  const info = knownInfo ?? (await engine.info());
  const storage = [
    ...new Set([...DEFAULT_ENGINE_STORAGE, ...dockerStorageRoots(info.dockerRootDir)]),
  ];
  return { devices, roots, storage, layers: await directoryLayers(info, host) };
}

/** Storage drivers whose containers' roots are overlays (judged by their upper directory). */
const OVERLAY_DRIVERS = new Set(['overlay2', 'overlay', 'overlayfs', 'fuse-overlayfs']);

/**
 * Where a storage driver with directory roots (vfs & co.) keeps them, as a bind of one shows it:
 * the filesystem that holds `<DockerRootDir>/<Driver>` and the directory's path inside it.
 */
async function directoryLayers(info: EngineInfo, host: HostProbe): Promise<RunningRoots['layers']> {
  if (!info.dockerRootDir || !info.storageDriver || OVERLAY_DRIVERS.has(info.storageDriver)) {
    return undefined;
  }
  const layerDir = path.join(info.dockerRootDir, info.storageDriver);
  const holder = holderOf(await host.mounts(), layerDir);
  if (!holder) return undefined;
  const inside = holder.mountPoint === '/' ? layerDir : layerDir.slice(holder.mountPoint.length);
  return { device: holder.device, root: path.posix.join(holder.root, inside) };
}

/** Running containers' subpath mounts of volumes of driver `plugin`. */
export async function subpathMounts(engine: EngineClient, plugin: string): Promise<SubpathMount[]> {
  const found: SubpathMount[] = [];
  for (const summary of await engine.listContainers()) {
    const container = await engine.inspectContainer(summary.id).catch((error: unknown) => {
      if (isNotFound(error)) return undefined; // gone since the list
      throw error;
    });
    if (!container?.running) continue;
    for (const m of container.mounts) {
      if (m.subpath && m.type === 'volume' && m.driver && isOurDriver(m.driver, plugin)) {
        found.push({
          container: container.name,
          volume: m.name ?? '?',
          destination: m.destination,
          subpath: m.subpath,
        });
      }
    }
  }
  return found;
}

interface DaemonFacts {
  pid?: number;
  sameNamespace?: boolean;
  mounts?: MountEntry[];
  /** Why dockerd's namespace could not be read, when it was found. */
  error?: unknown;
}

async function daemonFacts(engine: EngineClient, host: HostProbe): Promise<DaemonFacts> {
  if (!engine.socketPath) return {};
  const pid = await host.daemonPid(engine.socketPath).catch(() => undefined);
  if (pid === undefined) return {};
  try {
    const [mounts, sameNamespace] = await Promise.all([
      host.mountsOf(pid),
      host.sharesMountNamespace(pid),
    ]);
    return { pid, mounts, sameNamespace };
  } catch (error) {
    return { pid, error };
  }
}

async function pluginFacts(
  engine: EngineClient,
  name: string,
  daemon: DaemonFacts,
  host: HostProbe,
): Promise<PluginFacts> {
  const facts: PluginFacts = { name };
  const found = await findPlugin(engine, name);
  if (found) {
    facts.plugin = {
      id: found.id,
      enabled: found.enabled,
      reference: found.name,
      ...(found.version ? { version: found.version } : {}),
    };
    const socketName = found.socket ?? `${name}.sock`;
    // dockerd keeps managed plugin sockets in /run/docker/plugins/<id>/, whatever its exec root.
    const socket = path.join('/run/docker/plugins', found.id, socketName);
    facts.socket =
      daemon.pid !== undefined && daemon.sameNamespace === false
        ? `/proc/${daemon.pid}/root${socket}`
        : socket;
  } else {
    const hostSocket = `/run/docker/plugins/${name}.sock`;
    if (await host.isSocket(hostSocket)) facts.socket = hostSocket;
  }
  if (facts.socket && (!facts.plugin || facts.plugin.enabled)) {
    facts.activate = await host.activate(facts.socket).catch((error: Error) => error);
  }
  return facts;
}

/**
 * Every check, in order: engine, plugin, daemon-namespace, runtime, one per volume. When the engine
 * cannot be reached, only the engine's failure. A check that cannot be made is reported as a
 * failure that says why (couldNotCheck), and the others still run.
 */
export async function diagnose(
  engine: EngineClient,
  options: DoctorOptions,
  host: HostProbe = procHost,
): Promise<CheckResult[]> {
  let info: EngineInfo;
  const results: CheckResult[] = [];
  try {
    const version = await engine.version();
    info = await engine.info();
    results.push(checkEngine(version));
  } catch (error) {
    return [checkEngine(error instanceof Error ? error : new Error(String(error)))];
  }

  const daemon = await daemonFacts(engine, host);
  let plugin: PluginFacts | undefined;
  try {
    plugin = await pluginFacts(engine, options.plugin, daemon, host);
    results.push(checkPlugin(plugin));
  } catch (error) {
    results.push(couldNotCheck('plugin', error));
  }

  const hostMounts = await host
    .mounts()
    .catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
  if (daemon.error !== undefined || hostMounts instanceof Error) {
    results.push(couldNotCheck('daemon-namespace', daemon.error ?? hostMounts));
  } else {
    results.push(
      checkDaemonNamespace({
        pid: daemon.pid,
        sameNamespace: daemon.sameNamespace,
        daemonMounts: daemon.mounts,
        hostMounts,
        dataRoot: info.dockerRootDir,
        propagatedMount: plugin?.plugin
          ? path.join(info.dockerRootDir, 'plugins', plugin.plugin.id, 'propagated-mount')
          : undefined,
        plugin: plugin?.plugin?.reference,
      }),
    );
  }

  const runtimePath = info.runtimes[options.runtime]?.path;
  const executable = runtimePath ? await host.isExecutable(runtimePath) : false;
  results.push(
    checkRuntime(
      { runtimes: info.runtimes, defaultRuntime: info.defaultRuntime, executable },
      options.runtime,
    ),
  );
  results.push(
    checkVersions({
      cli: VERSION,
      runtime: runtimePath && executable ? await host.runtimeVersion(runtimePath) : undefined,
      plugin: plugin?.plugin?.version,
    }),
  );

  const ref: PluginRef = plugin?.plugin
    ? { name: plugin.plugin.reference, managed: true }
    : { name: options.plugin, managed: plugin === undefined || !plugin.socket };
  try {
    if (hostMounts instanceof Error) throw hostMounts;
    const [running, volumes] = await Promise.all([
      runningRoots(engine, host, info),
      listOurVolumes(engine, options.plugin, info),
    ]);
    for (const volume of volumes) {
      results.push(checkVolume(volume.name, volume.mountpoint, hostMounts, running, ref));
    }
  } catch (error) {
    results.push(couldNotCheck('volumes', error));
  }
  try {
    const subpaths = checkSubpathMounts(await subpathMounts(engine, options.plugin));
    if (subpaths) results.push(subpaths);
  } catch (error) {
    results.push(couldNotCheck('subpath-mounts', error));
  }
  return results;
}

/** The checks of one container's sharedprop mounts; the engine's failure when it is unreachable. */
export async function diagnoseContainer(
  engine: EngineClient,
  container: string,
  options: DoctorOptions,
  host: HostProbe = procHost,
): Promise<CheckResult[]> {
  const check = `container ${container}`;
  let info;
  try {
    info = await engine.inspectContainer(container);
  } catch (error) {
    if (isNotFound(error)) return [{ check, verdict: 'fail', detail: 'no such container' }];
    if (error instanceof EngineError && error.kind !== 'api') {
      return [checkEngine(error)];
    }
    return [couldNotCheck(check, error)];
  }
  if (!info.running) {
    return [{ check, verdict: 'fail', detail: 'is not running' }];
  }
  const mounts = info.mounts.filter(
    (m) => m.type === 'volume' && m.driver !== undefined && isOurDriver(m.driver, options.plugin),
  );
  let table: MountEntry[];
  try {
    table = await host.mountsOf(info.pid);
  } catch (error) {
    return [couldNotCheck(check, error)];
  }
  return checkContainerMounts(
    info.name,
    mounts.map((m) => ({
      destination: m.destination,
      volume: m.name ?? '?',
      entry: table.filter((e) => e.mountPoint === m.destination).at(-1),
    })),
    options.runtime,
    options.plugin,
  );
}
