import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MOUNT_ROOT_MARKER } from '../../../src/mount-root-marker.js';
import { sharedpropSources } from '../../../src/runtime/sources.js';

describe('which mount sources are sharedprop volumes', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-sources-'));
    mkdirSync(path.join(dir, 'mounts/vol'), { recursive: true });
    writeFileSync(path.join(dir, 'mounts', MOUNT_ROOT_MARKER), '{}\n');
    mkdirSync(path.join(dir, 'other/vol'), { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a direct child of a directory holding the marker', () => {
    const isOurs = sharedpropSources([], existsSync);
    expect(isOurs(path.join(dir, 'mounts/vol'))).toBe(true);
    expect(isOurs(path.join(dir, 'mounts/vol/'))).toBe(true);
    expect(isOurs(path.join(dir, 'mounts/./vol'))).toBe(true);
  });

  it('rejects deeper paths, unmarked directories and relative sources', () => {
    const isOurs = sharedpropSources([], existsSync);
    expect(isOurs(path.join(dir, 'mounts/vol/sub'))).toBe(false);
    expect(isOurs(path.join(dir, 'mounts'))).toBe(false);
    expect(isOurs(path.join(dir, 'other/vol'))).toBe(false);
    expect(isOurs('/')).toBe(false);
    expect(isOurs('proc')).toBe(false);
    expect(isOurs('tmpfs')).toBe(false);
  });

  it('never looks at the disk for relative sources (they would be read from the bundle)', () => {
    const looked: string[] = [];
    const isOurs = sharedpropSources([], (file) => (looked.push(file), true));
    expect(isOurs('mqueue')).toBe(false);
    expect(looked).toEqual([]);
  });

  it('looks for the marker once per parent directory', () => {
    const looked: string[] = [];
    const isOurs = sharedpropSources([], (file) => (looked.push(file), false));
    for (const name of ['resolv.conf', 'hostname', 'hosts']) isOurs(`/var/lib/docker/c/${name}`);
    expect(looked).toEqual([`/var/lib/docker/c/${MOUNT_ROOT_MARKER}`]);
  });

  it('accepts anything below a configured root, but not the root itself', () => {
    const isOurs = sharedpropSources(['/srv/shared/'], () => false);
    expect(isOurs('/srv/shared/a')).toBe(true);
    expect(isOurs('/srv/shared/a/b')).toBe(true);
    expect(isOurs('/srv/shared')).toBe(false);
    expect(isOurs('/srv/sharedx/a')).toBe(false);
  });
});
