/**
 * How the mount tree chooses its way of reading when statmount fails (statx and statmount
 * mocked, so that the test is the same on any kernel): ENOSYS (before 6.8), EPERM (a seccomp
 * filter) and EOPNOTSUPP give the mountinfo fallback; any other failure is let through. And
 * how it tells a listmount that lists a mount's children only from one that lists its subtree.
 */
import { jest } from '@jest/globals';
import { srcModule } from './src-module.js';
import { constants } from 'node:os';
import { KernelError } from '../../../src/system/kernel/ffi.js';
import { STATX_MNT_ID, STATX_MNT_ID_UNIQUE } from '../../../src/system/kernel/constants.js';

const { errno } = constants;
let failWith: keyof typeof errno | undefined;
/** statx answering as before Linux 5.8: no mount ID in its mask. */
let noMountId = false;
// As a 6.8+ kernel answers, whatever this one is: statx gives a unique mount ID, statmount works.
const calls = await import('../../../src/system/kernel/calls.js');
jest.unstable_mockModule(srcModule('system/kernel/calls'), () => ({
  ...calls,
  statx: (fd: number, path?: string, unique?: boolean) => {
    const real = calls.statx(fd, path, unique);
    if (noMountId)
      return {
        ...real,
        mask: real.mask & ~(STATX_MNT_ID | STATX_MNT_ID_UNIQUE),
        mountId: undefined,
      };
    return { ...real, uniqueMountId: 1n };
  },
}));
const statmounts = await import('../../../src/system/kernel/statmount.js');
jest.unstable_mockModule(srcModule('system/kernel/statmount'), () => ({
  ...statmounts,
  statmount: () => {
    if (failWith !== undefined) throw new KernelError('statmount', errno[failWith]);
    return {};
  },
  // As a kernel whose listmount lists a mount's children only: the root's all have one parent.
  listmount: () => [11n, 12n, 13n],
  statmountIfAny: (id: bigint) => (id === 13n ? undefined : { parentId: 1n }),
}));
const { MountTree, listsSubtrees } = await import('../../../src/system/mount-tree.js');
const { probeSyscalls } = await import('../../../src/system/kernel/probe.js');

afterEach(() => {
  failWith = undefined;
  noMountId = false;
});

describe('MountTree mode on a kernel whose statmount fails', () => {
  it.each(['ENOSYS', 'EPERM', 'EOPNOTSUPP'] as const)('%s: the mountinfo fallback', (code) => {
    failWith = code;
    expect(new MountTree({ fallback: false }).mode).toBe('mountinfo');
  });

  it('another failure is let through', () => {
    failWith = 'EIO';
    expect(() => new MountTree({ fallback: false }).mode).toThrow(/^EIO: /);
  });

  it('statmount working: listmount', () => {
    expect(new MountTree({ fallback: false }).mode).toBe('listmount');
  });
});

describe('listsSubtrees', () => {
  it('is false where every mount the root lists has the same parent (a mount gone meanwhile skipped)', () => {
    expect(listsSubtrees()).toBe(false);
  });
});

describe('probeSyscalls on a kernel whose statx gives no mount ID (before 5.8)', () => {
  it('refuses the layer, saying which version it needs', () => {
    noMountId = true;
    expect(() => probeSyscalls()).toThrow('statx gives no mount ID (Linux 5.8 or later)');
  });
});
