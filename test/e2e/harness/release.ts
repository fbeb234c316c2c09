/**
 * What the release tests (release-artifacts.test.ts and release.test.ts) share: the two releases
 * `make e2e-releases` builds, a work directory with a PATH that has no Node, a release's
 * standalone CLI run the way a user without Node runs it, and what they look at on the daemon.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { DockerDaemon } from './docker-daemon.js';
import { REPO_ROOT } from './plugin.js';

export const SETUP_MS = 600_000;
export const TEST_MS = 300_000;
/** The versions `make e2e-releases` builds (Makefile: E2E_RELEASES). */
export const V1 = '0.0.0-e2e.1';
export const V2 = '0.0.0-e2e.2';
export const PLUGIN = 'sharedprop';

export const releaseDir = (version: string) => path.join(REPO_ROOT, 'build', 'release', version);
export const tarballOf = (version: string) => `sharedprop-${version}-linux-amd64.tar.gz`;

/**
 * A fresh work directory, and in it `noNodePath`, the PATH for the standalone CLI: docker, mount,
 * umount and flock, and no node. Throws first when a release has not been built.
 */
export async function releaseWorkDir(): Promise<{ work: string; noNodePath: string }> {
  for (const version of [V1, V2]) {
    await stat(path.join(releaseDir(version), tarballOf(version))).catch(() => {
      throw new Error(`release ${version} is missing: run make e2e-releases first`);
    });
  }
  const work = await mkdtemp('/tmp/sharedprop-e2e-release-');
  const noNodePath = path.join(work, 'path');
  await mkdir(noNodePath);
  for (const tool of ['docker', 'mount', 'umount', 'flock']) {
    const found = (await execa('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    await symlink(found, path.join(noNodePath, tool));
  }
  return { work, noNodePath };
}

/** The standalone CLI of a release, in dockerd's mount namespace, with no Node on PATH. */
export class StandaloneCli {
  private constructor(
    private readonly daemon: DockerDaemon,
    /** The unpacked release: `sharedprop` and the runtime. */
    readonly dir: string,
    private readonly noNodePath: string,
    private readonly nsenter: string,
  ) {}

  /** Unpacks release `version`'s tarball into `work`, as a user does, for `daemon`. */
  static async unpack(
    version: string,
    work: string,
    noNodePath: string,
    daemon: DockerDaemon,
  ): Promise<StandaloneCli> {
    await execa('tar', ['-xzf', path.join(releaseDir(version), tarballOf(version)), '-C', work]);
    const nsenter = (await execa('sh', ['-c', 'command -v nsenter'])).stdout.trim();
    const dir = path.join(work, `sharedprop-${version}`);
    return new StandaloneCli(daemon, dir, noNodePath, nsenter);
  }

  /** Runs the CLI; never throws for a non-zero exit. */
  run(args: string[]) {
    // nsenter by its full path: PATH has no nsenter either.
    const [, ...prefix] = this.daemon.inNamespace();
    return execa(this.nsenter, [...prefix, path.join(this.dir, 'sharedprop'), ...args], {
      env: { ...this.daemon.cliEnv(), PATH: this.noNodePath },
      extendEnv: false,
      reject: false,
      all: true,
      timeout: 300_000,
    });
  }

  /** Runs the CLI and returns its output; throws with it and dockerd's log on failure. */
  async ok(args: string[]): Promise<string> {
    const result = await this.run(args);
    if (result.exitCode !== 0) {
      throw new Error(
        `sharedprop ${args.join(' ')} exited ${result.exitCode}:\n${String(result.all)}\n--- dockerd:\n${await this.daemon.logTail(40)}`,
      );
    }
    return String(result.all);
  }
}

/** What the tests read of `docker plugin inspect`. */
export interface PluginInspect {
  Enabled: boolean;
  Config: { Description: string; Env: { Name: string; Value: string }[] };
  Settings: { Env: string[]; Mounts: { Name: string; Source: string }[] };
}

export async function inspectPlugin(daemon: DockerDaemon): Promise<PluginInspect> {
  const text = await daemon.dockerOk(['plugin', 'inspect', PLUGIN]);
  return (JSON.parse(text) as never[])[0] as never;
}

export const configVersion = (p: PluginInspect) =>
  p.Config.Env.find((e) => e.Name === 'SHAREDPROP_VERSION')?.Value;

/** How many mounts `daemon`'s namespace has at `target`. */
export async function namespaceMountsAt(daemon: DockerDaemon, target: string): Promise<number> {
  const [command, ...prefix] = daemon.inNamespace();
  const table = await execa(command as string, [...prefix, 'cat', '/proc/self/mountinfo']);
  return table.stdout.split('\n').filter((line) => line.split(' ')[4] === target).length;
}

/** The network namespace a container reaches through /run/netns/qrouter-1. */
export async function routerSeenIn(daemon: DockerDaemon, container: string): Promise<string> {
  return (
    await daemon.dockerOk([
      'exec',
      container,
      'nsenter',
      '--net=/run/netns/qrouter-1',
      'readlink',
      '/proc/self/ns/net',
    ])
  ).trim();
}

/** The network namespace the host reaches through qrouter-1 in the volume at `hostPath`. */
export async function routerSeenByHost(hostPath: string): Promise<string> {
  const result = await execa('nsenter', [
    `--net=${path.join(hostPath, 'qrouter-1')}`,
    'readlink',
    '/proc/self/ns/net',
  ]);
  return result.stdout.trim();
}
