/**
 * The protocol under abuse, against the real `sharedprop serve`: a seeded fuzz of more than
 * 10,000 requests checked against a model, hostile and huge bodies, 15,000 idle connections,
 * 300 parallel Creates of one name, and kill -9 in the middle of a storm. The README's
 * Reliability table names these tests.
 */
import { jest } from '@jest/globals';
import fc from 'fast-check';
import { readdir, readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import { DriverProcess, type Answer } from '../support/driver-process.js';
import { PluginClient } from '../support/plugin-client.js';
import { hostMountsAt } from '../support/host-mounts.js';
import {
  expectConsistent,
  listed,
  mountpointOf,
  statusOf,
  volumesDir,
} from '../support/volume-checks.js';

jest.setTimeout(300_000);

const SEED = 20261122;
const REQUESTS = 10_500;

let driver: DriverProcess;
afterEach(async () => {
  await driver?.destroy();
});

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** Sends raw text (which need not be JSON) and parses the answer, which must be JSON. */
async function raw(client: PluginClient, endpoint: string, text: string): Promise<Answer> {
  const answer = await client.request(endpoint, text);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(answer.text) as Record<string, unknown>;
  } catch {
    throw new Error(`${endpoint} ${text.slice(0, 200)}: answer is not JSON: ${answer.text}`);
  }
  return { status: answer.status, body };
}

const NAMES = ['fz0', 'fz1', 'fz2', 'fz3'];
const IDS = ['a', 'b', 'valueOf', 'constructor', '__proto__', 'toString', 'hasOwnProperty'];
const HOSTILE_NAMES: unknown[] = [
  '..',
  '.',
  'a/b',
  '../../etc',
  '__proto__',
  '',
  'x',
  '-rf',
  'sp ace',
  'nul\u0000x',
  'é',
  'x'.repeat(300),
  5,
  null,
  ['a'],
  { a: 1 },
];

type Request =
  | { kind: 'valid'; endpoint: string; body: Record<string, unknown> }
  | { kind: 'invalid'; endpoint: string; text: string };

const validRequest: fc.Arbitrary<Request> = fc
  .record({
    endpoint: fc.constantFrom(
      'Create',
      'Remove',
      'Mount',
      'Mount',
      'Mount',
      'Unmount',
      'Unmount',
      'Unmount',
      'Get',
      'Get',
      'Path',
      'List',
      'Capabilities',
    ),
    name: fc.constantFrom(...NAMES),
    id: fc.constantFrom(...IDS),
  })
  .map(({ endpoint, name, id }) => ({
    kind: 'valid' as const,
    endpoint,
    body: endpoint === 'Create' ? { Name: name, Opts: {} } : { Name: name, ID: id },
  }));

const invalidRequest: fc.Arbitrary<Request> = fc.oneof(
  fc
    .record({
      endpoint: fc.constantFrom('Create', 'Remove', 'Mount', 'Unmount', 'Get', 'Path'),
      name: fc.constantFrom(...HOSTILE_NAMES),
    })
    .map(({ endpoint, name }) => ({
      kind: 'invalid' as const,
      endpoint,
      text: JSON.stringify({ Name: name, ID: 'x', Opts: {} }),
    })),
  fc
    .constantFrom(
      // Unknown options, whatever their name; an own __proto__ key must be built by hand.
      { endpoint: 'Create', text: '{"Name":"fz0","Opts":{"__proto__":{"x":"y"}}}' },
      { endpoint: 'Create', text: '{"Name":"fz0","Opts":{"__proto__":"1"}}' },
      { endpoint: 'Create', text: '{"Name":"fz0","Opts":{"constructor":"1"}}' },
      { endpoint: 'Create', text: '{"Name":"fz0","Opts":{"size":"1g"}}' },
      { endpoint: 'Create', text: '{"Name":"fz0","Opts":{"mode":"rwx"}}' },
      { endpoint: 'Create', text: '{"Name":"fz0","Opts":[]}' },
      { endpoint: 'Mount', text: '{"Name":"fz0"}' },
      { endpoint: 'Mount', text: '{"Name":"fz0","ID":""}' },
      { endpoint: 'Mount', text: '{"Name":"fz0","ID":"a\\nb"}' },
      { endpoint: 'Get', text: '{"Name":' },
      { endpoint: 'Get', text: 'not json' },
      { endpoint: 'Remove', text: '[]' },
      { endpoint: 'Remove', text: 'null' },
      { endpoint: 'Path', text: '"fz0"' },
      { endpoint: 'Get', text: '['.repeat(5_000) + ']'.repeat(5_000) },
    )
    .map((r) => ({ kind: 'invalid' as const, ...r })),
  fc.string({ maxLength: 40 }).map((text) => ({ kind: 'invalid' as const, endpoint: 'Get', text })),
  fc.constant({ kind: 'invalid' as const, endpoint: 'Explode', text: '{}' }),
);

/** What the driver should hold: per volume, per-ID counts. */
class Model {
  readonly volumes = new Map<string, Map<string, number>>();

  /** The status a valid request must get, and the model after it. */
  apply(endpoint: string, body: Record<string, unknown>): number {
    const name = body.Name as string;
    const id = body.ID as string;
    const counts = this.volumes.get(name);
    switch (endpoint) {
      case 'Create':
        if (!counts) this.volumes.set(name, new Map());
        return 200;
      case 'Remove': {
        if (!counts) return 404;
        if ([...counts.values()].some((n) => n > 0)) return 409;
        this.volumes.delete(name);
        return 200;
      }
      case 'Mount':
        if (!counts) return 404;
        counts.set(id, (counts.get(id) ?? 0) + 1);
        return 200;
      case 'Unmount': {
        if (!counts) return 404;
        const n = counts.get(id) ?? 0;
        if (n > 1) counts.set(id, n - 1);
        else counts.delete(id);
        return 200;
      }
      case 'Get':
      case 'Path':
        return counts ? 200 : 404;
      default:
        return 200;
    }
  }
}

describe('seeded protocol fuzz', () => {
  it(`${REQUESTS} requests (seed ${SEED}): no 5xx on valid input, clear 4xx on invalid, the model holds, memory bounded`, async () => {
    driver = await DriverProcess.start({ logLevel: 'warn' });
    const pid = driver.pid!;
    const client = new PluginClient(driver.socket);
    try {
      const requests = fc.sample(
        fc.oneof({ weight: 3, arbitrary: validRequest }, { weight: 1, arbitrary: invalidRequest }),
        { numRuns: REQUESTS, seed: SEED },
      );
      const model = new Model();
      const rssBefore = await rssMiB(pid);
      let valid = 0;
      for (const [index, request] of requests.entries()) {
        const endpoint = `/VolumeDriver.${request.endpoint}`;
        const where = `request ${index} (seed ${SEED}): ${endpoint}`;
        if (request.kind === 'valid') {
          valid++;
          const answer = await raw(client, endpoint, JSON.stringify(request.body));
          const expected = model.apply(request.endpoint, request.body);
          expect({ where, status: answer.status, body: answer.body }).toEqual({
            where,
            status: expected,
            body: expect.anything(),
          });
          if (request.endpoint === 'Get' && expected === 200) {
            const status = (answer.body.Volume as { Status: Record<string, unknown> }).Status;
            const counts = model.volumes.get(request.body.Name as string)!;
            expect({ where, ids: status.mountIds }).toEqual({
              where,
              ids: JSON.parse(JSON.stringify(Object.fromEntries(counts))),
            });
            expect(status.activeMounts).toBe([...counts.values()].reduce((a, b) => a + b, 0));
          }
          if (request.endpoint === 'List') {
            const names = (answer.body.Volumes as { Name: string }[]).map((v) => v.Name).sort();
            expect({ where, names }).toEqual({ where, names: [...model.volumes.keys()].sort() });
          }
        } else {
          const answer = await raw(client, endpoint, request.text);
          expect({ where, text: request.text.slice(0, 80), status: answer.status }).toEqual({
            where,
            text: request.text.slice(0, 80),
            status: expect.any(Number),
          });
          expect(answer.status).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          expect(typeof answer.body.Err).toBe('string');
        }
      }
      expect(valid).toBeGreaterThan(7_000);
      expect(driver.pid).toBe(pid); // never crashed
      const rssAfter = await rssMiB(pid);
      expect(rssAfter).toBeLessThan(200);
      expect(rssAfter - rssBefore).toBeLessThan(60);
      // Nothing the invalid requests named exists on disk.
      expect((await readdir(volumesDir(driver))).sort()).toEqual([...model.volumes.keys()].sort());
    } finally {
      client.close();
    }
  });
});

describe('hostile input', () => {
  it('hostile names, a 50 MB body and 100,000 levels of nesting get 4xx; the driver stays up and creates nothing', async () => {
    driver = await DriverProcess.start({ logLevel: 'warn' });
    const client = new PluginClient(driver.socket);
    try {
      for (const name of HOSTILE_NAMES) {
        const answer = await raw(client, '/VolumeDriver.Create', JSON.stringify({ Name: name }));
        expect(answer.status).toBe(400);
      }
      const big = JSON.stringify({ Name: 'big', Opts: { pad: 'x'.repeat(50 * 1024 * 1024) } });
      const huge = await client.request('/VolumeDriver.Create', big).catch((e: Error) => e);
      // Refused (413) or the connection cut once the limit is passed: never accepted.
      if (!(huge instanceof Error)) expect(huge.status).toBe(413);
      const deep = await raw(
        client,
        '/VolumeDriver.Get',
        '['.repeat(100_000) + ']'.repeat(100_000),
      );
      expect(deep.status).toBe(400);
      const deepObject = await raw(
        client,
        '/VolumeDriver.Create',
        '{"Name":"deep","Opts":' + '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000) + '}',
      );
      expect(deepObject.status).toBe(400);
      expect((await raw(client, '/Plugin.Activate', '{}')).status).toBe(200);
      expect(await readdir(volumesDir(driver))).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('15,000 idle connections do not keep it from answering; closing them frees every descriptor', async () => {
    driver = await DriverProcess.start({ logLevel: 'warn' });
    const pid = driver.pid!;
    const fdsBefore = await openFds(pid);
    const sockets: net.Socket[] = [];
    try {
      // In batches of 250: a Unix socket's listen backlog (511) answers EAGAIN beyond it, and
      // a connect that meets a full backlog is tried again.
      const connect = async (): Promise<net.Socket> => {
        for (;;) {
          try {
            return await new Promise<net.Socket>((resolve, reject) => {
              const socket = net.connect(driver.socket);
              socket.once('connect', () => resolve(socket));
              socket.once('error', reject);
            });
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        }
      };
      for (let batch = 0; batch < 60; batch++) {
        sockets.push(...(await Promise.all(Array.from({ length: 250 }, connect))));
      }
      expect(sockets).toHaveLength(15_000);
      const started = Date.now();
      await driver.ok('/VolumeDriver.Create', { Name: 'busy', Opts: {} });
      await driver.ok('/VolumeDriver.Get', { Name: 'busy' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    let fds = Infinity;
    for (let i = 0; i < 100 && fds > fdsBefore + 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      fds = await openFds(pid);
    }
    expect(fds).toBeLessThanOrEqual(fdsBefore + 10);
    await driver.ok('/VolumeDriver.Remove', { Name: 'busy' });
  });

  it('300 parallel Creates of one name: every one answered 200, one volume, one mount', async () => {
    driver = await DriverProcess.start({ logLevel: 'warn' });
    const answers = await Promise.all(
      Array.from({ length: 300 }, () =>
        driver.call('/VolumeDriver.Create', { Name: 'same', Opts: {} }),
      ),
    );
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(await readdir(volumesDir(driver))).toEqual(['same']);
    expect(await hostMountsAt(mountpointOf(driver, 'same'))).toHaveLength(1);
  });

  it('the socket is 0600 and owned by root, and stays so after a kill -9 and restart', async () => {
    driver = await DriverProcess.start({ logLevel: 'warn' });
    for (let round = 0; round < 2; round++) {
      const socket = await stat(driver.socket);
      expect(socket.isSocket()).toBe(true);
      expect(socket.mode & 0o777).toBe(0o600);
      expect(socket.uid).toBe(0);
      await driver.stop('SIGKILL');
      await driver.restart();
    }
  });
});

describe('kill -9 during a storm', () => {
  it('restart leaves every listed volume whole and mounted once, nothing else, and the calls can be retried', async () => {
    driver = await DriverProcess.start({ logLevel: 'warn' });
    const names = Array.from({ length: 10 }, (_, i) => `st${i}`);
    const rng = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), { numRuns: 600, seed: SEED });
    let r = 0;
    const next = () => rng[r++ % rng.length]!;
    const client = new PluginClient(driver.socket, 32);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const name = names[next() % names.length]!;
      const endpoint = ['Create', 'Create', 'Remove', 'Mount', 'Unmount'][next() % 5]!;
      calls.push(
        client
          .request(`/VolumeDriver.${endpoint}`, JSON.stringify({ Name: name, ID: 'c', Opts: {} }))
          .catch(() => undefined),
      );
      if (i === 100) {
        await new Promise((resolve) => setTimeout(resolve, next() % 40));
        await driver.stop('SIGKILL');
      }
    }
    await Promise.all(calls);
    client.close();
    await driver.restart();
    const survivors = await expectConsistent(driver);
    for (const name of survivors) {
      const status = await statusOf(driver, name);
      for (const [id, n] of Object.entries(status.mountIds)) {
        for (let i = 0; i < n; i++)
          await driver.ok('/VolumeDriver.Unmount', { Name: name, ID: id });
      }
    }
    // The same calls, retried, work.
    for (const name of names) await driver.ok('/VolumeDriver.Create', { Name: name, Opts: {} });
    expect(await listed(driver)).toEqual([...names].sort());
    for (const name of names) await driver.ok('/VolumeDriver.Remove', { Name: name });
    expect(await expectConsistent(driver)).toEqual([]);
  });
});
