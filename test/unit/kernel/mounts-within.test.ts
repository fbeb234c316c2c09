/**
 * mountsWithin: whether anything is mounted at or within a directory, told by a walk by
 * descriptor with no read of the mount table (what lets a Remove skip that read). Real mounts in
 * the unit tier's namespace; the fake the driver's tests use, given the real table, must agree.
 */
import { symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scanForMounts } from '../../../src/system/mounts-within.js';
import { MountSystem } from '../../../src/system/mounts.js';
import { SyscallMounts } from '../../../src/system/syscall-mounts.js';
import { FakeMounts } from '../../support/driver-fakes.js';
import {
  bindByPath,
  describeInNamespace,
  dirIn,
  mountinfo,
  openFds,
  scratch,
  tmpfsAt,
} from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

const dir = (name: string) => dirIn(base, name);

/** The walk's answer, the same through both system-call layers, and the fake's from the table. */
async function within(target: string): Promise<string> {
  const fds = openFds();
  const answer = scanForMounts(target);
  expect(openFds()).toBe(fds); // every descriptor it opened is closed, whatever it answered
  for (const layer of [
    new SyscallMounts({ fallback: false }),
    new SyscallMounts({ fallback: true }),
  ]) {
    expect(await layer.mountsWithin(target)).toBe(answer);
  }
  if (answer !== 'unknown') {
    const fake = new FakeMounts();
    fake.table = mountinfo();
    expect(await fake.mountsWithin(target)).toBe(answer);
  }
  return answer;
}

describeInNamespace('mountsWithin', () => {
  it('none in a tree with nothing mounted, or where nothing exists', async () => {
    const tree = dir('tree/a/b');
    writeFileSync(path.join(tree, 'file'), 'x');
    expect(await within(path.join(base, 'tree'))).toBe('none');
    expect(await within(path.join(base, 'missing'))).toBe('none');
  });

  it('some when the directory itself is a mount point', async () => {
    const target = dir('point');
    tmpfsAt(target, 'sp-point');
    expect(await within(target)).toBe('some');
  });

  it('some for a directory mounted over deep inside, and for a file bound over a file', async () => {
    const deep = dir('deep/a/b/c');
    tmpfsAt(deep, 'sp-deep');
    expect(await within(path.join(base, 'deep'))).toBe('some');
    const files = dir('files/x');
    writeFileSync(path.join(files, 'target'), '');
    writeFileSync(path.join(base, 'source'), 'bound');
    bindByPath(path.join(base, 'source'), path.join(files, 'target'));
    expect(await within(path.join(base, 'files'))).toBe('some');
  });

  it('some for a directory of the same filesystem bound inside (no new device to tell it by)', async () => {
    const tree = dir('same/a');
    bindByPath(dir('other'), tree);
    expect(await within(path.join(base, 'same'))).toBe('some');
  });

  it('unknown as soon as its budget is spent; none where the path does not exist', () => {
    const tree = dir('closed/inner');
    const fds = openFds();
    expect(scanForMounts(path.join(base, 'closed'), 0)).toBe('unknown');
    expect(scanForMounts(path.join(tree, 'missing-parent', 'x'))).toBe('none');
    expect(openFds()).toBe(fds);
  });

  it('a symlink inside to a mount point is not followed (none); one given as the directory is not resolved', async () => {
    const point = dir('elsewhere');
    tmpfsAt(point, 'sp-elsewhere');
    const tree = dir('links');
    symlinkSync(point, path.join(tree, 'to-mount'));
    expect(await within(tree)).toBe('none');
    symlinkSync(point, path.join(base, 'link'));
    expect(await within(path.join(base, 'link'))).toBe('unknown');
  });

  it('gives up on a tree larger than its budget (unknown), with every descriptor closed', () => {
    const tree = dir('big');
    for (let i = 0; i < 5; i++) dir(`big/d${i}/e`);
    const fds = openFds();
    expect(scanForMounts(tree, 9)).toBe('unknown'); // 5 + 5 directories
    expect(scanForMounts(tree, 10)).toBe('none');
    expect(openFds()).toBe(fds);
  });

  it('a file given as the directory: unknown; mount(8) cannot tell without the table', async () => {
    writeFileSync(path.join(base, 'plain'), '');
    expect(scanForMounts(path.join(base, 'plain'))).toBe('unknown');
    expect(await new MountSystem().mountsWithin()).toBe('unknown');
  });
});
