/**
 * Where everything of one throwaway dockerd lives (see docker-daemon.ts): its directories, socket,
 * pidfile and config files under the run's two directories in /tmp, and what is made from them:
 * daemon.json, the docker CLI's own config, containerd's config, dockerd's arguments, and the
 * environment the docker CLI gets.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Environment variables of the docker CLI that could point it somewhere else. */
const FOREIGN_CLI_ENV = ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH'];

export class DaemonLayout {
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
  private readonly cliConfigDir: string;
  /** The private containerd's socket (under the short base: socket paths are short). */
  readonly containerdSocket: string;
  /** SHAREDPROP_RUNTIME_CONFIG for the runtime wrapper this daemon's containers run under. */
  readonly runtimeConfig: string;
  /** On the host, the directory that dockerd sees as /run/docker/plugins. */
  readonly pluginSocketDir: string;

  protected constructor(base: string, shortBase: string) {
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
  }

  /** What the docker CLI (and make, and the install scripts) get: this daemon and no other. */
  cliEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !FOREIGN_CLI_ENV.includes(key)) env[key] = value;
    }
    return { ...env, DOCKER_HOST: this.dockerHost, DOCKER_CONFIG: this.cliConfigDir };
  }

  /** Makes the exec root, an empty docker CLI config, and daemon.json. */
  protected async prepare(): Promise<void> {
    await mkdir(this.execRoot, { recursive: true });
    await mkdir(this.cliConfigDir, { recursive: true });
    await writeFile(path.join(this.cliConfigDir, 'config.json'), '{}\n');
    const config = { 'log-level': 'info', 'live-restore': false, 'userland-proxy': false };
    await writeFile(this.configFile, JSON.stringify(config, null, 2) + '\n');
  }

  /**
   * Writes the private containerd's config, with the CRI plugin off and every path under this
   * run's directories; returns its path.
   */
  protected async writeContainerdConfig(): Promise<string> {
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
    return config;
  }

  /** dockerd's arguments: this run's paths, its containerd, no networking of its own. */
  protected dockerdArgs(driver: string): string[] {
    return [
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
  }
}
