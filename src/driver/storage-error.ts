/** Storage failures as the user should see them. */
import { constants } from 'node:os';
import { unavailable } from '../model/errors.js';

const { EDQUOT, ENOSPC, EROFS } = constants.errno;

/**
 * A storage failure as the user should see it: what went wrong, without host paths (they are in
 * the log). Told by errno number as well as by code: Node has no name for EDQUOT (its errors say
 * `UNKNOWN`, errno -122). Any other error passes through as it was, the driver's own included
 * (they carry no errno).
 */
export function storageError(error: unknown, what: string): unknown {
  const { code, errno } = (error ?? {}) as NodeJS.ErrnoException;
  const number = typeof errno === 'number' ? Math.abs(errno) : undefined;
  if (code === 'EROFS' || number === EROFS) {
    return unavailable(`${what}: the data root is read-only`);
  }
  if (code === 'ENOSPC' || code === 'EDQUOT' || number === ENOSPC || number === EDQUOT) {
    return unavailable(`${what}: no space left in the data root`);
  }
  return error;
}
