/**
 * The walk of mounts-within.ts when the tree changes between two of its system calls: statx is
 * made to answer as it did a moment before the change (a mount not there yet, a directory not yet
 * swapped for a symlink), and the listing can fail, so that each window is met on every run. In
 * each, the answer is `some` where the kernel proves a mount and `unknown` otherwise, never `none`.
 */
import { jest } from '@jest/globals';
import { srcModule } from './src-module.js';
import { constants } from 'node:os';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KernelError } from '../../../src/system/kernel/ffi.js';
import type { Statx } from '../../../src/system/kernel/calls.js';

/** What statx answers for an entry named `name` (undefined: the truth). */
let earlier: ((name: string, truth: Statx) => Statx) | undefined;
let statxOfRootFails = false;
let listingFails = false;

const calls = await import('../../../src/system/kernel/calls.js');
jest.unstable_mockModule(srcModule('system/kernel/calls'), () => ({
  ...calls,
  statx: (fd: number, name = '', unique?: boolean) => {
    if (name === '' && statxOfRootFails) throw new KernelError('statx', constants.errno.EIO);
    const truth = calls.statx(fd, name, unique);
    return name !== '' && earlier ? earlier(name, truth) : truth;
  },
}));
const fs = await import('node:fs');
jest.unstable_mockModule('node:fs', () => ({
  ...fs,
  opendirSync: (...args: Parameters<typeof fs.opendirSync>) => {
    if (listingFails)
      throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
    return fs.opendirSync(...args);
  },
}));
const { scanForMounts } = await import('../../../src/system/mounts-within.js');
const { describeInNamespace, dirIn, openFds, scratch, tmpfsAt } = await import('./namespace.js');

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => {
  cleanup();
  earlier = undefined;
  statxOfRootFails = false;
  listingFails = false;
});

/** The walk's answer, with every descriptor it opened closed again. */
function scan(dir: string): string {
  const fds = openFds();
  const answer = scanForMounts(dir);
  expect(openFds()).toBe(fds);
  return answer;
}

describeInNamespace('the walk for mounts, when the tree changes under it', () => {
  it('an entry mounted on after its statx: the open that crosses into it proves it (some)', () => {
    const top = dirIn(base, 'top');
    tmpfsAt(dirIn(top, 'm'), 'sp-race');
    expect(scan(top)).toBe('some');
    earlier = (name, truth) => (name === 'm' ? { ...truth, mountRoot: false } : truth);
    expect(scan(top)).toBe('some');
  });

  it('a directory swapped for a symlink after its statx: unknown, never followed', () => {
    const top = dirIn(base, 'top');
    const elsewhere = dirIn(base, 'elsewhere');
    tmpfsAt(dirIn(elsewhere, 'm'), 'sp-race');
    symlinkSync(elsewhere, path.join(top, 'link'));
    expect(scan(top)).toBe('none');
    const dirMode = (truth: Statx) => ({ ...truth, mode: (truth.mode & ~0o170000) | 0o040000 });
    earlier = (name, truth) => (name === 'link' ? dirMode(truth) : truth);
    expect(scan(top)).toBe('unknown');
  });

  it('a directory swapped for a file after its statx: unknown', () => {
    const top = dirIn(base, 'top');
    writeFileSync(path.join(top, 'file'), '');
    mkdirSync(path.join(top, 'after'));
    earlier = (name, truth) =>
      name === 'file' ? { ...truth, mode: (truth.mode & ~0o170000) | 0o040000 } : truth;
    expect(scan(top)).toBe('unknown');
  });

  it('the walked directory itself cannot be asked: unknown', () => {
    const top = dirIn(base, 'top');
    statxOfRootFails = true;
    expect(scan(top)).toBe('unknown');
  });

  it('a directory that cannot be listed: unknown', () => {
    const top = dirIn(base, 'top');
    dirIn(top, 'below');
    expect(scan(top)).toBe('none');
    listingFails = true;
    expect(scan(top)).toBe('unknown');
  });
});
