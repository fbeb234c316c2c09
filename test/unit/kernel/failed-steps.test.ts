/**
 * A step on a held directory that the kernel refuses half-way leaves nothing behind: every
 * descriptor it opened is closed, nothing is mounted, and the kernel's error reaches the caller.
 * A directory removed while it was held is the refusal the kernel gives on demand (ENOENT: nothing
 * can be mounted on a deleted directory).
 */
import { rmdirSync } from 'node:fs';
import path from 'node:path';
import { close, openDirectory } from '../../../src/system/kernel/calls.js';
import { bindTree, selfBindInOwnGroup, sharedMountPointAt } from '../../../src/system/held-bind.js';
import { holdDirectory } from '../../../src/system/held-directory.js';
import { holdMountPoint } from '../../../src/system/held-mount.js';
import { MountTree } from '../../../src/system/mount-tree.js';
import { SyscallMounts } from '../../../src/system/syscall-mounts.js';
import {
  describeInNamespace,
  dirIn,
  mountinfo,
  mountsAtPath,
  openFds,
  scratch,
  tmpfsAt,
} from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

/** Runs `step`, which must fail with `code`, and checks it left no descriptor and no mount. */
async function failsCleanly(step: () => unknown, code: string | RegExp): Promise<void> {
  const fds = openFds();
  const mounts = mountinfo().length;
  await expect((async () => step())()).rejects.toThrow(code);
  expect(openFds()).toBe(fds);
  expect(mountinfo()).toHaveLength(mounts);
}

/** A directory held open, then removed: the kernel mounts nothing on it. */
function heldThenRemoved(name: string): number {
  const dir = dirIn(base, name);
  const fd = openDirectory(dir);
  rmdirSync(dir);
  return fd;
}

describeInNamespace('a step the kernel refuses half-way', () => {
  it('a self-bind onto a removed directory: ENOENT, its copy of the tree closed', async () => {
    const fd = heldThenRemoved('gone');
    try {
      for (const recursive of [true, false])
        await failsCleanly(() => selfBindInOwnGroup(fd, recursive), /ENOENT/);
    } finally {
      close(fd);
    }
  });

  it('a shared mount point made at a removed directory: ENOENT, nothing left open', async () => {
    const dir = dirIn(base, 'adopted');
    const held = holdDirectory(dir);
    try {
      rmdirSync(dir);
      await failsCleanly(() => sharedMountPointAt(held, () => false), /ENOENT/);
    } finally {
      held.release();
    }
  });

  it('a mount root whose propagation cannot be read: the error, its second descriptor closed', async () => {
    const dir = dirIn(base, 'root');
    tmpfsAt(dir, 'sp-failed-step');
    const held = holdDirectory(dir);
    try {
      const unreadable = () => {
        throw new Error('mount table unreadable');
      };
      await failsCleanly(() => sharedMountPointAt(held, unreadable), 'mount table unreadable');
      // Made shared only when the mount table says it is not (the answer is trusted as it is).
      close(await sharedMountPointAt(held, () => true));
      expect(mountsAtPath(dir).at(-1)?.sharedGroup).toBeUndefined();
      close(await sharedMountPointAt(held, () => false));
      expect(mountsAtPath(dir).at(-1)?.sharedGroup).toBeDefined();
    } finally {
      held.release();
    }
  });

  it('a tree bound onto a removed directory: ENOENT, its copy of the tree closed', async () => {
    const from = openDirectory(dirIn(base, 'from'));
    const to = heldThenRemoved('to');
    try {
      for (const mode of ['rshared', 'shared'] as const)
        await failsCleanly(() => bindTree(from, to, mode), /ENOENT/);
    } finally {
      close(from);
      close(to);
    }
  });

  it('a mount point held with a view that lacks its mount: refused, its descriptor closed', async () => {
    const dir = dirIn(base, 'point');
    // Only the table's way of reading gives a view that can lack a mount (a statmount view asks).
    const tree = new MountTree({ fallback: true });
    const elsewhere = tree.view({ path: '/nowhere', ids: [] });
    await failsCleanly(() => holdMountPoint(tree, dir, elsewhere), /is not in the mount table/);
  });

  it.each([
    ['listmount', false],
    ['mountinfo fallback', true],
  ])('steps that succeed close what they opened too (%s)', async (_name, fallback) => {
    const mounts = new SyscallMounts({ fallback });
    const bound = dirIn(base, 'bound');
    // Each step once first: what a layer keeps open for its life (the mount table's descriptor
    // it polls) is opened then.
    const steps = async (round: number) => {
      await mounts.ensureSharedMount(
        { kind: 'adopt', directory: dirIn(base, `adopted${round}`) },
        dirIn(base, `view${round}`),
        'rshared',
      );
      await mounts.ensureSharedMount(
        { kind: 'bind', directory: bound },
        dirIn(base, `bind${round}`),
        'rshared',
      );
      await mounts.prepareMountRoot(dirIn(base, `root${round}`), { name: '.m', content: 'x\n' });
      await mounts.detachAll(path.join(base, `bind${round}`), { includeSelf: true });
      await mounts.detachView(path.join(base, `view${round}`));
    };
    await steps(1);
    const fds = openFds();
    await steps(2);
    expect(openFds()).toBe(fds);
  });
});
