/**
 * HTTP over a Unix socket the way a misbehaving client speaks it: any method, path, headers and
 * bytes (a body need not be JSON, nor even UTF-8), chunked or with a length; and raw bytes on a
 * fresh connection, read back whatever the server answers before it hangs up.
 */
import http from 'node:http';
import net from 'node:net';

export interface RawRequest {
  path: string;
  method?: string;
  body?: string | Buffer;
  /** `null`: no Content-Type header at all. */
  contentType?: string | null;
  /** Sent without Content-Length, as two chunks (Transfer-Encoding: chunked). */
  chunked?: boolean;
  headers?: Record<string, string>;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export class RawClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly socket: string,
    maxSockets = 8,
    private readonly timeoutMs = 30_000,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  send(request: RawRequest): Promise<RawResponse> {
    const body =
      request.body === undefined
        ? Buffer.alloc(0)
        : Buffer.isBuffer(request.body)
          ? request.body
          : Buffer.from(request.body, 'utf8');
    const headers: Record<string, string | number> = {
      Accept: 'application/vnd.docker.plugins.v1.2+json',
      ...request.headers,
    };
    const type =
      request.contentType === undefined
        ? 'application/vnd.docker.plugins.v1.2+json'
        : request.contentType;
    if (type !== null) headers['Content-Type'] = type;
    if (!request.chunked) headers['Content-Length'] = body.length;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socket,
          path: request.path,
          method: request.method ?? 'POST',
          agent: this.agent,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      if (request.chunked && body.length > 1) {
        const half = Math.floor(body.length / 2);
        req.write(body.subarray(0, half));
        req.end(body.subarray(half));
      } else {
        req.end(body);
      }
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface Exchange {
  /** Everything the server sent before the connection ended or the answer was complete. */
  raw: string;
  /** The status of the first answer, when a status line arrived. */
  status?: number;
  /** Its body (by Content-Length), when complete. */
  body?: string;
  /** An error of our own writing (EPIPE, ECONNRESET): the server stopped reading. */
  writeError?: string;
}

/**
 * Writes `parts` in order on a fresh connection, with back-pressure, while reading; returns once
 * a whole answer (status line, headers, Content-Length bytes) has arrived, the server has closed
 * the connection, or `timeoutMs` passed. A write the server refuses to read ends the writing,
 * not the reading: the answer that explains why is still returned.
 */
export function exchange(
  socketPath: string,
  parts: readonly (string | Buffer)[],
  timeoutMs = 30_000,
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const received: Buffer[] = [];
    let writeError: string | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseAnswer(Buffer.concat(received).toString('latin1')), writeError });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      if (parseAnswer(Buffer.concat(received).toString('latin1')).body !== undefined) finish();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      writeError ??= error.code ?? error.message;
      finish();
    });
    socket.on('close', finish);
    socket.on('connect', async () => {
      for (const part of parts) {
        if (done || socket.destroyed) return;
        const ok = socket.write(part);
        if (!ok) {
          await new Promise<void>((resume) => {
            const go = () => {
              socket.off('drain', go);
              socket.off('close', go);
              resume();
            };
            socket.on('drain', go);
            socket.on('close', go);
          });
        }
      }
    });
  });
}

function parseAnswer(raw: string): Omit<Exchange, 'writeError'> {
  const headEnd = raw.indexOf('\r\n\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  const status = statusLine ? Number(statusLine[1]) : undefined;
  if (headEnd < 0) return { raw, status };
  const head = raw.slice(0, headEnd);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const rest = Buffer.from(raw.slice(headEnd + 4), 'latin1');
  const bodyLength = length ? Number(length[1]) : 0;
  if (rest.length < bodyLength) return { raw, status };
  return { raw, status, body: rest.subarray(0, bodyLength).toString('utf8') };
}
