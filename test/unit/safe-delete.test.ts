import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deleteTree, MountBoundaryError } from '../../src/system/safe-delete.js';
import type { MountEntry } from '../../src/system/mountinfo.js';

const mountAt = (mountPoint: string): MountEntry => ({
  id: 99,
  parentId: 1,
  device: '0:99',
  root: '/',
  mountPoint,
  mountOptions: 'rw',
  unbindable: false,
  fsType: 'tmpfs',
  source: 'tmpfs',
  superOptions: 'rw',
});

describe('deleteTree', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'sharedprop-del-'));
  });
  afterEach(() => rm(base, { recursive: true, force: true }));

  it('deletes a tree but never follows symlinks', async () => {
    const outside = path.join(base, 'outside');
    await mkdir(path.join(outside, 'keep'), { recursive: true });
    await writeFile(path.join(outside, 'keep', 'precious'), 'data');
    const victim = path.join(base, 'victim');
    await mkdir(path.join(victim, 'a', 'b'), { recursive: true });
    await writeFile(path.join(victim, 'a', 'b', 'f'), 'x');
    await symlink(outside, path.join(victim, 'link-to-dir'));
    await symlink(path.join(outside, 'keep', 'precious'), path.join(victim, 'a', 'link-to-file'));
    await deleteTree(victim, []);
    await expect(lstat(victim)).rejects.toThrow(/ENOENT/);
    expect(await readFile(path.join(outside, 'keep', 'precious'), 'utf8')).toBe('data');
  });

  it('refuses, deleting nothing, when a mount lies inside', async () => {
    const victim = path.join(base, 'victim');
    await mkdir(path.join(victim, 'mnt'), { recursive: true });
    await writeFile(path.join(victim, 'file'), 'x');
    await expect(deleteTree(victim, [mountAt(path.join(victim, 'mnt'))])).rejects.toBeInstanceOf(
      MountBoundaryError,
    );
    expect(await readFile(path.join(victim, 'file'), 'utf8')).toBe('x');
  });

  it('does not mistake a sibling with a common prefix for a mount inside', async () => {
    const victim = path.join(base, 'vol');
    await mkdir(victim);
    await deleteTree(victim, [mountAt(path.join(base, 'vol2'))]);
    await expect(lstat(victim)).rejects.toThrow(/ENOENT/);
  });

  it('a missing path is already deleted', async () => {
    await expect(deleteTree(path.join(base, 'nothing'), [])).resolves.toBeUndefined();
  });
});
