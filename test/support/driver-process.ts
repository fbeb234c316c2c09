/** Runs `sharedprop serve` as a real process (as a user would), and talks to it over its socket. */
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unmountEverythingUnder } from './host-mounts.js';
import { PluginClient } from './plugin-client.js';
import { waitFor } from './wait-for.js';

export const CLI = path.resolve('dist/cli.js');

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export class DriverProcess {
  readonly socket: string;
  readonly dataRoot: string;
  readonly mountRoot: string;
  readonly logFile: string;
  /** Stands in for /proc/sys/kernel/random/boot_id: write another id to simulate a reboot. */
  readonly bootIdFile: string;
  private child?: ResultPromise;
  private client: PluginClient;

  /** Added to the driver's environment (SHAREDPROP_CRASH_AT, LC_ALL, ...); change it between launches. */
  env: Record<string, string> = {};

  /** Node's own flags for the driver (e.g. the managed plugin's heap limits). */
  nodeFlags: string[] = [];

  /**
   * What runs `serve` instead of this Node with dist/cli.js: e.g. a release's standalone
   * executable (then `nodeFlags` do not apply).
   */
  command?: readonly string[];

  /** More arguments for `serve`. */
  serveArgs: readonly string[] = [];

  private constructor(
    readonly base: string,
    socket: string | undefined,
    private readonly logLevel: string,
    dataRoot?: string,
    private readonly explicitMountRoot?: string,
  ) {
    this.socket = socket ?? path.join(base, 'sp.sock');
    this.dataRoot = dataRoot ?? path.join(base, 'data');
    this.mountRoot = explicitMountRoot ?? path.join(this.dataRoot, 'mounts');
    this.logFile = path.join(base, 'driver.log');
    this.bootIdFile = path.join(base, 'boot_id');
    this.client = new PluginClient(this.socket);
  }

  /**
   * `socket` defaults to one in the driver's own directory; a socket in /run/docker/plugins makes
   * it a (legacy, v1) plugin that dockerd finds by the socket's name.
   */
  static async start(
    options: {
      socket?: string;
      logLevel?: string;
      env?: Record<string, string>;
      /** Under the driver's own directory (default `data`); `prepare` may mount something there. */
      dataRoot?: string;
      prepare?: (driver: DriverProcess) => Promise<void>;
      /** Where the driver's own directory is made (default: the system's temporary directory). */
      parentDir?: string;
      /** Node's own flags for the driver, before the script. */
      nodeFlags?: string[];
      /** What runs `serve` (default: this Node with dist/cli.js). */
      command?: readonly string[];
      /** `--mount-root`, an absolute path (default: none given, the driver's own default). */
      mountRoot?: string;
      /** More arguments for `serve` (e.g. `--reserved-path <dir>`). */
      serveArgs?: readonly string[];
    } = {},
  ): Promise<DriverProcess> {
    const base = await mkdtemp(path.join(options.parentDir ?? tmpdir(), 'sharedprop-it-'));
    const dataRoot = options.dataRoot ? path.join(base, options.dataRoot) : undefined;
    const driver = new DriverProcess(
      base,
      options.socket,
      options.logLevel ?? 'debug',
      dataRoot,
      options.mountRoot,
    );
    driver.env = { ...options.env };
    driver.nodeFlags = [...(options.nodeFlags ?? [])];
    driver.command = options.command;
    driver.serveArgs = [...(options.serveArgs ?? [])];
    await writeFile(driver.bootIdFile, 'boot-1\n');
    try {
      await options.prepare?.(driver);
      await driver.launch();
    } catch (error) {
      await driver.destroy();
      throw error;
    }
    return driver;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async launch(): Promise<void> {
    const [command, ...words] = this.command ?? [process.execPath, ...this.nodeFlags, CLI];
    this.child = execa(
      command as string,
      [
        ...words,
        'serve',
        '--socket',
        this.socket,
        '--data-root',
        this.dataRoot,
        ...(this.explicitMountRoot ? ['--mount-root', this.explicitMountRoot] : []),
        ...this.serveArgs,
      ],
      {
        stdout: { file: this.logFile, append: true },
        stderr: { file: this.logFile, append: true },
        reject: false,
        env: { LOG_LEVEL: this.logLevel, SHAREDPROP_BOOT_ID_FILE: this.bootIdFile, ...this.env },
      },
    );
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const answer = await this.call('/Plugin.Activate', {});
        if (answer.status === 200) return;
      } catch {
        // not listening yet
      }
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`driver did not start:\n${await this.log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends a signal and waits for the process to end; returns how long that took (ms). */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<{ ms: number; exitCode?: number; signal?: string }> {
    const child = this.child;
    if (!child) return { ms: 0 };
    this.client.close();
    this.client = new PluginClient(this.socket);
    const started = Date.now();
    child.kill(signal);
    const result = await child;
    this.child = undefined;
    return { ms: Date.now() - started, exitCode: result.exitCode, signal: result.signal };
  }

  async restart(): Promise<void> {
    await this.launch();
  }

  /**
   * After the driver was told to kill itself at a crash point (SHAREDPROP_CRASH_AT): waits until
   * it is dead (a zombie counts), then starts it again without the crash point.
   */
  async restartAfterCrash(): Promise<void> {
    const pid = this.pid;
    await waitFor('the driver to die', async () => pid !== undefined && !(await isAlive(pid)));
    await this.stop('SIGKILL');
    this.env = {};
    await this.restart();
  }

  log(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }

  async call(endpoint: string, body: unknown, raw?: string): Promise<Answer> {
    const answer = await this.client.request(endpoint, raw ?? JSON.stringify(body));
    try {
      return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown> };
    } catch {
      throw new Error(`not JSON (${answer.status}): ${answer.text}`);
    }
  }

  /** Calls an endpoint and fails the test with the driver's Err when it is not a 200. */
  async ok(endpoint: string, body: unknown): Promise<Record<string, unknown>> {
    const answer = await this.call(endpoint, body);
    if (answer.status !== 200)
      throw new Error(
        `${endpoint} ${JSON.stringify(body)}: ${answer.status} ${JSON.stringify(answer.body)}`,
      );
    return answer.body;
  }

  /**
   * Stops the driver, detaches every mount under its directory, and deletes it and its socket;
   * a directory whose mounts will not detach is kept, and the failure reported.
   */
  async destroy(): Promise<void> {
    if (this.child) await this.stop('SIGKILL');
    await rm(this.socket, { force: true });
    const stuck = await unmountEverythingUnder(this.base);
    if (stuck.length > 0) {
      // A recursive delete would go through these into whatever they show: keep the directory.
      throw new Error(
        `mounts under ${this.base} would not detach; left in place: ${stuck.join(', ')}`,
      );
    }
    await rm(this.base, { recursive: true, force: true });
  }
}

export async function hostMountinfo(pid: number | 'self' = 'self'): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/mountinfo`, 'utf8');
  return text.split('\n').filter(Boolean);
}

/** Mount points (unescaped) of the host's mount table at exactly `target`. */
export async function countMountsAt(
  target: string,
  pid: number | 'self' = 'self',
): Promise<number> {
  const { parseMountinfo } = await import('../../src/system/mountinfo.js');
  const entries = parseMountinfo((await hostMountinfo(pid)).join('\n'));
  return entries.filter((e) => e.mountPoint === target).length;
}

/** Whether `pid` runs: a process that ended but is not yet reaped (Z) does not. */
async function isAlive(pid: number): Promise<boolean> {
  try {
    const state = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(state);
  } catch {
    return false;
  }
}
