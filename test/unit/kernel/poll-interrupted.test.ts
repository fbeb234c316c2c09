/**
 * pollPriority when a signal interrupts poll(2) (EINTR): asked again, as often as it takes, and
 * any other failure goes through. The interruptions are made by a libc whose poll fails first,
 * since a real one with no timeout is almost never interrupted; every other call is the real one.
 */
import { jest } from '@jest/globals';
import { srcModule } from './src-module.js';
import { openSync, closeSync } from 'node:fs';
import { constants } from 'node:os';

/** The errno values the next polls fail with, in order; then the real poll. */
const failures: number[] = [];
let polls = 0;
let lastErrno: number | undefined;

const ffi = await import('../../../src/system/kernel/ffi.js');
const interrupting = () => {
  const real = ffi.loadLibc();
  return {
    ...real,
    poll: (...args: unknown[]) => {
      polls += 1;
      lastErrno = failures.shift();
      return lastErrno === undefined ? real.poll(...args) : -1;
    },
    errno: () => lastErrno ?? real.errno(),
  };
};
jest.unstable_mockModule(srcModule('system/kernel/ffi'), () => ({
  ...ffi,
  loadLibc: interrupting,
  check: (result: number | bigint, name: string, path?: string) => {
    if (Number(result) < 0) throw new ffi.KernelError(name, interrupting().errno(), path);
    return Number(result);
  },
}));
const { pollPriority } = await import('../../../src/system/kernel/calls.js');

let fd: number;
beforeEach(() => {
  fd = openSync('/proc/self/mountinfo', 'r');
  polls = 0;
});
afterEach(() => {
  closeSync(fd);
  failures.splice(0);
  lastErrno = undefined;
});

describe('pollPriority, interrupted', () => {
  it('asks again after EINTR, as often as it takes, and answers as the real poll does', () => {
    const first = pollPriority(fd); // a new descriptor of the mount table: an event, or none
    polls = 0;
    failures.push(constants.errno.EINTR, constants.errno.EINTR);
    expect(pollPriority(fd)).toBe(false); // nothing changed since the last poll
    expect(polls).toBe(3);
    expect(typeof first).toBe('boolean');
  });

  it('lets any other failure through, at once', () => {
    failures.push(constants.errno.ENOMEM);
    expect(() => pollPriority(fd)).toThrow(/ENOMEM/);
    expect(polls).toBe(1);
  });
});
