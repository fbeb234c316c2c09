/**
 * The doctor's verdicts, as pure functions of facts gathered elsewhere (the engine's answers and
 * mountinfo tables), so that each one can be tested on recorded samples.
 */
import { EngineError, type EngineVersion } from '../docker/engine-client.js';
import { holderOf, propagationOf, type MountEntry } from '../system/mountinfo.js';
import { leakReason, type RunningRoots } from '../system/leaks.js';

export { leakReason, type RunningRoots };

export type Verdict = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  check: string;
  verdict: Verdict;
  detail: string;
  fix?: string;
  /**
   * True when the check could not be made (engine unreachable, permission denied, an error
   * answer): the verdict is `fail`, and the doctor exits with "could not check".
   */
  couldNotCheck?: boolean;
  data?: Record<string, unknown>;
}

/** The names the plugin and the runtime wrapper have unless told otherwise (`make install`). */
export const DEFAULT_PLUGIN = 'sharedprop';
export const DEFAULT_RUNTIME = 'sharedprop';

/**
 * What fixes say to restart a driver: `sharedprop plugin restart` for a managed plugin (it waits
 * between disable and enable, which a plain `docker plugin disable && enable` does not).
 */
export interface PluginRef {
  /** The plugin's name, or its reference (`name:tag`) when a managed plugin was found. */
  name: string;
  managed: boolean;
}

export function restartFix(plugin: PluginRef): string {
  return plugin.managed
    ? `sharedprop plugin restart --name ${plugin.name}`
    : plugin.name === DEFAULT_PLUGIN
      ? 'restart `sharedprop serve`'
      : `restart the \`sharedprop serve\` that serves ${plugin.name}`;
}

/** ` --plugin NAME` when NAME is not the default, for commands quoted in fixes. */
export function pluginFlag(plugin: string): string {
  const bare = plugin.replace(/:[^:/]*$/, '');
  return bare === DEFAULT_PLUGIN ? '' : ` --plugin ${bare}`;
}

function engineFix(error: Error): string {
  if (!(error instanceof EngineError)) {
    return 'start dockerd, or point DOCKER_HOST at the engine to check';
  }
  switch (error.kind) {
    case 'unreachable':
      return 'start dockerd, or point DOCKER_HOST at the engine to check';
    case 'permission':
      return 'run sharedprop as root on the engine host (or as a member of the docker group)';
    case 'api':
      return "see dockerd's log for the error";
  }
}

/** A check that could not be made because `error` got in the way: a `fail` that says so. */
export function couldNotCheck(check: string, error: unknown): CheckResult {
  const e = error instanceof Error ? error : new Error(String(error));
  const denied =
    (e as { code?: unknown }).code === 'EACCES' || (e as { code?: unknown }).code === 'EPERM';
  return {
    check,
    verdict: 'fail',
    detail: e instanceof EngineError ? e.message : `could not check: ${e.message}`,
    fix:
      e instanceof EngineError
        ? engineFix(e)
        : denied
          ? 'run doctor as root on the engine host'
          : undefined,
    couldNotCheck: true,
  };
}

export function checkEngine(version: EngineVersion | Error): CheckResult {
  if (version instanceof Error) {
    return {
      check: 'engine',
      verdict: 'fail',
      detail:
        version instanceof EngineError
          ? version.message
          : `cannot reach the Docker engine: ${version.message}`,
      fix: engineFix(version),
      couldNotCheck: true,
    };
  }
  const parts = [`Docker Engine ${version.version ?? '?'} (API ${version.apiVersion ?? '?'})`];
  if (version.containerd) parts.push(`containerd ${version.containerd}`);
  if (version.runc) parts.push(`runc ${version.runc}`);
  const detail = parts.join(', ');
  const data = { engine: version.version, containerd: version.containerd, runc: version.runc };
  if (isOlderEngine(version.version, OLDEST_TESTED_ENGINE)) {
    return {
      check: 'engine',
      verdict: 'warn',
      detail: `${detail}: older than ${OLDEST_TESTED_ENGINE.join('.')}, the oldest engine sharedprop is tested on`,
      fix: 'upgrade Docker Engine to 20.10 or later (tested: 20.10, 26.1, 28.5)',
      data,
    };
  }
  return { check: 'engine', verdict: 'ok', detail, data };
}

/** The oldest engine the end-to-end tier runs on (Debian 12's docker.io). */
const OLDEST_TESTED_ENGINE = [20, 10] as const;

/**
 * True when `version` (e.g. `19.03.15`, `26.1.5+dfsg1`) is older than `floor` (major, minor).
 * A version that cannot be read is not called old.
 */
export function isOlderEngine(
  version: string | undefined,
  floor: readonly [number, number],
): boolean {
  const match = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  if (!match) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major < floor[0] || (major === floor[0] && minor < floor[1]);
}

export interface PluginFacts {
  name: string;
  /** Undefined when no managed plugin of that name is installed. */
  plugin?: { id: string; enabled: boolean; reference: string; version?: string };
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
      fix:
        facts.name === DEFAULT_PLUGIN
          ? 'run `make install`, or start `sharedprop serve` on the host'
          : `run \`make install PLUGIN_NAME=${facts.name}\`, or start \`sharedprop serve --socket /run/docker/plugins/${facts.name}.sock\` on the host`,
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
        ? `${restartFix({ name: facts.plugin.reference, managed: true })}; see dockerd's log for the plugin's output`
        : restartFix({ name: facts.name, managed: false }),
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
  /** The managed plugin's reference, for the fix (default: sharedprop). */
  plugin?: string;
}

/** The mount that holds `path` in `mounts`: the deepest mount point above it (top of a stack). */
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
        fix: `${restartFix({ name: facts.plugin ?? DEFAULT_PLUGIN, managed: true })} (dockerd makes it rshared when it enables the plugin)`,
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

export function checkRuntime(facts: RuntimeFacts, name = DEFAULT_RUNTIME): CheckResult {
  const runtime = facts.runtimes?.[name];
  if (!runtime?.path) {
    return {
      check: 'runtime',
      verdict: 'fail',
      detail: `no runtime named ${name} is registered with this daemon: containers cannot make mounts that other containers see`,
      fix:
        name === DEFAULT_RUNTIME
          ? 'make install-runtime (registers it in daemon.json and reloads dockerd)'
          : `register the wrapper under the name ${name} in daemon.json ("runtimes": {"${name}": {"path": ".../sharedprop-runtime"}}) and reload dockerd (\`make install-runtime\` registers it as ${DEFAULT_RUNTIME})`,
    };
  }
  if (!facts.executable) {
    return {
      check: 'runtime',
      verdict: 'fail',
      detail: `runtime ${name} is registered as ${runtime.path}, which is missing or not executable`,
      fix:
        name === DEFAULT_RUNTIME
          ? 'make install-runtime'
          : `install the wrapper at ${runtime.path}, or point runtime ${name} at it in daemon.json and reload dockerd`,
    };
  }
  const isDefault = facts.defaultRuntime === name ? ' (the default runtime)' : '';
  return {
    check: 'runtime',
    verdict: 'ok',
    detail: `runtime ${name} -> ${runtime.path}${isDefault}`,
  };
}

export interface VersionFacts {
  cli: string;
  /** What the registered runtime says it is (`--version`), when it is a sharedprop runtime. */
  runtime?: string;
  /** The managed plugin's version (docker plugin inspect), when it has one. */
  plugin?: string;
}

/**
 * The CLI, the runtime wrapper and the managed plugin come from one release; a mix (an upgrade
 * of one part only) works as long as the protocol holds, but is not what was tested.
 */
export function checkVersions(facts: VersionFacts): CheckResult {
  const parts = [
    `CLI ${facts.cli}`,
    ...(facts.runtime ? [`runtime ${facts.runtime}`] : []),
    ...(facts.plugin ? [`plugin ${facts.plugin}`] : []),
  ];
  const versions = new Set([facts.cli, facts.runtime, facts.plugin].filter(Boolean));
  if (versions.size <= 1) {
    return { check: 'versions', verdict: 'ok', detail: parts.join(', ') };
  }
  return {
    check: 'versions',
    verdict: 'warn',
    detail: `the parts of sharedprop are of different versions: ${parts.join(', ')}`,
    fix: 'bring them to one release: `sharedprop upgrade REGISTRY/sharedprop:VERSION` for the plugin, `sharedprop install` (or `make install`) of that release for the runtime and the CLI',
  };
}
