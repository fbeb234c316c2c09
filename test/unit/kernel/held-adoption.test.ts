/**
 * Directories held by descriptor and known by identity (held-directory.ts), and the bind of an
 * adopted directory through that descriptor (held-bind.ts, and both mount layers given `held`),
 * against the real kernel in the unit tier's own mount namespace.
 */
import { readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mountSetattr, openDirectory, statx, withFd } from '../../../src/system/kernel/calls.js';
import { bindTree, sharedMountPointAt } from '../../../src/system/held-bind.js';
import {
  duplicate,
  holdDirectory,
  identityBeneath,
  identityOf,
  lineageOf,
  passesThrough,
  type HeldDirectory,
} from '../../../src/system/held-directory.js';
import { liesWithin } from '../../../src/model/directory-identity.js';
import {
  describeInNamespace,
  mountinfo,
  mountsAtPath,
  scratch,
  dirIn,
  bindByPath,
  tmpfsAt,
  MOUNT_LAYERS,
} from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

const dir = (name: string) => dirIn(base, name);
const devIno = (p: string) => {
  const s = statSync(p, { bigint: true });
  return { ino: String(s.ino), dev: s.dev };
};

describeInNamespace('a directory held by descriptor', () => {
  it('has the identity stat gives, and a birth time where the filesystem keeps one', () => {
    const d = dir('a');
    const held = holdDirectory(d);
    try {
      expect(held.path).toBe(d);
      expect(held.identity.ino).toBe(devIno(d).ino);
      expect(held.identity.device).toBe(statx(held.fd).device);
      const birth = statSync(d, { bigint: true }).birthtimeNs;
      if (birth > 0n) {
        expect(held.identity.btime).toBe(
          `${birth / 1_000_000_000n}.${String(birth % 1_000_000_000n).padStart(9, '0')}`,
        );
      }
    } finally {
      held.release();
    }
  });

  it('knows every directory above it, up to the root, by identity', () => {
    const d = dir('a/b/c');
    const held = holdDirectory(d);
    try {
      const names = [d, path.dirname(d), path.dirname(path.dirname(d)), base];
      names.forEach((name, i) => expect(held.lineage[i]?.ino).toBe(devIno(name).ino));
      expect(held.lineage.at(-1)).toEqual(withFd(openDirectory('/'), identityOf));
      expect(held.lineage.length).toBe(d.split('/').length);
      expect(withFd(openDirectory('/'), lineageOf)).toHaveLength(1);
    } finally {
      held.release();
    }
  });

  it('reached through a bind alias, its identity and what lies above it are the target', () => {
    const target = dir('reserved');
    dir('reserved/sub');
    const alias = dir('srv/alias');
    bindByPath(target, alias);
    const reserved = holdDirectory(target);
    const viaAlias = holdDirectory(path.join(alias, 'sub'));
    const aliasRoot = holdDirectory(alias);
    try {
      expect(aliasRoot.identity).toEqual(reserved.identity);
      expect(passesThrough(viaAlias.lineage, reserved.identity)).toBe(true);
      expect(passesThrough(reserved.lineage, viaAlias.identity)).toBe(false);
      // `..` of the alias's root is the directory it is mounted on: /srv, not the target's parent.
      expect(viaAlias.lineage[2]?.ino).toBe(devIno(path.join(base, 'srv')).ino);
    } finally {
      [reserved, viaAlias, aliasRoot].forEach((h) => h.release());
    }
  });

  it('is refused through a symlink (ELOOP), when missing (ENOENT) or a file (ENOTDIR)', () => {
    symlinkSync(dir('real'), path.join(base, 'link'));
    writeFileSync(path.join(base, 'file'), 'x');
    expect(() => holdDirectory(path.join(base, 'link'))).toThrow(/^ELOOP/);
    expect(() => holdDirectory(path.join(base, 'link/x'))).toThrow(/^ELOOP/);
    expect(() => holdDirectory(path.join(base, 'none'))).toThrow(/^ENOENT/);
    expect(() => holdDirectory(path.join(base, 'file'))).toThrow(/^ENOTDIR/);
  });

  it('beneath a mount over it, a name still has its directory: identityBeneath finds it', () => {
    const d = dir('covered');
    const below = holdDirectory(d);
    try {
      tmpfsAt(d, 'sp-over');
      const top = holdDirectory(d);
      try {
        expect(top.identity).not.toEqual(below.identity);
        expect(identityBeneath(d)).toEqual(below.identity);
        expect(identityBeneath(path.join(base, 'covered'))).toEqual(below.identity);
        expect(mountsAtPath(d)).toHaveLength(1);
      } finally {
        top.release();
      }
      expect(() => identityBeneath(path.join(base, 'none'))).toThrow(/^ENOENT/);
    } finally {
      below.release();
    }
  });

  it('is released once; a duplicate holds the same directory', () => {
    const held = holdDirectory(dir('a'));
    const copy = duplicate(held.fd);
    expect(copy).not.toBe(held.fd);
    withFd(copy, (fd) => expect(identityOf(fd)).toEqual(held.identity));
    held.release();
    expect(() => statx(held.fd)).toThrow(/^EBADF/);
    expect(() => held.release()).not.toThrow();
  });
});

describeInNamespace('the bind of an adopted directory through its descriptor', () => {
  it('a plain directory becomes a shared mount point of its own; the view is its peer', async () => {
    const d = dir('parent/netns');
    writeFileSync(path.join(d, 'marker'), 'netns');
    const held = holdDirectory(d);
    try {
      const top = await sharedMountPointAt(held, () => {
        throw new Error('not asked: it was no mount point');
      });
      const [own] = mountsAtPath(d);
      expect(own?.sharedGroup).toBeDefined();
      const target = dir('view');
      withFd(top, (fd) => {
        expect(statx(fd).mountRoot).toBe(true);
        withFd(openDirectory(target), (to) => bindTree(fd, to, 'rshared'));
      });
      const [view] = mountsAtPath(target);
      expect(view?.sharedGroup).toBe(own?.sharedGroup);
      expect(readFileSync(path.join(target, 'marker'), 'utf8')).toBe('netns');
    } finally {
      held.release();
    }
  });

  it('a mount root that is not shared is made shared, and one that is, left as it is', async () => {
    const d = dir('tmp');
    tmpfsAt(d, 'sp-own');
    const held = holdDirectory(d);
    const asked: number[] = [];
    try {
      const fd = await sharedMountPointAt(held, (id) => {
        asked.push(id);
        return false;
      });
      withFd(fd, () => undefined);
      const [first] = mountsAtPath(d);
      expect(asked).toEqual([first?.id]);
      expect(mountsAtPath(d)).toHaveLength(1);
      expect(first?.sharedGroup).toBeDefined();
      withFd(await sharedMountPointAt(held, () => true), () => undefined);
      expect(mountsAtPath(d)).toEqual([first]);
    } finally {
      held.release();
    }
  });

  it('shared mode binds without making what is beneath the view shared', async () => {
    const d = dir('netns');
    tmpfsAt(dir('netns/inner'), 'sp-inner');
    withFd(openDirectory(path.join(d, 'inner')), (fd) =>
      mountSetattr(fd, { propagation: 'private' }),
    );
    const held = holdDirectory(d);
    try {
      const top = await sharedMountPointAt(held, () => false);
      const target = dir('view');
      withFd(top, (from) => withFd(openDirectory(target), (to) => bindTree(from, to, 'shared')));
      expect(mountsAtPath(path.join(target, 'inner'))[0]?.sharedGroup).toBeUndefined();
      const other = dir('view2');
      const again = holdDirectory(d);
      try {
        const top2 = await sharedMountPointAt(again, () => true);
        withFd(top2, (from) => withFd(openDirectory(other), (to) => bindTree(from, to, 'rshared')));
        expect(mountsAtPath(path.join(other, 'inner'))[0]?.sharedGroup).toBeDefined();
      } finally {
        again.release();
      }
    } finally {
      held.release();
    }
  });
});

describeInNamespace.each(MOUNT_LAYERS)('%s, given the held directory', (_name, make) => {
  it('binds the directory it checked, though its parent was swapped for a symlink since', async () => {
    const mounts = make();
    const checked = dir('srv/hd');
    writeFileSync(path.join(checked, 'marker'), 'checked');
    const other = dir('other/hd');
    writeFileSync(path.join(other, 'marker'), 'other');
    const held = await mounts.holdDirectory(checked);
    const target = path.join(base, 'mnt/v');
    try {
      // The attacker's swap, between the check and the bind.
      renameSync(path.join(base, 'srv'), path.join(base, 'srv.moved'));
      symlinkSync(path.join(base, 'other'), path.join(base, 'srv'));
      const entry = await mounts.ensureSharedMount(
        { kind: 'adopt', directory: checked, held },
        target,
        'rshared',
      );
      expect(readFileSync(path.join(target, 'marker'), 'utf8')).toBe('checked');
      const [own] = mountsAtPath(path.join(base, 'srv.moved/hd'));
      expect(own?.sharedGroup).toBeDefined();
      expect(entry.sharedGroup).toBe(own?.sharedGroup);
      expect(mountinfo().filter((e) => e.mountPoint.startsWith(path.join(base, 'other')))).toEqual(
        [],
      );
      // Made again: nothing new, nothing stacked.
      const again = await mounts.holdDirectory(path.join(base, 'srv.moved/hd'));
      try {
        await mounts.ensureSharedMount(
          { kind: 'adopt', directory: checked, held: again },
          target,
          'rshared',
        );
      } finally {
        again.release();
      }
      expect(mountsAtPath(target)).toHaveLength(1);
      expect(mountsAtPath(path.join(base, 'srv.moved/hd'))).toHaveLength(1);
    } finally {
      held.release();
    }
  });
});

describeInNamespace('a bind of a subdirectory, where the walk up cannot see above its root', () => {
  const holdAll = (reading: 'statmount' | 'mountinfo', ...paths: string[]) =>
    paths.map((p) => holdDirectory(p, reading));
  const releaseAll = (held: HeldDirectory[]) => held.forEach((h) => h.release());

  it.each(['statmount', 'mountinfo'] as const)(
    'by %s: its root is a place in its filesystem, so what lies above that root is known',
    (reading) => {
      dir('data/volumes/v1/_data/deeper');
      const alias = dir('srv/x');
      bindByPath(path.join(base, 'data/volumes/v1/_data'), alias);
      const held = holdAll(reading, dir('data'), path.join(alias, 'deeper'), dir('other'));
      const [data, viaAlias, other] = held as [HeldDirectory, HeldDirectory, HeldDirectory];
      try {
        const device = statx(data.fd).device;
        // The scratch directory is its tmpfs's root: places are paths from it.
        expect(data.place).toEqual({ device, path: '/data' });
        expect(viaAlias.place).toEqual({ device, path: '/data/volumes/v1/_data/deeper' });
        expect(viaAlias.boundRoots).toContainEqual({ device, path: '/data/volumes/v1/_data' });
        expect(data.boundRoots.filter((r) => r.device === device)).toEqual([]);
        // Its way up passes through the bind's mount point, never through data: identities
        // alone miss it; places do not.
        expect(passesThrough(viaAlias.lineage, data.identity)).toBe(false);
        expect(liesWithin(viaAlias, data)).toBe(true);
        expect(liesWithin(data, viaAlias)).toBe(false);
        expect(liesWithin(viaAlias, other)).toBe(false);
        expect(liesWithin(other, viaAlias)).toBe(false);
      } finally {
        releaseAll(held);
      }
    },
  );

  it.each(['statmount', 'mountinfo'] as const)(
    'by %s: a directory held through such a bind lies within what contains its target',
    (reading) => {
      const ops = dir('big/ops');
      const reservedName = dir('srv/ops');
      bindByPath(ops, reservedName);
      const held = holdAll(reading, reservedName, dir('big'), dir('big2'));
      const [reserved, big, beside] = held as [HeldDirectory, HeldDirectory, HeldDirectory];
      try {
        expect(passesThrough(reserved.lineage, big.identity)).toBe(false);
        expect(liesWithin(reserved, big)).toBe(true);
        expect(liesWithin(reserved, beside)).toBe(false);
      } finally {
        releaseAll(held);
      }
    },
  );

  it('without a reading, no place is read: none is given', () => {
    const alias = dir('srv/z');
    bindByPath(dir('c/d'), alias);
    const held = holdDirectory(alias);
    try {
      expect([held.place, held.boundRoots]).toEqual([undefined, []]);
    } finally {
      held.release();
    }
  });

  it('both readings find the same places', () => {
    dir('a/b');
    const alias = dir('srv/y');
    bindByPath(path.join(base, 'a/b'), alias);
    const [byId, byTable] = [holdDirectory(alias, 'statmount'), holdDirectory(alias, 'mountinfo')];
    try {
      expect(byId.place).toBeDefined();
      expect(byTable.place).toEqual(byId.place);
      expect(byTable.boundRoots).toEqual(byId.boundRoots);
      expect(byTable.lineage).toEqual(byId.lineage);
    } finally {
      byId.release();
      byTable.release();
    }
  });
});
