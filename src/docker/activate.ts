/** Asks a volume driver's socket what it implements (POST /Plugin.Activate). */
import { closeSync, openSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

/** Unix socket paths are limited to 107 bytes; reach a longer one through its directory's fd. */
const SUN_PATH_MAX = 107;

export async function activate(
  socketPath: string,
  timeoutMs = 5_000,
): Promise<{ implements: string[] }> {
  if (Buffer.byteLength(socketPath) <= SUN_PATH_MAX) return activateAt(socketPath, timeoutMs);
  const dirFd = openSync(path.dirname(socketPath), 'r');
  try {
    return await activateAt(`/proc/self/fd/${dirFd}/${path.basename(socketPath)}`, timeoutMs);
  } finally {
    closeSync(dirFd);
  }
}

function activateAt(socketPath: string, timeoutMs: number): Promise<{ implements: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path: '/Plugin.Activate', method: 'POST', timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              Implements?: unknown;
            };
            const list = Array.isArray(body.Implements) ? body.Implements.map(String) : [];
            resolve({ implements: list });
          } catch (error) {
            reject(new Error(`not a plugin answer: ${(error as Error).message}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end('{}');
  });
}
