import { execa } from 'execa';
import {
  chmod,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteError, deleteTree, MountBoundaryError } from '../../src/system/safe-delete.js';

beforeAll(async () => {
  // The helper is built by `npm run build`; build it here too, for a unit run on its own.
  await execa('scripts/build-native.sh', ['dist/native']);
}, 60_000);
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
  // Not rm -r: a failed deep-tree test would leave paths longer than it can handle.
  afterEach(() => deleteTree(base, []));

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

  it('a missing path is already deleted, its parent missing too', async () => {
    await expect(deleteTree(path.join(base, 'nothing'), [])).resolves.toBeUndefined();
    await expect(deleteTree(path.join(base, 'no', 'thing'), [])).resolves.toBeUndefined();
  });

  it('removes hard links, fifos, odd names and unreadable directories; a hard-linked file outside stays', async () => {
    const outside = path.join(base, 'outside-file');
    await writeFile(outside, 'data');
    const victim = path.join(base, 'victim');
    await mkdir(path.join(victim, 'locked', 'inner'), { recursive: true });
    await link(outside, path.join(victim, 'hard'));
    await execa('mkfifo', [path.join(victim, 'fifo')]);
    for (const odd of ['sp ace', 'new\nline', 'back\\slash', '-rf', '*']) {
      await writeFile(path.join(victim, odd), 'x');
    }
    await writeFile(path.join(victim, 'locked', 'inner', 'f'), 'x');
    await chmod(path.join(victim, 'locked'), 0);
    await deleteTree(victim, []);
    await expect(lstat(victim)).rejects.toThrow(/ENOENT/);
    expect(await readFile(outside, 'utf8')).toBe('data');
  });

  it('deletes a chain of 3,000 nested directories', async () => {
    const victim = path.join(base, 'deep');
    await execa('bash', [
      '-c',
      // 30 steps of 100 levels each (a path per call must stay under PATH_MAX).
      'mkdir "$1" && cd "$1" && p=$(printf "d/%.0s" $(seq 1 100)) && ' +
        'for i in $(seq 1 30); do mkdir -p "$p" && cd "$p"; done && touch f',
      'sh',
      victim,
    ]);
    await deleteTree(victim, []);
    expect(await readdir(base)).toEqual([]);
  }, 60_000);

  it('without the helper, deletes nothing and says so', async () => {
    const victim = path.join(base, 'victim');
    await mkdir(victim);
    await writeFile(path.join(victim, 'f'), 'x');
    process.env.SHAREDPROP_RMTREE = path.join(base, 'no-such-helper');
    try {
      await expect(deleteTree(victim, [])).rejects.toThrow();
    } finally {
      delete process.env.SHAREDPROP_RMTREE;
    }
    expect(await readFile(path.join(victim, 'f'), 'utf8')).toBe('x');
  });

  it('refuses a path that is not absolute or is /', async () => {
    await expect(deleteTree('relative/dir', [])).rejects.toBeInstanceOf(DeleteError);
    await expect(deleteTree('/', [])).rejects.toBeInstanceOf(DeleteError);
  });
});
