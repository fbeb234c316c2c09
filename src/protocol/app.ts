/**
 * The VolumeDriver protocol over HTTP (docker/cli docs/extend/plugins_volume.md). It knows the
 * routes, the JSON shapes and the error mapping, and nothing about mounts.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { VolumeError, type VolumeErrorKind } from '../model/errors.js';
import type { VolumeDriver, VolumeInfo } from '../driver/types.js';
import { createRequest, describeIssues, mountRequest, nameRequest } from './schemas.js';

export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.1+json';
export const BODY_LIMIT = 1024 * 1024;

const READ_ONLY = new Set([
  '/Plugin.Activate',
  '/VolumeDriver.Capabilities',
  '/VolumeDriver.Get',
  '/VolumeDriver.Path',
  '/VolumeDriver.List',
]);

/**
 * Questions answered straight from node:http. dockerd asks Capabilities and Get around every use
 * of a volume (Capabilities twice, as it rebuilds a managed plugin's adapter at every lookup), and
 * `docker volume inspect` is nothing else; express's router, body parser and response helpers
 * were half the CPU of such a request (`--cpu-prof`). Same handlers, error mapping and log entry.
 */
const DIRECT = new Set(['/VolumeDriver.Capabilities', '/VolumeDriver.Get', '/VolumeDriver.Path']);
/** Bodies up to this size with a Content-Length (dockerd's are) take the direct path. */
const DIRECT_BODY_LIMIT = 64 * 1024;

const STATUS: Record<VolumeErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** An answer already serialised: the List of thousands of volumes is built once per change. */
class Serialized {
  constructor(readonly json: string) {}
}

type Handler = (body: unknown) => Promise<object>;

function parse<T>(schema: z.ZodType<T>, body: unknown, endpoint: string): T {
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
    Status: info.status,
  };
}

export function routes(driver: VolumeDriver): Record<string, Handler> {
  // The driver hands out the same list until its volumes change; serialise each list once.
  const listBodies = new WeakMap<readonly VolumeInfo[], Serialized>();
  const serializeList = (volumes: readonly VolumeInfo[]) =>
    new Serialized(
      JSON.stringify({
        Volumes: volumes.map((info) => ({
          Name: info.name,
          Mountpoint: info.mountpoint,
          CreatedAt: info.createdAt,
        })),
      }),
    );
  return {
    '/Plugin.Activate': async () => ({ Implements: ['VolumeDriver'] }),
    '/VolumeDriver.Capabilities': async () => ({
      Capabilities: { Scope: driver.capabilities().scope },
    }),
    '/VolumeDriver.Create': async (body) => {
      const req = parse(createRequest, body, 'Create');
      await driver.create(req.Name, req.Opts);
      return {};
    },
    '/VolumeDriver.Remove': async (body) => {
      await driver.remove(parse(nameRequest, body, 'Remove').Name);
      return {};
    },
    '/VolumeDriver.Mount': async (body) => {
      const req = parse(mountRequest, body, 'Mount');
      return { Mountpoint: await driver.mount(req.Name, req.ID) };
    },
    '/VolumeDriver.Unmount': async (body) => {
      const req = parse(mountRequest, body, 'Unmount');
      await driver.unmount(req.Name, req.ID);
      return {};
    },
    '/VolumeDriver.Path': async (body) => ({
      Mountpoint: await driver.path(parse(nameRequest, body, 'Path').Name),
    }),
    '/VolumeDriver.Get': async (body) => ({
      Volume: volumeJson(await driver.get(parse(nameRequest, body, 'Get').Name)),
    }),
    '/VolumeDriver.List': async () => {
      const volumes = await driver.list();
      let body = listBodies.get(volumes);
      if (!body) {
        body = serializeList(volumes);
        listBodies.set(volumes, body);
      }
      return body;
    },
  };
}

export interface AppHooks {
  /** Called when a request starts and when it ends, to track requests in flight. */
  onRequest?: (delta: 1 | -1) => void;
}

/**
 * The request listener: the direct path for dockerd's questions, express for everything else
 * (changes, List, anything unusual such as a chunked or large body, a GET, an unknown path).
 */
export function createApp(
  driver: VolumeDriver,
  log: Logger,
  hooks: AppHooks = {},
): RequestListener {
  const table = routes(driver);
  const app = expressApp(table, log, hooks);
  return (req, res) => {
    const length = Number(req.headers['content-length'] ?? NaN);
    const handler =
      req.method === 'POST' && DIRECT.has(req.url ?? '') ? table[req.url!] : undefined;
    if (handler && length <= DIRECT_BODY_LIMIT) answerDirectly(req, res, handler, log, hooks);
    else app(req, res);
  };
}

interface RequestLog {
  endpoint: string;
  body: unknown;
  status: number;
  started: bigint;
  error?: string;
}

function logRequest(log: Logger, entry: RequestLog): void {
  const { endpoint, body, status, started, error } = entry;
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

function answerDirectly(
  req: IncomingMessage,
  res: ServerResponse,
  handler: Handler,
  log: Logger,
  hooks: AppHooks,
): void {
  const entry: RequestLog = {
    endpoint: req.url!,
    body: undefined,
    status: 200,
    started: process.hrtime.bigint(),
  };
  hooks.onRequest?.(1);
  res.on('close', () => {
    hooks.onRequest?.(-1);
    logRequest(log, entry);
  });
  const send = (status: number, json: string) => {
    entry.status = status;
    res.writeHead(status, {
      'Content-Type': `${CONTENT_TYPE}; charset=utf-8`,
      'Content-Length': Buffer.byteLength(json),
    });
    res.end(json);
  };
  const fail = (error: unknown) => {
    const { status, message } = toHttpError(error, log);
    entry.error = message;
    send(status, JSON.stringify({ Err: message }));
  };
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('error', fail);
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      entry.body = text.trim() === '' ? undefined : JSON.parse(text);
    } catch (error) {
      fail({ type: 'entity.parse.failed', message: (error as Error).message });
      return;
    }
    handler(entry.body).then(
      (answer) => send(200, answer instanceof Serialized ? answer.json : JSON.stringify(answer)),
      fail,
    );
  });
}

function expressApp(table: Record<string, Handler>, log: Logger, hooks: AppHooks) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    hooks.onRequest?.(1);
    res.on('close', () => {
      hooks.onRequest?.(-1);
      logRequest(log, {
        endpoint: req.path,
        body: req.body,
        status: res.statusCode,
        started,
        error: res.locals.error as string | undefined,
      });
    });
    res.type(CONTENT_TYPE);
    next();
  });

  // dockerd sends application/vnd.docker.plugins.v1.2+json (or nothing): accept any type.
  app.use(express.json({ type: () => true, limit: BODY_LIMIT, strict: false }));

  app.post(/.*/, (req: Request, res: Response, next: NextFunction) => {
    const handler = table[req.path];
    if (!handler) {
      next(new RequestError(404, `unknown endpoint ${req.path}`));
      return;
    }
    handler(req.body).then((answer) => {
      if (answer instanceof Serialized) res.status(200).type(CONTENT_TYPE).send(answer.json);
      else res.status(200).json(answer);
    }, next);
  });

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new RequestError(404, `unknown endpoint ${req.method} ${req.path}`));
  });

  // Express recognises an error handler by its four parameters.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, message } = toHttpError(error, log);
    res.locals.error = message;
    res.status(status).type(CONTENT_TYPE).json({ Err: message });
  });

  return app;
}

function toHttpError(error: unknown, log: Logger): { status: number; message: string } {
  if (error instanceof VolumeError) return { status: STATUS[error.kind], message: error.message };
  if (error instanceof RequestError) return { status: error.status, message: error.message };
  const bodyError = error as { type?: string; status?: number; message?: string };
  if (bodyError.type === 'entity.parse.failed') {
    return { status: 400, message: `malformed JSON in request body: ${bodyError.message}` };
  }
  if (bodyError.type === 'entity.too.large') {
    return { status: 413, message: `request body is larger than ${BODY_LIMIT} bytes` };
  }
  if (typeof bodyError.status === 'number' && bodyError.status >= 400 && bodyError.status < 500) {
    return { status: bodyError.status, message: `bad request: ${bodyError.message ?? 'unknown'}` };
  }
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
