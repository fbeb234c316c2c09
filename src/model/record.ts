/** What a volume is, as the driver keeps it and the store writes it. */
import { z } from 'zod';
import { NO_MOUNTS, type MountCounts } from './counts.js';
import { optionsSchema, type VolumeOptions } from './options.js';

export interface VolumeRecord {
  name: string;
  createdAt: string;
  options: VolumeOptions;
  mounts: MountCounts;
}

/**
 * Options as volume.json holds them. Versions before the `kind` had none: a volume was a tmpfs
 * with `type: "tmpfs"`, an adopted directory with `path`, and a directory with neither. Records
 * are still written with `type` for a tmpfs (see `optionsToJson`), so that an older driver,
 * which ignores `kind`, reads them the same. Both shapes load into the one union.
 */
export const storedOptionsSchema = z
  .record(z.string(), z.unknown())
  .transform((stored) => {
    const { type, ...rest } = stored;
    const kind = type === 'tmpfs' ? 'tmpfs' : rest.path !== undefined ? 'path' : 'directory';
    // A record that names its kind keeps it (spread last).
    return { kind, ...rest };
  })
  .pipe(optionsSchema);

/** The options as volume.json holds them: with the kind, and readable by older versions. */
export function optionsToJson(options: VolumeOptions): Record<string, unknown> {
  return options.kind === 'tmpfs' ? { ...options, type: 'tmpfs' } : { ...options };
}

/** volume.json. Version 1 also held the counts, as an object; they are read when no mounts.json exists. */
export const recordFileSchema = z.object({
  version: z.union([z.literal(1), z.literal(2)]),
  name: z.string().min(1),
  createdAt: z.string(),
  options: storedOptionsSchema,
  mounts: z.unknown().optional(),
});

const countEntry = z.tuple([z.string().min(1), z.number().int().positive()]);

/** mounts.json: version 1 held an object of counts, version 2 holds [id, count] pairs. */
export const countsFileSchema = z.union([
  z.object({ version: z.literal(2), mounts: z.array(countEntry) }),
  z.object({ version: z.literal(1), mounts: z.unknown() }),
]);

/**
 * Counts from either shape. An object is read by its own keys, so that a stored `__proto__`
 * (JSON.parse makes it an own key) is an ID like any other.
 */
export function countsFromJson(value: unknown): MountCounts {
  if (value === undefined || value === null) return NO_MOUNTS;
  const pairs: unknown[] = Array.isArray(value)
    ? value
    : typeof value === 'object'
      ? Object.keys(value).map((key) => [key, (value as Record<string, unknown>)[key]])
      : [value];
  const counts = new Map<string, number>();
  for (const pair of pairs) {
    const parsed = countEntry.safeParse(pair);
    if (!parsed.success) throw new Error(`unexpected mount count ${JSON.stringify(pair)}`);
    counts.set(parsed.data[0], parsed.data[1]);
  }
  return counts;
}

export function recordFromJson(json: unknown): VolumeRecord {
  const parsed = recordFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `unexpected content: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const { name, createdAt, options, mounts } = parsed.data;
  return { name, createdAt, options, mounts: countsFromJson(mounts) };
}
