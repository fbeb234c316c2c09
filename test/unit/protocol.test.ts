import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger } from '../../src/log.js';
import { createApp, CONTENT_TYPE } from '../../src/protocol/app.js';
import { VolumeError } from '../../src/model/errors.js';
import type { RawOptions } from '../../src/model/options.js';
import type { Capabilities, VolumeDriver, VolumeInfo } from '../../src/driver/types.js';
import { silentLogger } from '../support/silent-logger.js';

/** A driver that records its calls and answers from a script. */
class FakeDriver implements VolumeDriver {
  calls: unknown[][] = [];
  failWith?: Error;
  info: VolumeInfo = {
    name: 'v1',
    mountpoint: '/m/v1',
    createdAt: '2026-01-01T00:00:00Z',
    status: {
      propagation: 'rshared',
      type: 'directory',
      activeMounts: 2,
      mountIds: new Map([
        ['__proto__', 1],
        ['c1', 1],
      ]),
      countsSaved: true,
      mountPoint: 'shared',
      submounts: [{ path: '/x', fsType: 'tmpfs', source: 't', root: '/' }],
      dataPath: '/d/v1/_data',
    },
  };

  private async record(...call: unknown[]) {
    this.calls.push(call);
    if (this.failWith) throw this.failWith;
  }
  async create(name: string, options: RawOptions) {
    await this.record('create', name, options);
  }
  async remove(name: string) {
    await this.record('remove', name);
  }
  /** Holds Mount answers back until opened (to cut a connection before the answer). */
  gate?: Promise<void>;
  async mount(name: string, id: string) {
    await this.record('mount', name, id);
    await this.gate;
    return {
      value: `/m/${name}`,
      commit: () => void this.calls.push(['commit', name, id]),
      abandon: () => void this.calls.push(['abandon', name, id]),
    };
  }
  async unmount(name: string, id: string) {
    await this.record('unmount', name, id);
  }
  async path(name: string) {
    await this.record('path', name);
    return `/m/${name}`;
  }
  async get(name: string) {
    await this.record('get', name);
    return { ...this.info, name };
  }
  async list() {
    await this.record('list');
    return [this.info];
  }
  capabilities(): Capabilities {
    return { scope: 'local' };
  }
}

function setup() {
  const driver = new FakeDriver();
  const app = createApp(driver, silentLogger());
  const post = (endpoint: string, body?: unknown) => {
    const req = request(app)
      .post(endpoint)
      .set('Accept', 'application/vnd.docker.plugins.v1.2+json')
      .set('Content-Type', 'application/vnd.docker.plugins.v1.2+json');
    return body === undefined
      ? req
      : req.send(typeof body === 'string' ? body : JSON.stringify(body));
  };
  return { driver, post };
}

describe('VolumeDriver protocol routing', () => {
  it('activates as a VolumeDriver with the plugin content type', async () => {
    const { post } = setup();
    const res = await post('/Plugin.Activate');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain(CONTENT_TYPE);
    expect(JSON.parse(res.text)).toEqual({ Implements: ['VolumeDriver'] });
  });

  it('answers Capabilities with local scope', async () => {
    const { post } = setup();
    const res = await post('/VolumeDriver.Capabilities', 'null');
    expect(JSON.parse(res.text)).toEqual({ Capabilities: { Scope: 'local' } });
  });

  it('routes every endpoint to the driver with its arguments', async () => {
    const { driver, post } = setup();
    expect(
      JSON.parse((await post('/VolumeDriver.Create', { Name: 'v1', Opts: { uid: '1' } })).text),
    ).toEqual({});
    await post('/VolumeDriver.Create', { Name: 'v2', Opts: null });
    await post('/VolumeDriver.Create', { Name: 'v3' }); // no Opts at all
    expect(JSON.parse((await post('/VolumeDriver.Mount', { Name: 'v1', ID: 'c1' })).text)).toEqual({
      Mountpoint: '/m/v1',
    });
    await post('/VolumeDriver.Unmount', { Name: 'v1', ID: 'c1' });
    expect(JSON.parse((await post('/VolumeDriver.Path', { Name: 'v1' })).text)).toEqual({
      Mountpoint: '/m/v1',
    });
    expect(JSON.parse((await post('/VolumeDriver.Get', { Name: 'v1' })).text)).toEqual({
      Volume: {
        Name: 'v1',
        Mountpoint: '/m/v1',
        CreatedAt: '2026-01-01T00:00:00Z',
        Status: {
          propagation: 'rshared',
          type: 'directory',
          activeMounts: 2,
          mountIds: JSON.parse('{"__proto__":1,"c1":1}') as Record<string, number>,
          countsSaved: true,
          mountPoint: 'shared',
          submounts: [{ path: '/x', fsType: 'tmpfs', source: 't', root: '/' }],
          dataPath: '/d/v1/_data',
        },
      },
    });
    expect(JSON.parse((await post('/VolumeDriver.List', {})).text)).toEqual({
      Volumes: [{ Name: 'v1', Mountpoint: '/m/v1', CreatedAt: '2026-01-01T00:00:00Z' }],
    });
    await post('/VolumeDriver.Remove', { Name: 'v1' });
    expect(driver.calls).toEqual([
      ['create', 'v1', new Map([['uid', '1']])],
      ['create', 'v2', new Map()],
      ['create', 'v3', new Map()],
      ['mount', 'v1', 'c1'],
      ['commit', 'v1', 'c1'],
      ['unmount', 'v1', 'c1'],
      ['path', 'v1'],
      ['get', 'v1'],
      ['list'],
      ['remove', 'v1'],
    ]);
  });
});

describe('answers built from what the driver hands out', () => {
  it('Get answers the object the driver hands out now: the same one alike, a new one anew', async () => {
    const { driver, post } = setup();
    const first: VolumeInfo = { ...driver.info };
    let current = first;
    driver.get = async () => current;
    const activeMounts = async () =>
      (
        JSON.parse((await post('/VolumeDriver.Get', { Name: 'v1' })).text) as {
          Volume: { Status: { activeMounts: number } };
        }
      ).Volume.Status.activeMounts;
    expect(await activeMounts()).toBe(2);
    expect(await activeMounts()).toBe(2);
    current = { ...first, status: { ...first.status!, activeMounts: 3 } };
    expect(await activeMounts()).toBe(3);
    current = first;
    expect(await activeMounts()).toBe(2);
  });

  it('List and Capabilities follow the driver the same way', async () => {
    const { driver, post } = setup();
    const listed = async () =>
      (
        JSON.parse((await post('/VolumeDriver.List', {})).text) as { Volumes: { Name: string }[] }
      ).Volumes.map((v) => v.Name);
    const one = [driver.info];
    driver.list = async () => one;
    expect(await listed()).toEqual(['v1']);
    expect(await listed()).toEqual(['v1']);
    driver.list = async () => [driver.info, { ...driver.info, name: 'v2' }];
    expect(await listed()).toEqual(['v1', 'v2']);

    const scope = async () => JSON.parse((await post('/VolumeDriver.Capabilities', {})).text);
    expect(await scope()).toEqual({ Capabilities: { Scope: 'local' } });
    driver.capabilities = () => ({ scope: 'global' });
    expect(await scope()).toEqual({ Capabilities: { Scope: 'global' } });
  });
});

describe('a Mount settled by its delivery', () => {
  const settled = (driver: FakeDriver) =>
    driver.calls.filter(([what]) => what === 'commit' || what === 'abandon');

  it('is committed once the answer has been handed to the connection', async () => {
    const { driver, post } = setup();
    expect((await post('/VolumeDriver.Mount', { Name: 'v1', ID: 'c1' })).status).toBe(200);
    await waitUntil(() => settled(driver).length > 0);
    expect(settled(driver)).toEqual([['commit', 'v1', 'c1']]);
  });

  it('is abandoned when the connection closed before the answer', async () => {
    const driver = new FakeDriver();
    let open = () => undefined as void;
    driver.gate = new Promise<void>((resolve) => (open = resolve));
    const server = http.createServer(createApp(driver, silentLogger())).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const req = http.request({
        port,
        host: '127.0.0.1',
        method: 'POST',
        path: '/VolumeDriver.Mount',
      });
      req.on('error', () => undefined);
      req.end(JSON.stringify({ Name: 'v1', ID: 'c1' }));
      await waitUntil(() => driver.calls.length > 0); // the driver has the Mount
      req.destroy(); // dockerd's side goes away (a timeout, a kill) before the answer
      await new Promise((resolve) => setTimeout(resolve, 50));
      open();
      await waitUntil(() => settled(driver).length > 0);
      expect(settled(driver)).toEqual([['abandon', 'v1', 'c1']]);
    } finally {
      server.close();
    }
  });
});

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('error mapping', () => {
  it.each([
    ['invalid', 400],
    ['not_found', 404],
    ['conflict', 409],
    ['internal', 500],
  ] as const)('a %s driver error becomes %d with Err verbatim', async (kind, status) => {
    const { driver, post } = setup();
    driver.failWith = new VolumeError(kind, `volume "v1": ${kind} happened`);
    const res = await post('/VolumeDriver.Remove', { Name: 'v1' });
    expect(res.status).toBe(status);
    expect(JSON.parse(res.text)).toEqual({ Err: `volume "v1": ${kind} happened` });
  });

  it('an unexpected exception is a 500 with its message, and the server keeps serving', async () => {
    const { driver, post } = setup();
    driver.failWith = new Error('disk on fire');
    const res = await post('/VolumeDriver.Get', { Name: 'v1' });
    expect(res.status).toBe(500);
    // The detail (host paths, command lines) goes to the log; the answer carries a reference.
    expect(JSON.parse(res.text).Err).toMatch(
      /^internal error: see the plugin's log, ref [0-9a-f]{8}$/,
    );
    expect(JSON.parse(res.text).Err).not.toMatch(/disk on fire/);
    driver.failWith = undefined;
    expect((await post('/VolumeDriver.Get', { Name: 'v1' })).status).toBe(200);
  });
});

describe('one pipeline', () => {
  it('maps driver errors and logs each request once', async () => {
    const driver = new FakeDriver();
    driver.failWith = new VolumeError('not_found', 'volume "v1" not found');
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const inFlight: number[] = [];
    const app = createApp(driver, createLogger({ level: 'debug', stream }), {
      onRequest: (delta) => inFlight.push(delta),
    });
    const res = await request(app).post('/VolumeDriver.Get').send('{"Name":"v1"}');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toEqual({ Err: 'volume "v1" not found' });
    driver.failWith = undefined;
    await request(app).post('/VolumeDriver.Capabilities').send('');
    expect((await request(app).get('/VolumeDriver.List')).status).toBe(404);
    await new Promise((resolve) => setImmediate(resolve));
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toEqual([
      expect.objectContaining({
        level: 'warn',
        endpoint: '/VolumeDriver.Get',
        volume: 'v1',
        status: 404,
      }),
      expect.objectContaining({
        level: 'debug',
        endpoint: '/VolumeDriver.Capabilities',
        status: 200,
      }),
      expect.objectContaining({ level: 'warn', endpoint: '/VolumeDriver.List', status: 404 }),
    ]);
    // Every exchange, answered or refused, leaves the count of requests in flight as it was.
    expect(inFlight).toEqual([1, -1, 1, -1, 1, -1]);
  });
});

describe('bad input', () => {
  it('malformed JSON', async () => {
    const { driver, post } = setup();
    const res = await post('/VolumeDriver.Create', '{"Name": "v1"');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).Err).toMatch(/malformed JSON/);
    expect(driver.calls).toEqual([]);
  });

  it.each([
    ['/VolumeDriver.Create', { Name: 5 }, /Name must be a string/],
    ['/VolumeDriver.Create', {}, /Name must be a string/],
    ['/VolumeDriver.Create', { Name: 'v1', Opts: { uid: 5 } }, /option values must be strings/],
    ['/VolumeDriver.Create', { Name: 'v1', Opts: [] }, /Opts/],
    ['/VolumeDriver.Mount', { Name: 'v1' }, /ID must be a string/],
    ['/VolumeDriver.Remove', [], /invalid request/],
    ['/VolumeDriver.Get', 'null', /Name must be a string/],
  ])('%s with %j is refused', async (endpoint, body, message) => {
    const { driver, post } = setup();
    const res = await post(endpoint, body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).Err).toMatch(message);
    expect(driver.calls).toEqual([]);
  });

  it('an own __proto__ key in Opts reaches the driver as a key like any other', async () => {
    const { driver, post } = setup();
    await post('/VolumeDriver.Create', '{"Name":"v1","Opts":{"__proto__":"1","uid":"2"}}');
    expect(driver.calls).toEqual([
      [
        'create',
        'v1',
        new Map([
          ['__proto__', '1'],
          ['uid', '2'],
        ]),
      ],
    ]);
    const res = await post('/VolumeDriver.Create', '{"Name":"v1","Opts":{"__proto__":{"x":"y"}}}');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).Err).toMatch(/__proto__: option values must be strings/);
  });

  it('an empty body (dockerd 20.10 resending a request cut by a plugin restart) is refused with what to do', async () => {
    const { driver, post } = setup();
    const res = await post('/VolumeDriver.Mount', '');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).Err).toBe(
      'Mount: empty request body (after a plugin restart, dockerd resends a cut request without its body: run the command again)',
    );
    expect(driver.calls).toEqual([]);
  });

  it('an oversized body is refused', async () => {
    const { driver, post } = setup();
    const res = await post('/VolumeDriver.Create', {
      Name: 'v1',
      Opts: { pad: 'x'.repeat(1024 * 1024 + 10) },
    });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).Err).toMatch(/larger than 1048576 bytes/);
    expect(driver.calls).toEqual([]);
  });

  it('an unknown endpoint is a 404 with Err', async () => {
    const { post } = setup();
    const res = await post('/VolumeDriver.Explode', {});
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toEqual({ Err: 'unknown endpoint /VolumeDriver.Explode' });
  });

  it('GET is not part of the protocol', async () => {
    const { driver } = setup();
    const res = await request(createApp(driver, silentLogger())).get('/Plugin.Activate');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text).Err).toMatch(/unknown endpoint GET/);
  });
});
