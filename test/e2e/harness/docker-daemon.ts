/**
 * A throwaway dockerd of the test run's own: its own data root, exec root, socket, pidfile,
 * config file, and its own containerd (never the host's: dockerd 20.10 uses a running system
 * containerd when given none), all under two fresh directories in /tmp. The runtime wrapper's
 * configuration file is a private path too, never the host's /etc/sharedprop.
 *
 * dockerd 20.10 keeps plugin sockets in /run/docker/plugins whatever its exec root, so containerd
 * and dockerd run in a mount namespace of their own, where a directory of this run is mounted
 * over /run/docker/plugins (`pluginSocketDir` on the host). The run's two directories are shared
 * mounts made before that namespace, so every mount made under them in there (volumes, plugins,
 * containers) shows on the host too, as it would with dockerd in the host's namespace; nothing
 * else of the host changes. stop() always removes everything it made, whatever state the tests
 * left it in.
 */
import Docker from 'dockerode';
import { appendFileSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { assertPrivateDockerHost, assertRoot } from './guard.js';
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

/** Where dockerd 20.10 looks for plugin sockets and puts managed plugins' (not under --exec-root). */
const PLUGIN_SOCKET_ROOT = '/run/docker/plugins';

/**
 * The process that holds the daemon's mount namespace (run under `unshare --mount
 * --propagation unchanged`): it mounts this run's directory over /run/docker/plugins there,
 * without it propagating to the host, says `ready`, and waits. Its argv names the directory, so
 * the clean-up (and the sweep of aborted runs) finds it.
 */
const NAMESPACE_HOLDER = [
  "const { execFileSync } = require('node:child_process');",
  "const { mkdirSync } = require('node:fs');",
  'const [dir, root] = process.argv.slice(1);',
  'mkdirSync(root, { recursive: true });',
  // The mount that holds the socket root (/ or /run) is made private in here first, so that
  // mounting over the socket root reaches no peer group of the host's.
  "const holder = execFileSync('findmnt', ['-n', '-o', 'TARGET', '-T', root]).toString().trim();",
  "execFileSync('mount', ['--make-private', holder]);",
  "execFileSync('mount', ['--bind', dir, root]);",
  "process.stdout.write('ready\\n');",
  'setInterval(() => undefined, 1 << 30);',
].join('\n');

/** Environment variables of the docker CLI that could point it somewhere else. */
const FOREIGN_CLI_ENV = ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH'];

export class DockerDaemon {
  /** Everything but the exec root: data root, plugin data, logs, config. */
  readonly base: string;
  /** Short, for the exec root and the API socket: Unix socket paths must fit in 107 bytes. */
  readonly shortBase: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socketPath: string;
  readonly dockerHost: string;
  readonly pidFile: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly namespace: string;
  readonly client: Docker;
  private readonly cliConfigDir: string;
  private child?: ResultPromise;
  private childInfo?: ProcessInfo;
  private containerd?: ResultPromise;
  /** The private containerd's socket (under the short base: socket paths are short). */
  readonly containerdSocket: string;
  /** SHAREDPROP_RUNTIME_CONFIG for the runtime wrapper this daemon's containers run under. */
  readonly runtimeConfig: string;
  /** On the host, the directory that dockerd sees as /run/docker/plugins. */
  readonly pluginSocketDir: string;
  private holder?: ResultPromise;
  private storage?: string;
  private wrapCommand: string[] = [];

  private constructor(
    base: string,
    shortBase: string,
    private readonly keepLogAs?: string,
  ) {
    this.base = base;
    this.shortBase = shortBase;
    this.dataRoot = path.join(base, 'docker');
    this.execRoot = path.join(shortBase, 'x');
    this.socketPath = path.join(shortBase, 'docker.sock');
    this.dockerHost = `unix://${this.socketPath}`;
    this.pidFile = path.join(base, 'dockerd.pid');
    this.configFile = path.join(base, 'daemon.json');
    this.logFile = path.join(base, 'dockerd.log');
    this.cliConfigDir = path.join(base, 'cli-config');
    this.containerdSocket = path.join(shortBase, 'containerd.sock');
    this.runtimeConfig = path.join(base, 'sharedprop-runtime.json');
    this.pluginSocketDir = path.join(shortBase, 'p');
    this.namespace = `sharedprop-e2e-${randomBytes(4).toString('hex')}`;
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
    const pid = this.holder?.pid;
    if (pid === undefined) throw new Error('the daemon has no mount namespace (not started)');
    return ['nsenter', `--target=${pid}`, '--mount', '--'];
  }

  /** What the docker CLI (and make, and the install scripts) get: this daemon and no other. */
  cliEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !FOREIGN_CLI_ENV.includes(key)) env[key] = value;
    }
    return { ...env, DOCKER_HOST: this.dockerHost, DOCKER_CONFIG: this.cliConfigDir };
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
    for (const dir of [this.base, this.shortBase]) {
      // Private before shared: on a host whose / is shared (systemd's, or an engine root of
      // test/engines), the self-bind joins /'s peer group, and every mount made under it would
      // come back a second time under the bind, hidden in /'s copy of the directory.
      await execa('mount', ['--bind', dir, dir]);
      await execa('mount', ['--make-private', dir]);
      await execa('mount', ['--make-rshared', dir]);
    }
    const holder = execa(
      'unshare',
      [
        '--mount',
        '--propagation',
        'unchanged',
        '--',
        process.execPath,
        '-e',
        NAMESPACE_HOLDER,
        this.pluginSocketDir,
        PLUGIN_SOCKET_ROOT,
      ],
      { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', reject: false },
    );
    this.holder = holder;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the namespace holder was not ready in ${readyTimeoutMs} ms`)),
        readyTimeoutMs,
      );
      holder.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void holder.then((result) => {
        clearTimeout(timer);
        reject(new Error(`the namespace holder exited: ${String(result.stderr)}`));
      });
    });
  }

  /** Ends the holder (the namespace goes with its last process). */
  private async leaveNamespace(): Promise<void> {
    const holder = this.holder;
    if (!holder) return;
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    await holder;
    this.holder = undefined;
  }

  private async prepare(): Promise<void> {
    await mkdir(this.execRoot, { recursive: true });
    await mkdir(this.cliConfigDir, { recursive: true });
    await writeFile(path.join(this.cliConfigDir, 'config.json'), '{}\n');
    const config = { 'log-level': 'info', 'live-restore': false, 'userland-proxy': false };
    await writeFile(this.configFile, JSON.stringify(config, null, 2) + '\n');
  }

  /**
   * A containerd of this daemon's own (it outlives dockerd restarts, as a system one does, so
   * that live-restore works), with the CRI plugin off and every path under this run's
   * directories. The runtime wrapper inherits its environment through the shims.
   */
  private async startContainerd(readyTimeoutMs: number): Promise<void> {
    const config = path.join(this.base, 'containerd.toml');
    await writeFile(
      config,
      [
        'version = 2',
        `root = ${JSON.stringify(path.join(this.base, 'containerd'))}`,
        `state = ${JSON.stringify(path.join(this.shortBase, 'c'))}`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = ${JSON.stringify(this.containerdSocket)}`,
        '[ttrpc]',
        `  address = ${JSON.stringify(`${this.containerdSocket}.ttrpc`)}`,
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
        '',
      ].join('\n'),
    );
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
    const args = [
      '--data-root',
      this.dataRoot,
      '--exec-root',
      this.execRoot,
      '-H',
      this.dockerHost,
      '--pidfile',
      this.pidFile,
      '--config-file',
      this.configFile,
      '--containerd',
      this.containerdSocket,
      '--containerd-namespace',
      this.namespace,
      '--containerd-plugins-namespace',
      `${this.namespace}-plugins`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--ip6tables=false',
      '--storage-driver',
      driver,
    ];
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
