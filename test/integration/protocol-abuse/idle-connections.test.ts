/**
 * The VolumeDriver protocol under abuse, against the real `sharedprop serve` with real mounts:
 * 15,000 idle connections, some stalled half-way through a request, while new calls come in.
 * docs/guarantees.md names this test.
 */
import { jest } from '@jest/globals';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { PluginClient } from '../../support/plugin-client.js';
import { statusOf } from '../../support/volume-checks.js';
import { alive, destroyDrivers, diskProblems, sleep, startDriver } from './harness.js';

jest.setTimeout(300_000);
afterEach(destroyDrivers);

async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** The soft limit on open files of a process (`Max open files` in /proc/<pid>/limits). */
async function fileLimit(pid: number | 'self'): Promise<number> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
}

describe('protocol abuse: idle connections', () => {
  it('15,000 idle connections do not keep the driver from answering a new Get and Create promptly; once closed, its descriptors drop back', async () => {
    const CONNECTIONS = 15_000;
    const PARTIAL = 500;
    const mine = await fileLimit('self');
    if (mine < CONNECTIONS + PARTIAL + 500) {
      throw new Error(
        `this test needs ${CONNECTIONS + PARTIAL + 500} open files; the soft limit is ${mine} (ulimit -Hn too low?)`,
      );
    }
    const driver = await startDriver();
    const pid = driver.pid!;
    if ((await fileLimit(pid)) < CONNECTIONS + PARTIAL + 500) {
      throw new Error(`the driver may open only ${await fileLimit(pid)} files`);
    }
    await driver.ok('/VolumeDriver.Create', { Name: 'busy', Opts: {} });
    const fdsBefore = await openFds(pid);
    const sockets: net.Socket[] = [];
    const connect = async (): Promise<net.Socket> => {
      // A Unix socket's backlog answers EAGAIN when full: try again.
      for (let attempt = 0; ; attempt++) {
        try {
          return await new Promise<net.Socket>((resolve, reject) => {
            const socket = net.connect(driver.socket);
            socket.once('connect', () => resolve(socket));
            socket.once('error', reject);
          });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt > 1000) throw error;
          await sleep(5);
        }
      }
    };
    const timings: Record<string, number> = {};
    try {
      for (let opened = 0; opened < CONNECTIONS; opened += 250) {
        sockets.push(...(await Promise.all(Array.from({ length: 250 }, connect))));
      }
      // Some that started a request and stalled half-way through its body.
      for (let opened = 0; opened < PARTIAL; opened += 250) {
        const batch = await Promise.all(Array.from({ length: 250 }, connect));
        for (const socket of batch) {
          socket.write(
            'POST /VolumeDriver.Get HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"Na',
          );
        }
        sockets.push(...batch);
      }
      expect(sockets.length).toBe(CONNECTIONS + PARTIAL);
      expect(await openFds(pid)).toBeGreaterThanOrEqual(fdsBefore + CONNECTIONS);

      const timed = async (label: string, call: () => Promise<unknown>) => {
        const started = Date.now();
        await call();
        timings[label] = Date.now() - started;
      };
      const fresh = new PluginClient(driver.socket);
      try {
        const ok = async (endpoint: string, body: unknown) => {
          const answer = await fresh.request(endpoint, JSON.stringify(body));
          expect({ endpoint, status: answer.status }).toEqual({ endpoint, status: 200 });
        };
        await timed('Get', () => ok('/VolumeDriver.Get', { Name: 'busy' }));
        await timed('Create', () => ok('/VolumeDriver.Create', { Name: 'busy2', Opts: {} }));
        await timed('Mount', () => ok('/VolumeDriver.Mount', { Name: 'busy2', ID: 'c' }));
        await timed('List', () => ok('/VolumeDriver.List', null));
      } finally {
        fresh.close();
      }
      console.log(`with ${sockets.length} idle connections: ${JSON.stringify(timings)} ms`);
      for (const [label, ms] of Object.entries(timings)) {
        expect({ label, prompt: ms < 2_000 }).toEqual({ label, prompt: true });
      }
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    let fds = await openFds(pid);
    for (let i = 0; i < 150 && fds > fdsBefore + 10; i++) {
      await sleep(100);
      fds = await openFds(pid);
    }
    expect(fds).toBeLessThanOrEqual(fdsBefore + 10);
    expect(alive(pid)).toBe(true);
    expect((await statusOf(driver, 'busy2')).activeMounts).toBe(1);
    await driver.ok('/VolumeDriver.Unmount', { Name: 'busy2', ID: 'c' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'busy2' });
    await driver.ok('/VolumeDriver.Remove', { Name: 'busy' });
    expect(await diskProblems(driver, [])).toEqual([]);
  });
});
