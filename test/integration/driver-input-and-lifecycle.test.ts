/**
 * Integration tier: the real driver process, real mounts in temporary directories, as root. This
 * file: bad input over the socket and on disk, and the process's lifecycle (SIGTERM, the log).
 */
import { jest } from '@jest/globals';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { countMountsAt } from '../support/driver-process.js';
import { PluginClient } from '../support/plugin-client.js';
import { destroyDriver, driver, mountpointOf, startDriver } from './driver/harness.js';

jest.setTimeout(120_000);

beforeEach(startDriver);
afterEach(destroyDriver);

describe('bad input over the socket', () => {
  it('hostile names, malformed JSON and oversized bodies get clear errors and create nothing', async () => {
    const before = await readdir(driver.base);
    for (const Name of [
      '..',
      'a/b',
      '../../etc/evil',
      'nul\u0000byte',
      'x'.repeat(300),
      '.',
      '/abs',
    ]) {
      for (const endpoint of [
        '/VolumeDriver.Create',
        '/VolumeDriver.Mount',
        '/VolumeDriver.Remove',
        '/VolumeDriver.Get',
      ]) {
        const answer = await driver.call(endpoint, { Name, ID: 'id', Opts: {} });
        expect(answer.status).toBe(400);
        expect(answer.body.Err).toMatch(/invalid volume name/);
      }
    }
    expect((await driver.call('/VolumeDriver.Create', null, '{"Name":')).body.Err).toMatch(
      /malformed JSON/,
    );
    expect((await driver.call('/VolumeDriver.Create', { Name: ['x'] })).body.Err).toMatch(
      /Name must be a string/,
    );
    expect((await driver.call('/VolumeDriver.Mount', { Name: 'x1' })).body.Err).toMatch(
      /ID must be a string/,
    );
    const big = await driver.call('/VolumeDriver.Create', {
      Name: 'big',
      Opts: { x: 'y'.repeat(2 * 1024 * 1024) },
    });
    expect(big.status).toBe(413);
    expect((await driver.call('/Nope', {})).status).toBe(404);
    expect(await readdir(driver.base)).toEqual(before);
    expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
    expect(await readdir(driver.mountRoot)).toEqual(['.sharedprop-mountroot']);
    expect((await driver.call('/Plugin.Activate', {})).status).toBe(200);
  });

  it('a garbled state file is reported and skipped; the driver still starts', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'fine', Opts: {} });
    await driver.ok('/VolumeDriver.Create', { Name: 'garbled', Opts: {} });
    await driver.stop('SIGTERM');
    await writeFile(
      path.join(driver.dataRoot, 'volumes', 'garbled', 'volume.json'),
      '{"version":1,"na\u0000',
    );
    await driver.restart();
    const list = (await driver.ok('/VolumeDriver.List', {})) as { Volumes: { Name: string }[] };
    expect(list.Volumes.map((v) => v.Name)).toEqual(['fine']);
    const get = await driver.call('/VolumeDriver.Get', { Name: 'garbled' });
    expect(get.status).toBe(500);
    expect(get.body.Err).toMatch(
      /"garbled": its state \(volumes\/garbled\/volume\.json in the data root\) is unusable/,
    );
    expect(get.body.Err).not.toContain(driver.dataRoot); // host paths belong in the log
    expect((await driver.call('/VolumeDriver.Create', { Name: 'garbled', Opts: {} })).status).toBe(
      500,
    );
    expect(await driver.log()).toMatch(/volume state unreadable; volume skipped/);
  });
});

describe('process lifecycle', () => {
  it('SIGTERM answers every request in flight, keeps them durable, and exits within 10 s', async () => {
    // A client of its own: DriverProcess.stop closes the default one.
    const client = new PluginClient(driver.socket);
    try {
      const names = Array.from({ length: 12 }, (_, i) => `busy${i}`);
      const inFlight = names.map((Name) =>
        client.request('/VolumeDriver.Create', JSON.stringify({ Name, Opts: {} })),
      );
      // Each Create mounts (milliseconds each): once one is answered, the others are in flight.
      await Promise.race(inFlight);
      const stopping = driver.stop('SIGTERM');
      const answers = await Promise.all(inFlight);
      expect(answers.map((a) => a.status)).toEqual(names.map(() => 200));
      const stopped = await stopping;
      expect(stopped.ms).toBeLessThan(10_000);
      expect(stopped.exitCode).toBe(0);
      await driver.restart();
      const list = (await driver.ok('/VolumeDriver.List', {})) as { Volumes: { Name: string }[] };
      expect(list.Volumes.map((v) => v.Name).sort()).toEqual([...names].sort());
      for (const name of names) expect(await countMountsAt(mountpointOf(name))).toBe(1);
    } finally {
      client.close();
    }
  });

  it('logs one structured JSON line per request', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'logged', Opts: {} });
    await driver.call('/VolumeDriver.Remove', { Name: 'nosuch' });
    // The log line is written when the response closes: give it a moment to reach the file.
    let requests: Record<string, unknown>[] = [];
    for (let i = 0; i < 50 && requests.length < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      requests = (await driver.log())
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((l) => l.message === 'request');
    }
    expect(requests).toContainEqual(
      expect.objectContaining({
        endpoint: '/VolumeDriver.Create',
        volume: 'logged',
        outcome: 'ok',
        durationMs: expect.any(Number),
      }),
    );
    expect(requests).toContainEqual(
      expect.objectContaining({
        endpoint: '/VolumeDriver.Remove',
        volume: 'nosuch',
        outcome: 'error',
        status: 404,
      }),
    );
  });
});
