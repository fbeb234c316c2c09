/**
 * One long-lived `sharedprop-rmtree --serve` per helper path, so that a Remove costs no process
 * start (spawning from the driver, a process of 100 MB, cost more than the whole rest of a Remove).
 * Requests go one at a time (PARENT and NAME, NUL-ended); the answer is the helper's diagnostic
 * lines, then `exit N`. A helper that dies, or outlives a request's timeout (it is killed), fails
 * that request as "did not finish" and is started again for the next one. The helper ends when its
 * standard input closes: with the driver, whatever way the driver ends. It never keeps the driver
 * alive by itself (its process and pipes are unreferenced; a pending request's timer is not).
 */
import type { Socket } from 'node:net';
import { startServer, type ServerProcess } from './exec.js';

export interface HelperAnswer {
  /** The exit code of the request; undefined when the helper did not finish it. */
  exitCode?: number;
  /** Its diagnostic lines (and, when it did not finish, why). */
  diagnostics: string;
}

const ANSWER_END = /^exit (\d+)$/;

export class RmtreeServer {
  private child?: ServerProcess;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly helper: string) {}

  /** Deletes PARENT/NAME through the helper; requests wait for the ones before them. */
  delete(parent: string, name: string, timeoutMs: number): Promise<HelperAnswer> {
    const answer = this.queue.then(() => this.ask(parent, name, timeoutMs));
    this.queue = answer.catch(() => undefined);
    return answer;
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

  private started(): ServerProcess {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      return this.child;
    }
    const child = startServer(this.helper, ['--serve']);
    child.unref();
    (child.stdin as unknown as Socket).unref();
    (child.stdout as unknown as Socket).unref();
    child.stdout?.setEncoding('utf8');
    // A helper that is gone fails its request (below); a write to it then must not throw.
    child.stdin?.on('error', () => undefined);
    const forget = () => {
      if (this.child === child) this.child = undefined;
    };
    child.on('error', forget);
    child.on('exit', forget);
    this.child = child;
    return child;
  }

  private ask(parent: string, name: string, timeoutMs: number): Promise<HelperAnswer> {
    const child = this.started();
    return new Promise((resolve) => {
      const lines: string[] = [];
      let pending = '';
      const finish = (answer: HelperAnswer) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('close', onExit);
        child.off('error', onError);
        resolve(answer);
      };
      const onData = (chunk: string) => {
        pending += chunk;
        for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          const done = ANSWER_END.exec(line);
          if (done) return finish({ exitCode: Number(done[1]), diagnostics: lines.join('\n') });
          lines.push(line);
        }
      };
      const didNotFinish = (why: string) => {
        if (this.child === child) this.child = undefined;
        finish({ diagnostics: [...lines, why].join('\n') });
      };
      // 'close', not 'exit': its last lines are read by then.
      const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
        didNotFinish(`the helper ended (${signal ?? `exit code ${code}`})`);
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

const servers = new Map<string, RmtreeServer>();

/** The server of this helper path (one per path: tests switch helpers). */
export function rmtreeServer(helper: string): RmtreeServer {
  let server = servers.get(helper);
  if (!server) {
    server = new RmtreeServer(helper);
    servers.set(helper, server);
  }
  return server;
}
