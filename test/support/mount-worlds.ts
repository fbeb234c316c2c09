/**
 * The implementations of `Mounts` that the contract suite (test/unit/system/mounts-contract.test.ts)
 * runs its cases against, each in a world of its own: a base directory, and the means to do what
 * someone else does to the mount table (mount, bind, hold a mount busy). Another implementation
 * is one more entry in `implementations`.
 *
 * The real one mounts for real, so it runs only in a mount namespace of its own
 * (scripts/in-mount-namespace.sh, which `npm run test:unit` uses): never in the host's.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inOwnMountNamespace } from './namespaces.js';
import { mountsBelow, readMountinfo } from '../../src/system/mountinfo.js';
import { MountSystem, type Mounts } from '../../src/system/mounts.js';
import { FakeMounts } from './driver-fakes.js';

export interface MountsWorld {
  readonly mounts: Mounts;
  /** A directory of the test's own, on a shared mount (as `/` is on systemd hosts). */
  readonly base: string;
  mkdir(dir: string): Promise<void>;
  writeFile(file: string): Promise<void>;
  symlink(target: string, link: string): Promise<void>;
  /** Someone else mounts a tmpfs at `at` (it propagates as the kernel makes it). */
  tmpfsOutside(at: string): Promise<void>;
  /** Someone else binds `source` at `at`. */
  bindOutside(source: string, at: string): Promise<void>;
  /** Keeps the mount at `at` busy (a process working in it) until the answer is called. */
  hold(at: string): Promise<() => Promise<void>>;
  dispose(): Promise<void>;
}

export interface MountsImplementation {
  name: string;
  create(): Promise<MountsWorld>;
}

/** Throws unless this process is in the unit tier's own namespace: real mounts only there. */
export async function requireOwnMountNamespace(): Promise<void> {
  if (process.env.SHAREDPROP_IN_MOUNT_NAMESPACE !== '1' || !inOwnMountNamespace()) {
    throw new Error(
      'real mounts are tested only in a mount namespace of its own: run the unit tier ' +
        'with `npm run test:unit` (scripts/in-mount-namespace.sh), never in the host namespace',
    );
  }
}

async function realWorld(): Promise<MountsWorld> {
  await requireOwnMountNamespace();
  const base = await mkdtemp(path.join(tmpdir(), 'sharedprop-mounts-'));
  await execa('mount', ['-t', 'tmpfs', 'sharedprop-test', base]);
  await execa('mount', ['--make-shared', base]);
  const holders = new Set<ResultPromise>();
  return {
    mounts: new MountSystem(),
    base,
    mkdir: async (dir) => void (await mkdir(dir, { recursive: true })),
    writeFile: (file) => writeFile(file, 'x'),
    symlink: (target, link) => symlink(target, link),
    tmpfsOutside: async (at) => void (await execa('mount', ['-t', 'tmpfs', 'outside', at])),
    bindOutside: async (source, at) => void (await execa('mount', ['--bind', source, at])),
    async hold(at) {
      const holder = execa('sleep', ['600'], { cwd: at, reject: false });
      holders.add(holder);
      await once(holder, 'spawn');
      return async () => {
        holder.kill('SIGKILL'); // by its pid
        await holder;
        holders.delete(holder);
      };
    },
    async dispose() {
      for (const holder of holders) holder.kill('SIGKILL');
      await Promise.all(holders);
      const table = await readMountinfo();
      for (const entry of mountsBelow(table, base)) {
        await execa('umount', ['-l', entry.mountPoint], { reject: false });
      }
      while ((await readMountinfo()).some((e) => e.mountPoint === base)) {
        await execa('umount', ['-l', base]);
      }
      await rm(base, { recursive: true, force: true });
    },
  };
}

async function fakeWorld(): Promise<MountsWorld> {
  const fake = new FakeMounts();
  const base = '/fake/base';
  fake.directories.add(base);
  fake.mountOutside(base, 'tmpfs', 9_000); // shared, as the real world's base
  return {
    mounts: fake,
    base,
    mkdir: async (dir) => {
      for (let d = dir; d !== base && d !== '/'; d = path.dirname(d)) fake.directories.add(d);
    },
    writeFile: async (file) => void fake.files.add(file),
    symlink: async (target, link) => void fake.symlinks.set(link, target),
    tmpfsOutside: async (at) => void fake.mountOutside(at, 'tmpfs'),
    bindOutside: async (source, at) => void fake.bindOutside(at, source),
    async hold(at) {
      fake.busy.add(at);
      return async () => void fake.busy.delete(at);
    },
    dispose: async () => undefined,
  };
}

export const implementations: MountsImplementation[] = [
  { name: 'MountSystem (the real kernel)', create: realWorld },
  { name: 'FakeMounts', create: fakeWorld },
];
