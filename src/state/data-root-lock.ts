/**
 * One driver per data root: an exclusive flock(2) on the data root directory, taken before any
 * recovery and held until the process ends (the kernel releases it on exit, kill -9 included).
 * util-linux flock(1) takes the lock on a descriptor it shares with us (its fd 3), so the lock
 * belongs to our open file description and outlives the short-lived flock process.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { CommandError, run } from '../system/exec.js';

const BUSY_EXIT = 75;

export class DataRootBusyError extends Error {
  constructor(readonly dataRoot: string) {
    super(
      `another sharedprop driver is already serving the data root ${dataRoot}; stop it first (two drivers on one data root would delete each other's volumes)`,
    );
    this.name = 'DataRootBusyError';
  }
}

/** Returns the locked descriptor (kept open for the life of the process). */
export async function lockDataRoot(dataRoot: string): Promise<number> {
  mkdirSync(dataRoot, { recursive: true, mode: 0o700 });
  // A raw descriptor, not a FileHandle: nothing may close it behind our back. Read-only works
  // on a read-only data root too.
  const fd = openSync(dataRoot, 'r');
  try {
    await run('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', `${BUSY_EXIT}`, '3'], {
      fd3: fd,
      timeout: 10_000,
    });
    return fd;
  } catch (error) {
    closeSync(fd);
    if (error instanceof CommandError && error.exitCode === BUSY_EXIT) {
      throw new DataRootBusyError(dataRoot);
    }
    throw error;
  }
}
