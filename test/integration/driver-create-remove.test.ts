/**
 * Integration tier: the real driver process, real mounts in temporary directories, as root. This
 * file: Create, a Create that fails half-way, and Remove.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseMountinfo, propagationOf } from '../../src/system/mountinfo.js';
import { unmountEverythingUnder } from '../support/host-mounts.js';
import { countMountsAt, hostMountinfo } from '../support/driver-process.js';
import {
  dataDirOf,
  destroyDriver,
  driver,
  entryAt,
  mountpointOf,
  startDriver,
} from './driver/harness.js';

jest.setTimeout(120_000);

beforeEach(startDriver);
afterEach(destroyDriver);

describe('Create', () => {
  it('gives exactly one shared mount, with the requested owner and mode', async () => {
    await driver.ok('/VolumeDriver.Create', {
      Name: 'vol1',
      Opts: { uid: '1234', gid: '4321', mode: '0710' },
    });
    const stack = await entryAt(mountpointOf('vol1'));
    expect(stack).toHaveLength(1);
    expect(propagationOf(stack[0]!)).toBe('shared');
    expect(stack[0]!.root).toBe(dataDirOf('vol1'));
    const st = await stat(mountpointOf('vol1'));
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }).toEqual({
      uid: 1234,
      gid: 4321,
      mode: 0o710,
    });
    const state = await stat(path.join(driver.dataRoot, 'volumes', 'vol1', 'volume.json'));
    expect(state.mode & 0o777).toBe(0o600);
  });

  it('is idempotent, serialised, and refuses different options', async () => {
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        driver.call('/VolumeDriver.Create', { Name: 'same', Opts: {} }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(await countMountsAt(mountpointOf('same'))).toBe(1);
    const other = await driver.call('/VolumeDriver.Create', { Name: 'same', Opts: { uid: '5' } });
    expect(other.status).toBe(409);
    expect(other.body.Err).toMatch(/volume "same" already exists with different options/);
  });

  it('an invalid Create leaves nothing behind', async () => {
    const before = await readdir(path.join(driver.dataRoot, 'volumes'));
    const answer = await driver.call('/VolumeDriver.Create', {
      Name: 'bad1',
      Opts: { mode: '99' },
    });
    expect(answer.status).toBe(400);
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual(before);
    expect(await countMountsAt(mountpointOf('bad1'))).toBe(0);
  });
});

describe('a Create that fails half-way', () => {
  it('leaves nothing behind: no volume directory, no staging or trash, no mount', async () => {
    // A file where the mount point must go: Create gets as far as publishing the volume's
    // directory, then cannot mount it.
    await writeFile(mountpointOf('halfway'), 'not a directory');
    const answer = await driver.call('/VolumeDriver.Create', { Name: 'halfway', Opts: {} });
    expect(answer.status).toBe(500);
    expect(answer.body.Err).toMatch(/EEXIST|ENOTDIR|not a directory/);
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
    expect(await countMountsAt(mountpointOf('halfway'))).toBe(0);
    expect((await driver.call('/VolumeDriver.Get', { Name: 'halfway' })).status).toBe(404);
    expect(await readFile(mountpointOf('halfway'), 'utf8')).toBe('not a directory');
  });
});

describe('Remove', () => {
  it('detaches submounts and deletes the volume, leaving a bind-mounted sentinel and symlink targets untouched', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'sharedprop-sentinel-'));
    try {
      await mkdir(path.join(outside, 'bound'));
      await writeFile(path.join(outside, 'bound', 'precious'), 'keep me');
      await mkdir(path.join(outside, 'linked'));
      await writeFile(path.join(outside, 'linked', 'precious'), 'keep me too');
      await writeFile(path.join(outside, 'file-target'), 'and me');

      await driver.ok('/VolumeDriver.Create', { Name: 'safe', Opts: {} });
      const mp = mountpointOf('safe');
      await mkdir(path.join(mp, 'bind'));
      await execa('mount', ['--bind', path.join(outside, 'bound'), path.join(mp, 'bind')]);
      await mkdir(path.join(mp, 'deep', 'tmp'), { recursive: true });
      await execa('mount', ['-t', 'tmpfs', 'sp-deep', path.join(mp, 'deep', 'tmp')]);
      await mkdir(path.join(mp, 'deep', 'tmp', 'inner'));
      await execa('mount', [
        '--bind',
        path.join(outside, 'bound'),
        path.join(mp, 'deep', 'tmp', 'inner'),
      ]);
      await mkdir(path.join(dataDirOf('safe'), 'direct'));
      await execa('mount', [
        '--bind',
        path.join(outside, 'bound'),
        path.join(dataDirOf('safe'), 'direct'),
      ]);
      await symlink(path.join(outside, 'linked'), path.join(mp, 'dirlink'));
      await symlink(path.join(outside, 'file-target'), path.join(mp, 'filelink'));
      await writeFile(path.join(mp, 'ordinary'), 'volume data');

      await driver.ok('/VolumeDriver.Remove', { Name: 'safe' });

      expect(await readFile(path.join(outside, 'bound', 'precious'), 'utf8')).toBe('keep me');
      expect(await readFile(path.join(outside, 'linked', 'precious'), 'utf8')).toBe('keep me too');
      expect(await readFile(path.join(outside, 'file-target'), 'utf8')).toBe('and me');
      const all = parseMountinfo((await hostMountinfo()).join('\n'));
      expect(all.filter((e) => e.mountPoint.startsWith(driver.base))).toEqual([]);
      await expect(lstat(mp)).rejects.toThrow(/ENOENT/);
      await expect(lstat(path.join(driver.dataRoot, 'volumes', 'safe'))).rejects.toThrow(/ENOENT/);
      expect(
        (await readdir(path.join(driver.dataRoot, 'volumes'))).filter((n) => n.startsWith('.')),
      ).toEqual([]);
      expect((await driver.call('/VolumeDriver.Get', { Name: 'safe' })).status).toBe(404);
    } finally {
      await unmountEverythingUnder(outside);
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('of an unknown volume is a clear error', async () => {
    const answer = await driver.call('/VolumeDriver.Remove', { Name: 'ghost' });
    expect(answer).toEqual({ status: 404, body: { Err: 'volume "ghost" does not exist' } });
  });
});
