/**
 * The typed engine client: what DOCKER_HOST names, how each failure of dockerode becomes an
 * EngineError of the right kind, and the typed answers, against a small fake Engine API served
 * on a Unix socket (no Docker needed).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EngineError, engineTarget, toEngineError } from '../../src/docker/engine-client.js';
import { connectTo } from '../support/cli-fakes.js';

describe('engineTarget', () => {
  it('names the default socket, a unix:// DOCKER_HOST, or any other DOCKER_HOST as given', () => {
    expect(engineTarget(undefined)).toEqual({
      address: 'unix:///var/run/docker.sock',
      socketPath: '/var/run/docker.sock',
    });
    expect(engineTarget('unix:///tmp/d.sock')).toEqual({
      address: 'unix:///tmp/d.sock',
      socketPath: '/tmp/d.sock',
    });
    expect(engineTarget('tcp://10.0.0.1:2375')).toEqual({ address: 'tcp://10.0.0.1:2375' });
  });
});

describe('toEngineError', () => {
  const errno = (code: string) =>
    Object.assign(new Error(`connect ${code} /s.sock`), { code, syscall: 'connect' });

  it.each([
    [
      'ENOENT',
      'unreachable',
      /^cannot reach the Docker engine at unix:\/\/\/s.sock: connect ENOENT/,
    ],
    ['ECONNREFUSED', 'unreachable', /^cannot reach the Docker engine at /],
    ['ETIMEDOUT', 'unreachable', /^cannot reach the Docker engine at /],
    [
      'EACCES',
      'permission',
      /^permission denied connecting to the Docker engine at unix:\/\/\/s.sock/,
    ],
    ['EPERM', 'permission', /^permission denied connecting /],
  ])('%s is %s', (code, kind, message) => {
    const error = toEngineError(errno(code), 'unix:///s.sock', 'list volumes');
    expect(error).toBeInstanceOf(EngineError);
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(message);
  });

  it("an HTTP answer is kind api, with the engine's message and the status", () => {
    const answer = Object.assign(new Error('(HTTP code 500) server error - boom '), {
      statusCode: 500,
      json: { message: 'boom' },
    });
    const error = toEngineError(answer, 'unix:///s.sock', 'list volumes');
    expect(error).toMatchObject({ kind: 'api', statusCode: 500 });
    expect(error.message).toBe(
      'the Docker engine at unix:///s.sock could not list volumes: HTTP 500: boom',
    );
  });

  it('an error without errno code or status (an answer of an unexpected shape) is api', () => {
    const error = toEngineError(new TypeError('x is undefined'), 'unix:///s.sock', 'list volumes');
    expect(error).toMatchObject({ kind: 'api', statusCode: undefined });
    expect(error.message).toBe(
      'the Docker engine at unix:///s.sock could not list volumes: x is undefined',
    );
  });

  it('an EngineError stays as it is', () => {
    const original = new EngineError('permission', 'x');
    expect(toEngineError(original, 'a', 'b')).toBe(original);
  });
});

describe('connectEngine (the real client, DOCKER_HOST set for each)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sharedprop-engine-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('no socket: unreachable, naming the socket', async () => {
    const socket = path.join(dir, 'missing.sock');
    const engine = await connectTo(`unix://${socket}`);
    expect(engine.address).toBe(`unix://${socket}`);
    expect(engine.socketPath).toBe(socket);
    await expect(engine.listVolumes()).rejects.toMatchObject({
      kind: 'unreachable',
      message: expect.stringMatching(
        new RegExp(`^cannot reach the Docker engine at unix://${socket}: .*ENOENT`),
      ),
    });
  });

  it('a file that is not a listening socket: unreachable', async () => {
    const file = path.join(dir, 'not-a-socket');
    await writeFile(file, '');
    const engine = await connectTo(`unix://${file}`);
    await expect(engine.version()).rejects.toMatchObject({ kind: 'unreachable' });
  });

  it('a DOCKER_HOST dockerode cannot parse: unreachable, from connectEngine itself', async () => {
    await expect(connectTo('tcp://[bad')).rejects.toMatchObject({
      kind: 'unreachable',
      message: expect.stringMatching(/^cannot reach the Docker engine at tcp:\/\/\[bad: /),
    });
  });

  describe('against a fake Engine API', () => {
    let server: http.Server;
    let socket: string;
    const routes: Record<string, [number, unknown]> = {
      '/version': [
        200,
        {
          Version: '27.1.0',
          ApiVersion: '1.46',
          Components: [
            { Name: 'Engine', Version: '27.1.0' },
            { Name: 'containerd', Version: '1.7.24' },
            { Name: 'runc', Version: '1.1.15' },
            { Name: 'docker-init', Version: '0.19.0' },
          ],
        },
      ],
      '/info': [
        200,
        {
          DockerRootDir: '/srv/docker',
          Driver: 'overlay2',
          Runtimes: { runc: { path: 'runc' }, sharedprop: { path: '/usr/local/bin/x' } },
          DefaultRuntime: 'runc',
        },
      ],
      '/plugins': [
        200,
        [
          {
            Id: 'abc',
            Name: 'sharedprop:latest',
            Enabled: true,
            Config: { PropagatedMount: '/mnt/volumes', Interface: { Socket: 'sharedprop.sock' } },
          },
        ],
      ],
      '/volumes': [
        200,
        { Volumes: [{ Name: 'v', Driver: 'sharedprop:latest', Mountpoint: '/mnt/volumes/v' }] },
      ],
      '/volumes/v': [
        200,
        {
          Name: 'v',
          Driver: 'sharedprop:latest',
          Mountpoint: '/mnt/volumes/v',
          Status: { activeMounts: 1 },
        },
      ],
      '/volumes/gone': [404, { message: 'get gone: no such volume' }],
      '/containers/json': [200, [{ Id: 'c1', Names: ['/agent'] }]],
      '/containers/agent/json': [
        200,
        {
          Id: 'c1',
          Name: '/agent',
          State: { Running: true, Pid: 4242 },
          Mounts: [
            { Type: 'volume', Name: 'v', Driver: 'sharedprop:latest', Destination: '/run/netns' },
            { Type: 'bind', Source: '/etc', Destination: '/host-etc' },
            { Type: 'volume', Name: 'w', Driver: 'sharedprop:latest', Destination: '/sub' },
          ],
          HostConfig: {
            Mounts: [
              { Type: 'volume', Source: 'w', Target: '/sub', VolumeOptions: { Subpath: 'a/b' } },
            ],
          },
        },
      ],
    };

    beforeAll(async () => {
      socket = path.join(dir, 'engine.sock');
      server = http.createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://engine');
        const route = url.pathname.replace(/^\/v\d+\.\d+/, '');
        const [status, body] = routes[route] ?? [500, { message: `no route ${route}` }];
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      });
      await new Promise<void>((resolve) => server.listen(socket, resolve));
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('answers with typed results', async () => {
      const engine = await connectTo(`unix://${socket}`);
      expect(await engine.version()).toEqual({
        version: '27.1.0',
        apiVersion: '1.46',
        containerd: '1.7.24',
        runc: '1.1.15',
      });
      expect(await engine.info()).toEqual({
        dockerRootDir: '/srv/docker',
        storageDriver: 'overlay2',
        runtimes: { runc: { path: 'runc' }, sharedprop: { path: '/usr/local/bin/x' } },
        defaultRuntime: 'runc',
      });
      expect(await engine.listPlugins()).toEqual([
        {
          id: 'abc',
          name: 'sharedprop:latest',
          enabled: true,
          propagatedMount: '/mnt/volumes',
          socket: 'sharedprop.sock',
        },
      ]);
      expect(await engine.listVolumes()).toEqual([{ name: 'v', driver: 'sharedprop:latest' }]);
      expect(await engine.inspectVolume('v')).toEqual({
        name: 'v',
        driver: 'sharedprop:latest',
        mountpoint: '/mnt/volumes/v',
        status: { activeMounts: 1 },
      });
      expect(await engine.listContainers()).toEqual([{ id: 'c1', names: ['/agent'] }]);
      expect(await engine.inspectContainer('agent')).toEqual({
        id: 'c1',
        name: 'agent',
        running: true,
        pid: 4242,
        mounts: [
          { type: 'volume', name: 'v', driver: 'sharedprop:latest', destination: '/run/netns' },
          { type: 'bind', name: undefined, driver: undefined, destination: '/host-etc' },
          {
            type: 'volume',
            name: 'w',
            driver: 'sharedprop:latest',
            destination: '/sub',
            subpath: 'a/b',
          },
        ],
      });
    });

    it("an error answer is kind api, with the status and the engine's message", async () => {
      const engine = await connectTo(`unix://${socket}`);
      await expect(engine.inspectVolume('gone')).rejects.toMatchObject({
        kind: 'api',
        statusCode: 404,
        message: `the Docker engine at unix://${socket} could not inspect volume gone: HTTP 404: get gone: no such volume`,
      });
    });
  });
});
