/**
 * What the doctor reads from the host itself rather than from the engine: mount tables, dockerd's
 * process, files, and the driver's socket. Behind an interface so that unit tests use a fake.
 */
import { access, constants, readlink, stat } from 'node:fs/promises';
import { activate } from '../docker/activate.js';
import { findDaemonPid } from '../docker/daemon-process.js';
import { run } from '../system/exec.js';
import { readMountinfo, type MountEntry } from '../system/mountinfo.js';
import { runtimeVersionOf } from '../system/version.js';

export interface HostProbe {
  /** This process's mount table: the host's, when the CLI runs on the host. */
  mounts(): Promise<MountEntry[]>;
  /** The mount table of process `pid`. */
  mountsOf(pid: number): Promise<MountEntry[]>;
  /** The pid of the dockerd listening on `socketPath`, when it can be found. */
  daemonPid(socketPath: string): Promise<number | undefined>;
  /** True when process `pid` is in this process's mount namespace. */
  sharesMountNamespace(pid: number): Promise<boolean>;
  isExecutable(file: string): Promise<boolean>;
  isSocket(file: string): Promise<boolean>;
  /** POST /Plugin.Activate on a driver's socket. */
  activate(socketPath: string): Promise<{ implements: string[] }>;
  /** The sharedprop version a runtime executable reports (`--version`), if it is ours. */
  runtimeVersion(file: string): Promise<string | undefined>;
}

export const procHost: HostProbe = {
  mounts: () => readMountinfo(),
  mountsOf: (pid) => readMountinfo(`/proc/${pid}/mountinfo`),
  daemonPid: (socketPath) => findDaemonPid(socketPath),
  async sharesMountNamespace(pid) {
    const [mine, theirs] = await Promise.all([
      readlink('/proc/self/ns/mnt'),
      readlink(`/proc/${pid}/ns/mnt`),
    ]);
    return mine === theirs;
  },
  isExecutable: (file) =>
    access(file, constants.X_OK).then(
      () => true,
      () => false,
    ),
  isSocket: (file) =>
    stat(file).then(
      (s) => s.isSocket(),
      () => false,
    ),
  activate: (socketPath) => activate(socketPath),
  runtimeVersion: async (file) => {
    try {
      return runtimeVersionOf((await run(file, ['--version'], { timeout: 10_000 })).stdout);
    } catch {
      return undefined;
    }
  },
};
