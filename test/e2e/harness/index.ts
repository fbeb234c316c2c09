/**
 * The end-to-end environment: a private dockerd, a busybox image, and the sharedprop plugin
 * installed the way users install it. One per test file:
 *
 *   let env: E2eEnvironment;
 *   beforeAll(async () => { env = await E2eEnvironment.start({ name: 'my-scenarios' }); }, 600_000);
 *   afterAll(() => env?.stop(), 600_000);
 */
import type Docker from 'dockerode';
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MountEntry } from '../../../src/system/mountinfo.js';
import { buildBusyboxImage } from './busybox-image.js';
import { DockerDaemon, type CommandResult, type DaemonOptions } from './docker-daemon.js';
import { hostMountsAt, hostMountsWithin } from '../../support/host-mounts.js';
import { sleep } from './proc.js';
import {
  PLUGIN_NAME,
  REPO_ROOT,
  installPlugin,
  pluginPid,
  pluginState,
  volumeHostPath,
  waitForPlugin,
  type PluginState,
} from './plugin.js';

export { BUSYBOX_IMAGE } from './busybox-image.js';
export { DockerDaemon, type CommandResult } from './docker-daemon.js';
export {
  hostMountTable,
  hostPathOfRoot,
  hostMountsAt,
  hostMountsWithin,
  mountTmpfs,
  unmount,
} from '../../support/host-mounts.js';
export { INSTALL_TARGET, PLUGIN_NAME, REPO_ROOT, installBinDir } from './plugin.js';
export { ENGINE, MAKE_NO_REBUILD, hasComposeV2, isEngine25OrLater, onEngine } from './engine.js';

/**
 * Runs the sharedprop CLI (`dist/cli.js`) against `daemon`, as a user on its host would: in the
 * daemon's mount namespace (where its /run/docker/plugins is), with DOCKER_HOST set and nothing
 * else of this process's environment. Never throws for a non-zero exit.
 */
export function sharedpropCli(daemon: DockerDaemon, args: string[]) {
  const [command, ...prefix] = [...daemon.inNamespace(), process.execPath];
  return execa(command as string, [...prefix, path.join(REPO_ROOT, 'dist', 'cli.js'), ...args], {
    env: { PATH: process.env.PATH ?? '', DOCKER_HOST: daemon.dockerHost },
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  });
}

export class E2eEnvironment {
  private constructor(
    readonly daemon: DockerDaemon,
    readonly image: string,
    /** The plugin's data directory on the host (DATA_DIR of the install). */
    readonly dataDir: string,
  ) {}

  /**
   * `name` (the test file's, say) keeps dockerd's log, which holds the plugin's output too, as
   * build/e2e-logs/NAME.dockerd.log; the next run of the same file replaces it.
   */
  static async start(options: DaemonOptions & { name?: string } = {}): Promise<E2eEnvironment> {
    const { name, ...daemonOptions } = options;
    const keepLogAs = name
      ? path.join(REPO_ROOT, 'build', 'e2e-logs', `${name}.dockerd.log`)
      : undefined;
    const daemon = await DockerDaemon.start({ keepLogAs, ...daemonOptions });
    try {
      const image = await buildBusyboxImage(daemon);
      const env = new E2eEnvironment(daemon, image, path.join(daemon.base, 'plugin-data'));
      await env.installPlugin();
      return env;
    } catch (error) {
      await daemon.stop().catch((cleanup: unknown) => {
        console.error(`e2e: clean-up after a failed start also failed: ${String(cleanup)}`);
      });
      throw error;
    }
  }

  get dockerHost(): string {
    return this.daemon.dockerHost;
  }

  get client(): Docker {
    return this.daemon.client;
  }

  docker(args: string[], options?: { timeoutMs?: number }): Promise<CommandResult> {
    return this.daemon.docker(args, options);
  }

  dockerOk(args: string[], options?: { timeoutMs?: number }): Promise<string> {
    return this.daemon.dockerOk(args, options);
  }

  /** The sharedprop CLI against this daemon, in its mount namespace (see sharedpropCli). */
  sharedprop(args: string[]) {
    return sharedpropCli(this.daemon, args);
  }

  /** `docker run --rm --network none ARGS... IMAGE COMMAND...` (never privileged). */
  run(args: string[], command: string[]): Promise<CommandResult> {
    return this.docker(['run', '--rm', '--network', 'none', ...args, this.image, ...command]);
  }

  /** Same as run(), and returns stdout; throws with stderr when the container fails. */
  async runOk(args: string[], command: string[]): Promise<string> {
    const result = await this.run(args, command);
    if (result.exitCode !== 0) {
      throw new Error(`container ${command.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
    }
    return result.stdout;
  }

  /** Starts a container detached (by default one that sleeps for an hour); returns its name. */
  async startContainer(
    name: string,
    args: string[],
    command: string[] = ['sleep', '3600'],
  ): Promise<string> {
    await this.dockerOk([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      ...args,
      this.image,
      ...command,
    ]);
    return name;
  }

  /** Runs `make install-plugin` (see INSTALL_TARGET) again, and waits for the plugin. */
  async installPlugin(): Promise<string> {
    const output = await installPlugin(this.daemon, this.dataDir);
    await waitForPlugin(this.daemon);
    return output;
  }

  /**
   * Sets (or, with undefined, removes) `key` in the daemon's config file, then restarts dockerd
   * and waits for the plugin.
   */
  async reconfigure(key: string, value: unknown): Promise<void> {
    const file = this.daemon.configFile;
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    if (value === undefined) delete config[key];
    else config[key] = value;
    await writeFile(file, JSON.stringify(config, null, 2) + '\n');
    await this.restart();
  }

  /** Restarts dockerd with the same directories and waits until the plugin answers again. */
  async restart(): Promise<void> {
    await this.daemon.restart();
    await waitForPlugin(this.daemon);
  }

  /**
   * `docker plugin disable -f`, as an operator who then waits for dockerd. dockerd 20.10 lets
   * `disable` return once the plugin has exited and only then unmounts everything under the
   * plugin's directory (plugin/manager.go, HandleExitEvent's RecursiveUnmount; the same failure
   * showed on 26.1 in CI); an `enable` inside that window has its fresh propagated mount
   * unmounted on the host, and the new plugin's mounts never reach dockerd. This waits until the
   * host shows no mount there, or the same mounts for 2 s (an engine that leaves them in place).
   */
  async disablePlugin(): Promise<void> {
    await this.dockerOk(['plugin', 'disable', '-f', PLUGIN_NAME]);
    const dir = path.dirname((await this.plugin()).hostPropagatedMount);
    const deadline = Date.now() + 30_000;
    let last = '';
    let since = Date.now();
    for (;;) {
      const left = (await hostMountsWithin(dir)).map((e) => e.mountPoint);
      if (left.length === 0) return;
      const now = left.join('\n');
      if (now !== last) [last, since] = [now, Date.now()];
      else if (Date.now() - since >= 2_000) return;
      if (Date.now() > deadline) {
        throw new Error(
          `dockerd kept changing the ${left.length} mounts under ${dir} after the disable`,
        );
      }
      await sleep(50);
    }
  }

  /** The pid of this daemon's plugin process, or undefined when none runs. */
  pluginPid(): Promise<number | undefined> {
    return pluginPid(this.daemon);
  }

  /** Waits for the plugin to be up, with a process other than `notPid` when given. */
  waitForPlugin(options?: { notPid?: number; timeoutMs?: number }): Promise<number> {
    return waitForPlugin(this.daemon, options);
  }

  plugin(): Promise<PluginState> {
    return pluginState(this.daemon);
  }

  volumeHostPath(volume: string): Promise<string> {
    return volumeHostPath(this.daemon, volume);
  }

  /** The host's mounts whose mount point is exactly `target`. */
  hostMountsAt(target: string): Promise<MountEntry[]> {
    return hostMountsAt(target);
  }

  /** The Status document the driver returns for `volume`. */
  async volumeStatus(volume: string): Promise<Record<string, unknown>> {
    const text = await this.dockerOk(['volume', 'inspect', '--format', '{{json .Status}}', volume]);
    return JSON.parse(text) as Record<string, unknown>;
  }

  stop(): Promise<void> {
    return this.daemon.stop();
  }
}
