/**
 * How the mount tree chooses its way of reading on a kernel it cannot run statmount on (mocked:
 * this kernel has statmount): ENOSYS (before 6.8), EPERM (a seccomp filter) and EOPNOTSUPP give
 * the mountinfo fallback; any other failure is let through rather than hidden.
 */
import { jest } from '@jest/globals';
import { constants } from 'node:os';
import { KernelError } from '../../../src/system/kernel/ffi.js';

const { errno } = constants;
let failWith: keyof typeof errno | undefined;
const real = await import('../../../src/system/kernel/statmount.js');
jest.unstable_mockModule('../../../src/system/kernel/statmount.js', () => ({
  ...real,
  statmount: (id: bigint, brief?: boolean) => {
    if (failWith !== undefined) throw new KernelError('statmount', errno[failWith]);
    return real.statmount(id, brief);
  },
}));
const { MountTree } = await import('../../../src/system/mount-tree.js');

afterEach(() => (failWith = undefined));

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
