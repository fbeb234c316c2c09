/**
 * mounts.json as one page (4 KiB, padded with spaces) that every Mount and Unmount overwrites in
 * place with one write: no new block is needed, and a one-page write is never torn by kill -9
 * (see volume-store.ts).
 */
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import { countsToPairs, type MountCounts } from '../model/counts.js';

export const COUNTS_PAGE = 4096;

/** The counts file's content: one page, padded with spaces, when the counts fit in one. */
export function countsBody(counts: MountCounts): Buffer {
  const json = Buffer.from(JSON.stringify({ version: 2, mounts: countsToPairs(counts) }) + '\n');
  if (json.length >= COUNTS_PAGE) return json;
  const page = Buffer.alloc(COUNTS_PAGE, 0x20);
  json.copy(page);
  page[COUNTS_PAGE - 1] = 0x0a;
  return page;
}

/** One write of one page over a file of exactly one page; false when the file is not such. */
export function overwritePage(file: string, page: Buffer): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    if (fstatSync(fd).size !== COUNTS_PAGE) return false;
    const written = writeSync(fd, page, 0, COUNTS_PAGE, 0);
    if (written !== COUNTS_PAGE) throw new Error(`short write of the mount counts (${written})`);
    return true;
  } finally {
    closeSync(fd);
  }
}
