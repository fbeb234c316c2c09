/** Serves an HTTP handler on a Unix socket: replaces a stale socket, restricts it to the owner. */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

/**
 * Throws when `socketPath` is something other than a socket, or a socket that a live process
 * answers on; returns whether a stale socket is there (one nobody answers on).
 */
export async function assertSocketFree(socketPath: string): Promise<boolean> {
  const existing = await lstat(socketPath).catch(() => undefined);
  if (!existing) return false;
  if (!existing.isSocket()) {
    throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another process is already serving ${socketPath}`);
  return true;
}

export async function removeStaleSocket(socketPath: string): Promise<void> {
  if (await assertSocketFree(socketPath)) await unlink(socketPath);
}

export async function listenUnix(
  handler: http.RequestListener,
  socketPath: string,
): Promise<http.Server> {
  await mkdir(path.dirname(socketPath), { recursive: true });
  await removeStaleSocket(socketPath);
  const server = http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  await chmod(socketPath, 0o600);
  return server;
}
