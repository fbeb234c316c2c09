/**
 * The adopted-path kind: the directory checked at Create is the one bound, it is checked again at
 * every remount, and a replaced one is never served again.
 */
import { adoptedKind } from '../../../src/driver/kinds/adopted.js';
import type { PathOptions } from '../../../src/model/options.js';
import { errno } from '../../support/driver-fakes.js';
import { options, recordAt, rejection, world } from './world.js';

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
