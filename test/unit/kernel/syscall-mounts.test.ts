/**
 * The Mounts layer on system calls, in both of its ways of reading the tree (listmount, and the
 * mountinfo fallback), against the same cases as MountSystem (mount(8)), which runs them too as
 * the reference: one shared mount per volume, never stacked, in a peer group of its own; adopted
 * directories shared in their own group; detachView leaving the directory's own submounts.
 */
import { mkdirSync, readdirSync, renameSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import * as C from '../../../src/system/kernel/constants.js';
import {
  mount,
  mountSetattr,
  moveMount,
  openDirectory,
  withFd,
} from '../../../src/system/kernel/calls.js';
import { newTmpfs } from '../../../src/system/kernel/tmpfs.js';
import { detachChecked } from '../../../src/system/detach.js';
import { MountTree } from '../../../src/system/mount-tree.js';
import { MountSystem, StackedMountsError, type Mounts } from '../../../src/system/mounts.js';
import { SyscallMounts } from '../../../src/system/syscall-mounts.js';
import {
  describeInNamespace,
  mountinfo,
  mountsAtPath,
  scratch,
  dirIn,
  bindByPath,
  tmpfsAt,
  bySource,
  setPropagation,
  MOUNT_LAYERS,
} from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

const dir = (name: string) => dirIn(base, name);
const share = (target: string) => setPropagation(target, 'shared');

describeInNamespace.each(MOUNT_LAYERS)('%s', (_name, make) => {
  let mounts: Mounts;
  beforeEach(() => (mounts = make()));

  it('a bind is one shared mount, made again without stacking, in a peer group of its own', async () => {
    // As on a systemd host: the data's mount is shared, and has a peer in this namespace.
    share(base);
    const alias = dir('alias');
    bindByPath(base, alias);
    const baseGroup = mountsAtPath(base).at(-1)?.sharedGroup;
    expect(baseGroup).toBeDefined();
    const data = dir('data/v');
    const target = path.join(base, 'mnt/v');
    for (const mode of ['rshared', 'rshared', 'shared'] as const) {
      await mounts.ensureSharedMount({ kind: 'bind', directory: data }, target, mode);
      const at = mountsAtPath(target);
      expect(at).toHaveLength(1);
      expect(at[0]?.sharedGroup).toBeDefined();
      expect(at[0]?.sharedGroup).not.toBe(baseGroup);
    }
    // What is mounted in the volume appears once, not also at the data or under the alias.
    tmpfsAt(dir('mnt/v/sub'), 'sp-sub');
    expect(bySource('sp-sub').map((e) => e.mountPoint)).toEqual([path.join(target, 'sub')]);
  });

  it('a bind of data on a shared mount, under a private mount root, leaves the data peer group', async () => {
    share(base);
    const root = dir('mnt');
    bindByPath(root, root);
    withFd(openDirectory(root), (fd) => mountSetattr(fd, { propagation: 'private' }));
    const data = dir('data/v');
    const target = path.join(root, 'v');
    await mounts.ensureSharedMount({ kind: 'bind', directory: data }, target, 'rshared');
    const [own] = mountsAtPath(target);
    expect(own?.sharedGroup).toBeDefined();
    expect(own?.sharedGroup).not.toBe(mountsAtPath(base).at(-1)?.sharedGroup);
    tmpfsAt(dir('mnt/v/sub'), 'sp-sub');
    expect(bySource('sp-sub').map((e) => e.mountPoint)).toEqual([path.join(target, 'sub')]);
  });

  it('a mount stacked on the volume is peeled off, the bottom one kept and made shared', async () => {
    const data = dir('data/v');
    const target = dir('mnt/v');
    bindByPath(data, target);
    bindByPath(data, target);
    const [bottom, top] = mountsAtPath(target);
    expect(top).toBeDefined();
    await mounts.ensureSharedMount({ kind: 'bind', directory: data }, target, 'rshared');
    const at = mountsAtPath(target);
    expect(at.map((e) => e.id)).toEqual([bottom?.id]);
    expect(at[0]?.sharedGroup).toBeDefined();
  });

  it('a tmpfs gets its options, nosuid and nodev, shared', async () => {
    const target = path.join(base, 'mnt/t');
    const options = 'nosuid,nodev,mode=0710,size=1m';
    await mounts.ensureSharedMount({ kind: 'tmpfs', options }, target, 'rshared');
    await mounts.ensureSharedMount({ kind: 'tmpfs', options }, target, 'rshared');
    const at = mountsAtPath(target);
    expect(at).toHaveLength(1);
    expect(at[0]).toMatchObject({ fsType: 'tmpfs', source: 'sharedprop' });
    expect(at[0]?.mountOptions.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect(at[0]?.superOptions).toContain('size=1024k');
    expect(at[0]?.superOptions).toContain('mode=710');
    expect(at[0]?.sharedGroup).toBeDefined();
  });

  it('an adopted directory becomes a shared mount point; the view is its peer; detachView leaves its submounts', async () => {
    const adopted = dir('srv/netns');
    tmpfsAt(dir('srv/netns/before'), 'sp-before');
    const target = path.join(base, 'mnt/a');
    await mounts.ensureSharedMount({ kind: 'adopt', directory: adopted }, target, 'rshared');
    const [own] = mountsAtPath(adopted);
    const [view] = mountsAtPath(target);
    expect(own?.sharedGroup).toBeDefined();
    expect(view?.sharedGroup).toBe(own?.sharedGroup);
    expect(mountsAtPath(path.join(target, 'before'))).toHaveLength(1);
    // Mounted in the volume: it shows in the directory too.
    tmpfsAt(dir('mnt/a/after'), 'sp-after');
    expect(
      bySource('sp-after')
        .map((e) => e.mountPoint)
        .sort(),
    ).toEqual([path.join(adopted, 'after'), path.join(target, 'after')].sort());
    // Made again: nothing new.
    await mounts.ensureSharedMount({ kind: 'adopt', directory: adopted }, target, 'rshared');
    expect(mountsAtPath(target)).toHaveLength(1);
    expect(mountsAtPath(adopted)).toHaveLength(1);
    // The recursive self-bind copied `before` (the original stays beneath it, as with ip netns).
    const before = mountsAtPath(path.join(adopted, 'before')).map((e) => e.id);
    expect(before).toHaveLength(2);
    const report = await mounts.detachView(target);
    expect(report.detached).toContain(target);
    expect(mountinfo().filter((e) => e.mountPoint.startsWith(target))).toEqual([]);
    expect(mountsAtPath(path.join(adopted, 'after'))).toHaveLength(1);
    expect(mountsAtPath(path.join(adopted, 'before')).map((e) => e.id)).toEqual(before);
    expect(mountsAtPath(adopted)).toHaveLength(1);
  });

  it('detachView refuses a stacked view (detaching it would reach the directory)', async () => {
    const target = dir('mnt/s');
    bindByPath(dir('data/s'), target);
    bindByPath(dir('data/s'), target);
    await expect(mounts.detachView(target)).rejects.toThrow(StackedMountsError);
    await expect(mounts.detachView(target)).rejects.toThrow(
      '2 mounts are stacked at the mount point',
    );
    expect(mountsAtPath(target)).toHaveLength(2);
  });

  it('detachAll detaches what is beneath, deepest first, then (includeSelf) the mount itself', async () => {
    const target = path.join(base, 'mnt/v');
    await mounts.ensureSharedMount({ kind: 'bind', directory: dir('data/v') }, target, 'rshared');
    tmpfsAt(dir('mnt/v/a'), 'sp-a');
    tmpfsAt(dir('mnt/v/a/b'), 'sp-b');
    tmpfsAt(dir('mnt/v/c'), 'sp-c');
    tmpfsAt(dir('mnt/v/c'), 'sp-c2'); // stacked
    const inside = () => mountinfo().filter((e) => e.mountPoint.startsWith(target + '/'));
    expect(inside()).toHaveLength(4);
    const below = await mounts.detachAll(target, { includeSelf: false });
    expect(below.detached).toHaveLength(4);
    expect(below.detached.indexOf(path.join(target, 'a/b'))).toBeLessThan(
      below.detached.indexOf(path.join(target, 'a')),
    );
    expect(inside()).toEqual([]);
    expect(mountsAtPath(target)).toHaveLength(1);
    tmpfsAt(dir('mnt/v/d'), 'sp-d');
    const all = await mounts.detachAll(target, { includeSelf: true });
    expect(all.detached).toEqual([path.join(target, 'd'), target]);
    expect(mountsAtPath(target)).toEqual([]);
    expect(await mounts.detachAll(target, { includeSelf: true })).toEqual({
      detached: [],
      lazy: [],
    });
  });

  it('detachAll reaches a mount hidden beneath a stack once the stack above it is gone', async () => {
    // MountSystem fails this one (umount -l of the hidden path: "not mounted").
    if (mounts instanceof MountSystem) return;
    const target = dir('mnt/h');
    bindByPath(dir('data/h'), target);
    const hidden = openDirectory(dir('mnt/h/x'));
    mkdirSync(path.join(dir('data/over'), 'x'));
    bindByPath(path.join(base, 'data/over'), target);
    try {
      // Mounted through a descriptor taken before the stack: beneath it, and the newest mount.
      withFd(newTmpfs('size=64k'), (mnt) => moveMount(mnt, hidden));
    } finally {
      withFd(hidden, () => undefined);
    }
    expect(mountinfo().filter((e) => e.mountPoint.startsWith(target))).toHaveLength(3);
    const report = await mounts.detachAll(target, { includeSelf: true });
    // The stack's top first, then what it hid, then the bottom: none of them busy.
    expect(report).toEqual({ detached: [target, path.join(target, 'x'), target], lazy: [] });
    expect(mountinfo().filter((e) => e.mountPoint.startsWith(target))).toEqual([]);
  });

  it('detachAll tries again a mount hidden by a sibling mounted over its parent directory', async () => {
    if (mounts instanceof MountSystem) return; // it fails this one too
    const target = path.join(base, 'mnt/w');
    await mounts.ensureSharedMount({ kind: 'bind', directory: dir('data/w') }, target, 'shared');
    const hidden = openDirectory(dir('mnt/w/a/x'));
    tmpfsAt(path.join(target, 'a'), 'sp-hider');
    try {
      // Both children of the volume's mount, the hidden one the newer: tried first, and missed.
      withFd(newTmpfs('size=64k'), (mnt) => moveMount(mnt, hidden));
    } finally {
      withFd(hidden, () => undefined);
    }
    const report = await mounts.detachAll(target, { includeSelf: false });
    expect(report).toEqual({
      detached: [path.join(target, 'a'), path.join(target, 'a/x')],
      lazy: [],
    });
    expect(mountinfo().filter((e) => e.mountPoint.startsWith(target + '/'))).toEqual([]);
  });

  it('detachAll of a plain directory detaches the mounts within it, and a busy one lazily', async () => {
    const files = dir('data/f');
    tmpfsAt(dir('data/f/x'), 'sp-x');
    tmpfsAt(dir('data/elsewhere'), 'sp-elsewhere');
    const fd = openDirectory(path.join(files, 'x'));
    try {
      const report = await mounts.detachAll(files, { includeSelf: false });
      expect(report).toEqual({ detached: [path.join(files, 'x')], lazy: [path.join(files, 'x')] });
    } finally {
      withFd(fd, () => undefined);
    }
    expect(bySource('sp-x')).toEqual([]);
    expect(bySource('sp-elsewhere')).toHaveLength(1);
  });

  it('privatizeMountPoint makes a shared or slave mount point private, once; a plain directory is left', async () => {
    const target = dir('root');
    bindByPath(dir('data/r'), target);
    share(target);
    expect(await mounts.privatizeMountPoint(target)).toBe(true);
    expect(mountsAtPath(target)[0]?.sharedGroup).toBeUndefined();
    expect(await mounts.privatizeMountPoint(target)).toBe(false);
    expect(await mounts.privatizeMountPoint(dir('plain'))).toBe(false);
  });
});

describeInNamespace.each(MOUNT_LAYERS.slice(0, 2))('%s, by identity', (_name, make) => {
  it('refuses a symlink on the way to the target or to the source, and mounts nothing', async () => {
    const mounts = make();
    const real = dir('real');
    symlinkSync(real, path.join(base, 'link'));
    const data = dir('data/v');
    await expect(
      mounts.ensureSharedMount(
        { kind: 'bind', directory: data },
        path.join(base, 'link'),
        'rshared',
      ),
    ).rejects.toMatchObject({ code: 'ELOOP', syscall: 'openat2' });
    // A target beneath the symlink, missing: refused, and nothing made through the symlink.
    await expect(
      mounts.ensureSharedMount(
        { kind: 'bind', directory: data },
        path.join(base, 'link/new'),
        'rshared',
      ),
    ).rejects.toMatchObject({ code: 'ELOOP' });
    expect(readdirSync(real)).toEqual([]);
    await expect(
      mounts.ensureSharedMount(
        { kind: 'bind', directory: path.join(base, 'link/v') },
        dir('t'),
        'shared',
      ),
    ).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(
      mounts.ensureSharedMount(
        { kind: 'adopt', directory: path.join(base, 'link') },
        dir('u'),
        'shared',
      ),
    ).rejects.toMatchObject({ code: 'ELOOP' });
    expect(mountinfo().filter((e) => e.mountPoint.startsWith(base + '/'))).toEqual([]);
  });

  it('a swap of the target between its check and the act does not redirect the mount', async () => {
    const target = dir('mnt/v');
    const elsewhere = dir('elsewhere');
    let swapped = false;
    const mounts = new SyscallMounts({
      fallback: _name.includes('fallback'),
      betweenCheckAndAct: (checked) => {
        renameSync(checked, path.join(base, 'mnt/v.old'));
        symlinkSync(elsewhere, checked);
        swapped = true;
      },
    });
    await mounts.ensureSharedMount({ kind: 'bind', directory: dir('data/v') }, target, 'rshared');
    expect(swapped).toBe(true);
    expect(mountsAtPath(path.join(base, 'mnt/v.old'))).toHaveLength(1);
    expect(mountsAtPath(elsewhere)).toEqual([]);
  });

  it('a mount point whose path now leads to another mount is not detached; umount by path would have', () => {
    const tree = new MountTree({ fallback: _name.includes('fallback') });
    const mp = dir('p/m');
    tmpfsAt(mp, 'sp-listed');
    const listed = tree.idOf(tree.stat(C.AT_FDCWD, mp));
    // The racer: the listed mount's parent directory moves away, another mount takes the name.
    renameSync(path.join(base, 'p'), path.join(base, 'p.old'));
    tmpfsAt(dir('p/m'), 'sp-other');
    expect(detachChecked(tree, tree.view(), mp, listed)).toBe('elsewhere');
    expect(bySource('sp-listed').map((e) => e.mountPoint)).toEqual([path.join(base, 'p.old/m')]);
    expect(bySource('sp-other')).toHaveLength(1);
    // The control: what a path-based unmount does with the same swap.
    expect(detachChecked(tree, tree.view(), mp, tree.idOf(tree.stat(C.AT_FDCWD, mp)))).toBe(
      'detached',
    );
    expect(bySource('sp-other')).toEqual([]);
  });
});

describeInNamespace('listmount and the mountinfo fallback', () => {
  it('read the same tree: the same mounts beneath, at the same depths, in the same groups', () => {
    const fast = new MountTree({ fallback: false });
    const slow = new MountTree({ fallback: true });
    if (fast.mode !== 'listmount') throw new Error('this kernel has no listmount: test not run');
    expect(slow.mode).toBe('mountinfo');
    tmpfsAt(dir('a'), 'sp-a');
    share(path.join(base, 'a'));
    tmpfsAt(dir('a/b'), 'sp-b');
    tmpfsAt(dir('a/b/c'), 'sp-c');
    tmpfsAt(dir('a/b/c'), 'sp-c2');
    tmpfsAt(dir('d'), 'sp-d');
    const shape = (tree: MountTree) => {
      const view = tree.view();
      const root = view.get(tree.idOf(tree.stat(C.AT_FDCWD, base)));
      if (!root) throw new Error('no root');
      return view
        .below(root.id)
        .map(({ node, depth }) => ({
          oldId: node.oldId,
          mountPoint: node.mountPoint,
          depth,
          shared: node.sharedGroup,
          parent: view.get(node.parent)?.oldId,
        }))
        .sort((x, y) => x.oldId - y.oldId);
    };
    const listed = shape(fast);
    expect(listed).toHaveLength(5);
    expect(listed.map((m) => m.depth)).toEqual([1, 2, 3, 4, 1]);
    expect(listed).toEqual(shape(slow));
  });

  it('the fallback is chosen by SHAREDPROP_MOUNT_LAYER=mountinfo when no option says', () => {
    const saved = process.env.SHAREDPROP_MOUNT_LAYER;
    const kernel = new MountTree({ fallback: false }).mode;
    try {
      process.env.SHAREDPROP_MOUNT_LAYER = 'mountinfo';
      expect(new MountTree().mode).toBe('mountinfo');
      expect(new MountTree({ fallback: false }).mode).toBe(kernel);
      process.env.SHAREDPROP_MOUNT_LAYER = 'auto';
      expect(new MountTree().mode).toBe(kernel);
    } finally {
      if (saved === undefined) delete process.env.SHAREDPROP_MOUNT_LAYER;
      else process.env.SHAREDPROP_MOUNT_LAYER = saved;
    }
  });

  it("give the same per-mount options: listmount's flags read as mountinfo writes them", () => {
    const fast = new MountTree({ fallback: false });
    const slow = new MountTree({ fallback: true });
    if (fast.mode !== 'listmount') throw new Error('this kernel has no listmount: test not run');
    // mount(2) flags without a name in constants.ts (include/uapi/linux/mount.h).
    const [NOSYMFOLLOW, NOATIME, NODIRATIME, STRICTATIME] = [256, 1024, 2048, 1 << 24];
    const cases: [string, number, string][] = [
      ['plain', 0, 'rw,relatime'],
      [
        'locked',
        C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC,
        'ro,nosuid,nodev,noexec,relatime',
      ],
      ['noatime', NOATIME | NODIRATIME, 'rw,noatime,nodiratime'],
      ['strict', STRICTATIME | NOSYMFOLLOW, 'rw,nosymfollow'],
    ];
    for (const [name, flags] of cases) {
      const at = dir(name);
      mount(`sp-${name}`, at, 'tmpfs', flags);
    }
    const options = (tree: MountTree, name: string) =>
      tree.view().entry(tree.idOf(tree.stat(C.AT_FDCWD, path.join(base, name))))?.mountOptions;
    for (const [name, , expected] of cases) {
      expect([name, options(fast, name)]).toEqual([name, expected]);
      expect([name, options(slow, name)]).toEqual([name, expected]);
    }
  });
});
