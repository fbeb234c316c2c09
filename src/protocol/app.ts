/**
 * The VolumeDriver protocol over HTTP (docker/cli docs/extend/plugins_volume.md), as one express
 * pipeline: a request log, one size-limited body reader, one route table, one error mapping. It
 * knows the routes, the JSON shapes and the errors, and nothing about mounts.
 *
 * dockerd asks Capabilities and Get around every use of a volume, so the pipeline is kept lean:
 * express's Router routes and runs the middleware, the body is read with raw-body, and answers
 * are written with one writeHead/end (express's body parser and response helpers were half the
 * CPU of such a request, `--cpu-prof`).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import parseurl from 'parseurl';
import getRawBody from 'raw-body';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { VolumeError, type VolumeErrorKind } from '../model/errors.js';
import type { Capabilities, Tentative, VolumeDriver, VolumeInfo } from '../driver/types.js';
import { createRequest, describeIssues, mountRequest, nameRequest } from './schemas.js';
import { statusJson } from './status-json.js';

export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.1+json';
export const BODY_LIMIT = 1024 * 1024;
const HEADER_CONTENT_TYPE = `${CONTENT_TYPE}; charset=utf-8`;

const READ_ONLY = new Set([
  '/Plugin.Activate',
  '/VolumeDriver.Capabilities',
  '/VolumeDriver.Get',
  '/VolumeDriver.Path',
  '/VolumeDriver.List',
]);

const STATUS: Record<VolumeErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

/** An error of the request itself (its body, its path), with the HTTP status to answer. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** An answer already serialised (see serializedOnce). */
class Serialized {
  constructor(readonly json: string) {}
}

/** An answer that commits `change` once it has been handed to the caller's connection. */
class OnDelivery {
  constructor(
    readonly answer: object,
    readonly change: Pick<Tentative<unknown>, 'commit' | 'abandon'>,
  ) {}
}

type Handler = (body: unknown) => Promise<object>;

function parse<T>(schema: z.ZodType<T>, body: unknown, endpoint: string): T {
  if (body === undefined) {
    // dockerd 20.10 resends a request that a plugin restart cut half-way, without its body.
    throw new RequestError(
      400,
      `${endpoint}: empty request body (after a plugin restart, dockerd resends a cut request without its body: run the command again)`,
    );
  }
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    throw new RequestError(400, `${endpoint}: invalid request: ${describeIssues(result.error)}`);
  }
  return result.data;
}

function volumeJson(info: VolumeInfo) {
  return {
    Name: info.name,
    Mountpoint: info.mountpoint,
    CreatedAt: info.createdAt,
    Status: info.status ? statusJson(info.status) : {},
  };
}

/**
 * Serialises each answer once per object it is built from: the driver hands out the same object
 * until what it describes changes (the list of volumes, an unchanged volume's info, the
 * capabilities), and dockerd asks Capabilities and Get around every use of a volume.
 */
function serializedOnce<K extends object>(answer: (key: K) => object): (key: K) => Serialized {
  const bodies = new WeakMap<K, Serialized>();
  return (key) => {
    let body = bodies.get(key);
    if (!body) {
      body = new Serialized(JSON.stringify(answer(key)));
      bodies.set(key, body);
    }
    return body;
  };
}

/** The route table: one handler per endpoint, each a plain function of the parsed body. */
export function routes(driver: VolumeDriver): Record<string, Handler> {
  const listAnswer = serializedOnce((volumes: readonly VolumeInfo[]) => ({
    Volumes: volumes.map((info) => ({
      Name: info.name,
      Mountpoint: info.mountpoint,
      CreatedAt: info.createdAt,
    })),
  }));
  const getAnswer = serializedOnce((info: VolumeInfo) => ({ Volume: volumeJson(info) }));
  const capabilitiesAnswer = serializedOnce((capabilities: Capabilities) => ({
    Capabilities: { Scope: capabilities.scope },
  }));
  const table: Record<string, Handler> = {
    '/Plugin.Activate': async () => ({ Implements: ['VolumeDriver'] }),
    '/VolumeDriver.Capabilities': async () => capabilitiesAnswer(driver.capabilities()),
    '/VolumeDriver.Create': async (body) => {
      const req = parse(createRequest, body, 'Create');
      await driver.create(req.Name, req.Opts ?? new Map());
      return {};
    },
    '/VolumeDriver.Remove': async (body) => {
      await driver.remove(parse(nameRequest, body, 'Remove').Name);
      return {};
    },
    '/VolumeDriver.Mount': async (body) => {
      const req = parse(mountRequest, body, 'Mount');
      const mounted = await driver.mount(req.Name, req.ID);
      return new OnDelivery({ Mountpoint: mounted.value }, mounted);
    },
    '/VolumeDriver.Unmount': async (body) => {
      const req = parse(mountRequest, body, 'Unmount');
      await driver.unmount(req.Name, req.ID);
      return {};
    },
    '/VolumeDriver.Path': async (body) => ({
      Mountpoint: await driver.path(parse(nameRequest, body, 'Path').Name),
    }),
    '/VolumeDriver.Get': async (body) =>
      getAnswer(await driver.get(parse(nameRequest, body, 'Get').Name)),
    '/VolumeDriver.List': async () => listAnswer(await driver.list()),
  };
  // Endpoints come from the request path: no inherited property may ever look like a route.
  return Object.assign(Object.create(null) as Record<string, Handler>, table);
}

export interface AppHooks {
  /** Called when a request starts and when it ends, to track requests in flight. */
  onRequest?: (delta: 1 | -1) => void;
}

interface Outcome {
  status: number;
  error?: string;
}

/** What the pipeline knows of one request: its endpoint, its body once read, its outcome. */
interface Exchange {
  endpoint: string;
  started: bigint;
  body?: unknown;
  outcome?: Outcome;
}

/**
 * The pipeline, on express's Router (express.Router()) under node:http. An express application
 * would also swap the prototypes of every request and response (`app.handle`), which cost about
 * 100 µs of CPU per request, two thirds of a Get (`make bench`); nothing here needs what it adds.
 * Each exchange is counted and logged from its start to its answer by the handler that answers
 * it, with no middleware and no per-request listener in between.
 */
export function createApp(
  driver: VolumeDriver,
  log: Logger,
  hooks: AppHooks = {},
): http.RequestListener {
  const table = routes(driver);
  const begin = (req: IncomingMessage): Exchange => {
    hooks.onRequest?.(1);
    return { endpoint: parseurl(req)?.pathname ?? '', started: process.hrtime.bigint() };
  };
  /** Answers, then ends the exchange (logged, no longer in flight) once the answer is delivered. */
  const answer = (
    res: ServerResponse,
    exchange: Exchange,
    status: number,
    json: string,
    change?: OnDelivery['change'],
  ) => {
    exchange.outcome ??= { status };
    send(res, status, json);
    whenDelivered(res, (delivered) => {
      if (change) {
        if (delivered) change.commit();
        else change.abandon();
      }
      hooks.onRequest?.(-1);
      logRequest(log, exchange, exchange.outcome ?? { status });
    });
  };
  /** The one error mapping. */
  const fail = (res: ServerResponse, exchange: Exchange, error: unknown) => {
    const { status, message } = toHttpError(error, log);
    exchange.outcome = { status, error: message };
    answer(res, exchange, status, JSON.stringify({ Err: message }));
  };
  const router = express.Router();

  // 1. The route table, behind one body reader. dockerd sends
  // application/vnd.docker.plugins.v1.2+json, or no type at all: any type is read as JSON.
  router.post(/.*/, (req: IncomingMessage, res: ServerResponse) => {
    const exchange = begin(req);
    const handler = table[exchange.endpoint];
    if (!handler) {
      fail(res, exchange, new RequestError(404, `unknown endpoint ${exchange.endpoint}`));
      return;
    }
    readJson(req)
      .then((body) => {
        exchange.body = body;
        return handler(body);
      })
      .then(
        (result) => {
          if (result instanceof OnDelivery) {
            answer(res, exchange, 200, JSON.stringify(result.answer), result.change);
          } else {
            const json = result instanceof Serialized ? result.json : JSON.stringify(result);
            answer(res, exchange, 200, json);
          }
        },
        (error: unknown) => fail(res, exchange, error),
      );
  });

  // 2. Any other method.
  router.use((req: IncomingMessage, res: ServerResponse) => {
    const exchange = begin(req);
    fail(
      res,
      exchange,
      new RequestError(404, `unknown endpoint ${req.method} ${exchange.endpoint}`),
    );
  });

  // 3. An error of express itself (express recognises an error handler by its four parameters).
  router.use((error: unknown, req: IncomingMessage, res: ServerResponse, _next: NextFunction) => {
    fail(res, begin(req), error);
  });

  return (req, res) =>
    router(req as Request, res as Response, (error?: unknown) => {
      // Only reached if the error mapping itself failed.
      log.error('request not answered by the pipeline', { error: String(error) });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
}

/** The body as JSON: at most BODY_LIMIT bytes, an empty body is `undefined`. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const length = req.headers['content-length'];
  let text: string;
  try {
    // Read as bytes and decoded by Buffer (raw-body's own decoding goes through iconv-lite).
    text = (await getRawBody(req, { limit: BODY_LIMIT, length })).toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte order mark
  } catch (error) {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') {
      throw new RequestError(413, `request body is larger than ${BODY_LIMIT} bytes`);
    }
    throw new RequestError(400, `bad request: ${(error as Error).message}`);
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RequestError(400, `malformed JSON in request body: ${(error as Error).message}`);
  }
}

/**
 * Calls `done(true)` once the whole answer has been handed to the kernel (dockerd gets it even if
 * this process dies next), which is at once when the socket took it whole, or `done(false)` when
 * the connection closed first. Called right after the answer is sent.
 */
function whenDelivered(res: ServerResponse, done: (delivered: boolean) => void): void {
  if (res.destroyed) done(false);
  else if (res.writableFinished) done(true);
  else res.once('close', () => done(res.writableFinished));
}

function send(res: ServerResponse, status: number, json: string): void {
  res.statusCode = status;
  res.writeHead(status, {
    'Content-Type': HEADER_CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(json),
  });
  res.end(json);
}

function logRequest(
  log: Logger,
  { endpoint, body, started }: Exchange,
  { status, error }: Outcome,
): void {
  const level =
    status >= 500
      ? 'error'
      : status !== 200
        ? 'warn'
        : // Successful questions are logged at debug, changes (Create, Remove, Mount, ...) at info.
          READ_ONLY.has(endpoint)
          ? 'debug'
          : 'info';
  if (!log.isLevelEnabled(level)) return;
  const volume =
    body && typeof body === 'object' && 'Name' in body && typeof body.Name === 'string'
      ? body.Name.slice(0, 300)
      : undefined;
  log.log(level, 'request', {
    endpoint,
    volume,
    status,
    outcome: status === 200 ? 'ok' : 'error',
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    error,
  });
}

function toHttpError(error: unknown, log: Logger): { status: number; message: string } {
  if (error instanceof VolumeError) return { status: STATUS[error.kind], message: error.message };
  if (error instanceof RequestError) return { status: error.status, message: error.message };
  // An error the driver did not phrase: its text may hold host paths and command lines, which
  // belong in the log. The answer names the errno code, if any, and a reference to the log line.
  const ref = randomBytes(4).toString('hex');
  const code = (error as NodeJS.ErrnoException)?.code;
  log.error('unexpected error', { ref, error: String(error), stack: (error as Error)?.stack });
  return {
    status: 500,
    message: `internal error${typeof code === 'string' ? ` (${code})` : ''}: see the plugin's log, ref ${ref}`,
  };
}
