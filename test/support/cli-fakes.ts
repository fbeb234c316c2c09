/**
 * Fakes for the inspect commands (`doctor`, `ls`, `prune`): an engine client, a host probe, and a
 * runner that drives the real commander commands and captures what they print and exit with.
 */
import { Command } from 'commander';
import {
  connectEngine,
  EngineError,
  toEngineError,
  type ContainerDetails,
  type EngineClient,
  type EngineInfo,
  type PluginSummary,
  type VolumeDetails,
} from '../../src/docker/engine-client.js';
import type { HostProbe } from '../../src/doctor/host.js';
import { registerInspectCommands, type InspectDeps } from '../../src/commands/inspect.js';
import { parseMountinfo, type MountEntry } from '../../src/system/mountinfo.js';

export const FAKE_ADDRESS = 'unix:///run/fake-docker.sock';

export interface FakeEngineState {
  version?: { version: string; apiVersion: string };
  info?: Partial<EngineInfo>;
  plugins?: PluginSummary[];
  volumes?: VolumeDetails[];
  containers?: ContainerDetails[];
  /** Thrown by every call (e.g. an unreachable engine). */
  failAll?: EngineError;
  /** Thrown by the calls named. */
  failOn?: Partial<Record<keyof Omit<EngineClient, 'address' | 'socketPath'>, EngineError>>;
}

/** An engine that answers from `state`; the calls it got are in `calls`. */
export class FakeEngine implements EngineClient {
  readonly address = FAKE_ADDRESS;
  readonly socketPath = '/run/fake-docker.sock';
  readonly calls: string[] = [];

  constructor(private readonly state: FakeEngineState = {}) {}

  private async answer<T>(call: keyof NonNullable<FakeEngineState['failOn']>, value: () => T) {
    this.calls.push(call);
    const failure = this.state.failAll ?? this.state.failOn?.[call];
    if (failure) throw failure;
    return value();
  }

  version() {
    return this.answer(
      'version',
      () => this.state.version ?? { version: '27.0.0', apiVersion: '1.46' },
    );
  }

  info() {
    return this.answer('info', () => ({
      dockerRootDir: '/var/lib/docker',
      storageDriver: 'overlay2',
      runtimes: { runc: { path: 'runc' } },
      ...this.state.info,
    }));
  }

  listPlugins() {
    return this.answer('listPlugins', () => this.state.plugins ?? []);
  }

  listVolumes() {
    return this.answer('listVolumes', () =>
      (this.state.volumes ?? []).map((v) => ({ name: v.name, driver: v.driver })),
    );
  }

  inspectVolume(name: string) {
    return this.answer('inspectVolume', () => {
      const found = this.state.volumes?.find((v) => v.name === name);
      if (!found) throw new EngineError('api', `no such volume: ${name}`, 404);
      return found;
    });
  }

  listContainers() {
    return this.answer('listContainers', () =>
      (this.state.containers ?? [])
        .filter((c) => c.running)
        .map((c) => ({ id: c.id, names: [`/${c.name}`] })),
    );
  }

  inspectContainer(idOrName: string) {
    return this.answer('inspectContainer', () => {
      const found = this.state.containers?.find((c) => c.id === idOrName || c.name === idOrName);
      if (!found) throw new EngineError('api', `no such container: ${idOrName}`, 404);
      return found;
    });
  }
}

/** The real client for DOCKER_HOST=`dockerHost` (the environment is restored afterwards). */
export async function connectTo(dockerHost: string): Promise<EngineClient> {
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = dockerHost;
  try {
    return await connectEngine();
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
}

/** What the real client makes of a socket error: a Node errno error, as dockerode rejects with. */
export function socketError(code: string, operation = 'report its version'): EngineError {
  const error = Object.assign(new Error(`connect ${code} /run/fake-docker.sock`), { code });
  return toEngineError(error, FAKE_ADDRESS, operation);
}

export interface FakeHostState {
  /** The host's mount table (mountinfo text or entries). */
  mounts?: string | MountEntry[];
  /** Mount tables of other processes, by pid. */
  processMounts?: Record<number, string | MountEntry[]>;
  daemonPid?: number;
  sameNamespace?: boolean;
  executables?: string[];
  sockets?: string[];
  /** Socket path -> what Activate answers. */
  activate?: Record<string, string[]>;
  /** Runtime executable -> the sharedprop version its `--version` reports. */
  runtimeVersions?: Record<string, string>;
}

const table = (t: string | MountEntry[] | undefined) =>
  typeof t === 'string' ? parseMountinfo(t) : (t ?? []);

export function fakeHost(state: FakeHostState = {}): HostProbe {
  return {
    mounts: async () => table(state.mounts),
    async mountsOf(pid) {
      const t = state.processMounts?.[pid];
      if (t === undefined) {
        throw Object.assign(new Error(`ENOENT: no such file, open '/proc/${pid}/mountinfo'`), {
          code: 'ENOENT',
        });
      }
      return table(t);
    },
    daemonPid: async () => state.daemonPid,
    sharesMountNamespace: async () => state.sameNamespace ?? true,
    isExecutable: async (file) => (state.executables ?? []).includes(file),
    isSocket: async (file) => (state.sockets ?? []).includes(file),
    async activate(socketPath) {
      const implemented = state.activate?.[socketPath];
      if (!implemented) throw new Error(`connect ENOENT ${socketPath}`);
      return { implements: implemented };
    },
    runtimeVersion: async (file) => state.runtimeVersions?.[file],
  };
}

export interface CliRun {
  stdout: string;
  stderr: string;
  exitCode: number;
}

class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/**
 * Runs `sharedprop <args>` through the real command definitions with `engine` and `host`. The
 * exit code is what the process would end with (0 when nothing set one).
 */
export async function runCli(
  args: string[],
  world: {
    engine?: EngineClient | (() => Promise<EngineClient>);
    host?: HostProbe;
    mounts?: InspectDeps['mounts'];
    restartPlugin?: InspectDeps['restartPlugin'];
  },
): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  let exitCode = 0;
  const engine = world.engine ?? new FakeEngine();
  const deps: InspectDeps = {
    connect: typeof engine === 'function' ? engine : async () => engine,
    host: world.host ?? fakeHost(),
    mounts: world.mounts,
    restartPlugin:
      world.restartPlugin ??
      (async () => {
        throw new Error('no restart in this test');
      }),
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    colour: () => false,
    setExitCode: (code) => {
      exitCode = code;
    },
    exit: (code) => {
      throw new Exited(code);
    },
  };
  const program = new Command().name('sharedprop');
  program.configureOutput({
    writeOut: (text) => void out.push(text),
    writeErr: (text) => void err.push(text),
  });
  registerInspectCommands(program, deps);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    if (!(error instanceof Exited)) throw error;
    exitCode = error.code;
  }
  return { stdout: out.join(''), stderr: err.join(''), exitCode };
}
