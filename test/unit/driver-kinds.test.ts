/**
 * Each kind of volume on its own (src/driver/kinds), over the fakes: what it checks, mounts,
 * finds sound, removes and undoes, and what Status says of it.
 */
import { adoptedKind } from '../../src/driver/kinds/adopted.js';
import { directoryKind } from '../../src/driver/kinds/directory.js';
import { VolumeKinds } from '../../src/driver/kinds/index.js';
import type { RecordOf } from '../../src/driver/kinds/kind.js';
import { tmpfsKind } from '../../src/driver/kinds/tmpfs.js';
import { VolumeError } from '../../src/model/errors.js';
import { parseOptions } from '../../src/model/options.js';
import { errno } from '../support/driver-fakes.js';
import { KIND_MOUNT_ROOT, kindContext, recordOf } from '../support/kind-context.js';

const mp = (name: string) => `${KIND_MOUNT_ROOT}/${name}`;

async function rejection(work: Promise<unknown>): Promise<VolumeError> {
  try {
    await work;
  } catch (error) {
    expect(error).toBeInstanceOf(VolumeError);
    return error as VolumeError;
  }
  throw new Error('expected a rejection');
}

describe('the lookup by kind', () => {
  it('gives each kind its own implementation', () => {
    const kinds = new VolumeKinds(kindContext().ctx);
    expect(kinds.of(parseOptions('v', {})).kind).toBe('directory');
    expect(kinds.of(parseOptions('v', { type: 'tmpfs' })).kind).toBe('tmpfs');
    expect(kinds.of(parseOptions('v', { path: '/srv/x' })).kind).toBe('path');
  });
});

describe('a directory volume', () => {
  const dir = (raw: Record<string, string> = {}) =>
    recordOf('d1', parseOptions('d1', raw)) as RecordOf<'directory'>;

  it('makes a data directory with its owner and mode, and binds it', async () => {
    const { ctx, store } = kindContext();
    const kind = directoryKind(ctx);
    expect(kind.serialCreate).toBe(false);
    expect(kind.dataDirectory(dir({ uid: '1', gid: '2', mode: '0700' }).options)).toEqual({
      uid: 1,
      gid: 2,
      mode: 0o700,
    });
    const record = dir();
    store.volumes.set('d1', record);
    expect(await kind.source(record)).toEqual({ kind: 'bind', directory: store.dataDir('d1') });
  });

  it('refuses to mount when its data directory is missing', async () => {
    const { ctx } = kindContext();
    const error = await rejection(directoryKind(ctx).source(dir()));
    expect(error.message).toBe('volume "d1": its data directory is missing from the data root');
  });

  it('is sound only with one shared bind of its own data directory', async () => {
    const { ctx, mounts, store } = kindContext();
    const kind = directoryKind(ctx);
    const record = dir();
    expect(await kind.isSound(record)).toBe(false);
    const own = mounts.bindOutside(mp('d1'), store.dataDir('d1'));
    expect(await kind.isSound(record)).toBe(false); // not shared
    own.sharedGroup = 3;
    expect(await kind.isSound(record)).toBe(true);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 4);
    expect(await kind.isSound(record)).toBe(false); // stacked
    mounts.table = [];
    mounts.bindOutside(mp('d1'), '/elsewhere', 5);
    expect(await kind.isSound(record)).toBe(false); // another directory
  });

  it('reaps only when told, and says where its data is on the host', () => {
    const kind = directoryKind(kindContext().ctx);
    expect(kind.reapsOnUnmount(dir().options)).toBe(false);
    expect(kind.reapsOnUnmount(dir({ reap: 'on-unmount' }).options)).toBe(true);
    expect(kind.status(dir())).toEqual({
      type: 'directory',
      dataPath: '/host/data/volumes/d1/_data',
    });
  });

  it('Remove retires the record first, detaches everything and hands back the trash', async () => {
    const { ctx, mounts, store } = kindContext();
    const record = dir();
    store.volumes.set('d1', record);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 3);
    mounts.mountOutside(`${mp('d1')}/leak`);
    const outcome = await directoryKind(ctx).remove(record);
    expect(outcome.trash).toMatch(/\/\.trash-\d+$/);
    expect(store.dirs.has(outcome.trash)).toBe(true);
    expect(store.volumes.has('d1')).toBe(false);
    expect(mounts.table).toEqual([]);
    expect(outcome.details).toEqual({ submountsDetached: [`${mp('d1')}/leak`] });
  });

  it('a Remove that cannot detach puts the volume back and remounts it', async () => {
    const { ctx, mounts, store, remounted } = kindContext();
    const record = dir();
    store.volumes.set('d1', record);
    mounts.bindOutside(mp('d1'), store.dataDir('d1'), 3);
    mounts.stuck.add(mp('d1'));
    await expect(directoryKind(ctx).remove(record)).rejects.toThrow(/EBUSY/);
    expect(store.volumes.get('d1')).toBe(record);
    expect(remounted).toEqual(['d1']);
  });

  it('a Remove on a read-only root changes nothing', async () => {
    const { ctx, store } = kindContext();
    store.volumes.set('d1', dir());
    store.fail.retire = 'EROFS';
    const error = await rejection(directoryKind(ctx).remove(dir()));
    expect(error.message).toBe('volume "d1" not removed: the data root is read-only');
    expect(store.volumes.has('d1')).toBe(true);
  });

  it('undoes a failed Create by detaching everything at its mount point', async () => {
    const { ctx, mounts } = kindContext();
    await directoryKind(ctx).undoCreate('d1');
    expect(mounts.calls).toEqual([`detach-all ${mp('d1')}`]);
  });
});

describe('a tmpfs volume', () => {
  const mem = (raw: Record<string, string> = {}) =>
    recordOf(
      't1',
      parseOptions(
        't1',
        { type: 'tmpfs', ...raw },
        { tmpfs: { pageSize: 4096, memoryBytes: 2n ** 40n } },
      ),
    ) as RecordOf<'tmpfs'>;

  it('mounts a tmpfs with its options and keeps nothing in the data root', async () => {
    const kind = tmpfsKind(kindContext().ctx);
    expect(kind.serialCreate).toBe(false); // Creates of tmpfs volumes never wait for each other
    expect(kind.dataDirectory(mem().options)).toBeUndefined();
    expect(await kind.source(mem({ size: '8m', uid: '3' }))).toEqual({
      kind: 'tmpfs',
      options: 'nosuid,nodev,mode=0755,uid=3,size=8388608',
    });
    expect(kind.status(mem({ size: '8m' }))).toEqual({ type: 'tmpfs', size: '8388608' });
    expect(kind.status(mem())).toStrictEqual({ type: 'tmpfs' });
  });

  it('is sound only with one shared tmpfs that the mount point shows', async () => {
    const { ctx, mounts } = kindContext();
    const kind = tmpfsKind(ctx);
    expect(await kind.isSound(mem())).toBe(false);
    mounts.mountOutside(mp('t1'), 'tmpfs', 3);
    expect(await kind.isSound(mem())).toBe(true);
    mounts.table = [];
    mounts.mountOutside(mp('t1'), 'tmpfs');
    expect(await kind.isSound(mem())).toBe(false); // not shared
    mounts.table = [];
    const first = mounts.mountOutside(mp('t1'), 'tmpfs', 3);
    mounts.table.push({ ...first, id: 999, parentId: first.id }); // the same tmpfs bound on it
    expect(await kind.isSound(mem())).toBe(false); // two stacked: Mount peels one off
  });

  it('a shared mount of another filesystem at its mount point is not its tmpfs', async () => {
    const { ctx, mounts } = kindContext();
    // The mount point shows this very mount (its device): only its type tells it apart.
    mounts.mountOutside(mp('t1'), 'ext4', 3);
    expect(await mounts.showsDevice(mp('t1'), mounts.at(mp('t1'))[0]!.device)).toBe(true);
    expect(await tmpfsKind(ctx).isSound(mem())).toBe(false);
  });

  it('records the identity of what it mounted; a failure to record is only logged', async () => {
    const { ctx, store, mounts } = kindContext();
    const top = mounts.mountOutside(mp('t1'), 'tmpfs', 3);
    await tmpfsKind(ctx).mounted(mem(), top);
    expect(store.identities.get(`${store.root}/t1`)).toEqual({
      bootId: 'boot-1',
      device: top.device,
      mountId: top.id,
    });
    store.readOnly = true;
    await expect(tmpfsKind(ctx).mounted(mem(), top)).resolves.toBeUndefined();
    const unknownBoot = kindContext({ bootId: () => undefined });
    await tmpfsKind(unknownBoot.ctx).mounted(mem(), top);
    expect(unknownBoot.store.identities.size).toBe(0);
  });

  it('Remove retires it first and detaches the tmpfs', async () => {
    const { ctx, mounts, store } = kindContext();
    store.volumes.set('t1', mem());
    mounts.mountOutside(mp('t1'), 'tmpfs', 3);
    const outcome = await tmpfsKind(ctx).remove(mem());
    expect(store.dirs.has(outcome.trash)).toBe(true);
    expect(mounts.table).toEqual([]);
  });
});

describe('a volume that adopts a host directory', () => {
  const adopted = (dir = '/srv/host') =>
    recordOf('a1', parseOptions('a1', { path: dir })) as RecordOf<'path'>;

  function world() {
    const w = kindContext();
    w.mounts.directories.add('/srv/host');
    return w;
  }

  it('is created one at a time, keeps nothing in the data root, and never reaps', () => {
    const kind = adoptedKind(world().ctx);
    expect(kind.serialCreate).toBe(true);
    expect(kind.dataDirectory(adopted().options)).toBeUndefined();
    expect(kind.reapsOnUnmount(adopted().options)).toBe(false);
    expect(kind.status(adopted())).toEqual({ type: 'path', dataPath: '/srv/host' });
  });

  it('checks the directory at Create: it exists, is real, and overlaps nothing reserved or adopted', async () => {
    const { ctx, mounts, store } = world();
    const kind = adoptedKind(ctx);
    expect(await kind.checkCreate('a1', adopted().options)).toEqual({
      ...adopted().options,
      identity: { device: '8:1', ino: expect.stringMatching(/^\d+$/), boot: 'boot-1' },
    });
    expect((await rejection(kind.checkCreate('a1', adopted('/srv/none').options))).message).toMatch(
      /does not exist/,
    );
    mounts.directories.add('/srv/real');
    mounts.symlinks.set('/srv/link', '/srv/real');
    expect((await rejection(kind.checkCreate('a1', adopted('/srv/link').options))).message).toMatch(
      /has a symlink on its way/,
    );
    mounts.directories.add('/fake');
    expect((await rejection(kind.checkCreate('a1', adopted('/fake').options))).message).toMatch(
      /overlaps the driver's own data root or mount root/,
    );
    store.volumes.set('other', recordOf('other', parseOptions('other', { path: '/srv/host' })));
    const taken = await rejection(kind.checkCreate('a1', adopted().options));
    expect(taken.kind).toBe('conflict');
    const managed = adoptedKind(kindContext({ config: { ...ctx.config, hostPaths: false } }).ctx);
    expect((await rejection(managed.checkCreate('a1', adopted().options))).message).toMatch(
      /the managed plugin does not see the host's directories/,
    );
  });

  it('mounts the directory itself, and not through a symlink put on its way since', async () => {
    const { ctx, mounts } = world();
    const kind = adoptedKind(ctx);
    expect(await kind.source(adopted())).toMatchObject({
      kind: 'adopt',
      directory: '/srv/host',
      held: { path: '/srv/host' },
    });
    mounts.directories.delete('/srv/host');
    mounts.directories.add('/elsewhere');
    mounts.symlinks.set('/srv/host', '/elsewhere');
    const error = await rejection(kind.source(adopted()));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/is now reached through a symlink/);
  });

  it('is sound only with one shared bind that shows the directory, in its peer group', async () => {
    const { ctx, mounts } = world();
    const kind = adoptedKind(ctx);
    expect(await kind.isSound(adopted())).toBe(false);
    mounts.mountOutside('/srv/host', 'ext4', 3); // the directory, a shared mount point
    mounts.bindOutside(mp('a1'), '/srv/host', 3);
    expect(await kind.isSound(adopted())).toBe(true);
    mounts.table = mounts.table.map((e) =>
      e.mountPoint === mp('a1') ? { ...e, sharedGroup: 4 } : e,
    );
    expect(await kind.isSound(adopted())).toBe(false); // cut off from the directory's group
  });

  it('Remove detaches the view only, then retires the record; the trash is what is discarded, never the directory', async () => {
    const { ctx, mounts, store } = world();
    store.volumes.set('a1', adopted());
    mounts.bindOutside(mp('a1'), '/srv/host', 3);
    mounts.mountOutside(`${mp('a1')}/ns1`, 'nsfs', 3);
    const outcome = await adoptedKind(ctx).remove(adopted());
    expect(mounts.calls).toEqual([`detach-view ${mp('a1')}`]);
    expect(outcome.trash).toMatch(/^\/fake\/data\/volumes\/\.trash-\d+$/);
    expect(store.dirs.has(outcome.trash)).toBe(true);
    expect(outcome.details).toEqual({ path: '/srv/host', detachedFromView: 2 });
  });

  it('a Remove that cannot retire the record puts the view back', async () => {
    const { ctx, mounts, store, remounted } = world();
    store.volumes.set('a1', adopted());
    mounts.bindOutside(mp('a1'), '/srv/host', 3);
    store.fail.retire = 'EIO';
    await expect(adoptedKind(ctx).remove(adopted())).rejects.toThrow(/EIO/);
    expect(remounted).toEqual(['a1']);
    expect(store.volumes.has('a1')).toBe(true);
  });

  it('a stack over the directory makes Remove a conflict, and nothing is detached', async () => {
    const { ctx, mounts, store } = world();
    store.volumes.set('a1', adopted());
    mounts.bindOutside(mp('a1'), '/srv/host', 3);
    mounts.mountOutside(mp('a1'), 'tmpfs', 3);
    const error = await rejection(adoptedKind(ctx).remove(adopted()));
    expect(error.kind).toBe('conflict');
    expect(mounts.at(mp('a1'))).toHaveLength(2);
  });

  it('undoes a failed Create in this view only (detachView), never with a propagating detach', async () => {
    const { ctx, mounts } = world();
    mounts.bindOutside(mp('a1'), '/srv/host', 3);
    await adoptedKind(ctx).undoCreate('a1');
    expect(mounts.calls).toEqual([`detach-view ${mp('a1')}`]);
    expect(mounts.at(mp('a1'))).toEqual([]);
  });

  it('keeps errno failures of the store phrased for the user', async () => {
    const { ctx, mounts, store } = world();
    store.volumes.set('a1', adopted());
    mounts.bindOutside(mp('a1'), '/srv/host', 3);
    store.retire = async () => {
      throw errno('EROFS');
    };
    expect((await rejection(adoptedKind(ctx).remove(adopted()))).message).toBe(
      'volume "a1" not removed; it is mounted and usable as before: the data root is read-only',
    );
  });
});
