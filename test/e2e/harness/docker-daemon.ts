/**
 * A throwaway dockerd of the test run's own: its own data root, exec root, socket, pidfile,
 * config file, and its own containerd (never the host's: dockerd 20.10 uses a running system
 * containerd when given none), all under two fresh directories in /tmp (daemon-layout.ts). The
 * runtime wrapper's configuration file is a private path too, never the host's /etc/sharedprop.
 *
 * containerd and dockerd run in a mount namespace of their own, where a directory of this run is
 * mounted over /run/docker/plugins (mount-namespace.ts); every mount made under the run's
 * directories in there shows on the host too. stop() always removes everything it made, whatever
 * state the tests left it in.
 */
import Docker from 'dockerode';
import { appendFileSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { DaemonLayout } from './daemon-layout.js';
import { assertPrivateDockerHost, assertRoot } from './guard.js';
import {
  endNamespaceHolder,
  holderReady,
  nsenterPrefix,
  shareDirectories,
  spawnNamespaceHolder,
} from './mount-namespace.js';
import { recordOwner, sweepAbortedRuns } from './sweep.js';
import { unmountEverythingUnder } from '../../support/host-mounts.js';
import {
  processTable,
  readProcess,
  settlesWithin,
  signalAll,
  sleep,
  treesOf,
  waitUntilGone,
  type ProcessInfo,
} from './proc.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface DaemonOptions {
  /** Storage drivers to try in order: the first one dockerd starts with is kept. */
  storageDrivers?: string[];
  /** How long dockerd gets to answer /_ping after it starts. */
  readyTimeoutMs?: number;
  /** stop() copies dockerd's log (which holds the plugin's output) here before deleting it. */
  keepLogAs?: string;
  /**
   * A command that runs dockerd, e.g. `['unshare', '-m', '--propagation', 'slave']` for a daemon
   * in a slave mount namespace, as systemd's MountFlags=slave makes. It must exec dockerd.
   */
  wrapCommand?: string[];
}

export class DockerDaemon extends DaemonLayout {
  readonly client: Docker;
  private child?: ResultPromise;
  private childInfo?: ProcessInfo;
  private containerd?: ResultPromise;
  private holder?: ResultPromise;
  private storage?: string;
  private wrapCommand: string[] = [];

  private constructor(
    base: string,
    shortBase: string,
    private readonly keepLogAs?: string,
  ) {
    super(base, shortBase);
    assertPrivateDockerHost(this.dockerHost);
    this.client = new Docker({ socketPath: this.socketPath });
  }

  /** Starts a daemon; on failure everything made so far is removed before the error is thrown. */
  static async start(options: DaemonOptions = {}): Promise<DockerDaemon> {
    assertRoot();
    for (const swept of await sweepAbortedRuns()) {
      console.warn(`e2e: removed the leftovers of an aborted run: ${swept}`);
    }
    const base = await mkdtemp('/tmp/sharedprop-e2e-');
    const shortBase = await mkdtemp('/tmp/spe-');
    await recordOwner(base, shortBase);
    const daemon = new DockerDaemon(base, shortBase, options.keepLogAs);
    try {
      await daemon.prepare();
      daemon.wrapCommand = options.wrapCommand ?? [];
      await daemon.enterNamespace(options.readyTimeoutMs ?? 60_000);
      await daemon.launchFirstWorking(
        options.storageDrivers ?? ['overlay2', 'vfs'],
        options.readyTimeoutMs ?? 60_000,
      );
      return daemon;
    } catch (error) {
      await daemon.stop().catch((cleanup: unknown) => {
        console.error(`e2e: clean-up after a failed start also failed: ${String(cleanup)}`);
      });
      throw error;
    }
  }

  /** The storage driver dockerd runs with. */
  get storageDriver(): string {
    return this.storage ?? 'none';
  }

  /** True while the dockerd this object started has not exited. */
  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** The dockerd process (pid and start time), while it runs. */
  get process(): ProcessInfo | undefined {
    return this.childInfo;
  }

  /**
   * The command prefix that runs a command in this daemon's mount namespace, where
   * /run/docker/plugins is the daemon's own (the sharedprop CLI finds plugin sockets there).
   */
  inNamespace(): string[] {
    return nsenterPrefix(this.holder);
  }

  /** Runs the docker CLI against this daemon; never throws for a non-zero exit. */
  async docker(args: string[], options: { timeoutMs?: number } = {}): Promise<CommandResult> {
    const result = await execa('docker', args, {
      env: this.cliEnv(),
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: options.timeoutMs ?? 120_000,
    });
    return {
      stdout: String(result.stdout ?? '').trim(),
      stderr: String(result.stderr ?? '').trim(),
      exitCode: result.exitCode ?? (result.timedOut ? 124 : 1),
    };
  }

  /** Runs the docker CLI and returns its stdout; throws with its stderr on failure. */
  async dockerOk(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
    const result = await this.docker(args, options);
    if (result.exitCode !== 0) {
      throw new Error(`docker ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
    }
    return result.stdout;
  }

  /** Stops dockerd (SIGTERM) and starts it again with the same directories and options. */
  async restart(readyTimeoutMs = 60_000): Promise<void> {
    await this.terminate();
    await this.launch(this.storageDriver, readyTimeoutMs);
  }

  async logTail(lines = 60): Promise<string> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  }

  /**
   * Processes of this run: dockerd and its descendants, and every process whose command line
   * names this run's directories (containerd shims are reparented to init) with theirs.
   */
  async ownedProcesses(): Promise<ProcessInfo[]> {
    const table = await processTable();
    const dockerd = this.childInfo;
    const mentionsUs = (info: ProcessInfo) =>
      info.cmdline.some((arg) => arg.includes(this.shortBase) || arg.includes(this.base));
    return treesOf(
      table,
      (info) =>
        (dockerd !== undefined &&
          info.pid === dockerd.pid &&
          info.startTime === dockerd.startTime) ||
        mentionsUs(info),
    ).filter((info) => info.pid !== process.pid);
  }

  /**
   * Removes containers, stops dockerd (SIGTERM, then SIGKILL), ends every process of this run
   * that is left, detaches every mount under its directories (deepest first), and deletes them.
   * Each step runs even when an earlier one failed; the failures are reported together.
   */
  async stop(): Promise<void> {
    const problems: string[] = [];
    const step = async (what: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (error) {
        problems.push(`${what}: ${(error as Error).message}`);
      }
    };
    if (this.running) await step('removing containers', () => this.removeAllContainers());
    let owned: ProcessInfo[] = [];
    await step('listing processes', async () => {
      owned = await this.ownedProcesses();
    });
    await step('stopping dockerd', () => this.terminate());
    await step('stopping containerd', () => this.stopContainerd());
    await step('ending leftover processes', async () => {
      const left = [...owned, ...(await this.ownedProcesses())];
      await signalAll(left, 'SIGKILL');
      if (!(await waitUntilGone(left, 10_000))) throw new Error('some did not exit');
    });
    if (this.keepLogAs) {
      const keep = this.keepLogAs;
      await step(`keeping the log as ${keep}`, async () => {
        await mkdir(path.dirname(keep), { recursive: true });
        await copyFile(this.logFile, keep);
      });
    }
    await step('ending the mount namespace', () => this.leaveNamespace());
    for (const dir of [this.base, this.shortBase]) {
      await step(`cleaning ${dir}`, async () => {
        const stuck = await unmountEverythingUnder(dir);
        if (stuck.length > 0) {
          throw new Error(`still mounted, so not deleted: ${stuck.join(', ')}`);
        }
        await rm(dir, { recursive: true, force: true });
      });
    }
    if (problems.length > 0) throw new Error(`e2e clean-up: ${problems.join('; ')}`);
  }

  /**
   * Makes this run's two directories shared mounts (so that what is mounted under them in the
   * daemon's namespace shows on the host), then starts the process that holds that namespace.
   */
  private async enterNamespace(readyTimeoutMs: number): Promise<void> {
    await mkdir(this.pluginSocketDir, { recursive: true, mode: 0o700 });
    await shareDirectories([this.base, this.shortBase]);
    this.holder = spawnNamespaceHolder(this.pluginSocketDir);
    await holderReady(this.holder, readyTimeoutMs);
  }

  /** Ends the daemon's mount namespace, when it has one. */
  private async leaveNamespace(): Promise<void> {
    if (!this.holder) return;
    await endNamespaceHolder(this.holder);
    this.holder = undefined;
  }

  /**
   * A containerd of this daemon's own (it outlives dockerd restarts, as a system one does, so
   * that live-restore works), with the CRI plugin off and every path under this run's
   * directories. The runtime wrapper inherits its environment through the shims.
   */
  private async startContainerd(readyTimeoutMs: number): Promise<void> {
    const config = await this.writeContainerdConfig();
    const child = this.spawnLogged('containerd', ['--config', config]);
    this.containerd = child;
    const deadline = Date.now() + readyTimeoutMs;
    while (!(await canConnect(this.containerdSocket))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`containerd exited while starting:\n${await this.logTail(15)}`);
      }
      if (Date.now() > deadline)
        throw new Error(`containerd did not listen in ${readyTimeoutMs} ms`);
      await sleep(50);
    }
  }

  /**
   * Starts one of this run's daemons, its output appended to the run's log, with this run's
   * environment only (and the private runtime configuration). Its caller decides when SIGTERM has
   * had long enough (plugins get 10 s to stop), so execa never kills it by itself.
   */
  private spawnLogged(command: string, args: string[]): ResultPromise {
    // Not async: awaiting a subprocess waits for it to end. The log line is written first.
    appendFileSync(this.logFile, `--- ${command} ${args.join(' ')}\n`);
    const [run, ...prefix] = [...this.inNamespace(), command];
    return execa(run as string, [...prefix, ...args], {
      stdin: 'ignore',
      stdout: { file: this.logFile, append: true },
      stderr: { file: this.logFile, append: true },
      reject: false,
      env: { ...this.cliEnv(), SHAREDPROP_RUNTIME_CONFIG: this.runtimeConfig },
      extendEnv: false,
      forceKillAfterDelay: false,
    });
  }

  private async stopContainerd(): Promise<void> {
    const child = this.containerd;
    if (!child) return;
    child.kill('SIGTERM');
    if (!(await settlesWithin(child, 20_000))) {
      child.kill('SIGKILL');
      await child;
    }
    this.containerd = undefined;
  }

  private async launchFirstWorking(drivers: string[], readyTimeoutMs: number): Promise<void> {
    await this.startContainerd(readyTimeoutMs);
    const failures: string[] = [];
    for (const driver of drivers) {
      try {
        await this.launch(driver, readyTimeoutMs);
        return;
      } catch (error) {
        failures.push(`${driver}: ${(error as Error).message}`);
        await this.terminate();
        await unmountEverythingUnder(this.dataRoot);
        await rm(this.dataRoot, { recursive: true, force: true });
      }
    }
    throw new Error(`dockerd did not start with any storage driver:\n${failures.join('\n')}`);
  }

  private async launch(driver: string, readyTimeoutMs: number): Promise<void> {
    const args = this.dockerdArgs(driver);
    const [command, ...prefix] = [...this.wrapCommand, 'dockerd'];
    const child = this.spawnLogged(command as string, [...prefix, ...args]);
    this.child = child;
    this.storage = driver;
    this.childInfo = child.pid === undefined ? undefined : await readProcess(child.pid);
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = undefined;
        this.childInfo = undefined;
        throw new Error(`dockerd exited while starting:\n${await this.logTail(15)}`);
      }
      try {
        await this.client.ping();
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`dockerd did not answer /_ping in ${readyTimeoutMs} ms`);
      }
      await sleep(100);
    }
  }

  private async removeAllContainers(): Promise<void> {
    const ids = (await this.dockerOk(['ps', '-aq'])).split('\n').filter(Boolean);
    if (ids.length > 0) await this.dockerOk(['rm', '-f', ...ids], { timeoutMs: 60_000 });
  }

  /** SIGTERM to dockerd, SIGKILL after a minute; waits for it to exit. */
  private async terminate(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    if (!(await settlesWithin(child, 60_000))) {
      child.kill('SIGKILL');
      await child;
    }
    this.child = undefined;
    this.childInfo = undefined;
  }
}

/** True when something accepts connections on the Unix socket `socketPath`. */
function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
