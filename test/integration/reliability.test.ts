/**
 * The reliability suite, root tier: each case is a way the driver was broken (issue "Data
 * safety") or could be, tried against the real `sharedprop serve` with real mounts. The README's
 * Reliability table names these tests.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CRASH_POINTS, type CrashPoint } from '../../src/driver/crash-points.js';
import {
  hostMountsAt,
  hostMountsWithin,
  mountTmpfsElsewhere,
  unmountEverythingUnder,
} from '../support/host-mounts.js';
import {
  dataDirOf,
  expectConsistent,
  listed,
  mountpointOf,
  statusOf,
  volumesDir,
  waitFor,
} from '../support/volume-checks.js';
import { CLI, DriverProcess, type Answer } from '../support/driver-process.js';

jest.setTimeout(180_000);

const drivers: DriverProcess[] = [];
async function startDriver(options: Parameters<typeof DriverProcess.start>[0] = {}) {
  const driver = await DriverProcess.start(options);
  drivers.push(driver);
  return driver;
}
afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.destroy();
});

/** A second `sharedprop serve`, expected to refuse: its exit code and output. */
async function secondInstance(socket: string, dataRoot: string) {
  return execa(process.execPath, [CLI, 'serve', '--socket', socket, '--data-root', dataRoot], {
    reject: false,
    timeout: 30_000,
    all: true,
  });
}

describe('one driver per data root', () => {
  it('a second driver on the same data root exits non-zero before it changes anything', async () => {
    const a = await startDriver();
    await a.ok('/VolumeDriver.Create', { Name: 'held', Opts: {} });
    await a.ok('/VolumeDriver.Mount', { Name: 'held', ID: 'ctr' });
    await writeFile(path.join(dataDirOf(a, 'held'), 'precious'), 'data');
    // Bait for recovery: a leftover, and the mount point unmounted behind A's back.
    await mkdir(path.join(volumesDir(a), '.trash-bait'));
    const before = (await hostMountsWithin(a.base)).length;

    const b = await secondInstance(path.join(a.base, 'b.sock'), a.dataRoot);
    expect(b.exitCode).not.toBe(0);
    expect(b.all).toMatch(/another sharedprop driver is already serving the data root/);
    expect((await hostMountsWithin(a.base)).length).toBe(before);
    expect(await readdir(volumesDir(a))).toContain('.trash-bait');
    expect(await readFile(path.join(dataDirOf(a, 'held'), 'precious'), 'utf8')).toBe('data');
    expect((await statusOf(a, 'held')).activeMounts).toBe(1);

    // The lock dies with its holder: after kill -9 the next driver starts at once.
    await a.stop('SIGKILL');
    await a.restart();
    expect(await listed(a)).toEqual(['held']);
  });

  it('a second driver on a socket already served exits non-zero and touches no data root', async () => {
    const a = await startDriver();
    const otherRoot = path.join(a.base, 'other-root');
    const b = await secondInstance(a.socket, otherRoot);
    expect(b.exitCode).not.toBe(0);
    expect(b.all).toMatch(/already serving/);
    await expect(stat(otherRoot)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await a.call('/Plugin.Activate', {})).status).toBe(200);
  });
});

describe('prototype-free counts and options', () => {
  it('mount IDs named like Object.prototype members count like any other', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'proto', Opts: {} });
    const ids = ['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'real'];
    for (const id of ids) await driver.ok('/VolumeDriver.Mount', { Name: 'proto', ID: id });
    const status = await statusOf(driver, 'proto');
    expect(status.activeMounts).toBe(6);
    expect(Object.keys(status.mountIds).sort()).toEqual([...ids].sort());
    await driver.stop('SIGKILL');
    await driver.restart();
    expect((await statusOf(driver, 'proto')).activeMounts).toBe(6);
    for (const id of ids.slice(0, -1)) {
      await driver.ok('/VolumeDriver.Unmount', { Name: 'proto', ID: id });
      expect((await driver.call('/VolumeDriver.Remove', { Name: 'proto' })).status).toBe(409);
    }
    await driver.ok('/VolumeDriver.Unmount', { Name: 'proto', ID: 'real' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'proto' });
  });
});

describe('locale', () => {
  it('Remove works in a German locale: decisions come from the mount table, not from messages', async () => {
    // The precondition that makes this a test: umount really speaks German here.
    const german = { LC_ALL: 'de_DE.UTF-8', LANG: 'de_DE.UTF-8', LANGUAGE: 'de' };
    const probe = (env: Record<string, string>) =>
      execa('umount', ['/nonexistent-sharedprop'], { reject: false, env });
    const [inGerman, inC] = await Promise.all([probe(german), probe({ LC_ALL: 'C' })]);
    expect(inGerman.stderr).not.toBe(inC.stderr);

    const driver = await startDriver({ env: german });
    await driver.ok('/VolumeDriver.Create', { Name: 'deutsch', Opts: {} });
    const mp = mountpointOf(driver, 'deutsch');
    await mkdir(path.join(mp, 'self'));
    await mkdir(path.join(mp, 'tmp'));
    await execa('mount', ['--bind', path.join(mp, 'self'), path.join(mp, 'self')]);
    await execa('mount', ['-t', 'tmpfs', 'sp-de', path.join(mp, 'tmp')]);
    await driver.ok('/VolumeDriver.Remove', { Name: 'deutsch' });
    expect(await hostMountsWithin(mp)).toEqual([]);
    expect(await listed(driver)).toEqual([]);
  });
});

describe('long names', () => {
  it.each([240, 241, 242, 255])('a %i-character name is created and removed', async (length) => {
    const driver = await startDriver();
    const name = 'n'.repeat(length);
    await driver.ok('/VolumeDriver.Create', { Name: name, Opts: {} });
    await driver.ok('/VolumeDriver.Mount', { Name: name, ID: 'c' });
    await driver.ok('/VolumeDriver.Unmount', { Name: name, ID: 'c' });
    await driver.ok('/VolumeDriver.Remove', { Name: name });
    await expectConsistent(driver);
  });

  it('a name whose paths would pass PATH_MAX under a deep data root is refused at Create', async () => {
    // 16 components of 248 characters: about 4,000 bytes before the volume's own name.
    const deep = Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(248, 'd')).join('/');
    const driver = await startDriver({ dataRoot: deep });
    const answer = await driver.call('/VolumeDriver.Create', { Name: 'x'.repeat(250), Opts: {} });
    expect(answer.status).toBe(400);
    expect(answer.body.Err).toMatch(/too long for this data root/);
    expect(await readdir(volumesDir(driver))).toEqual([]);
    await driver.ok('/VolumeDriver.Create', { Name: 'short', Opts: {} });
    await driver.ok('/VolumeDriver.Remove', { Name: 'short' });
  });
});

/** Makes the data root a mount of its own, so that it can be made read-only or small. */
function ownMount(kind: 'bind' | 'tmpfs') {
  return async (driver: DriverProcess) => {
    await mkdir(driver.dataRoot, { recursive: true });
    if (kind === 'bind') await execa('mount', ['--bind', driver.dataRoot, driver.dataRoot]);
    else await execa('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'sp-small', driver.dataRoot]);
    await execa('mount', ['--make-private', driver.dataRoot]);
  };
}
const remount = (driver: DriverProcess, mode: 'ro' | 'rw') =>
  execa('mount', ['-o', `remount,bind,${mode}`, driver.dataRoot]);

describe('read-only data root', () => {
  it('a Remove that fails leaves the volume mounted, usable and removable later; Mount and Unmount keep working', async () => {
    const driver = await startDriver({ prepare: ownMount('bind') });
    await driver.ok('/VolumeDriver.Create', { Name: 'ro', Opts: {} });
    await writeFile(path.join(mountpointOf(driver, 'ro'), 'kept'), 'data');
    await remount(driver, 'ro');
    try {
      const refused = await driver.call('/VolumeDriver.Remove', { Name: 'ro' });
      expect(refused.status).toBe(503);
      expect(refused.body.Err).toMatch(/read-only/);
      expect(refused.body.Err).not.toContain(driver.base);
      expect(await hostMountsAt(mountpointOf(driver, 'ro'))).toHaveLength(1);
      expect(await readFile(path.join(mountpointOf(driver, 'ro'), 'kept'), 'utf8')).toBe('data');
      // Counts cannot be saved: kept in memory, never refused.
      await driver.ok('/VolumeDriver.Mount', { Name: 'ro', ID: 'c1' });
      await driver.ok('/VolumeDriver.Mount', { Name: 'ro', ID: 'c2' });
      await driver.ok('/VolumeDriver.Unmount', { Name: 'ro', ID: 'c2' });
      expect(await statusOf(driver, 'ro')).toMatchObject({ activeMounts: 1, countsSaved: false });
      expect((await driver.call('/VolumeDriver.Remove', { Name: 'ro' })).status).toBe(409);
      expect(await driver.log()).toMatch(/could not save mount counts/);
    } finally {
      await remount(driver, 'rw');
    }
    // The background retry saves them once the root is writable again.
    await waitFor('the counts to be saved', async () => (await statusOf(driver, 'ro')).countsSaved);
    await driver.stop('SIGKILL');
    await driver.restart();
    expect((await statusOf(driver, 'ro')).mountIds).toEqual({ c1: 1 });
    await driver.ok('/VolumeDriver.Unmount', { Name: 'ro', ID: 'c1' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'ro' });
    await expectConsistent(driver);
  });

  it('a driver started on a read-only data root serves read-only and says so', async () => {
    const driver = await startDriver({ prepare: ownMount('bind') });
    await driver.ok('/VolumeDriver.Create', { Name: 'before', Opts: {} });
    await driver.stop('SIGTERM');
    await remount(driver, 'ro');
    try {
      await driver.restart();
      expect(await driver.log()).toMatch(/the data root is read-only: serving read-only/);
      expect(await listed(driver)).toEqual(['before']);
      const mp = (await driver.ok('/VolumeDriver.Mount', { Name: 'before', ID: 'c' })) as {
        Mountpoint: string;
      };
      expect(mp.Mountpoint).toBe(mountpointOf(driver, 'before'));
      await driver.ok('/VolumeDriver.Path', { Name: 'before' });
      await driver.ok('/VolumeDriver.Unmount', { Name: 'before', ID: 'c' });
      const create = await driver.call('/VolumeDriver.Create', { Name: 'after', Opts: {} });
      expect(create.status).toBe(503);
      expect(create.body.Err).toMatch(/read-only/);
    } finally {
      await remount(driver, 'rw');
    }
  });
});

describe('full data root', () => {
  it('Mount and Unmount keep saving counts on a full disk; Create is refused clearly', async () => {
    const driver = await startDriver({ prepare: ownMount('tmpfs') });
    await driver.ok('/VolumeDriver.Create', { Name: 'full', Opts: {} });
    // Fill the 4 MiB filesystem to the last block.
    await execa('dd', ['if=/dev/zero', `of=${path.join(driver.dataRoot, 'filler')}`, 'bs=64k'], {
      reject: false,
    });
    await execa(
      'sh',
      ['-c', `for i in $(seq 1 200); do : > ${driver.dataRoot}/f$i || break; done`],
      {
        reject: false,
      },
    );
    for (let i = 0; i < 20; i++) {
      await driver.ok('/VolumeDriver.Mount', { Name: 'full', ID: `c${i}` });
    }
    for (let i = 0; i < 10; i++) {
      await driver.ok('/VolumeDriver.Unmount', { Name: 'full', ID: `c${i}` });
    }
    expect(await statusOf(driver, 'full')).toMatchObject({ activeMounts: 10, countsSaved: true });
    const create = await driver.call('/VolumeDriver.Create', { Name: 'more', Opts: {} });
    expect(create.status).toBe(503);
    expect(create.body.Err).toMatch(/no space left/);
    // Saved, not just in memory: they survive kill -9.
    await driver.stop('SIGKILL');
    await driver.restart();
    expect((await statusOf(driver, 'full')).activeMounts).toBe(10);
    expect((await driver.call('/VolumeDriver.Remove', { Name: 'full' })).status).toBe(409);
    for (let i = 10; i < 20; i++) {
      await driver.ok('/VolumeDriver.Unmount', { Name: 'full', ID: `c${i}` });
    }
    await driver.ok('/VolumeDriver.Remove', { Name: 'full' });
    await expectConsistent(driver);
  });
});

describe('Status', () => {
  it('is exact after the driver changes, and shows outside changes within the stated bound (1 s)', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'fresh', Opts: {} });
    expect((await statusOf(driver, 'fresh')).mountPoint).toBe('shared');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect((await statusOf(driver, 'fresh')).mountPoint).toBe('shared');
    // An outside change: a tmpfs mounted in the volume by someone else.
    const sub = path.join(mountpointOf(driver, 'fresh'), 'sub');
    await mkdir(sub);
    // Keep the snapshot warm, so that what is tested is its age bound and not a first read.
    expect((await statusOf(driver, 'fresh')).submounts).toEqual([]);
    await execa('mount', ['-t', 'tmpfs', 'sp-status', sub]);
    try {
      const mountedAt = Date.now(); // the mount is in the table from here on
      // The README's bound, exactly: a Status asked 1 s after the change must show it. The wait
      // is the bound itself, not a guess at how long something takes.
      await new Promise((resolve) => setTimeout(resolve, mountedAt + 1_001 - Date.now()));
      expect((await statusOf(driver, 'fresh')).submounts).toEqual([
        expect.objectContaining({ path: '/sub' }),
      ]);
    } finally {
      await execa('umount', [sub]);
    }
  });

  it('mounts stacked by hand on a mount point are collapsed at the next Mount', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'stacked', Opts: {} });
    const mp = mountpointOf(driver, 'stacked');
    await execa('mount', ['--bind', dataDirOf(driver, 'stacked'), mp]);
    await execa('mount', ['--bind', dataDirOf(driver, 'stacked'), mp]);
    expect(await hostMountsAt(mp)).toHaveLength(3);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the snapshot bound
    await driver.ok('/VolumeDriver.Mount', { Name: 'stacked', ID: 'c' });
    expect(await hostMountsAt(mp)).toHaveLength(1);
    expect((await statusOf(driver, 'stacked')).mountPoint).toBe('shared');
  });
});

describe('kill -9 at each step of Create and Remove', () => {
  const kinds: Record<string, (base: string) => Record<string, string>> = {
    directory: () => ({ mode: '0700' }),
    tmpfs: () => ({ type: 'tmpfs', size: '4m', mode: '0700' }),
    adopted: (base) => ({ path: path.join(base, 'adopted') }),
  };
  it.each(CRASH_POINTS.flatMap((point) => Object.keys(kinds).map((kind) => [point, kind])))(
    'killed at %s (a %s volume): restart leaves a consistent state and the retry works',
    async (point: string, kind: string) => {
      const driver = await startDriver();
      const opts = kinds[kind]!(driver.base);
      let adoptedFiles: string[] = [];
      if (opts.path !== undefined) {
        // The adopted directory holds files of its own (mode 0700 to match the others' check).
        await mkdir(path.join(opts.path, 'keep'), { recursive: true, mode: 0o700 });
        await execa('chmod', ['0700', opts.path]);
        await writeFile(path.join(opts.path, 'keep', 'precious'), 'host data');
        adoptedFiles = await readdir(opts.path, { recursive: true });
      }
      await driver.ok('/VolumeDriver.Create', { Name: 'other', Opts: {} });
      if (point.startsWith('remove:')) {
        await driver.ok('/VolumeDriver.Create', { Name: 'victim', Opts: opts });
        await writeFile(path.join(mountpointOf(driver, 'victim'), 'f'), 'x');
        await mkdir(path.join(mountpointOf(driver, 'victim'), 'sub'));
        await execa('mount', [
          '-t',
          'tmpfs',
          'sp-crash',
          path.join(mountpointOf(driver, 'victim'), 'sub'),
        ]);
      }
      await driver.stop('SIGTERM');
      driver.env = { SHAREDPROP_CRASH_AT: point as CrashPoint };
      await driver.restart();
      const op = point.startsWith('create:') ? '/VolumeDriver.Create' : '/VolumeDriver.Remove';
      const body = { Name: 'victim', Opts: opts };
      // The driver kills itself mid-request: the connection ends without an answer.
      await expect(driver.call(op, body)).rejects.toMatchObject({
        code: 'ECONNRESET',
        message: 'socket hang up',
      });
      await waitFor(
        'the driver to die',
        async () => driver.pid !== undefined && !(await alive(driver.pid)),
      );
      await driver.stop('SIGKILL');
      driver.env = {};
      await driver.restart();
      const names = await expectConsistent(driver);
      expect(names).toContain('other');
      // The retry reaches the intended end state.
      const retry: Answer = await driver.call(op, body);
      if (op === '/VolumeDriver.Create') {
        expect(retry.status).toBe(200);
        expect(await expectConsistent(driver)).toEqual(['other', 'victim']);
        expect((await stat(mountpointOf(driver, 'victim'))).mode & 0o7777).toBe(0o700);
      } else {
        expect([200, 404]).toContain(retry.status);
        expect(await expectConsistent(driver)).toEqual(['other']);
      }
      if (opts.path !== undefined) {
        // Nothing in an adopted directory is ever deleted, whatever step the kill hit.
        expect((await readdir(opts.path, { recursive: true })).sort()).toEqual(
          [...adoptedFiles, ...(op === '/VolumeDriver.Remove' ? ['f', 'sub'] : [])].sort(),
        );
        expect(await readFile(path.join(opts.path, 'keep', 'precious'), 'utf8')).toBe('host data');
      }
      expect(await hostMountsWithin(path.join(driver.mountRoot, 'victim'))).toHaveLength(
        op === '/VolumeDriver.Create' ? 1 : 0,
      );
    },
  );
});

describe('kill -9 between counting a Mount and answering it', () => {
  it('killed after counting a Mount and before answering (the request is cut, dockerd gets no answer): the restart counts nothing for it, Remove is not blocked, a Mount retried counts once, and answered Mounts are kept', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'cut', Opts: {} });
    await driver.ok('/VolumeDriver.Mount', { Name: 'cut', ID: 'answered' });
    await driver.stop('SIGTERM');
    driver.env = { SHAREDPROP_CRASH_AT: 'mount:counted' };
    await driver.restart();
    await expect(
      driver.call('/VolumeDriver.Mount', { Name: 'cut', ID: 'cut' }),
    ).rejects.toMatchObject({ code: 'ECONNRESET', message: 'socket hang up' });
    await waitFor(
      'the driver to die',
      async () => driver.pid !== undefined && !(await alive(driver.pid)),
    );
    await driver.stop('SIGKILL');
    driver.env = {};
    await driver.restart();
    // dockerd treats the cut Mount as failed and will never unmount it: nothing counts it.
    expect((await statusOf(driver, 'cut')).mountIds).toEqual({ answered: 1 });
    // Newer engines retry the request with its body: counted once, and kept across kill -9.
    await driver.ok('/VolumeDriver.Mount', { Name: 'cut', ID: 'cut' });
    await driver.ok('/Plugin.Activate', {});
    await driver.stop('SIGKILL');
    await driver.restart();
    expect((await statusOf(driver, 'cut')).mountIds).toEqual({ answered: 1, cut: 1 });
    await driver.ok('/VolumeDriver.Unmount', { Name: 'cut', ID: 'cut' });
    await driver.ok('/VolumeDriver.Unmount', { Name: 'cut', ID: 'answered' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'cut' });
    expect(await expectConsistent(driver)).toEqual([]);
  });

  it('an answered Mount is saved before the driver serves anything else: after any later answer, kill -9 keeps it', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'acked', Opts: {} });
    for (let i = 0; i < 10; i++) {
      await driver.ok('/VolumeDriver.Mount', { Name: 'acked', ID: `c${i}` });
      await driver.ok('/Plugin.Activate', {}); // any later answer
      await driver.stop('SIGKILL');
      await driver.restart();
      expect((await statusOf(driver, 'acked')).activeMounts).toBe(i + 1);
    }
  });
});

async function alive(pid: number): Promise<boolean> {
  try {
    const state = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(state);
  } catch {
    return false;
  }
}

describe('storms', () => {
  it('concurrent Create/Remove/Mount/Unmount over a few names leave disk and mount table consistent', async () => {
    const driver = await startDriver({ logLevel: 'info' });
    const names = ['s0', 's1', 's2', 's3', 's4'];
    const calls: Promise<Answer>[] = [];
    let seed = 42;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 400; i++) {
      const name = names[next() % names.length]!;
      const kind = next() % 4;
      const endpoint = ['Create', 'Remove', 'Mount', 'Unmount'][kind]!;
      calls.push(
        driver.call(`/VolumeDriver.${endpoint}`, { Name: name, ID: `id${next() % 3}`, Opts: {} }),
      );
    }
    const answers = await Promise.all(calls);
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    // Unmount what is still counted, then remove everything.
    for (const name of await listed(driver)) {
      const status = await statusOf(driver, name);
      for (const [id, n] of Object.entries(status.mountIds)) {
        for (let i = 0; i < n; i++)
          await driver.ok('/VolumeDriver.Unmount', { Name: name, ID: id });
      }
    }
    await expectConsistent(driver);
    for (const name of await listed(driver))
      await driver.ok('/VolumeDriver.Remove', { Name: name });
    expect(await expectConsistent(driver)).toEqual([]);
  });
});

describe('start-up', () => {
  it('deletes leftover trash in the background, after the socket listens', async () => {
    const driver = await startDriver({ logLevel: 'info' });
    await driver.stop('SIGTERM');
    const trash = path.join(volumesDir(driver), '.trash-big');
    await mkdir(trash);
    await execa('sh', [
      '-c',
      'cd "$1" && for d in $(seq 1 40); do mkdir d$d && (cd d$d && seq 1 500 | xargs touch); done',
      'sh',
      trash,
    ]);
    await driver.restart();
    await waitFor(
      'the leftover to go',
      async () => !(await readdir(volumesDir(driver))).includes('.trash-big'),
    );
    // The log line follows the deletion (the directory can be gone a moment before it).
    await waitFor('the log of the deletion', async () =>
      (await driver.log()).includes('removed leftover of an interrupted operation'),
    );
    const lines = (await driver.log())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { message: string });
    const serving = lines.map((l) => l.message).lastIndexOf('serving the VolumeDriver protocol');
    const removed = lines
      .map((l) => l.message)
      .lastIndexOf('removed leftover of an interrupted operation');
    expect(serving).toBeGreaterThanOrEqual(0);
    expect(removed).toBeGreaterThan(serving);
  });
});

afterAll(async () => {
  for (const driver of drivers.splice(0)) await unmountEverythingUnder(driver.base);
});

describe('README promises', () => {
  it('LOG_LEVEL filters: at warn no request is logged, at debug questions are', async () => {
    const quiet = await startDriver({ logLevel: 'warn' });
    await quiet.ok('/VolumeDriver.Create', { Name: 'quiet', Opts: {} });
    await quiet.ok('/VolumeDriver.Get', { Name: 'quiet' });
    await quiet.call('/VolumeDriver.Get', { Name: 'missing' });
    type Line = { level: string; message: string; endpoint?: string };
    const parsed = async () =>
      (await quiet.log())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Line);
    // The log is written asynchronously: wait for the warn line of the 404.
    await waitFor('the 404 to be logged', async () =>
      (await parsed()).some((l) => l.level === 'warn' && l.endpoint === '/VolumeDriver.Get'),
    );
    expect((await parsed()).filter((l) => l.level === 'info' || l.level === 'debug')).toEqual([]);

    const loud = await startDriver({ logLevel: 'debug' });
    await loud.ok('/VolumeDriver.Capabilities', {});
    await waitFor('the question to be logged at debug', async () =>
      (await loud.log())
        .split('\n')
        .filter(Boolean)
        .some((l) => {
          const line = JSON.parse(l) as { level: string; endpoint?: string };
          return line.level === 'debug' && line.endpoint === '/VolumeDriver.Capabilities';
        }),
    );
  });

  it('propagation=shared gives a shared mount point that a submount made elsewhere reaches', async () => {
    const driver = await startDriver();
    await driver.ok('/VolumeDriver.Create', { Name: 'flat', Opts: { propagation: 'shared' } });
    const mp = mountpointOf(driver, 'flat');
    const [own] = await hostMountsAt(mp);
    expect(own?.sharedGroup).toBeDefined();
    expect((await statusOf(driver, 'flat')).mountPoint).toBe('shared');
    await mkdir(path.join(mp, 'sub'));
    await mountTmpfsElsewhere(path.join(mp, 'sub'), 'f', 'hi');
    expect((await hostMountsAt(path.join(mp, 'sub'))).map((e) => e.fsType)).toEqual(['tmpfs']);
    expect(await readFile(path.join(mp, 'sub', 'f'), 'utf8')).toBe('hi\n');
    await driver.ok('/VolumeDriver.Remove', { Name: 'flat' });
    expect(await hostMountsWithin(mp)).toEqual([]);
  });
});
