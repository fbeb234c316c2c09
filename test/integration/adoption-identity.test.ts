/**
 * Integration tier: adoption by identity (`-o path=`), on the real driver process as root. Each
 * attack of issue 25 that concerns adoption is a named test here: bind aliases of `/`, of the
 * data root and of a reserved path, and binds of their subdirectories; one directory under two
 * names; a rename race between the check and the bind; a directory replaced under its name.
 */
import { jest } from '@jest/globals';
import { execa, type ResultPromise } from 'execa';
import { mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DriverProcess } from '../support/driver-process.js';
import { hostMountsAt, hostMountsWithin, unmountEverythingUnder } from '../support/host-mounts.js';

jest.setTimeout(300_000);

let driver: DriverProcess;
let work: string;
let racer: ResultPromise | undefined;

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sharedprop-identity-'));
  await mkdir(path.join(work, 'ops'));
  driver = await DriverProcess.start({ serveArgs: ['--reserved-path', path.join(work, 'ops')] });
});

afterEach(async () => {
  if (racer) {
    racer.kill('SIGKILL');
    await racer.catch(() => undefined);
    racer = undefined;
  }
  await driver.destroy();
  const stuck = await unmountEverythingUnder(work);
  if (stuck.length === 0) await rm(work, { recursive: true, force: true });
});

const mountpointOf = (name: string) => path.join(driver.mountRoot, name);

async function bindAlias(target: string, alias: string): Promise<void> {
  await mkdir(alias, { recursive: true });
  await execa('mount', ['--bind', target, alias]);
}

/** Create must answer `status` with `message`, and leave no mount point and no record. */
async function refused(name: string, dir: string, status: number, message: RegExp): Promise<void> {
  const answer = await driver.call('/VolumeDriver.Create', { Name: name, Opts: { path: dir } });
  expect([answer.status, String(answer.body.Err)]).toEqual([
    status,
    expect.stringMatching(message),
  ]);
  expect(await hostMountsWithin(mountpointOf(name))).toEqual([]);
  await expect(stat(path.join(driver.dataRoot, 'volumes', name))).rejects.toThrow(/ENOENT/);
}

describe('adoption by identity', () => {
  it('an alias of / (mount --bind / <dir>) is a 400', async () => {
    const alias = path.join(work, 'srv/alias');
    await bindAlias('/', alias);
    await refused('root', alias, 400, /is the root directory \/ \(a bind of it, by identity\)/);
  });

  it('an alias of the data root, or a directory within one, is a 400', async () => {
    const alias = path.join(work, 'srv/alias');
    await bindAlias(driver.dataRoot, alias);
    const own = /overlaps the driver's own data root or mount root/;
    await refused('data', alias, 400, own);
    await refused('data', path.join(alias, 'volumes'), 400, own);
  });

  it('a bind of a subdirectory of the data root, of a reserved path or of an adopted directory is refused (nothing above its root is on its way up)', async () => {
    const alias = path.join(work, 'srv/sub-alias');
    await bindAlias(path.join(driver.dataRoot, 'volumes'), alias);
    await refused('sub', alias, 400, /overlaps the driver's own data root or mount root/);
    await execa('umount', [alias]);
    await mkdir(path.join(work, 'ops/deep'));
    await bindAlias(path.join(work, 'ops/deep'), alias);
    await refused('sub', alias, 400, /which dockerd or containerd own/);
    await execa('umount', [alias]);
    const adopted = path.join(work, 'srv/hd');
    await mkdir(path.join(adopted, 'inner'), { recursive: true });
    await driver.ok('/VolumeDriver.Create', { Name: 'first', Opts: { path: adopted } });
    await bindAlias(path.join(adopted, 'inner'), alias);
    await refused('sub', alias, 409, /which volume "first" adopted/);
    await execa('umount', [alias]);
    await driver.ok('/VolumeDriver.Remove', { Name: 'first' });
  });

  it('a directory under an alias of a --reserved-path is a 400, as is an alias of its parent', async () => {
    await mkdir(path.join(work, 'ops/sub'));
    const alias = path.join(work, 'alias');
    await bindAlias(path.join(work, 'ops'), alias);
    const reserved = new RegExp(
      `overlaps ${path.join(work, 'ops')}, which dockerd or containerd own`,
    );
    await refused('ops', path.join(alias, 'sub'), 400, reserved);
    const parent = path.join(work, 'parent-alias');
    await bindAlias(work, parent);
    await refused('ops', parent, 400, reserved);
  });

  it('one directory adopted under two names (a bind alias) is a 409, and so is one within it', async () => {
    const dir = path.join(work, 'srv/hd');
    await mkdir(path.join(dir, 'sub'), { recursive: true });
    await driver.ok('/VolumeDriver.Create', { Name: 'first', Opts: { path: dir } });
    const alias = path.join(work, 'alias');
    await bindAlias(path.join(work, 'srv'), alias);
    const taken =
      /which volume "first" adopted; two volumes may not adopt the same or nested directories/;
    await refused('second', path.join(alias, 'hd'), 409, taken);
    await refused('second', path.join(alias, 'hd/sub'), 409, taken);
    await refused('second', alias, 409, taken);
  });

  it('a directory replaced since Create (umount; mv; mkdir) is a 503 at Mount, and the old one is never served', async () => {
    const dir = path.join(work, 'srv/hd');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'old-file'), 'old\n');
    await driver.ok('/VolumeDriver.Create', { Name: 'hd', Opts: { path: dir } });
    const mp = mountpointOf('hd');
    await execa('umount', [mp]);
    await execa('umount', [dir]);
    await rename(dir, `${dir}.old`);
    await mkdir(dir);
    const answer = await driver.call('/VolumeDriver.Mount', { Name: 'hd', ID: 'c1' });
    expect(answer.status).toBe(503);
    expect(String(answer.body.Err)).toMatch(
      /its adopted directory ".*\/srv\/hd" was replaced: it is no longer the directory adopted at Create \(device \d+:\d+, inode \d+\)/,
    );
    expect(await hostMountsAt(mp)).toEqual([]);
    // The volume still answers, and its record keeps the identity taken at Create.
    const record = JSON.parse(
      await readFile(path.join(driver.dataRoot, 'volumes', 'hd', 'volume.json'), 'utf8'),
    ) as { options: { identity: { ino: string } } };
    expect(record.options.identity.ino).toBe(
      String((await stat(`${dir}.old`, { bigint: true })).ino),
    );
  });

  it('a record from before identities were kept gets its directory identity at start-up, saved and logged', async () => {
    const dir = path.join(work, 'srv/hd');
    await mkdir(dir, { recursive: true });
    await driver.ok('/VolumeDriver.Create', { Name: 'hd', Opts: { path: dir } });
    const file = path.join(driver.dataRoot, 'volumes', 'hd', 'volume.json');
    const record = JSON.parse(await readFile(file, 'utf8')) as {
      options: { identity?: { ino: string } };
    };
    const { ino } = await stat(dir, { bigint: true });
    expect(record.options.identity?.ino).toBe(String(ino));
    await driver.stop('SIGTERM');
    delete record.options.identity;
    await writeFile(file, JSON.stringify(record));
    await driver.restart();
    const after = JSON.parse(await readFile(file, 'utf8')) as typeof record;
    expect(after.options.identity?.ino).toBe(String(ino));
    expect(await driver.log()).toMatch(
      /adopted directory had no recorded identity \(an older record\); took its current one/,
    );
    await driver.ok('/VolumeDriver.Mount', { Name: 'hd', ID: 'c1' });
  });

  it('a rename race (the parent swapped with a symlink by renameat2 RENAME_EXCHANGE) never redirects a Create, while a path-based adopter is fooled', async () => {
    const race = path.join(work, 'race');
    const parent = path.join(race, 'parent');
    const decoy = path.join(race, 'decoy');
    const other = path.join(work, 'other');
    await mkdir(path.join(parent, 'hd'), { recursive: true });
    await mkdir(path.join(other, 'hd'), { recursive: true });
    await writeFile(path.join(parent, 'hd', 'marker'), 'checked\n');
    await writeFile(path.join(other, 'hd', 'marker'), 'other\n');
    await symlink(other, decoy);
    const dir = path.join(parent, 'hd');
    racer = startRacer(parent, decoy);

    // The positive control: a check by name (realpath), then mount(8) by name.
    const control = path.join(work, 'control');
    await mkdir(control);
    let fooled = 0;
    for (let i = 0; i < 400 && fooled === 0; i++) {
      if ((await realpath(dir).catch(() => '')) !== dir) continue;
      const bound = await execa('mount', ['--bind', dir, control], { reject: false });
      if (bound.exitCode !== 0) continue;
      if ((await readFile(path.join(control, 'marker'), 'utf8')) === 'other\n') fooled++;
      await execa('umount', [control]);
    }
    expect(fooled).toBeGreaterThan(0);

    let accepted = 0;
    const refusals: [number, string][] = [];
    for (let i = 0; i < 40; i++) {
      const answer = await driver.call('/VolumeDriver.Create', {
        Name: 'race',
        Opts: { path: dir },
      });
      if (answer.status !== 200) {
        refusals.push([answer.status, String(answer.body.Err)]);
        continue;
      }
      accepted++;
      const shown = await readFile(path.join(mountpointOf('race'), 'marker'), 'utf8');
      await driver.ok('/VolumeDriver.Remove', { Name: 'race' });
      expect([i, shown]).toEqual([i, 'checked\n']);
      expect(await hostMountsWithin(other)).toEqual([]);
    }
    racer.kill('SIGKILL');
    await racer.catch(() => undefined);
    racer = undefined;
    expect(accepted).toBeGreaterThan(0);
    // Refused only when the name led through the symlink as it was opened.
    for (const refusal of refusals) {
      expect(refusal).toEqual([400, expect.stringMatching(/has a symlink on its way/)]);
    }
    // Nothing mounted on the other directory; the adopted one is one shared mount point of its
    // own (as ip netns leaves /run/netns); no view left, nothing else grew.
    expect(await hostMountsWithin(other)).toEqual([]);
    expect(await hostMountsWithin(driver.mountRoot)).toEqual([]);
    expect(await hostMountsWithin(race)).toHaveLength(1);
    // Everything the test and the driver made (other processes mount elsewhere meanwhile).
    expect(await hostMountsWithin(work)).toHaveLength(1);
    expect(await hostMountsWithin(driver.base)).toEqual([]);
  });
});

/** A process that swaps `a` and `b` (renameat2 RENAME_EXCHANGE) in a tight loop until killed. */
function startRacer(a: string, b: string): ResultPromise {
  const script = `
    const { createRequire } = require('node:module');
    const koffi = createRequire(process.cwd() + '/package.json')('koffi');
    const lib = koffi.load('libc.so.6');
    const renameat2 = lib.func('int renameat2(int, str, int, str, uint)');
    const [a, b] = process.argv.slice(1);
    for (;;) renameat2(-100, a, -100, b, 2);
  `;
  return execa(process.execPath, ['-e', script, a, b], { reject: false });
}
