/**
 * The text of a volume's files: its record (volume.json) and its counts file, parsed with a clear
 * reason when they are not what the driver writes, and written durably.
 */
import { open } from 'node:fs/promises';
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

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
