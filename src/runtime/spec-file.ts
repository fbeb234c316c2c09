/**
 * Reading a bundle's config.json and replacing it atomically: the new text goes to a temporary
 * file in the same directory (same mode and owner) and is renamed over the old file, so runc
 * reads either the old spec or the new one, never a mix.
 *
 * Not fsynced: the rename alone is what runc's reading relies on, and a bundle never outlives a
 * crash (containerd keeps it under /run, and a container being created when the host goes down
 * is not started again from it). An fsync cost 5 to 95 ms per container start where the bundle is
 * on a disk (measured with `strace -T` on ext4, the end-to-end harness's containerd state).
 */
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseJson, type JsonValue } from './json.js';

export class SpecFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpecFileError';
  }
}

export interface FileOwner {
  mode: number;
  uid: number;
  gid: number;
}

export interface SpecFile extends FileOwner {
  spec: JsonValue;
}

const reason = (error: unknown) =>
  (error as NodeJS.ErrnoException).code ?? (error as Error).message;

export function readSpecFile(file: string): SpecFile {
  let text: string;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new SpecFileError(`cannot read the OCI spec ${file} (${reason(error)})`);
  }
  try {
    return { spec: parseJson(text), mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
  } catch (error) {
    throw new SpecFileError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Replaces `file` with `text`; on failure the old file is left as it was. */
export function writeFileAtomically(file: string, text: string, owner: FileOwner): void {
  const random = Math.floor(Math.random() * 0x100000000).toString(16);
  const temp = join(dirname(file), `.${basename(file)}.sharedprop-${process.pid}-${random}`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', owner.mode);
    fs.fchmodSync(fd, owner.mode); // the umask may have narrowed it
    const created = fs.fstatSync(fd);
    if (created.uid !== owner.uid || created.gid !== owner.gid) {
      fs.fchownSync(fd, owner.uid, owner.gid);
    }
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, file);
  } catch (error) {
    try {
      if (fd !== undefined) fs.closeSync(fd);
    } catch {
      // the error below says what went wrong first
    }
    try {
      fs.unlinkSync(temp);
    } catch {
      // never created, or already gone
    }
    throw new SpecFileError(`cannot write the OCI spec ${file} (${reason(error)})`);
  }
}
