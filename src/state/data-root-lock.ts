/**
 * One driver per data root, and one per mount root: an exclusive flock(2) on each directory,
 * taken before any recovery and held until the process ends (the kernel releases it on exit,
 * kill -9 included). util-linux flock(1) takes the lock on a descriptor it shares with us (its
 * fd 3), so the lock belongs to our open file description and outlives the short-lived flock
 * process. The lock is on the directory's inode: a driver that reaches the same directory under
 * another name (a bind, a symlink, another mount namespace) finds it taken too.
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

export class MountRootBusyError extends Error {
  constructor(readonly mountRoot: string) {
    super(
      `another sharedprop driver is already using the mount root ${mountRoot}; stop it first, or give this one a --mount-root of its own (two drivers on one mount root would take each other's mount points for their own)`,
    );
    this.name = 'MountRootBusyError';
  }
}

/** Locks `dir` (made with `mode` if missing) or throws `busy()`; returns the descriptor, kept open. */
async function lockDirectory(dir: string, mode: number, busy: () => Error): Promise<number> {
  mkdirSync(dir, { recursive: true, mode });
  // A raw descriptor, not a FileHandle: nothing may close it behind our back. Read-only works
  // on a read-only data root too.
  const fd = openSync(dir, 'r');
  try {
    await run('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', `${BUSY_EXIT}`, '3'], {
      fd3: fd,
      timeout: 10_000,
    });
    return fd;
  } catch (error) {
    closeSync(fd);
    if (error instanceof CommandError && error.exitCode === BUSY_EXIT) throw busy();
    throw error;
  }
}

/** Returns the locked descriptor (kept open for the life of the process). */
export function lockDataRoot(dataRoot: string): Promise<number> {
  return lockDirectory(dataRoot, 0o700, () => new DataRootBusyError(dataRoot));
}

/**
 * The mount root's lock (taken after the data root's): a second driver with another data root
 * but the same mount root refuses to start, before it looks at any mount there.
 */
export function lockMountRoot(mountRoot: string): Promise<number> {
  // 0755, as prepareMountRoot makes it: the mount points must be reachable.
  return lockDirectory(mountRoot, 0o755, () => new MountRootBusyError(mountRoot));
}
