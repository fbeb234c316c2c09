/**
 * Trust only root: a file that changes what the wrapper does (the driver's mount-root marker, the
 * configuration file) counts only when it is a regular file owned by root and not writable by
 * group or others, in a directory owned by root and not writable by group or others. Anyone else
 * who could create or change it could otherwise make the wrapper rewrite other people's
 * containers (a marker in a 1777 directory), or choose which runc runs as root.
 *
 * The directory is opened once and checked through that descriptor; the file is looked up in that
 * same directory (through /proc/self/fd, the openat(2) of node:fs), without following a symlink
 * in its last component, opened with O_NOFOLLOW (O_NONBLOCK: a FIFO never blocks the open), and
 * checked through the descriptor it is then read from. Only the directory's own path may pass
 * through symlinks, as runc's bind of the source does. node:fs only: runs under Bun and Node.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, type Stats } from 'node:fs';
import { basename, dirname } from 'node:path';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;

/** Write permission for group and others. */
const FOREIGN_WRITE = 0o022;

export type RootFile =
  /** No file by that name (or no such directory): as if never written. */
  | { kind: 'absent' }
  /** There is one, but it does not count: `reason` says why, for a warning. */
  | { kind: 'untrusted'; reason: string }
  /** It counts; `fd` is open on it (the caller closes it). */
  | { kind: 'trusted'; fd: number };

const errorCode = (error: unknown) =>
  (error as NodeJS.ErrnoException).code ?? (error as Error).message;

function typeName(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isFile()) return 'a regular file';
  return 'a device';
}

/** Why `st` is not root's and closed to others, or undefined when it is. */
function notRootOnly(what: string, st: Stats, want: 'file' | 'directory'): string | undefined {
  const right = want === 'file' ? st.isFile() : st.isDirectory();
  if (!right) return `${what} is ${typeName(st)}, not a ${want === 'file' ? 'regular file' : want}`;
  if (st.uid !== 0) return `${what} is owned by uid ${st.uid}, not root`;
  if ((st.mode & FOREIGN_WRITE) !== 0) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    return `${what} is writable by group or others (mode ${mode})`;
  }
  return undefined;
}

/**
 * Opens `file` (absolute) for reading if it counts. A missing file or directory is `absent`;
 * anything else that keeps it from counting is `untrusted`, with the reason.
 */
export function openRootFile(file: string): RootFile {
  const dir = dirname(file);
  let dirFd: number;
  try {
    dirFd = openSync(dir, O_RDONLY | O_DIRECTORY);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'untrusted', reason: `cannot open its directory ${dir} (${code})` };
  }
  try {
    const inDir = `/proc/self/fd/${dirFd}/${basename(file)}`;
    let seen: Stats;
    try {
      seen = lstatSync(inDir);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT') return { kind: 'absent' };
      return { kind: 'untrusted', reason: `cannot look it up (${code})` };
    }
    const problem =
      notRootOnly(file, seen, 'file') ??
      notRootOnly(`its directory ${dir}`, fstatSync(dirFd), 'directory');
    if (problem) return { kind: 'untrusted', reason: problem };
    let fd: number;
    try {
      fd = openSync(inDir, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      return { kind: 'untrusted', reason: `cannot open it (${errorCode(error)})` };
    }
    const opened = fstatSync(fd);
    const changed =
      opened.dev !== seen.dev || opened.ino !== seen.ino
        ? `${file} was replaced while it was checked`
        : notRootOnly(file, opened, 'file');
    if (changed) {
      closeSync(fd);
      return { kind: 'untrusted', reason: changed };
    }
    return { kind: 'trusted', fd };
  } finally {
    closeSync(dirFd);
  }
}

export type RootFileVerdict = Exclude<RootFile, { kind: 'trusted' }> | { kind: 'trusted' };

/** Checks `file` as openRootFile does, and closes it: for a marker, whose content is not read. */
export function checkRootFile(file: string): RootFileVerdict {
  const found = openRootFile(file);
  if (found.kind !== 'trusted') return found;
  closeSync(found.fd);
  return { kind: 'trusted' };
}
