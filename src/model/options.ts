/**
 * Create options: parsed once, with defaults filled in, so that two can be compared. A volume is
 * one of three kinds, and its options are a discriminated union by `kind`: one zod schema per
 * kind says which options it takes, so that an invalid combination (a size on a directory, a uid
 * on an adopted path) cannot be represented, and the same schema drives validation, equality
 * and description.
 */
import path from 'node:path';
import { z } from 'zod';
import { invalid } from './errors.js';
import { defaultTmpfsSize, parseTmpfsSize, type TmpfsSizeLimits } from './tmpfs-size.js';
import { isWithin } from './paths.js';
import { recordedIdentitySchema } from './directory-identity.js';

export type PropagationOption = 'rshared' | 'shared';

const propagation = z.enum(['rshared', 'shared']);
const id = z.number().int().nonnegative();
/** Permission bits of the volume's root. */
const mode = z.number().int().min(0).max(0o7777);
/**
 * `on-unmount`: when the last mount ID is unmounted, submounts pinned to a container that no
 * longer runs (its root filesystem) are detached. Absent: never (`sharedprop prune` does it).
 */
const reap = z.literal('on-unmount').optional();

/** A directory in the data root (`volumes/<name>/_data`). */
export const directoryOptionsSchema = z
  .object({
    kind: z.literal('directory'),
    propagation,
    uid: id.optional(),
    gid: id.optional(),
    mode: mode.optional(),
    reap,
  })
  .strict();

/** A tmpfs of its own (in memory, empty after a reboot, like /run). */
export const tmpfsOptionsSchema = z
  .object({
    kind: z.literal('tmpfs'),
    propagation,
    /**
     * The tmpfs's size limit: exact bytes, whole pages, since tmpfs-size.ts (records written before
     * it may hold the text as given); serve's --tmpfs-max-size when Create gave none and serve has
     * one, else absent: the kernel's default (half the RAM).
     */
    size: z.string().min(1).optional(),
    uid: id.optional(),
    gid: id.optional(),
    mode: mode.optional(),
    reap,
  })
  .strict();

/**
 * An existing host directory that the volume adopts as its data (absolute, normalised): kept
 * rshared, never deleted from. It takes no other option: it is adopted as it is, and reaping
 * would reach the host directory's own mounts.
 */
export const pathOptionsSchema = z
  .object({
    kind: z.literal('path'),
    propagation,
    path: z.string().startsWith('/'),
    /**
     * The adopted directory's identity, taken at Create (no option sets it; records written
     * before it have none, and get it from the directory at start-up): checked at every remount.
     */
    identity: recordedIdentitySchema.optional(),
  })
  .strict();

export const optionsSchema = z.discriminatedUnion('kind', [
  directoryOptionsSchema,
  tmpfsOptionsSchema,
  pathOptionsSchema,
]);

export type VolumeOptions = z.infer<typeof optionsSchema>;
export type VolumeKindName = VolumeOptions['kind'];
export type DirectoryOptions = z.infer<typeof directoryOptionsSchema>;
export type TmpfsOptions = z.infer<typeof tmpfsOptionsSchema>;
export type PathOptions = z.infer<typeof pathOptionsSchema>;

const SCHEMA_OF_KIND = {
  directory: directoryOptionsSchema,
  tmpfs: tmpfsOptionsSchema,
  path: pathOptionsSchema,
} as const;

/** What a record keeps beside the options given: never compared, never shown as an option. */
const RECORDED = ['kind', 'identity'];

/** The option names of one kind, in the order the schema declares them (`kind` excluded). */
function fieldsOf(kind: VolumeKindName): string[] {
  return Object.keys(SCHEMA_OF_KIND[kind].shape).filter((key) => !RECORDED.includes(key));
}

export const VALID_OPTIONS = [
  'type',
  'size',
  'path',
  'uid',
  'gid',
  'mode',
  'propagation',
  'reap',
] as const;

/** Kernel filesystems whose directories are never a volume's data. */
const KERNEL_TREES = ['/proc', '/sys', '/dev'];

/** Raw options as they arrive: a Map (from the protocol) or a plain object of own keys. */
export type RawOptions = ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>;

const ID_MAX = 2 ** 32 - 2;

function entriesOf(raw: RawOptions): [string, unknown][] {
  // Object.keys lists own keys only, and a JSON `__proto__` key is an own key: it is refused
  // like any other unknown option instead of vanishing into the prototype.
  return raw instanceof Map
    ? [...raw]
    : Object.keys(raw).map((key) => [key, (raw as Record<string, unknown>)[key]]);
}

function parseId(volume: string, key: string, value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > ID_MAX) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: option ${key}=${JSON.stringify(value)} is not a numeric id (0-${ID_MAX})`,
    );
  }
  return Number(value);
}

function parseMode(volume: string, value: string): number {
  // At most four octal digits: at most 07777.
  if (!/^0?[0-7]{3,4}$/.test(value)) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: option mode=${JSON.stringify(value)} is not an octal mode such as 0755`,
    );
  }
  return parseInt(value, 8);
}

/** What parseOptions needs from the running driver. */
export interface ParseContext {
  /**
   * The tmpfs size limits (the host's memory, serve's --tmpfs-max-size). Needed to read a
   * `size`: without them only a tmpfs without one can be parsed (the model reads no host).
   */
  tmpfs?: TmpfsSizeLimits;
}

/**
 * THE place where a tmpfs `size=` option is parsed (src/model/tmpfs-size.ts: exactly as the
 * kernel reads it, against the host's limit): the value as it is kept in the record and given to
 * the kernel, exact bytes, so that 64m and 65536k are one size and the kernel reads no suffix.
 */
export function parseTmpfsSizeOption(
  volume: string,
  value: string,
  limits: TmpfsSizeLimits | undefined,
): string {
  if (limits === undefined) throw new Error('parseOptions: size needs tmpfs limits');
  return parseTmpfsSize(volume, value, limits).option;
}

function oneOf<T extends string>(
  volume: string,
  key: string,
  value: string,
  allowed: readonly T[],
): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw invalid(
    `volume ${JSON.stringify(volume)}: option ${key}=${JSON.stringify(value)} is not one of ${allowed.join(', ')}`,
  );
}

export function parseOptions(
  volume: string,
  raw: RawOptions,
  context: ParseContext = {},
): VolumeOptions {
  const entries = entriesOf(raw);
  const valid: readonly string[] = VALID_OPTIONS;
  const unknown = entries.map(([key]) => key).filter((key) => !valid.includes(key));
  if (unknown.length > 0) {
    const list = unknown.map((key) => JSON.stringify(key.slice(0, 80))).join(', ');
    throw invalid(
      `volume ${JSON.stringify(volume)}: unknown option${unknown.length > 1 ? 's' : ''} ${list} (valid options: ${VALID_OPTIONS.join(', ')})`,
    );
  }
  // Each value parsed on its own first; which of them go together is the kind's schema's say.
  const given: Record<string, unknown> = {};
  let type: 'directory' | 'tmpfs' = 'directory';
  for (const [key, value] of entries) {
    if (typeof value !== 'string') {
      throw invalid(`volume ${JSON.stringify(volume)}: option ${key} must be a string`);
    }
    switch (key) {
      case 'uid':
      case 'gid':
        given[key] = parseId(volume, key, value);
        break;
      case 'mode':
        given.mode = parseMode(volume, value);
        break;
      case 'propagation':
        given.propagation = oneOf(volume, key, value, ['rshared', 'shared']);
        break;
      case 'type':
        type = oneOf(volume, key, value, ['directory', 'tmpfs']);
        given.type = type; // even `directory`: an adopted path goes with no type
        break;
      case 'size':
        given.size = parseTmpfsSizeOption(volume, value, context.tmpfs);
        break;
      case 'path':
        given.path = parseHostPath(volume, value);
        break;
      case 'reap':
        if (oneOf(volume, key, value, ['off', 'on-unmount']) === 'on-unmount') {
          given.reap = 'on-unmount';
        }
        break;
    }
  }
  const kind: VolumeKindName =
    given.path !== undefined ? 'path' : type === 'tmpfs' ? 'tmpfs' : 'directory';
  if (given.size !== undefined && type !== 'tmpfs') {
    throw invalid(`volume ${JSON.stringify(volume)}: option size applies only to type=tmpfs`);
  }
  if (kind === 'tmpfs' && given.size === undefined && context.tmpfs !== undefined) {
    // serve --tmpfs-max-size: the cap is also the size of a tmpfs created without one.
    const size = defaultTmpfsSize(context.tmpfs);
    if (size !== undefined) given.size = size;
  }
  const fields = fieldsOf(kind);
  const misplaced = Object.keys(given).filter((key) => key !== 'type' && !fields.includes(key));
  if (kind === 'path' && (given.type !== undefined || misplaced.length > 0)) {
    const conflicting = VALID_OPTIONS.filter((key) =>
      key === 'type' ? given.type !== undefined : misplaced.includes(key),
    );
    throw invalid(
      `volume ${JSON.stringify(volume)}: option path adopts a directory as it is; it does not go with ${conflicting.join(', ')}`,
    );
  }
  delete given.type;
  const parsed = optionsSchema.safeParse({ kind, propagation: 'rshared', ...given });
  if (!parsed.success) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: options do not go together (${parsed.error.issues.map((i) => i.message).join('; ')})`,
    );
  }
  return parsed.data;
}

/**
 * The syntax of a host directory to adopt: absolute, normalised (no `.`, `..`, `//` or trailing
 * `/`), and neither `/` nor inside a kernel filesystem. Whether it exists, has no symlink on its
 * way and stays clear of the driver's own directories is the driver's check.
 */
function parseHostPath(volume: string, value: string): string {
  const shown = JSON.stringify(value.slice(0, 200));
  if (
    !value.startsWith('/') ||
    value.includes('\0') ||
    Buffer.byteLength(value) > 4000 ||
    path.posix.normalize(value) !== value ||
    (value.length > 1 && value.endsWith('/'))
  ) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: option path=${shown} is not an absolute, normalised directory path`,
    );
  }
  if (value === '/' || KERNEL_TREES.some((tree) => isWithin(value, tree))) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: option path=${shown} is refused: / and the kernel's /proc, /sys and /dev are never a volume's data`,
    );
  }
  return value;
}

/** Equal when of the same kind and equal in every option that kind's schema declares. */
export function sameOptions(a: VolumeOptions, b: VolumeOptions): boolean {
  if (a.kind !== b.kind) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  return fieldsOf(a.kind).every((key) => left[key] === right[key]);
}

/** How each option is written back as the user gives it (`type` stands for the kind). */
function shownValue(key: string, value: unknown): string {
  return key === 'mode' ? `0${(value as number).toString(8)}` : String(value);
}

/** The options as `key=value` words, in the order the user's documentation lists them. */
export function describeOptions(options: VolumeOptions): string {
  const record = options as Record<string, unknown>;
  const parts = [`propagation=${options.propagation}`];
  if (options.kind === 'tmpfs') parts.push('type=tmpfs');
  const order = ['size', 'path', 'uid', 'gid', 'mode', 'reap'];
  for (const key of order.filter((k) => fieldsOf(options.kind).includes(k))) {
    if (record[key] !== undefined) parts.push(`${key}=${shownValue(key, record[key])}`);
  }
  return parts.join(' ');
}

/** The mount options of a tmpfs volume's root: its size, owner and mode, as Create set them. */
export function tmpfsMountOptions(options: TmpfsOptions): string {
  const parts = ['nosuid', 'nodev', `mode=0${(options.mode ?? 0o755).toString(8)}`];
  if (options.uid !== undefined) parts.push(`uid=${options.uid}`);
  if (options.gid !== undefined) parts.push(`gid=${options.gid}`);
  if (options.size !== undefined) parts.push(`size=${options.size}`);
  return parts.join(',');
}
