/**
 * Adoption decides by identity, through the system calls, whatever the mount layer. Where they
 * cannot be made (koffi does not load, as in a standalone executable built for another
 * architecture than x86_64; a kernel without openat2 or statx's mount IDs) a Create or a remount
 * of an adopted volume says so plainly, instead of an internal error.
 */
import { unavailable } from '../model/errors.js';
import { KernelError } from './kernel/ffi.js';

export function heldOrUnavailable<T>(hold: () => T): T {
  try {
    return hold();
  } catch (error) {
    if (error instanceof KernelError && error.code !== 'ENOSYS') throw error;
    const why = error instanceof Error ? error.message : String(error);
    throw unavailable(
      `adopting a host directory needs the kernel's openat2 and statx, called through koffi, which cannot be used here (${why}); run the driver where they can: Linux 5.12 or later, with \`node dist/cli.js serve\` or an x86_64 release`,
    );
  }
}
