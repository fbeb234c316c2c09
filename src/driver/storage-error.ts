/** Storage failures as the user should see them. */
import { unavailable, VolumeError } from '../model/errors.js';

/**
 * A storage failure as the user should see it: what went wrong, without host paths (they are in
 * the log). Errors the driver already phrased pass through.
 */
export function storageError(error: unknown, what: string): unknown {
  if (error instanceof VolumeError) return error;
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'EROFS') return unavailable(`${what}: the data root is read-only`);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return unavailable(`${what}: no space left in the data root`);
  return error;
}
