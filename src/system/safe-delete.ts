/**
 * Deletes a directory tree without ever crossing a mount boundary or following a symlink.
 * Mount points come from mountinfo (a device-number check alone misses bind mounts); the
 * device number is checked as well, as a second guard against a mount that appears mid-walk.
 */
import { lstat, opendir, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isWithin, type MountEntry } from './mountinfo.js';

export class MountBoundaryError extends Error {
  constructor(readonly mountPoint: string) {
    super(`refusing to delete across the mount point ${mountPoint}`);
    this.name = 'MountBoundaryError';
  }
}

/** Throws MountBoundaryError, deleting nothing, if any mount lies at or under `dir`. */
export function assertNoMountsWithin(entries: readonly MountEntry[], dir: string): void {
  const found = entries.find((e) => isWithin(e.mountPoint, dir));
  if (found) throw new MountBoundaryError(found.mountPoint);
}

export async function deleteTree(dir: string, entries: readonly MountEntry[]): Promise<void> {
  assertNoMountsWithin(entries, dir);
  const top = await lstat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!top) return;
  if (!top.isDirectory()) {
    await unlink(dir);
    return;
  }
  const mountPoints = new Set(entries.map((e) => e.mountPoint));
  await deleteDirectory(dir, top.dev, mountPoints);
}

async function deleteDirectory(dir: string, dev: number, mountPoints: Set<string>): Promise<void> {
  const handle = await opendir(dir);
  for await (const entry of handle) {
    const child = path.join(dir, entry.name);
    const stat = await lstat(child);
    if (stat.isDirectory()) {
      if (stat.dev !== dev || mountPoints.has(child)) throw new MountBoundaryError(child);
      await deleteDirectory(child, dev, mountPoints);
    } else {
      // Files, symlinks (never followed), sockets, fifos, devices.
      await unlink(child);
    }
  }
  await rmdir(dir);
}
