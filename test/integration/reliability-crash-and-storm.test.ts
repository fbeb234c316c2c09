/**
 * The reliability suite, root tier: each case is a way the driver was broken (issue "Data
 * safety") or could be, tried against the real `sharedprop serve` with real mounts. The README's
 * Reliability table names these tests. This file: kill -9 in the middle of a request, and storms
 * of concurrent requests.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CRASH_POINTS, type CrashPoint } from '../../src/driver/crash-points.js';
import { hostMountsWithin } from '../support/host-mounts.js';
import { expectConsistent, listed, mountpointOf, statusOf } from '../support/volume-checks.js';
import { type Answer } from '../support/driver-process.js';
import { destroyDrivers, startDriver, unmountLeftovers } from './reliability/harness.js';

jest.setTimeout(180_000);

afterEach(destroyDrivers);
afterAll(unmountLeftovers);

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
      await driver.restartAfterCrash();
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
    await driver.restartAfterCrash();
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
