/** Volume names and mount IDs: checked before anything touches the filesystem. */
import { invalid } from './errors.js';

export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
/** Docker's limit, and the kernel's for one path component (NAME_MAX). */
export const NAME_MAX = 255;
/** The kernel's limit for a whole path, with its terminating NUL (PATH_MAX). */
export const PATH_MAX = 4096;

export function shownName(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}...` : name);
}

export function validateName(name: string): void {
  if (name.length > NAME_MAX) {
    throw invalid(`invalid volume name ${shownName(name)}: longer than ${NAME_MAX} characters`);
  }
  if (!NAME_PATTERN.test(name)) {
    throw invalid(
      `invalid volume name ${shownName(name)}: use at least two characters from [a-zA-Z0-9_.-], starting with a letter or digit`,
    );
  }
}

/**
 * Refuses a name whose longest derived path (given by the driver, which knows its roots) would
 * pass PATH_MAX: better a clear 400 at Create than an ENAMETOOLONG half-way through Remove.
 */
export function validateDerivedPaths(name: string, derived: readonly string[]): void {
  const longest = Math.max(...derived.map((p) => Buffer.byteLength(p)));
  if (longest >= PATH_MAX) {
    throw invalid(
      `invalid volume name ${shownName(name)}: too long for this data root (a path the volume needs would be ${longest} bytes; the limit is ${PATH_MAX - 1})`,
    );
  }
}

/** IDs are dockerd's opaque mount ids; keep them printable and bounded. */
export function validateMountId(volume: string, id: string): void {
  if (id.length === 0 || id.length > 512 || [...id].some((c) => c.charCodeAt(0) < 0x20)) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: invalid mount ID ${JSON.stringify(id.slice(0, 80))}`,
    );
  }
}
