/**
 * The adopted-path kind decides by identity: aliases of `/`, of the driver's directories, of
 * reserved ones and of other volumes' directories are refused whatever their name.
 */
import { adoptedKind } from '../../../src/driver/kinds/adopted.js';
import { KERNEL_TREES, openFailure } from '../../../src/driver/kinds/adoption-check.js';
import { parseOptions } from '../../../src/model/options.js';
import { errno } from '../../support/driver-fakes.js';
import { recordOf } from '../../support/kind-context.js';
import { options, recordAt, rejection, world } from './world.js';

describe('adoption refuses by identity, whatever the name', () => {
  it.each([
    ['/', '/srv/alias', /is the root directory \/ \(a bind of it, by identity\)/],
    [
      '/fake/data',
      '/srv/alias',
      /overlaps the driver's own data root or mount root \(\/fake\/data, by identity\)/,
    ],
    [
      '/fake/mounts',
      '/srv/alias',
      /overlaps the driver's own data root or mount root \(\/fake\/mounts, by identity\)/,
    ],
    [
      '/var/lib/docker',
      '/srv/alias/sub',
      /overlaps \/var\/lib\/docker, which dockerd or containerd own \(by identity\)/,
    ],
    ['/var', '/srv/alias', /overlaps \/var\/lib\/docker, which dockerd or containerd own/],
    ['/proc', '/srv/alias', /overlaps \/proc, the kernel's \(by identity\)/],
  ])('a bind alias of %s reached as %s is a 400', async (target, dir, message) => {
    const { kind, mounts } = world();
    mounts.aliases.set('/srv/alias', target);
    mounts.directories.add('/var/lib/docker/sub');
    mounts.directories.add('/srv/alias');
    const error = await rejection(kind.checkCreate('a1', options(dir)));
    expect(error.kind).toBe('invalid');
    expect(error.message).toMatch(message);
    expect(mounts.heldOpen).toEqual([]);
  });

  it.each([
    [
      '/fake/data/volumes/v1/_data',
      /overlaps the driver's own data root or mount root \(\/fake\/data, by identity\)/,
    ],
    ['/var/lib/docker/volumes', /overlaps \/var\/lib\/docker, which dockerd or containerd own/],
    ['/proc/1', /overlaps \/proc, the kernel's/],
  ])(
    'a bind of %s (a subdirectory: what lies above it is on no way up from the bind) is a 400',
    async (target, message) => {
      const { kind, mounts } = world();
      mounts.directories.add(target);
      mounts.aliases.set('/srv/alias', target);
      mounts.directories.add('/srv/alias');
      const error = await rejection(kind.checkCreate('a1', options('/srv/alias')));
      expect(error.kind).toBe('invalid');
      expect(error.message).toMatch(message);
      expect(mounts.heldOpen).toEqual([]);
    },
  );

  it('a directory whose place in its filesystem is unknown is compared by identity, and the log says so', async () => {
    const w = world();
    const warned: unknown[][] = [];
    w.ctx.log.warn = ((...args: unknown[]) => {
      warned.push(args);
      return w.ctx.log;
    }) as typeof w.ctx.log.warn;
    const hold = w.mounts.holdDirectory.bind(w.mounts);
    w.mounts.holdDirectory = async (dir: string, places?: boolean) => {
      const held = await hold(dir, places);
      return dir === '/srv/host' ? { ...held, place: undefined } : held;
    };
    await expect(w.kind.checkCreate('a1', options('/srv/host'))).resolves.toBeDefined();
    expect(warned).toEqual([
      [
        expect.stringMatching(/binds of subdirectories are compared by identity only/),
        { volume: 'a1', path: '/srv/host' },
      ],
    ]);
    w.mounts.directories.add('/srv/other');
    await expect(w.kind.checkCreate('a2', options('/srv/other'))).resolves.toBeDefined();
    expect(warned).toHaveLength(1);
  });

  it('a reserved path that is itself a bind of a subdirectory: what contains its target is a 400', async () => {
    const w = world();
    const kind = adoptedKind({
      ...w.ctx,
      config: { ...w.ctx.config, reservedPaths: ['/srv/ops'] },
    });
    w.mounts.directories.add('/big/ops');
    w.mounts.directories.add('/srv/ops');
    w.mounts.aliases.set('/srv/ops', '/big/ops');
    w.mounts.directories.add('/big');
    expect((await rejection(kind.checkCreate('a1', options('/big')))).message).toMatch(
      /overlaps \/srv\/ops, which dockerd or containerd own \(by identity\)/,
    );
  });

  it('an alias of a --reserved-path is refused, and a plain directory beside it is not', async () => {
    const w = world();
    const ctx = { ...w.ctx, config: { ...w.ctx.config, reservedPaths: ['/srv/ops'] } };
    const kind = adoptedKind(ctx);
    w.mounts.directories.add('/srv/ops');
    w.mounts.aliases.set('/srv/alias', '/srv/ops');
    expect((await rejection(kind.checkCreate('a1', options('/srv/alias')))).message).toMatch(
      /overlaps \/srv\/ops, which dockerd or containerd own \(by identity\)/,
    );
    await expect(kind.checkCreate('a1', options('/srv/host'))).resolves.toBeDefined();
  });

  it('a reserved path missing now is compared by name, both ways', async () => {
    const w = world();
    const kind = adoptedKind({
      ...w.ctx,
      config: { ...w.ctx.config, reservedPaths: ['/srv/host/later'] },
    });
    expect((await rejection(kind.checkCreate('a1', options('/srv/host')))).message).toMatch(
      /overlaps \/srv\/host\/later, which dockerd or containerd own/,
    );
  });

  it("the data root's path on the host (the managed plugin's propagated mount) is the driver's own", async () => {
    const { kind, mounts } = world();
    mounts.directories.add('/host/data');
    mounts.directories.add('/host/data/volumes');
    for (const dir of ['/host/data', '/host/data/volumes']) {
      expect((await rejection(kind.checkCreate('a1', options(dir)))).message).toMatch(
        /overlaps the driver's own data root or mount root \(\/host\/data, by identity\)/,
      );
    }
  });

  it('a reserved path gone between its lookup and its hold is compared by name', async () => {
    const { kind, mounts } = world();
    const hold = mounts.holdDirectory.bind(mounts);
    mounts.holdDirectory = async (dir, places) => {
      if (dir === '/var/lib/docker') throw errno('ENOENT');
      return hold(dir, places);
    };
    mounts.directories.add('/var/lib');
    await expect(kind.checkCreate('a1', options('/srv/host'))).resolves.toBeDefined();
    expect((await rejection(kind.checkCreate('a1', options('/var/lib')))).message).toMatch(
      /overlaps \/var\/lib\/docker, which dockerd or containerd own/,
    );
  });

  it('the kernel trees are reserved', () => {
    expect(KERNEL_TREES).toEqual(['/proc', '/sys', '/dev']);
  });

  it('tells a missing path, a symlink on the way and a file apart, and rethrows anything else', async () => {
    const { kind, mounts } = world();
    mounts.symlinks.set('/srv/link', '/srv/host');
    mounts.files.add('/srv/file');
    expect((await rejection(kind.checkCreate('a1', options('/srv/none')))).message).toBe(
      'volume "a1": option path="/srv/none" does not exist; create the directory first',
    );
    expect((await rejection(kind.checkCreate('a1', options('/srv/link/sub')))).message).toBe(
      `volume "a1": option path="/srv/link/sub" has a symlink on its way; give the directory's real path`,
    );
    expect((await rejection(kind.checkCreate('a1', options('/srv/file')))).message).toBe(
      'volume "a1": option path="/srv/file" is not a directory',
    );
    mounts.holdDirectory = async () => {
      throw errno('EACCES');
    };
    expect((await rejection(kind.checkCreate('a1', options('/srv/host')))).message).toMatch(
      /EACCES/,
    );
    expect(openFailure(errno('EPERM'))).toBeUndefined();
  });

  it('a reserved path that cannot be held for another reason fails the Create', async () => {
    const { kind, mounts } = world();
    const hold = mounts.holdDirectory.bind(mounts);
    mounts.holdDirectory = async (dir) => {
      if (dir === '/var/lib/docker') throw errno('EIO');
      return hold(dir);
    };
    expect((await rejection(kind.checkCreate('a1', options('/srv/host')))).message).toMatch(/EIO/);
    expect(mounts.heldOpen).toEqual([]);
  });
});

describe('one directory is adopted by one volume, by identity', () => {
  function withOther(recorded = true) {
    const w = world();
    const opts = options('/srv/host');
    const identity = recorded ? { device: '8:1', ino: '999' } : undefined;
    w.store.volumes.set('other', recordAt('other', { ...opts, ...(identity ? { identity } : {}) }));
    return w;
  }

  it.each([
    ['the same directory under another name', '/srv/alias', '/srv/host'],
    ['a directory within it, under another name', '/srv/alias/sub', '/srv/host'],
    ['a directory that contains it', '/srv', '/srv'],
    ['a bind of a directory within it', '/srv/alias', '/srv/host/sub'],
  ])('%s is a 409', async (_what, dir, aliasTarget) => {
    const { kind, mounts } = withOther(false);
    mounts.aliases.set('/srv/alias', aliasTarget);
    mounts.directories.add('/srv/alias');
    mounts.directories.add('/srv');
    const error = await rejection(kind.checkCreate('a1', options(dir)));
    expect(error.kind).toBe('conflict');
    expect(error.message).toMatch(
      /overlaps "\/srv\/host" \(device 8:1, inode \d+, by identity\), which volume "other" adopted; two volumes may not adopt the same or nested directories/,
    );
    expect(mounts.heldOpen).toEqual([]);
  });

  it('the directory recorded for another volume counts even when its path now holds another one', async () => {
    const { kind, mounts, store } = world();
    const moved = await mounts.holdDirectory('/srv/host');
    moved.release();
    store.volumes.set(
      'other',
      recordAt('other', { ...options('/srv/old'), identity: moved.identity }),
    );
    mounts.directories.add('/srv/old'); // its path now holds a new directory
    const error = await rejection(kind.checkCreate('a1', options('/srv/host/sub')));
    expect(error.kind).toBe('conflict');
  });

  it('volumes of other kinds, and the volume itself, are not compared', async () => {
    const { kind, store } = world();
    store.volumes.set('d', recordOf('d', parseOptions('d', {})));
    store.volumes.set('a1', recordAt('a1', options('/srv/host')));
    await expect(kind.checkCreate('a1', options('/srv/host'))).resolves.toBeDefined();
  });

  it('an adopted directory whose path is gone now is compared by its record only', async () => {
    const { kind, store } = world();
    store.volumes.set(
      'gone',
      recordAt('gone', { ...options('/srv/gone'), identity: { device: '9:9', ino: '1' } }),
    );
    await expect(kind.checkCreate('a1', options('/srv/host'))).resolves.toBeDefined();
  });
});
