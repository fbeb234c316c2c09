/**
 * Kept-running `sharedprop-rmtree --serve` helpers, so that a Remove costs no process start
 * (spawning from the driver, a process of 100 MB, cost more than the whole rest of a Remove).
 *
 * An RmtreeServer is one helper: requests go to it one at a time (PARENT and NAME, NUL-ended);
 * the answer is the helper's diagnostic lines, then `exit N`. A helper that dies, or outlives a
 * request's timeout (it is killed), fails that request as "did not finish" and is started again
 * for the next one; one that had died while idle, unseen, is replaced and the request sent again.
 * An RmtreePool lends an idle server to each request and starts another when all are busy, so
 * that a huge or hanging delete never holds up the others; it keeps one.
 *
 * A helper ends when its standard input closes (with the driver, however it ends) or, if it is
 * still deleting when the driver exits, is killed then (what it left is deleted at the next
 * start). It never keeps the driver alive by itself: its process and pipes are unreferenced; a
 * pending request's timer is not.
 */
import type { Socket } from 'node:net';
import { startServer, type ServerProcess } from './exec.js';

export interface HelperAnswer {
  /** The exit code of the request; undefined when the helper did not finish it. */
  exitCode?: number;
  /** Its diagnostic lines (at most MAX_LINES of them), and, when it did not finish, why. */
  diagnostics: string;
}

const ANSWER_END = /^exit (\d+)$/;
/** Diagnostics kept per request: the message shows 2,000 characters of them anyway. */
const MAX_LINES = 50;

/** Every helper running, killed when the driver exits (see the header). */
const running = new Set<ServerProcess>();
let exitHook = false;

function killAtExit(child: ServerProcess): void {
  running.add(child);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const helper of running) helper.kill('SIGKILL');
  });
}

interface Asked extends HelperAnswer {
  /** It had died before this request, unseen: nothing of it was done. */
  deadBefore?: boolean;
}

export class RmtreeServer {
  private child?: ServerProcess;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly helper: string) {}

  /** Deletes PARENT/NAME through the helper; requests wait for the ones before them. */
  delete(parent: string, name: string, timeoutMs: number): Promise<HelperAnswer> {
    const answer = this.queue.then(async () => {
      const first = await this.ask(parent, name, timeoutMs);
      if (!first.deadBefore) return first;
      return this.ask(parent, name, timeoutMs);
    });
    this.queue = answer.catch(() => undefined);
    return answer.then(({ exitCode, diagnostics }) =>
      exitCode === undefined ? { diagnostics } : { exitCode, diagnostics },
    );
  }

  /** The helper's pid while one runs (tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stops the helper (it ends at the end of its input); the next request starts another. */
  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private started(): { child: ServerProcess; reused: boolean } {
    const known = this.child;
    if (known && known.exitCode === null && known.signalCode === null) {
      return { child: known, reused: true };
    }
    const child = startServer(this.helper, ['--serve']);
    const forget = () => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
    };
    // First, before anything can throw: a spawn that failed (ENOENT, EMFILE) emits 'error' on
    // the next tick, without stdin or stdout.
    child.on('error', forget);
    child.on('exit', forget);
    // A helper that is gone fails its request (below); a write to it then must not throw.
    child.stdin?.on('error', () => undefined);
    child.unref();
    // Node's pipes are sockets that can be unreferenced; Bun's (the standalone executable) are
    // not, and do not hold its event loop.
    for (const pipe of [child.stdin, child.stdout] as unknown as (Partial<Socket> | null)[]) {
      if (typeof pipe?.unref === 'function') pipe.unref();
    }
    child.stdout?.setEncoding('utf8');
    if (child.pid !== undefined) killAtExit(child);
    this.child = child;
    return { child, reused: false };
  }

  private ask(parent: string, name: string, timeoutMs: number): Promise<Asked> {
    const { child, reused } = this.started();
    return new Promise((resolve) => {
      const lines: string[] = [];
      let pending = '';
      let heard = false;
      const finish = (answer: Asked) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('close', onExit);
        child.off('error', onError);
        resolve(answer);
      };
      const onData = (chunk: string) => {
        heard = true;
        pending += chunk;
        for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          const done = ANSWER_END.exec(line);
          if (done) return finish({ exitCode: Number(done[1]), diagnostics: lines.join('\n') });
          if (lines.length < MAX_LINES) lines.push(line);
        }
      };
      const didNotFinish = (why: string, deadBefore = false) => {
        if (this.child === child) this.child = undefined;
        finish({ diagnostics: [...lines, why].join('\n'), deadBefore });
      };
      // 'close', not 'exit': its last lines are read by then. A reused helper that ends without a
      // word most likely had died before; the request is sent once more to a new one (were it
      // the request that killed it, deleting is idempotent: sending it again is safe).
      const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
        didNotFinish(`the helper ended (${signal ?? `exit code ${code}`})`, reused && !heard);
      const onError = (error: Error) => didNotFinish(`the helper did not start: ${error.message}`);
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        didNotFinish(`timed out after ${timeoutMs} ms and was killed`);
      }, timeoutMs);
      child.stdout?.on('data', onData);
      child.once('close', onExit);
      child.once('error', onError);
      child.stdin?.write(`${parent}\0${name}\0`);
    });
  }
}

/** Lends an idle RmtreeServer to each request, starting one more when all are busy; keeps one. */
export class RmtreePool {
  private readonly idle: RmtreeServer[] = [];

  constructor(private readonly helper: string) {}

  async delete(parent: string, name: string, timeoutMs: number): Promise<HelperAnswer> {
    const server = this.idle.pop() ?? new RmtreeServer(this.helper);
    try {
      return await server.delete(parent, name, timeoutMs);
    } finally {
      if (this.idle.length === 0) this.idle.push(server);
      else server.close();
    }
  }

  /** Stops the idle helpers (tests). */
  close(): void {
    for (const server of this.idle.splice(0)) server.close();
  }
}

const pools = new Map<string, RmtreePool>();

/** The pool of this helper path (one per path: tests switch helpers). */
export function rmtreePool(helper: string): RmtreePool {
  let pool = pools.get(helper);
  if (!pool) {
    pool = new RmtreePool(helper);
    pools.set(helper, pool);
  }
  return pool;
}
