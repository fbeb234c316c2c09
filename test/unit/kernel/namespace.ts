/**
 * For the kernel tests: they make real mounts, so they run only inside a user and mount
 * namespace of their own (`unshare --user --map-root-user --mount --propagation private`), where
 * every mount vanishes with the namespace. Outside one they fail, saying how to run them.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  close,
  mount,
  mountSetattr,
  moveMount,
  openDirectory,
  umount2,
  withFd,
  type PropagationType,
} from '../../../src/system/kernel/calls.js';
import { MS_BIND } from '../../../src/system/kernel/constants.js';
import { MountSystem, type Mounts } from '../../../src/system/mounts.js';
import { SyscallMounts } from '../../../src/system/syscall-mounts.js';
import { newTmpfs } from '../../../src/system/kernel/tmpfs.js';
import { parseMountinfo, type MountEntry } from '../../../src/system/mountinfo.js';
import { inOwnMountNamespace } from '../../support/namespaces.js';

/** True inside the unit tier's own mount namespace (scripts/in-mount-namespace.sh). */
export function inOwnNamespace(): boolean {
  return inOwnMountNamespace();
}

/**
 * `describe`, inside the unit tier's own namespace; outside one (a run that bypassed
 * scripts/in-mount-namespace.sh) a failing test says how to run it: never skipped, never mounting
 * in the host's namespace.
 */
export const describeInNamespace: jest.Describe = inOwnNamespace()
  ? describe
  : (((name: string) => {
      describe(name, () =>
        it('runs inside a user and mount namespace of its own', () => {
          throw new Error(
            'kernel tests make real mounts: run them with `npm run test:unit` (scripts/in-mount-namespace.sh)',
          );
        }),
      );
    }) as unknown as jest.Describe);

/** A scratch directory on a tmpfs of its own (so that the whole test lives on our mounts). */
export function scratch(): { base: string; cleanup: () => void } {
  const base = mkdtempSync(path.join(tmpdir(), 'sp-kernel-'));
  const fd = openDirectory(base);
  const tmpfs = newTmpfs('size=16m,mode=0755');
  try {
    moveMount(tmpfs, fd);
  } finally {
    close(tmpfs);
    close(fd);
  }
  return {
    base,
    cleanup: () => {
      umount2(base, { detach: true });
      rmSync(base, { recursive: true, force: true });
    },
  };
}

export function mountinfo(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function mountsAtPath(target: string): MountEntry[] {
  return mountinfo().filter((e) => e.mountPoint === target);
}

/** `name` under `base`, made with its parents. */
export function dirIn(base: string, name: string): string {
  const p = path.join(base, name);
  mkdirSync(p, { recursive: true });
  return p;
}

/** A bind of `source` at `target` by path (mount(2), as the tests set the scene). */
export const bindByPath = (source: string, target: string) => mount(source, target, null, MS_BIND);

/** A small tmpfs named `name` (its mountinfo source) at `target`. */
export const tmpfsAt = (target: string, name: string) =>
  mount(name, target, 'tmpfs', 0, 'size=64k');

/** Sets the propagation of the mount at `target` (mount_setattr; `recursive`: and beneath it). */
export const setPropagation = (target: string, propagation: PropagationType, recursive = false) =>
  withFd(openDirectory(target), (fd) => mountSetattr(fd, { propagation, recursive }));

/** The mounts whose mountinfo source is `name`. */
/** How many descriptors this process holds: a step that fails must close what it opened. */
export const openFds = () => readdirSync('/proc/self/fd').length;

export const bySource = (name: string) => mountinfo().filter((e) => e.source === name);

/** Every Mounts implementation, for tests that run the same cases on each. */
export const MOUNT_LAYERS: [string, () => Mounts][] = [
  ['syscalls, listmount', () => new SyscallMounts({ fallback: false })],
  ['syscalls, mountinfo fallback', () => new SyscallMounts({ fallback: true })],
  ['MountSystem (mount(8))', () => new MountSystem()],
];
