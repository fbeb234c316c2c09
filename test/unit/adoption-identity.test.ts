/**
 * The adopted-path kind decides by identity (the fake mount layer models bind aliases, replaced
 * directories and symlinks as openat2 sees them): aliases of `/`, of the driver's directories, of
 * reserved ones and of other volumes' directories are refused whatever their name; the directory
 * checked at Create is the one bound, and a replaced one is never served again.
 */
import { adoptedKind } from '../../src/driver/kinds/adopted.js';
import { KERNEL_TREES, openFailure } from '../../src/driver/kinds/adoption-check.js';
import type { RecordOf } from '../../src/driver/kinds/kind.js';
import { VolumeError } from '../../src/model/errors.js';
import { parseOptions, type PathOptions } from '../../src/model/options.js';
import { SharedpropDriver } from '../../src/driver/sharedprop-driver.js';
import { errno, FakeMounts, FakeStore } from '../support/driver-fakes.js';
import { silentLogger } from '../support/silent-logger.js';
import { kindContext, recordOf } from '../support/kind-context.js';

async function rejection(work: Promise<unknown>): Promise<VolumeError> {
  try {
    await work;
  } catch (error) {
    return error as VolumeError;
  }
  throw new Error('expected a rejection');
}

const options = (dir: string) => parseOptions('a1', { path: dir }) as PathOptions;
const recordAt = (name: string, opts: PathOptions) => recordOf(name, opts) as RecordOf<'path'>;

function world(over: Parameters<typeof kindContext>[0] = {}) {
  const w = kindContext(over);
  for (const dir of [
    '/srv/host',
    '/srv/host/sub',
    '/fake/data',
    '/fake/mounts',
    '/var/lib/docker',
  ]) {
    w.mounts.directories.add(dir);
  }
  w.mounts.directories.add('/proc');
  w.mounts.directories.add('/var');
  return { ...w, kind: adoptedKind(w.ctx) };
}

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

describe('the directory checked at Create is the one bound, and checked at every remount', () => {
  it('Create hands its held directory to the bind; a remount holds the path anew', async () => {
    const { kind, mounts } = world();
    const recorded = (await kind.checkCreate('a1', options('/srv/host'))) as PathOptions;
    expect(mounts.heldOpen).toEqual(['/srv/host']);
    const record = recordAt('a1', recorded);
    const first = await kind.source(record);
    expect(first.kind === 'adopt' && first.held?.path).toBe('/srv/host');
    expect(mounts.heldOpen).toEqual(['/srv/host']);
    if (first.kind === 'adopt') first.held?.release();
    const again = await kind.source(record);
    expect(again.kind === 'adopt' && again.held).not.toBe(first.kind === 'adopt' && first.held);
    expect(mounts.heldOpen).toEqual(['/srv/host']);
  });

  it('a Create that failed before its bind releases what it held at the next Create or its undo', async () => {
    const { kind, mounts } = world();
    await kind.checkCreate('a1', options('/srv/host'));
    await kind.checkCreate('a2', options('/srv/host/sub'));
    expect(mounts.heldOpen).toEqual(['/srv/host/sub']);
    await kind.undoCreate('a2');
    expect(mounts.heldOpen).toEqual([]);
  });

  it('a directory replaced since Create (umount; mv; mkdir) is a 503 that says so, and is released', async () => {
    const { kind, mounts } = world();
    const record = recordAt(
      'a1',
      (await kind.checkCreate('a1', options('/srv/host'))) as PathOptions,
    );
    await kind.undoCreate('a1');
    mounts.replaced.set('/srv/host', 1);
    const error = await rejection(kind.source(record));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(
      /^volume "a1": its adopted directory "\/srv\/host" was replaced: it is no longer the directory adopted at Create \(device 8:1, inode \d+\), it is device 8:1, inode \d+ \(unmounted, moved away and made anew\?\); put the original back there, or remove the volume and create it again; not mounted$/,
    );
    expect(mounts.heldOpen).toEqual([]);
  });

  it.each([
    [
      'missing',
      (m: ReturnType<typeof world>['mounts']) => m.directories.delete('/srv/host'),
      /does not exist now; not mounted/,
    ],
    [
      'behind a symlink',
      (m: ReturnType<typeof world>['mounts']) => m.symlinks.set('/srv/host', '/srv'),
      /is now reached through a symlink; not mounted/,
    ],
    [
      'a file',
      (m: ReturnType<typeof world>['mounts']) => {
        m.directories.delete('/srv/host');
        m.files.add('/srv/host');
      },
      /is not a directory now; not mounted/,
    ],
  ])('a directory %s at remount is a 503', async (_what, change, message) => {
    const { kind, mounts } = world();
    const record = recordAt('a1', options('/srv/host'));
    change(mounts);
    const error = await rejection(kind.source(record));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(message);
  });

  it('a directory the host mounted something over is still the one recorded: a view still there is kept as it is, nothing is done by the name', async () => {
    const { kind, mounts, ctx } = world();
    const record = recordAt(
      'a1',
      (await kind.checkCreate('a1', options('/srv/host'))) as PathOptions,
    );
    await kind.undoCreate('a1');
    mounts.mountedOver.add('/srv/host');
    // No view left: the name no longer reaches the directory, and nothing is done through it.
    const gone = await rejection(kind.source(record));
    expect(gone.kind).toBe('unavailable');
    expect(gone.message).toMatch(/is covered by a mount the host made over it/);
    expect(mounts.heldOpen).toEqual([]);
    // A view there: kept as it is, whatever the name now reaches.
    const view = await mounts.ensureSharedMount(
      { kind: 'bind', directory: '/srv/host' },
      ctx.mountpoint('a1'),
      'rshared',
    );
    const source = await kind.source(record);
    expect(source).toEqual({ kind: 'adopt', directory: '/srv/host', keepView: true });
    const before = mounts.calls.length;
    expect(await mounts.ensureSharedMount(source, ctx.mountpoint('a1'), 'rshared')).toEqual(view);
    expect(mounts.at(ctx.mountpoint('a1'))).toHaveLength(1);
    expect(mounts.calls.slice(before)).toEqual([`adopt ${ctx.mountpoint('a1')}`]);
    expect(mounts.heldOpen).toEqual([]);
    // Replaced and then mounted over: beneath is not the recorded one either.
    mounts.replaced.set('/srv/host', 1);
    expect((await rejection(kind.source(record))).message).toMatch(/was replaced/);
    // Beneath cannot be read: replaced, as far as anyone can tell.
    mounts.replaced.delete('/srv/host');
    mounts.identityBeneath = async () => {
      throw errno('EINVAL');
    };
    expect((await rejection(kind.source(record))).message).toMatch(/was replaced/);
  });

  it('another failure to hold it at remount is rethrown as it is', async () => {
    const { kind, mounts } = world();
    mounts.holdDirectory = async () => {
      throw errno('EIO');
    };
    expect((await rejection(kind.source(recordAt('a1', options('/srv/host'))))).message).toMatch(
      /EIO/,
    );
  });

  it('a record from before identities takes the directory it finds, and says so', async () => {
    const warnings: unknown[] = [];
    const w = world();
    w.ctx.log.warn = ((...args: unknown[]) => {
      warnings.push(args);
      return w.ctx.log;
    }) as typeof w.ctx.log.warn;
    const kind = adoptedKind(w.ctx);
    const record = recordAt('a1', options('/srv/host'));
    await kind.source(record);
    expect(record.options.identity).toEqual({
      device: '8:1',
      ino: expect.stringMatching(/^\d+$/),
      boot: 'boot-1',
    });
    expect(warnings).toEqual([
      [
        'adopted directory had no recorded identity (an older record); took its current one',
        {
          volume: 'a1',
          path: '/srv/host',
          identity: expect.stringMatching(/^device 8:1, inode \d+$/),
        },
      ],
    ]);
  });

  it('without a boot id the identity is recorded without one', async () => {
    const { kind } = world({ bootId: () => undefined });
    const recorded = (await kind.checkCreate('a1', options('/srv/host'))) as PathOptions;
    expect(recorded.identity).toEqual({ device: '8:1', ino: expect.stringMatching(/^\d+$/) });
  });
});

describe('records written before identities were kept', () => {
  function logged(w: ReturnType<typeof world>) {
    const lines: [string, string, unknown][] = [];
    for (const level of ['warn', 'error'] as const) {
      w.ctx.log[level] = ((message: string, meta: unknown) => {
        lines.push([level, message, meta]);
        return w.ctx.log;
      }) as typeof w.ctx.log.warn;
    }
    return lines;
  }

  it('take the directory identity at start-up, saved and logged; a record with one is left', async () => {
    const w = world();
    const lines = logged(w);
    const old = recordAt('a1', options('/srv/host'));
    await w.kind.upgrade!(old);
    expect(old.options.identity).toEqual({
      device: '8:1',
      ino: expect.stringMatching(/^\d+$/),
      boot: 'boot-1',
    });
    expect(w.store.rewritten).toEqual([old]);
    expect(lines).toEqual([
      [
        'warn',
        'adopted directory had no recorded identity (an older record); took its current one',
        { volume: 'a1', path: '/srv/host', identity: expect.stringMatching(/^device 8:1, inode/) },
      ],
    ]);
    expect(w.mounts.heldOpen).toEqual([]);
    await w.kind.upgrade!(old);
    expect(w.store.rewritten).toHaveLength(1);
  });

  it('a directory that cannot be held is left for its next mount; a read-only data root keeps it in memory', async () => {
    const w = world();
    const lines = logged(w);
    const gone = recordAt('g', options('/srv/gone'));
    await w.kind.upgrade!(gone);
    expect(gone.options.identity).toBeUndefined();
    expect(lines).toEqual([
      [
        'warn',
        'could not take the identity of an adopted directory; it is taken at its next mount',
        { volume: 'g', path: '/srv/gone', error: expect.stringMatching(/ENOENT/) },
      ],
    ]);
    w.store.readOnly = true;
    const old = recordAt('a1', options('/srv/host'));
    await w.kind.source(old);
    expect(old.options.identity?.ino).toMatch(/^\d+$/);
    expect(lines.at(-1)).toEqual([
      'error',
      'could not save the identity of an adopted directory',
      expect.objectContaining({ volume: 'a1', error: expect.stringMatching(/EROFS/) }),
    ]);
  });

  it('the driver completes them at start, of the adopted kind only', async () => {
    const store = new FakeStore();
    const mounts = new FakeMounts();
    mounts.directories.add('/srv/host');
    store.volumes.set('a1', recordAt('a1', options('/srv/host')));
    store.volumes.set('d1', recordOf('d1', parseOptions('d1', {})));
    const driver = new SharedpropDriver({
      dataRoot: '/fake/data',
      mountRoot: '/fake/mounts',
      logger: silentLogger(),
      store,
      mounts,
    });
    await driver.start();
    expect(store.rewritten.map((r) => r.name)).toEqual(['a1']);
    expect((store.volumes.get('a1')?.options as PathOptions).identity?.device).toBe('8:1');
  });
});
