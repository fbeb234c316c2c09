/** The system call bindings against the real kernel: each one's success and its errno. */
import { mkdirSync, renameSync, statSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as C from '../../../src/system/kernel/constants.js';
import {
  close,
  fsconfigCreate,
  fsconfigSet,
  fsmount,
  fsopen,
  mount,
  mountSetattr,
  moveMount,
  openDirectory,
  openTree,
  statx,
  umount2,
  withFd,
} from '../../../src/system/kernel/calls.js';
import { KernelError } from '../../../src/system/kernel/ffi.js';
import { listmount, statmount } from '../../../src/system/kernel/statmount.js';
import { newTmpfs } from '../../../src/system/kernel/tmpfs.js';
import { describeInNamespace, mountsAtPath, scratch, dirIn } from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

const dir = (name: string) => dirIn(base, name);

/** Binds `source` at `target` through descriptors; returns nothing, throws the KernelError. */
function bind(source: string, target: string): void {
  withFd(openDirectory(source), (src) =>
    withFd(openTree(src, { clone: true, recursive: false }), (tree) =>
      withFd(openDirectory(target), (to) => moveMount(tree, to)),
    ),
  );
}

function thrown(work: () => unknown): KernelError {
  try {
    work();
  } catch (error) {
    if (error instanceof KernelError) return error;
    throw error;
  }
  throw new Error('did not throw');
}

describeInNamespace('openat2', () => {
  it('opens a directory, and says ENOENT and ENOTDIR like Node, with the call and the path', () => {
    const fd = openDirectory(dir('a'));
    expect(statx(fd).ino).toBe(BigInt(statSync(path.join(base, 'a')).ino));
    close(fd);
    const missing = thrown(() => openDirectory(path.join(base, 'missing')));
    expect(missing).toMatchObject({ code: 'ENOENT', syscall: 'openat2' });
    expect(missing.message).toBe(
      `ENOENT: no such file or directory, openat2 '${path.join(base, 'missing')}'`,
    );
    writeFileSync(path.join(base, 'file'), '');
    expect(thrown(() => openDirectory(path.join(base, 'file'))).code).toBe('ENOTDIR');
  });

  it('refuses a symlink anywhere on the way, last component or not (ELOOP)', () => {
    dir('real/sub');
    symlinkSync(path.join(base, 'real'), path.join(base, 'link'));
    expect(thrown(() => openDirectory(path.join(base, 'link'))).code).toBe('ELOOP');
    expect(thrown(() => openDirectory(path.join(base, 'link/sub'))).code).toBe('ELOOP');
    expect(thrown(() => openDirectory('/proc/self/cwd')).code).toBe('ELOOP');
    close(openDirectory(path.join(base, 'real/sub')));
  });
});

describeInNamespace('statx', () => {
  it('gives the mount ID of mountinfo, the unique one where the kernel has it, and the mount root', () => {
    const target = dir('t');
    const plain = withFd(openDirectory(target), (fd) => statx(fd, '', false));
    expect(plain.mountRoot).toBe(false);
    bind(dir('s'), target);
    const old = withFd(openDirectory(target), (fd) => statx(fd, '', false));
    expect(old.mountRoot).toBe(true);
    expect(old.mountId).toBe(mountsAtPath(target)[0]?.id);
    const unique = withFd(openDirectory(target), (fd) => statx(fd));
    // Unique IDs start above 2^31 (MNT_UNIQUE_ID_OFFSET), apart from the reused ones.
    expect(unique.uniqueMountId).toBeGreaterThan(0x7fffffffn);
    expect(unique.mountId).toBeUndefined();
    expect(statx(C.AT_FDCWD, target, false).mountId).toBe(old.mountId);
    expect(thrown(() => statx(C.AT_FDCWD, path.join(base, 'nope'))).code).toBe('ENOENT');
  });
});

describeInNamespace('open_tree and move_mount', () => {
  it('clone a directory and attach it where a descriptor points; EINVAL for a mount that is no clone', () => {
    const source = dir('src');
    writeFileSync(path.join(source, 'marker'), 'x');
    bind(source, dir('dst'));
    expect(readFileSync(path.join(base, 'dst/marker'), 'utf8')).toBe('x');
    expect(mountsAtPath(path.join(base, 'dst'))).toHaveLength(1);
    // A plain directory's descriptor is not a mount to move.
    const error = withFd(openDirectory(dir('plain')), (from) =>
      withFd(openDirectory(dir('to')), (to) => thrown(() => moveMount(from, to))),
    );
    expect(error).toMatchObject({ code: 'EINVAL', syscall: 'move_mount' });
    expect(thrown(() => openTree(999_999, { clone: true, recursive: false })).code).toBe('EBADF');
  });

  it('recursive clones bring the submounts along', () => {
    bind(dir('inner-src'), dir('outer/inner'));
    withFd(openDirectory(path.join(base, 'outer')), (src) =>
      withFd(openTree(src, { clone: true, recursive: true }), (tree) =>
        withFd(openDirectory(dir('copy')), (to) => moveMount(tree, to)),
      ),
    );
    expect(mountsAtPath(path.join(base, 'copy/inner'))).toHaveLength(1);
  });
});

describeInNamespace('mount_setattr', () => {
  it('sets propagation and read-only; EINVAL on a directory that is no mount root', () => {
    const target = dir('m');
    bind(dir('s'), target);
    withFd(openDirectory(target), (fd) => mountSetattr(fd, { propagation: 'shared' }));
    expect(mountsAtPath(target)[0]?.sharedGroup).toBeDefined();
    withFd(openDirectory(target), (fd) => mountSetattr(fd, { propagation: 'private' }));
    expect(mountsAtPath(target)[0]?.sharedGroup).toBeUndefined();
    withFd(openDirectory(target), (fd) => mountSetattr(fd, { set: C.MOUNT_ATTR_RDONLY }));
    expect(() => writeFileSync(path.join(target, 'f'), '')).toThrow(/EROFS/);
    const error = withFd(openDirectory(dir('plain')), (fd) =>
      thrown(() => mountSetattr(fd, { propagation: 'shared' })),
    );
    expect(error).toMatchObject({ code: 'EINVAL', syscall: 'mount_setattr' });
  });
});

describeInNamespace('fsopen, fsconfig, fsmount', () => {
  it('make a tmpfs with size, mode, uid and gid, nosuid and nodev', () => {
    const target = dir('tmp');
    const mnt = newTmpfs('nosuid,nodev,mode=0710,uid=0,gid=0,size=2m');
    withFd(mnt, (fd) => withFd(openDirectory(target), (to) => moveMount(fd, to)));
    const [entry] = mountsAtPath(target);
    expect(entry).toMatchObject({ fsType: 'tmpfs', source: 'sharedprop' });
    expect(entry?.mountOptions.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect(entry?.superOptions).toContain('size=2048k');
    expect(statSync(target).mode & 0o7777).toBe(0o710);
  });

  it('say ENODEV for an unknown filesystem, EINVAL for a bad option', () => {
    expect(thrown(() => fsopen('no-such-fs'))).toMatchObject({ code: 'ENODEV', syscall: 'fsopen' });
    const fs = fsopen('tmpfs');
    try {
      const error = thrown(() => fsconfigSet(fs, 'size', 'lots'));
      expect(error).toMatchObject({ code: 'EINVAL', syscall: 'fsconfig' });
      expect(error.message).toContain("fsconfig 'size=lots'");
    } finally {
      close(fs);
    }
    const fresh = fsopen('tmpfs');
    try {
      // fsmount before the superblock is created.
      expect(thrown(() => fsmount(fresh, 0)).code).toBe('EINVAL');
      fsconfigCreate(fresh);
      close(fsmount(fresh, 0));
    } finally {
      close(fresh);
    }
  });
});

describeInNamespace('umount2, mount and close', () => {
  it('unmount a mount point, never through a final symlink; EINVAL for a directory that is none', () => {
    const target = dir('u');
    bind(dir('s'), target);
    symlinkSync(target, path.join(base, 'link'));
    expect(thrown(() => umount2(path.join(base, 'link'))).code).toBe('EINVAL');
    expect(mountsAtPath(target)).toHaveLength(1);
    umount2(target);
    expect(mountsAtPath(target)).toHaveLength(0);
    expect(thrown(() => umount2(target))).toMatchObject({ code: 'EINVAL', syscall: 'umount2' });
  });

  it('detach lazily a busy mount', () => {
    const target = dir('busy');
    bind(dir('s'), target);
    const fd = openDirectory(target);
    try {
      expect(thrown(() => umount2(target)).code).toBe('EBUSY');
      umount2(target, { detach: true });
      expect(mountsAtPath(target)).toHaveLength(0);
    } finally {
      close(fd);
    }
  });

  it('mount(2) binds by path; ENOENT for a missing source; close says EBADF', () => {
    const target = dir('m2');
    mount(dir('s'), target, null, C.MS_BIND);
    expect(mountsAtPath(target)).toHaveLength(1);
    expect(thrown(() => mount(path.join(base, 'none'), target, null, C.MS_BIND)).code).toBe(
      'ENOENT',
    );
    expect(thrown(() => close(999_999))).toMatchObject({ code: 'EBADF', syscall: 'close' });
  });
});

const hasListmount = (() => {
  try {
    return statx(C.AT_FDCWD, '/').uniqueMountId !== undefined;
  } catch {
    return false;
  }
})();

(hasListmount ? describeInNamespace : describe.skip)('statmount and listmount (6.8+)', () => {
  it('read one mount as mountinfo shows it, and list its children by unique ID', () => {
    const target = dir('top');
    bind(dir('s'), target);
    withFd(openDirectory(target), (fd) => mountSetattr(fd, { propagation: 'shared' }));
    bind(dir('s2'), dir('top/child'));
    const id = withFd(openDirectory(target), (fd) => statx(fd).uniqueMountId as bigint);
    const stat = statmount(id);
    const [entry] = mountsAtPath(target);
    expect(stat).toMatchObject({
      id,
      oldId: entry?.id,
      oldParentId: entry?.parentId,
      mountPoint: target,
      root: entry?.root,
      device: entry?.device,
      fsType: 'tmpfs',
      sharedGroup: entry?.sharedGroup,
    });
    const children = listmount(id).map((child) => statmount(child).mountPoint);
    expect(children).toEqual([path.join(target, 'child')]);
    expect(thrown(() => statmount(id + 1_000_000n))).toMatchObject({ code: 'ENOENT' });
    expect(thrown(() => listmount(id + 1_000_000n)).code).toBe('ENOENT');
  });

  it('listmount reads page after page (512 each), and stops once it has `limit`', () => {
    const target = dir('many');
    bind(dir('s'), target);
    const source = dir('one');
    for (let i = 0; i < 1_100; i++) bind(source, dir(`many/${i}`));
    const id = withFd(openDirectory(target), (fd) => statx(fd).uniqueMountId as bigint);
    const all = listmount(id);
    expect(all).toHaveLength(1_100);
    expect(new Set(all).size).toBe(1_100);
    expect(listmount(id, 1)).toEqual(all.slice(0, 512));
    expect(listmount(id, 512)).toEqual(all.slice(0, 512));
    expect(listmount(id, 513)).toEqual(all.slice(0, 1_024));
  });

  it('reads a mount point longer than its buffer (EOVERFLOW: a larger one), as the kernel gives it', () => {
    // 40 levels of 250-character names: a 10,000-character path, made a level at a time (no
    // call takes a path that long) and mounted on through a descriptor.
    const name = 'n'.repeat(250);
    const cwd = process.cwd();
    let id: bigint;
    process.chdir(base);
    try {
      for (let i = 0; i < 40; i++) {
        mkdirSync(name);
        process.chdir(name);
      }
      mkdirSync('m');
      withFd(openDirectory('m'), (at) => withFd(newTmpfs('size=1m'), (fs) => moveMount(fs, at)));
      id = withFd(openDirectory('m'), (fd) => statx(fd).uniqueMountId as bigint);
    } finally {
      process.chdir(cwd);
    }
    const { mountPoint, fsType } = statmount(id);
    expect(fsType).toBe('tmpfs');
    expect(mountPoint).toBe(`${base}/${`${name}/`.repeat(40)}m`);
    expect(mountPoint.length).toBeGreaterThan(10_000);
  });
});

describeInNamespace('a rename between open and act', () => {
  it('does not redirect a mount made through the descriptor; a mount by path follows the swap', () => {
    const victim = dir('victim');
    const elsewhere = dir('elsewhere');
    writeFileSync(path.join(dir('src'), 'marker'), 'src');
    const held = openDirectory(victim);
    try {
      // The racer: the checked directory moves away and a symlink to another takes its name.
      renameSync(victim, path.join(base, 'victim.old'));
      symlinkSync(elsewhere, victim);
      withFd(openDirectory(path.join(base, 'src')), (src) =>
        withFd(openTree(src, { clone: true, recursive: false }), (tree) => moveMount(tree, held)),
      );
    } finally {
      close(held);
    }
    expect(mountsAtPath(path.join(base, 'victim.old'))).toHaveLength(1);
    expect(mountsAtPath(elsewhere)).toHaveLength(0);
    // The same swap against a path-based bind: the racer wins.
    mount(path.join(base, 'src'), victim, null, C.MS_BIND);
    expect(mountsAtPath(elsewhere)).toHaveLength(1);
  });
});
