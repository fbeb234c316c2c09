/**
 * deleteTree and its helper, sharedprop-rmtree, on trees without mounts (no root needed, except
 * for the mode-0 directory, which only root can walk). The mount boundary and the symlink-swap
 * attack are in test/integration/delete-race.test.ts.
 */
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
import {
  DeleteError,
  deleteTree,
  HELPER_NAME,
  helperPath,
  MountBoundaryError,
  RMTREE_EXIT,
} from '../../src/system/safe-delete.js';
import type { MountEntry } from '../../src/system/mountinfo.js';

const helper = path.resolve('dist', 'native', HELPER_NAME);
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  // `npm run build` builds the helper; build it here too (if stale), for a unit run on its own.
  await execa('scripts/build-native.sh', ['dist/native']);
}, 120_000);

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

const gone = (p: string) => expect(lstat(p)).rejects.toThrow(/ENOENT/);

/**
 * Runs a stand-in for the helper: in --serve, it records each request's PARENT and NAME and
 * answers a diagnostic line, then `exit CODE`.
 */
async function withFakeHelper(dir: string, code: number, body: () => Promise<void>) {
  const fake = path.join(dir, `fake-helper-${code}`);
  await writeFile(
    fake,
    `#!/bin/bash\n[ "$1" = --serve ] || exit 9\n` +
      `while IFS= read -r -d '' parent && IFS= read -r -d '' name; do\n` +
      `  printf '%s\\n%s\\n' "$parent" "$name" >> "$0.args"\n` +
      `  echo 'sharedprop-rmtree: why'\n  echo 'exit ${code}'\ndone\n`,
  );
  await chmod(fake, 0o755);
  process.env.SHAREDPROP_RMTREE = fake;
  try {
    await body();
  } finally {
    delete process.env.SHAREDPROP_RMTREE;
  }
  return (await readFile(`${fake}.args`, 'utf8')).split('\n').slice(0, -1);
}

describe('deleteTree', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'sharedprop-del-'));
  });
  // Not rm -r: a failed deep-tree test would leave paths longer than it can handle.
  afterEach(() => deleteTree(base, []));

  it('deletes a nested tree, removing symlinks as links and leaving their targets', async () => {
    const outside = path.join(base, 'outside');
    await mkdir(path.join(outside, 'keep'), { recursive: true });
    await writeFile(path.join(outside, 'keep', 'precious'), 'data');
    const victim = path.join(base, 'victim');
    await mkdir(path.join(victim, 'a', 'b', 'c'), { recursive: true });
    await writeFile(path.join(victim, 'a', 'b', 'c', 'f'), 'x');
    await writeFile(path.join(victim, 'a', 'g'), 'x');
    await symlink(outside, path.join(victim, 'link-to-dir'));
    await symlink(path.join(outside, 'keep'), path.join(victim, 'a', 'b', 'link-to-dir'));
    await symlink(path.join(outside, 'keep', 'precious'), path.join(victim, 'a', 'link-to-file'));
    await symlink('/nowhere/at/all', path.join(victim, 'dangling'));
    await symlink('..', path.join(victim, 'a', 'dot-dot'));
    await deleteTree(victim, []);
    await gone(victim);
    expect(await readdir(base)).toEqual(['outside']);
    expect(await readFile(path.join(outside, 'keep', 'precious'), 'utf8')).toBe('data');
  });

  it('deletes a file, or a symlink (never its target), given as the tree itself', async () => {
    const target = path.join(base, 'target');
    await mkdir(target);
    await writeFile(path.join(target, 'f'), 'data');
    await symlink(target, path.join(base, 'link'));
    await writeFile(path.join(base, 'file'), 'x');
    await deleteTree(path.join(base, 'link'), []);
    await deleteTree(path.join(base, 'file'), []);
    expect(await readdir(base)).toEqual(['target']);
    expect(await readFile(path.join(target, 'f'), 'utf8')).toBe('data');
  });

  it('refuses, deleting nothing, when the mount table has a mount inside', async () => {
    const victim = path.join(base, 'victim');
    await mkdir(path.join(victim, 'mnt'), { recursive: true });
    await writeFile(path.join(victim, 'file'), 'x');
    const mounted = path.join(victim, 'mnt');
    await expect(deleteTree(victim, [mountAt(mounted)])).rejects.toEqual(
      new MountBoundaryError(mounted),
    );
    await expect(deleteTree(victim + '/', [mountAt(mounted)])).rejects.toBeInstanceOf(
      MountBoundaryError,
    );
    await expect(deleteTree(victim, [mountAt(victim)])).rejects.toBeInstanceOf(MountBoundaryError);
    expect(await readFile(path.join(victim, 'file'), 'utf8')).toBe('x');
  });

  it('does not mistake a sibling with a common prefix for a mount inside', async () => {
    const victim = path.join(base, 'vol');
    await mkdir(victim);
    await deleteTree(victim, [mountAt(path.join(base, 'vol2'))]);
    await gone(victim);
  });

  it('a missing path is already deleted, its parent missing too', async () => {
    await expect(deleteTree(path.join(base, 'nothing'), [])).resolves.toBeUndefined();
    await expect(deleteTree(path.join(base, 'no', 'thing'), [])).resolves.toBeUndefined();
  });

  it('removes hard links, fifos and odd names; a hard-linked file outside stays', async () => {
    const outside = path.join(base, 'outside-file');
    await writeFile(outside, 'data');
    const victim = path.join(base, 'victim');
    await mkdir(path.join(victim, 'sub dir\nwith\\odd'), { recursive: true });
    await link(outside, path.join(victim, 'hard'));
    await link(outside, path.join(victim, 'sub dir\nwith\\odd', 'hard'));
    await execa('mkfifo', [
      path.join(victim, 'fifo'),
      path.join(victim, 'sub dir\nwith\\odd', 'p'),
    ]);
    for (const odd of ['sp ace', 'new\nline', 'back\\slash', '-rf', '*', '"q"', ' ', '...']) {
      await writeFile(path.join(victim, odd), 'x');
    }
    // A name that is not UTF-8 at all.
    await writeFile(
      Buffer.concat([Buffer.from(victim + '/'), Buffer.from([0xff, 0xfe, 0x01])]),
      '',
    );
    await deleteTree(victim, []);
    await gone(victim);
    expect(await readFile(outside, 'utf8')).toBe('data');
    expect((await lstat(outside)).nlink).toBe(1);
  });

  (isRoot ? it : it.skip)('removes directories of mode 0 (as root)', async () => {
    const victim = path.join(base, 'victim');
    await mkdir(path.join(victim, 'locked', 'inner'), { recursive: true });
    await writeFile(path.join(victim, 'locked', 'inner', 'f'), 'x');
    await chmod(path.join(victim, 'locked', 'inner'), 0);
    await chmod(path.join(victim, 'locked'), 0);
    await chmod(victim, 0);
    await deleteTree(victim, []);
    await gone(victim);
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
      await expect(deleteTree(victim, [])).rejects.toThrow(/sharedprop-rmtree is missing/);
      await expect(deleteTree(victim, [])).rejects.toBeInstanceOf(DeleteError);
    } finally {
      delete process.env.SHAREDPROP_RMTREE;
    }
    expect(await readFile(path.join(victim, 'f'), 'utf8')).toBe('x');
  });

  it("a release's standalone executable finds the helper beside itself, and nowhere else", () => {
    const beside = path.join(path.dirname(process.execPath), HELPER_NAME);
    expect(() => helperPath({}, true)).toThrow(`${HELPER_NAME} is missing (looked for ${beside})`);
    expect(helperPath({ SHAREDPROP_RMTREE: helper }, true)).toBe(helper);
    // From the sources: dist/native/ of this checkout.
    expect(helperPath({}, false)).toBe(helper);
  });

  it('refuses a path that is not absolute, is /, or has . or .. in it', async () => {
    await mkdir(path.join(base, 'a'));
    for (const bad of ['relative/dir', '/', '//', `${base}/a/..`, `${base}/a/.`, `${base}/../x`]) {
      await expect(deleteTree(bad, [])).rejects.toBeInstanceOf(DeleteError);
    }
    expect(await readdir(base)).toEqual(['a']);
  });

  it('maps the helper exit codes, passing it PARENT and NAME', async () => {
    const dir = path.join(base, 'vol');
    const args = await withFakeHelper(base, RMTREE_EXIT.boundary, () =>
      expect(deleteTree(dir, [])).rejects.toEqual(new MountBoundaryError(dir)),
    );
    expect(args).toEqual([base, 'vol']);
    const said: [number, string][] = [
      [RMTREE_EXIT.usage, `${dir}: ${HELPER_NAME} refused its arguments: sharedprop-rmtree: why`],
      [RMTREE_EXIT.left, `${dir}: some entries could not be deleted: sharedprop-rmtree: why`],
      [
        RMTREE_EXIT.noOpenat2,
        `${dir}: the kernel has no usable openat2 (5.6 or later is needed to delete safely); nothing was deleted`,
      ],
      [1, `${dir}: some entries could not be deleted: sharedprop-rmtree: why`],
    ];
    for (const [code, message] of said) {
      await withFakeHelper(base, code, async () => {
        const error = await deleteTree(dir, []).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DeleteError);
        expect(error).toMatchObject({ name: 'DeleteError', exitCode: code, message });
      });
    }
    await withFakeHelper(base, 0, () => expect(deleteTree(dir, [])).resolves.toBeUndefined());
  });
});

describe(HELPER_NAME, () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'sharedprop-rmtree-'));
    await mkdir(path.join(base, 'tree', 'sub'), { recursive: true });
    await writeFile(path.join(base, 'tree', 'sub', 'f'), 'x');
  });
  afterEach(() => deleteTree(base, []));

  const runHelper = (...args: string[]) => execa(helper, args, { reject: false });

  it('refuses a NAME that is not one path component, and a relative PARENT (exit 2)', async () => {
    const names = ['..', '.', '/', '', 'tree/sub', '../tree', 'tree/'];
    for (const name of names) {
      const result = await runHelper(path.join(base, 'tree'), name);
      expect([name, result.exitCode]).toEqual([name, RMTREE_EXIT.usage]);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^sharedprop-rmtree: usage/);
    }
    expect((await runHelper('relative', 'tree')).exitCode).toBe(RMTREE_EXIT.usage);
    expect((await runHelper(base)).exitCode).toBe(RMTREE_EXIT.usage);
    expect((await runHelper(base, 'tree', 'extra')).exitCode).toBe(RMTREE_EXIT.usage);
    expect(await readFile(path.join(base, 'tree', 'sub', 'f'), 'utf8')).toBe('x');
  });

  it('exits 0, silent, when the tree is deleted or was never there', async () => {
    for (const args of [
      [base, 'tree'],
      [base, 'tree'],
      [path.join(base, 'no-parent'), 'x'],
    ]) {
      const result = await runHelper(...args);
      expect([result.exitCode, result.stdout, result.stderr]).toEqual([0, '', '']);
    }
    expect(await readdir(base)).toEqual([]);
  });
});
