/**
 * The `Mounts` contract: the same cases against every implementation (test/support/mount-worlds.ts),
 * the real MountSystem in a mount namespace of our own and the fake the driver's unit tests use,
 * with the same answers expected of each. A fake that answers differently from the kernel would
 * let a driver bug pass the unit tier.
 */
import { jest } from '@jest/globals';
import path from 'node:path';
import { isWithin, mountsAt, type MountEntry } from '../../../src/system/mountinfo.js';
import { StackedMountsError } from '../../../src/system/mounts.js';
import { implementations, type MountsWorld } from '../../support/mount-worlds.js';

jest.setTimeout(30_000);

describe.each(implementations)('Mounts contract: $name', ({ create }) => {
  let world: MountsWorld;
  let base: string;
  const at = (...names: string[]) => path.join(base, ...names);

  beforeEach(async () => {
    world = await create();
    base = world.base;
  });
  afterEach(async () => {
    await world?.dispose();
    world = undefined as unknown as MountsWorld; // a failed create() leaves none to dispose
  });

  const stackAt = async (dir: string) => mountsAt(await world.mounts.readAbout(dir), dir);
  /** The distinct mount points strictly beneath `dir`, relative to it, sorted. */
  async function under(dir: string): Promise<string[]> {
    const entries = await world.mounts.readAbout(dir);
    const points = entries
      .filter((e) => e.mountPoint !== dir && isWithin(e.mountPoint, dir))
      .map((e) => path.relative(dir, e.mountPoint));
    return [...new Set(points)].sort();
  }
  /** The mounts in the whole table in `entry`'s peer group. */
  async function peersOf(entry: MountEntry): Promise<number[]> {
    return (await world.mounts.read())
      .filter((e) => e.sharedGroup !== undefined && e.sharedGroup === entry.sharedGroup)
      .map((e) => e.id);
  }
  async function boundVolume(): Promise<{ source: string; target: string; entry: MountEntry }> {
    const source = at('src');
    await world.mkdir(source);
    const target = at('vol');
    const entry = await world.mounts.ensureSharedMount(
      { kind: 'bind', directory: source },
      target,
      'rshared',
    );
    return { source, target, entry };
  }

  describe('ensureSharedMount', () => {
    it('binds a directory once, shared, in a peer group of its own although its source is on a shared mount; again adds nothing', async () => {
      const { source, target, entry } = await boundVolume();
      expect(await stackAt(target)).toEqual([entry]);
      expect(entry.sharedGroup).toBeDefined();
      expect(await peersOf(entry)).toEqual([entry.id]);
      const again = await world.mounts.ensureSharedMount(
        { kind: 'bind', directory: source },
        target,
        'rshared',
      );
      expect(again.id).toBe(entry.id);
      expect((await stackAt(target)).map((e) => e.id)).toEqual([entry.id]);
      await world.mkdir(at('other'));
      expect(await world.mounts.showsDirectory(target, source)).toBe(true);
      expect(await world.mounts.showsDirectory(target, at('other'))).toBe(false);
      expect(await world.mounts.showsDevice(target, entry.device)).toBe(true);
    });

    it('mounts a tmpfs once, shared, in a peer group of its own; again adds nothing', async () => {
      const target = at('tmp');
      const tmpfs = { kind: 'tmpfs', options: 'size=1m,mode=0755' } as const;
      const entry = await world.mounts.ensureSharedMount(tmpfs, target, 'rshared');
      expect(entry.fsType).toBe('tmpfs');
      expect(await stackAt(target)).toEqual([entry]);
      expect(await peersOf(entry)).toEqual([entry.id]);
      expect((await world.mounts.ensureSharedMount(tmpfs, target, 'rshared')).id).toBe(entry.id);
      expect(await stackAt(target)).toHaveLength(1);
      expect(await world.mounts.showsDevice(target, entry.device)).toBe(true);
      expect(await world.mounts.showsDevice(target, '0:1')).toBe(false);
    });

    it('peels mounts stacked on its own down to that one; until then the path shows the top mount', async () => {
      const { source, target, entry } = await boundVolume();
      await world.mkdir(at('elsewhere'));
      await world.bindOutside(at('elsewhere'), target);
      await world.tmpfsOutside(target);
      expect(await stackAt(target)).toHaveLength(3);
      // What the path shows is the top mount's, not what the driver mounted first.
      expect(await world.mounts.showsDirectory(target, source)).toBe(false);
      expect(await world.mounts.showsDevice(target, entry.device)).toBe(false);
      const kept = await world.mounts.ensureSharedMount(
        { kind: 'bind', directory: source },
        target,
        'rshared',
      );
      expect(kept.id).toBe(entry.id);
      expect((await stackAt(target)).map((e) => e.id)).toEqual([entry.id]);
      expect(await world.mounts.showsDirectory(target, source)).toBe(true);
    });

    it('a tmpfs volume with a bind stacked on it no longer shows its device', async () => {
      const target = at('tmp');
      const entry = await world.mounts.ensureSharedMount(
        { kind: 'tmpfs', options: 'size=1m' },
        target,
        'rshared',
      );
      await world.mkdir(at('elsewhere'));
      await world.bindOutside(at('elsewhere'), target);
      expect(await world.mounts.showsDevice(target, entry.device)).toBe(false);
      expect(await world.mounts.showsDirectory(target, at('elsewhere'))).toBe(true);
    });
  });

  describe('an adopted directory', () => {
    /** A directory with a namespace-like mount in it, adopted by the volume `vol`. */
    async function adopted(): Promise<{ dir: string; target: string; entry: MountEntry }> {
      const dir = at('netns');
      await world.mkdir(at('netns', 'ns'));
      await world.tmpfsOutside(at('netns', 'ns'));
      const target = at('vol');
      const entry = await world.mounts.ensureSharedMount(
        { kind: 'adopt', directory: dir },
        target,
        'rshared',
      );
      return { dir, target, entry };
    }

    it('becomes a shared mount point of its own with the volume as its peer; mounts made in either show in the other', async () => {
      const { dir, target, entry } = await adopted();
      const top = (await stackAt(dir)).at(-1);
      expect(top?.sharedGroup).toBeDefined();
      expect(entry.sharedGroup).toBe(top?.sharedGroup);
      expect((await peersOf(entry)).sort()).toEqual([top?.id, entry.id].sort());
      expect(await stackAt(target)).toHaveLength(1);
      expect(await under(target)).toEqual(['ns']); // its submounts came along (--rbind)
      await world.mkdir(at('netns', 'late'));
      await world.tmpfsOutside(at('netns', 'late'));
      await world.mkdir(at('vol', 'from-volume'));
      await world.tmpfsOutside(at('vol', 'from-volume'));
      expect(await under(target)).toEqual(['from-volume', 'late', 'ns']);
      expect(await under(dir)).toEqual(['from-volume', 'late', 'ns']);
      // Adopted again (a restart): nothing more.
      await world.mounts.ensureSharedMount({ kind: 'adopt', directory: dir }, target, 'rshared');
      expect(await stackAt(target)).toHaveLength(1);
      expect(await stackAt(dir)).toHaveLength(1);
    });

    it('a mount put over the directory on the host stacks on the volume too, and is never peeled off', async () => {
      const { dir, target } = await adopted();
      await world.tmpfsOutside(dir);
      expect(await stackAt(target)).toHaveLength(2);
      const top = await world.mounts.ensureSharedMount(
        { kind: 'adopt', directory: dir },
        target,
        'rshared',
      );
      expect(top.fsType).toBe('tmpfs');
      expect((await stackAt(target)).map((e) => e.id)).toEqual(expect.arrayContaining([top.id]));
      expect(await stackAt(target)).toHaveLength(2);
      expect(await stackAt(dir)).toHaveLength(2);
    });

    it('detachView removes the volume and its submounts from this view only: the directory keeps its own', async () => {
      const { dir, target } = await adopted();
      await world.mkdir(at('netns', 'late'));
      await world.tmpfsOutside(at('netns', 'late'));
      const report = await world.mounts.detachView(target);
      expect(report.detached).toEqual(expect.arrayContaining([target, at('vol', 'late')]));
      expect(report.lazy).toEqual([]);
      expect(await world.mounts.readAbout(target)).toEqual([]);
      // The peer: the adopted directory still shows its mounts.
      expect(await under(dir)).toEqual(['late', 'ns']);
      expect((await stackAt(dir)).at(-1)?.sharedGroup).toBeDefined();
    });

    it('detachAll (plain umount) reaches through the peer group and unmounts the directory’s own mounts: why detachView exists', async () => {
      const { dir, target } = await adopted();
      await world.mkdir(at('netns', 'late'));
      await world.tmpfsOutside(at('netns', 'late'));
      await world.mounts.detachAll(target, { includeSelf: true });
      expect(await world.mounts.readAbout(target)).toEqual([]);
      expect(await under(dir)).not.toContain('late');
    });
  });

  describe('detachView', () => {
    it('refuses a stack with StackedMountsError and detaches nothing', async () => {
      const { target } = await boundVolume();
      await world.tmpfsOutside(target);
      const refusal = world.mounts.detachView(target);
      await expect(refusal).rejects.toThrow(new StackedMountsError(2));
      await expect(refusal).rejects.toBeInstanceOf(StackedMountsError);
      expect(await stackAt(target)).toHaveLength(2);
    });

    it('of a path that is no mount point: nothing to do', async () => {
      await world.mkdir(at('plain'));
      expect(await world.mounts.detachView(at('plain'))).toEqual({ detached: [], lazy: [] });
    });
  });

  describe('detachAll', () => {
    it('detaches the deepest first, and the mount point itself (its whole stack) only with includeSelf', async () => {
      const { source, target } = await boundVolume();
      await world.mkdir(at('vol', 'a'));
      await world.tmpfsOutside(at('vol', 'a'));
      await world.mkdir(at('vol', 'a', 'b'));
      await world.tmpfsOutside(at('vol', 'a', 'b'));
      await world.mkdir(at('vol', 'c'));
      await world.tmpfsOutside(at('vol', 'c'));
      const below = await world.mounts.detachAll(target, { includeSelf: false });
      expect(below).toEqual({
        detached: [at('vol', 'a', 'b'), at('vol', 'c'), at('vol', 'a')],
        lazy: [],
      });
      expect(await stackAt(target)).toHaveLength(1);
      expect(await under(target)).toEqual([]);
      await world.bindOutside(source, target);
      const all = await world.mounts.detachAll(target, { includeSelf: true });
      expect(all).toEqual({ detached: [target, target], lazy: [] });
      expect(await world.mounts.readAbout(target)).toEqual([]);
    });

    it('detaches a busy mount lazily and says so', async () => {
      const { target } = await boundVolume();
      await world.mkdir(at('vol', 'busy'));
      await world.tmpfsOutside(at('vol', 'busy'));
      const release = await world.hold(at('vol', 'busy'));
      try {
        const report = await world.mounts.detachAll(target, { includeSelf: true });
        expect(report).toEqual({
          detached: [at('vol', 'busy'), target],
          lazy: [at('vol', 'busy')],
        });
        expect(await world.mounts.readAbout(target)).toEqual([]);
      } finally {
        await release();
      }
    });
  });

  describe('privatizeMountPoint', () => {
    it('makes a shared mount point and the mounts beneath it private; then, or on a plain directory, changes nothing', async () => {
      const { target } = await boundVolume();
      await world.mkdir(at('vol', 'sub'));
      await world.tmpfsOutside(at('vol', 'sub'));
      expect(await world.mounts.privatizeMountPoint(target)).toBe(true);
      for (const entry of await world.mounts.readAbout(target)) {
        expect([entry.mountPoint, entry.sharedGroup, entry.masterGroup]).toEqual([
          entry.mountPoint,
          undefined,
          undefined,
        ]);
      }
      expect(await under(target)).toEqual(['sub']);
      expect(await world.mounts.privatizeMountPoint(target)).toBe(false);
      await world.mkdir(at('plain'));
      expect(await world.mounts.privatizeMountPoint(at('plain'))).toBe(false);
    });
  });

  describe('resolveDirectory', () => {
    it('follows symlinks (chained, and on the way), says what is no directory, and what does not exist', async () => {
      await world.mkdir(at('real', 'sub'));
      await world.symlink(at('real'), at('link'));
      await world.symlink(at('link'), at('chain'));
      await world.symlink(at('missing'), at('dangling'));
      await world.writeFile(at('real', 'file'));
      expect(await world.mounts.resolveDirectory(at('chain', 'sub'))).toEqual({
        realPath: at('real', 'sub'),
        isDirectory: true,
      });
      expect(await world.mounts.resolveDirectory(at('link', 'file'))).toEqual({
        realPath: at('real', 'file'),
        isDirectory: false,
      });
      expect(await world.mounts.resolveDirectory(at('missing'))).toBeUndefined();
      expect(await world.mounts.resolveDirectory(at('dangling'))).toBeUndefined();
    });
  });
});
