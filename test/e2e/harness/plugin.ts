/**
 * The sharedprop managed plugin on a test daemon: installed with the very command users run,
 * located (its id, its propagated mount on the host, its process), and waited for.
 */
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DockerDaemon } from './docker-daemon.js';
import { MAKE_NO_REBUILD } from './engine.js';
import { ancestorsOf, processTable, sleep, type ProcessInfo } from './proc.js';

export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const PLUGIN_NAME = 'sharedprop';

/**
 * The make target the tests install with: the one place to change when the runtime wrapper
 * joins in (`install` = install-plugin + install-runtime). The environment below already points
 * the runtime's daemon.json, pidfile and install directory at the test daemon.
 */
export const INSTALL_TARGET = 'install';

export interface PluginState {
  id: string;
  enabled: boolean;
  /** Where the plugin's mount points are, inside the plugin (config.json's propagatedMount). */
  propagatedMount: string;
  /** The same directory as the host sees it. */
  hostPropagatedMount: string;
}

/**
 * Where the tests' `make install` puts the runtime wrapper and the `sharedprop` command (BIN_DIR):
 * under the daemon's directory, never the host's /usr/local/bin.
 */
export function installBinDir(daemon: DockerDaemon): string {
  return path.join(daemon.base, 'bin');
}

export async function installPlugin(daemon: DockerDaemon, dataDir: string): Promise<string> {
  const result = await execa(
    'make',
    ['--no-print-directory', ...MAKE_NO_REBUILD, '-C', REPO_ROOT, INSTALL_TARGET],
    {
      env: {
        ...daemon.cliEnv(),
        PLUGIN_NAME,
        DATA_DIR: dataDir,
        DAEMON_JSON: daemon.configFile,
        DOCKERD_PIDFILE: daemon.pidFile,
        RUNTIME_INSTALL_DIR: installBinDir(daemon),
        BIN_DIR: installBinDir(daemon),
      },
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      all: true,
      // Less than the 600 s that beforeAll gives E2eEnvironment.start, so that a slow install fails
      // inside start(), which cleans up, and never leaves jest to abandon a running dockerd.
      timeout: 450_000,
    },
  );
  const output = String(result.all ?? '');
  if (result.exitCode !== 0) {
    throw new Error(
      `make ${INSTALL_TARGET} exited ${result.exitCode}:\n${output.slice(-4000)}\n--- dockerd:\n${await daemon.logTail(30)}`,
    );
  }
  return output;
}

export async function pluginState(daemon: DockerDaemon, name = PLUGIN_NAME): Promise<PluginState> {
  const [plugin] = JSON.parse(await daemon.dockerOk(['plugin', 'inspect', name])) as Array<{
    Id: string;
    Enabled: boolean;
    Config: { PropagatedMount: string };
  }>;
  if (!plugin) throw new Error(`docker plugin inspect ${name} returned nothing`);
  return {
    id: plugin.Id,
    enabled: plugin.Enabled,
    propagatedMount: plugin.Config.PropagatedMount,
    hostPropagatedMount: path.join(daemon.dataRoot, 'plugins', plugin.Id, 'propagated-mount'),
  };
}

/**
 * The host path of a volume's mount point. dockerd 20.10 reports a managed plugin's Mountpoint
 * as the plugin sees it (/mnt/volumes/NAME) in `docker volume inspect`; the host has it under
 * <data-root>/plugins/<id>/propagated-mount. A daemon that already reports the host path is
 * taken at its word.
 */
export async function volumeHostPath(daemon: DockerDaemon, volume: string): Promise<string> {
  const mountpoint = (
    await daemon.dockerOk(['volume', 'inspect', '--format', '{{.Mountpoint}}', volume])
  ).trim();
  const plugin = await pluginState(daemon);
  const inside = plugin.propagatedMount.replace(/\/+$/, '');
  if (mountpoint === inside || mountpoint.startsWith(`${inside}/`)) {
    return path.join(plugin.hostPropagatedMount, mountpoint.slice(inside.length));
  }
  return mountpoint;
}

/**
 * The plugin's driver process: `dist/cli.js serve`, whose parent chain leads to this daemon
 * (dockerd itself, or a shim of this daemon's own containerd). Processes of other
 * runs, or a driver run by hand, never match.
 */
export async function findPluginProcesses(daemon: DockerDaemon): Promise<ProcessInfo[]> {
  const table = await processTable();
  const dockerd = daemon.process;
  const ours = (info: ProcessInfo) =>
    (dockerd !== undefined && info.pid === dockerd.pid && info.startTime === dockerd.startTime) ||
    info.cmdline.some(
      (arg) => arg.startsWith(daemon.execRoot) || arg.startsWith(daemon.containerdSocket),
    );
  const serving = [...table.values()].filter((info) => {
    const text = info.cmdline.join(' ');
    return text.includes('dist/cli.js serve') && ancestorsOf(table, info.pid).some(ours);
  });
  // A child the plugin forks (mount(8), umount(8)) shows its parent's command line until it
  // execs: the plugin is the one whose parent is no such process.
  const pids = new Set(serving.map((info) => info.pid));
  return serving.filter((info) => !pids.has(info.ppid));
}

export async function pluginPid(daemon: DockerDaemon): Promise<number | undefined> {
  const found = await findPluginProcesses(daemon);
  if (found.length > 1) {
    throw new Error(`more than one plugin process: ${found.map((p) => p.pid).join(', ')}`);
  }
  return found[0]?.pid;
}

/**
 * Waits until the plugin is enabled, its process runs (another one than `notPid`, when given),
 * and dockerd gets an answer from it.
 */
export async function waitForPlugin(
  daemon: DockerDaemon,
  options: { notPid?: number; timeoutMs?: number } = {},
): Promise<number> {
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  let last = '';
  for (;;) {
    try {
      const state = await pluginState(daemon);
      const pid = await pluginPid(daemon);
      if (state.enabled && pid !== undefined && pid !== options.notPid) {
        const ls = await daemon.docker(['volume', 'ls']);
        if (ls.exitCode === 0) return pid;
        last = ls.stderr;
      } else {
        last = `enabled=${state.enabled} pid=${pid ?? 'none'}`;
      }
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`the plugin did not come up: ${last}\n${await daemon.logTail(30)}`);
    }
    await sleep(250);
  }
}
