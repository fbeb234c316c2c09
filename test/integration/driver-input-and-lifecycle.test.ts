/**
 * Integration tier: the real driver process, real mounts in temporary directories, as root. This
 * file: bad input over the socket and on disk, and the process's lifecycle (SIGTERM, the log).
 */
import { jest } from '@jest/globals';
import http from 'node:http';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { countMountsAt } from '../support/driver-process.js';
import { waitFor } from '../support/wait-for.js';
import type { RawAnswer } from '../support/plugin-client.js';
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
    // In flight for sure: each Create is sent with `Expect: 100-continue`, and its body only once
    // the driver's "100 Continue" proves it took the request (node emits it with 'request'). A
    // request merely sent may still sit unaccepted in the socket's backlog when SIGTERM arrives.
    const names = Array.from({ length: 12 }, (_, i) => `busy${i}`);
    const creates = names.map((Name) => createHeldBack(driver.socket, Name));
    await Promise.all(creates.map((c) => c.taken));
    const stopping = driver.stop('SIGTERM');
    // The bodies go once the driver is stopping: it has stopped listening and taking new requests.
    await waitFor('the driver to log "stopping"', async () =>
      (await logLines()).some((l) => l.message === 'stopping'),
    );
    for (const create of creates) create.sendBody();
    const answers = await Promise.all(creates.map((c) => c.answer));
    expect(answers.map((a) => a.status)).toEqual(names.map(() => 200));
    const stopped = await stopping;
    expect(stopped.ms).toBeLessThan(10_000);
    expect(stopped.exitCode).toBe(0);
    const stoppingLine = (await logLines()).find((l) => l.message === 'stopping');
    expect(stoppingLine?.inFlight).toBe(names.length);
    await driver.restart();
    const list = (await driver.ok('/VolumeDriver.List', {})) as { Volumes: { Name: string }[] };
    expect(list.Volumes.map((v) => v.Name).sort()).toEqual([...names].sort());
    for (const name of names) expect(await countMountsAt(mountpointOf(name))).toBe(1);
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

async function logLines(): Promise<Record<string, unknown>[]> {
  return (await driver.log())
    .split('\n')
    .filter((line) => line.startsWith('{')) // node may warn on stderr, which goes there too
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * A Create on a connection of its own whose body is held back: `taken` resolves when the driver
 * answers "100 Continue" (it has the request), `sendBody` sends the body, `answer` is the answer.
 */
function createHeldBack(socketPath: string, Name: string) {
  const payload = JSON.stringify({ Name, Opts: {} });
  let answered!: (answer: RawAnswer) => void;
  let failed!: (error: unknown) => void;
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    answered = resolve;
    failed = reject;
  });
  const req = http.request(
    {
      socketPath,
      path: '/VolumeDriver.Create',
      method: 'POST',
      agent: false,
      headers: {
        'Content-Type': 'application/vnd.docker.plugins.v1.2+json',
        'Content-Length': Buffer.byteLength(payload),
        Expect: '100-continue',
      },
    },
    (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => answered({ status: res.statusCode ?? 0, text }));
    },
  );
  req.on('error', failed);
  answer.catch(() => undefined); // awaited later; a reset must not go unhandled meanwhile
  const taken = new Promise<void>((resolve, reject) => {
    req.once('continue', resolve);
    req.once('error', reject);
  });
  req.flushHeaders();
  return { taken, answer, sendBody: () => req.end(payload) };
}
