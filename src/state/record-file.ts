/**
 * The text of a volume's files: its record (volume.json) and its counts file, parsed with a clear
 * reason when they are not what the driver writes, and written durably.
 */
import { closeSync, constants, fsync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import writeFileAtomic from 'write-file-atomic';
import type { z } from 'zod';
import { optionsToJson, recordFromJson, type VolumeRecord } from '../model/record.js';

export function parseRecord(text: string): VolumeRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  return recordFromJson(json);
}

export function parseJson<T>(text: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `unexpected content: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

export function recordText(record: VolumeRecord): string {
  const body = { version: 2, ...record, options: optionsToJson(record.options), mounts: undefined };
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** Replaces the record at `file` atomically and durably (temp, fsync, rename; 0600). */
export async function writeRecord(record: VolumeRecord, file: string): Promise<void> {
  await writeFileAtomic(file, recordText(record), { mode: 0o600, fsync: true });
}

/** fsync(2) of a directory: its entries made durable (open and close are synchronous, cheap). */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Waits for every one of `work` (never leaving one running, e.g. an fsync on a descriptor about
 * to be closed), then rejects with the first failure in their order, or resolves.
 */
export async function allSettledOrThrow(work: readonly Promise<unknown>[]): Promise<void> {
  for (const outcome of await Promise.allSettled(work)) {
    if (outcome.status === 'rejected') throw outcome.reason;
  }
}

/** fsync(2) of an open descriptor, in the thread pool (it waits for the disk). */
export const fsyncFd: (fd: number) => Promise<void> = promisify(fsync);
