/**
 * The few Docker Engine API calls the CLI makes (`doctor`, `ls`, `prune`), with typed results.
 * Every failure is an EngineError that says what it is: the engine could not be reached, this
 * process may not use its socket, or the engine answered with an error. dockerode stays behind
 * `connectEngine`, so that the code above takes the interface and unit tests use a fake.
 */

export type EngineErrorKind = 'unreachable' | 'permission' | 'api';

export class EngineError extends Error {
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
    /** The engine's HTTP status, for kind `api`. */
    readonly statusCode?: number,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export interface EngineVersion {
  version?: string;
  apiVersion?: string;
  /** The versions the engine reports of its parts (`Components`), when it reports them. */
  containerd?: string;
  runc?: string;
}

export interface EngineInfo {
  /** dockerd's data root (`DockerRootDir`). */
  dockerRootDir: string;
  /** The storage driver (`Driver`): overlay2, vfs, ... */
  storageDriver?: string;
  runtimes: Record<string, { path?: string }>;
  defaultRuntime?: string;
}

export interface PluginSummary {
  id: string;
  /** The reference dockerd shows, e.g. `sharedprop:latest`. */
  name: string;
  enabled: boolean;
  /** Where the plugin sees its propagated mount (`Config.PropagatedMount`), when it has one. */
  propagatedMount?: string;
  /** The socket file name in its config (`Config.Interface.Socket`). */
  socket?: string;
  /** The sharedprop version it was built as (its config's SHAREDPROP_VERSION env), if any. */
  version?: string;
}

export interface VolumeSummary {
  name: string;
  driver: string;
}

export interface VolumeDetails extends VolumeSummary {
  /** The mount point as dockerd reports it (for a managed plugin: as the plugin sees it). */
  mountpoint: string;
  /** The driver's Status, unparsed. */
  status?: unknown;
}

export interface ContainerSummary {
  id: string;
  names: string[];
}

export interface ContainerMount {
  type: string;
  name?: string;
  driver?: string;
  destination: string;
  /** The volume's subdirectory, for a subpath mount (`volume-subpath`, API 1.45). */
  subpath?: string;
}

export interface ContainerDetails {
  id: string;
  /** The name without its leading slash. */
  name: string;
  running: boolean;
  /** The pid of its init process; 0 when it is not running. */
  pid: number;
  mounts: ContainerMount[];
}

export interface EngineClient {
  /** What the engine is called in messages: DOCKER_HOST, or the Unix socket's address. */
  readonly address: string;
  /** The engine's Unix socket, when it is reached through one. */
  readonly socketPath?: string;
  version(): Promise<EngineVersion>;
  info(): Promise<EngineInfo>;
  listPlugins(): Promise<PluginSummary[]>;
  listVolumes(): Promise<VolumeSummary[]>;
  inspectVolume(name: string): Promise<VolumeDetails>;
  /** Running containers only. */
  listContainers(): Promise<ContainerSummary[]>;
  inspectContainer(idOrName: string): Promise<ContainerDetails>;
}

export const DEFAULT_SOCKET = '/var/run/docker.sock';

/** Where DOCKER_HOST points: an address for messages and, for a Unix socket, its path. */
export function engineTarget(dockerHost: string | undefined): {
  address: string;
  socketPath?: string;
} {
  if (!dockerHost) return { address: `unix://${DEFAULT_SOCKET}`, socketPath: DEFAULT_SOCKET };
  if (dockerHost.startsWith('unix://')) {
    const socketPath = dockerHost.slice('unix://'.length) || DEFAULT_SOCKET;
    return { address: `unix://${socketPath}`, socketPath };
  }
  return { address: dockerHost };
}

const PERMISSION_CODES = new Set(['EACCES', 'EPERM']);

/**
 * An EngineError for what a call to the engine at `address` threw while it tried to `operation`
 * (e.g. "list volumes"). An HTTP answer is kind `api`; a Node error with an errno code (ENOENT,
 * ECONNREFUSED, ETIMEDOUT, ...) is `unreachable`, or `permission` for EACCES/EPERM; anything else
 * (an answer of an unexpected shape) is `api`.
 */
export function toEngineError(error: unknown, address: string, operation: string): EngineError {
  if (error instanceof EngineError) return error;
  const e = (error ?? {}) as {
    message?: unknown;
    code?: unknown;
    statusCode?: unknown;
    json?: unknown;
  };
  const raw = typeof e.message === 'string' && e.message ? e.message : String(error);
  if (typeof e.statusCode === 'number') {
    const json = e.json as { message?: unknown } | undefined;
    const said =
      json && typeof json === 'object' && typeof json.message === 'string'
        ? json.message
        : raw.replace(/^\(HTTP code \d+\)\s*/, '').trim();
    return new EngineError(
      'api',
      `the Docker engine at ${address} could not ${operation}: HTTP ${e.statusCode}: ${said}`,
      e.statusCode,
    );
  }
  if (typeof e.code === 'string' && PERMISSION_CODES.has(e.code)) {
    return new EngineError(
      'permission',
      `permission denied connecting to the Docker engine at ${address}: ${raw}`,
    );
  }
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    return new EngineError('unreachable', `cannot reach the Docker engine at ${address}: ${raw}`);
  }
  // Neither an answer nor a connection error: an answer this client could not make sense of.
  return new EngineError('api', `the Docker engine at ${address} could not ${operation}: ${raw}`);
}

/**
 * Wraps every method of `client` so that whatever it throws becomes an EngineError. Used for the
 * dockerode client; a fake may throw EngineErrors itself.
 */
function guarded(client: EngineClient): EngineClient {
  const call =
    <A extends unknown[], R>(
      operation: string | ((...args: A) => string),
      fn: (...args: A) => Promise<R>,
    ) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (error) {
        const what = typeof operation === 'string' ? operation : operation(...args);
        throw toEngineError(error, client.address, what);
      }
    };
  return {
    address: client.address,
    socketPath: client.socketPath,
    version: call('report its version', () => client.version()),
    info: call('report its configuration', () => client.info()),
    listPlugins: call('list plugins', () => client.listPlugins()),
    listVolumes: call('list volumes', () => client.listVolumes()),
    inspectVolume: call(
      (name: string) => `inspect volume ${name}`,
      (name: string) => client.inspectVolume(name),
    ),
    listContainers: call('list containers', () => client.listContainers()),
    inspectContainer: call(
      (id: string) => `inspect container ${id}`,
      (id: string) => client.inspectContainer(id),
    ),
  };
}

/**
 * A client for the engine the environment's DOCKER_HOST names (the local socket by default; TLS
 * and ssh settings are dockerode's, from the same environment). dockerode is loaded here, on first
 * use, so that `serve` never loads it.
 */
export async function connectEngine(): Promise<EngineClient> {
  const target = engineTarget(process.env.DOCKER_HOST);
  const { default: Docker } = await import('dockerode');
  let docker: InstanceType<typeof Docker>;
  try {
    // A Unix socket is named explicitly, so that the address in messages is the one used.
    docker = target.socketPath ? new Docker({ socketPath: target.socketPath }) : new Docker();
  } catch (error) {
    // dockerode throws for a DOCKER_HOST it cannot parse, or TLS files it cannot read.
    throw new EngineError(
      'unreachable',
      `cannot reach the Docker engine at ${target.address}: ${(error as Error).message}`,
    );
  }
  return guarded({
    ...target,
    async version() {
      const v = await docker.version();
      const components = (v as { Components?: { Name?: string; Version?: string }[] }).Components;
      const component = (name: string) =>
        components?.find((c) => c.Name?.toLowerCase() === name)?.Version || undefined;
      const result: EngineVersion = { version: v.Version, apiVersion: v.ApiVersion };
      const containerd = component('containerd');
      const runc = component('runc');
      if (containerd) result.containerd = containerd;
      if (runc) result.runc = runc;
      return result;
    },
    async info() {
      const i = (await docker.info()) as {
        DockerRootDir?: string;
        Driver?: string;
        Runtimes?: Record<string, { path?: string }>;
        DefaultRuntime?: string;
      };
      return {
        dockerRootDir: i.DockerRootDir ?? '/var/lib/docker',
        storageDriver: i.Driver || undefined,
        runtimes: i.Runtimes ?? {},
        defaultRuntime: i.DefaultRuntime,
      };
    },
    async listPlugins() {
      return (await docker.listPlugins()).map((p) => {
        const config = p.Config as {
          PropagatedMount?: string;
          Interface?: { Socket?: string };
          Env?: { Name?: string; Value?: string }[];
        };
        return {
          id: p.Id ?? '',
          name: p.Name,
          enabled: p.Enabled,
          propagatedMount: config?.PropagatedMount || undefined,
          socket: config?.Interface?.Socket || undefined,
          version: config?.Env?.find((e) => e.Name === 'SHAREDPROP_VERSION')?.Value || undefined,
        };
      });
    },
    async listVolumes() {
      const { Volumes } = await docker.listVolumes();
      return (Volumes ?? []).map((v) => ({ name: v.Name, driver: v.Driver }));
    },
    async inspectVolume(name: string) {
      const v = (await docker.getVolume(name).inspect()) as unknown as {
        Name: string;
        Driver: string;
        Mountpoint: string;
        Status?: unknown;
      };
      return { name: v.Name, driver: v.Driver, mountpoint: v.Mountpoint, status: v.Status };
    },
    async listContainers() {
      return (await docker.listContainers()).map((c) => ({ id: c.Id, names: c.Names ?? [] }));
    },
    async inspectContainer(idOrName: string) {
      const c = await docker.getContainer(idOrName).inspect();
      const mounts = (c.Mounts ?? []) as unknown as {
        Type: string;
        Name?: string;
        Driver?: string;
        Destination: string;
      }[];
      const requested = ((c.HostConfig as { Mounts?: unknown } | undefined)?.Mounts ?? []) as {
        Target?: string;
        VolumeOptions?: { Subpath?: string };
      }[];
      const subpathAt = (destination: string) =>
        requested.find((m) => m.Target === destination)?.VolumeOptions?.Subpath || undefined;
      return {
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        running: c.State.Running,
        pid: c.State.Running ? c.State.Pid : 0,
        mounts: mounts.map((m) => {
          const mount: ContainerMount = {
            type: m.Type,
            name: m.Name,
            driver: m.Driver,
            destination: m.Destination,
          };
          const subpath = subpathAt(m.Destination);
          if (subpath) mount.subpath = subpath;
          return mount;
        }),
      };
    },
  });
}
