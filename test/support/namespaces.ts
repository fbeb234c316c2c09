/**
 * Where the unit tier runs (scripts/in-mount-namespace.sh): a mount namespace of its own, as real
 * root (make test, CI) or as root of a user namespace of its own (a developer without root).
 */
import { readFileSync, readlinkSync } from 'node:fs';

/** True in a mount namespace other than the one the script was started from. */
export function inOwnMountNamespace(): boolean {
  const host = process.env.SHAREDPROP_HOST_MOUNT_NS;
  return host !== undefined && host !== '' && readlinkSync('/proc/self/ns/mnt') !== host;
}

/** True as the host's root (uid 0, in the initial user namespace): files of any owner can be made. */
export function isRealRoot(): boolean {
  if (process.getuid?.() !== 0) return false;
  const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
  return map[0] === '0' && map[1] === '0' && map[2] === '4294967295';
}

/**
 * `it` for a test that needs the host's root (chown to another user, setpriv). `make test` runs
 * as root, so there it always runs; a developer's `make check` without root names it as skipped.
 */
export const itAsRealRoot: jest.It = isRealRoot()
  ? it
  : (Object.assign(
      (name: string, fn?: jest.ProvidesCallback, timeout?: number) =>
        it.skip(`${name} (needs real root: make test runs it)`, fn, timeout),
      {
        each: it.skip.each,
        only: it.only,
        skip: it.skip,
        todo: it.todo,
        concurrent: it.concurrent,
        failing: it.failing,
      },
    ) as unknown as jest.It);
