import path from 'node:path';
import {
  basename,
  dirname,
  isAbsolute,
  join,
  normalize,
  resolve,
} from '../../../src/runtime/paths.js';

/** The wrapper's own path helpers must agree with node:path on everything it meets. */
const SAMPLES = [
  '',
  '/',
  '//',
  '.',
  '..',
  'a',
  'a/',
  '/a',
  '/a/',
  '/a//b',
  '/a/./b',
  '/a/../b',
  '/../a',
  '../../a/b',
  'a/../..',
  'a/./b/../../c/',
  '/var/lib/docker/plugins/0f/propagated-mount/myvol',
  '/var/lib/docker/plugins/0f/propagated-mount/myvol/',
  '/run/containerd/io.containerd.runtime.v2.task/moby/abc/config.json',
  'create',
  './create',
  '/a/b/../../..',
  '///a///b///',
  '//a',
  'a//b',
];

describe('path helpers agree with node:path', () => {
  it.each(SAMPLES)('%j', (p) => {
    expect(isAbsolute(p)).toBe(path.posix.isAbsolute(p));
    expect(normalize(p)).toBe(path.posix.normalize(p));
    expect(dirname(p)).toBe(path.posix.dirname(p));
    expect(basename(p)).toBe(path.posix.basename(p));
    expect(join('/x/y', p)).toBe(path.posix.join('/x/y', p));
    expect(join(p, 'z')).toBe(path.posix.join(p, 'z'));
    expect(resolve('/work/dir', p)).toBe(path.posix.resolve('/work/dir', p));
  });

  it('joins nothing to "."', () => {
    expect(join()).toBe(path.posix.join());
    expect(join('', '')).toBe(path.posix.join('', ''));
  });
});
