/**
 * The adopted-path kind with records written before identities were kept: the identity is taken at
 * start-up, or at the next mount, saved and logged.
 */
import { parseOptions, type PathOptions } from '../../../src/model/options.js';
import { SharedpropDriver } from '../../../src/driver/sharedprop-driver.js';
import { FakeMounts, FakeStore } from '../../support/driver-fakes.js';
import { silentLogger } from '../../support/silent-logger.js';
import { recordOf } from '../../support/kind-context.js';
import { options, recordAt, world } from './world.js';

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
