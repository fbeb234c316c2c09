/** Create options: parsed once, with defaults filled in, so that two can be compared. */
import path from 'node:path';
import { z } from 'zod';
import { invalid } from './errors.js';
import { defaultTmpfsSize, parseTmpfsSize, type TmpfsSizeLimits } from './tmpfs-size.js';

export type PropagationOption = 'rshared' | 'shared';

/**
 * A stored tmpfs size: exact bytes since tmpfs-size.ts (what the kernel gets); records written
 * before it may hold the text as given (a k/m/g suffix or a percentage of RAM).
 */
const SIZE_PATTERN = /^(?:[1-9][0-9]{0,19}[kmg]?|(?:[1-9][0-9]?|100)%)$/;

export const optionsSchema = z.object({
  propagation: z.enum(['rshared', 'shared']),
  /**
   * What holds the volume's contents: absent for a directory in the data root, `tmpfs` for a
   * tmpfs of its own (in memory, empty after a reboot, like /run).
   */
  type: z.literal('tmpfs').optional(),
  /**
   * An existing host directory that the volume adopts as its data (absolute, normalised): kept
   * rshared, never deleted from. Exclusive with `type` and `size`.
   */
  path: z.string().startsWith('/').optional(),
  /**
   * The tmpfs's size limit in bytes, whole pages (tmpfs only); `serve --tmpfs-max-size` when
   * Create gave none and serve has one, else absent: the kernel's default (half the RAM).
   */
  size: z.string().regex(SIZE_PATTERN).optional(),
  uid: z.number().int().nonnegative().optional(),
  gid: z.number().int().nonnegative().optional(),
  /** Permission bits of the volume directory. */
  mode: z.number().int().min(0).max(0o7777).optional(),
  /**
   * `on-unmount`: when the last mount ID is unmounted, submounts pinned to a container that no
   * longer runs (its root filesystem) are detached. Absent: never (`sharedprop prune` does it).
   */
  reap: z.literal('on-unmount').optional(),
});

export type VolumeOptions = z.infer<typeof optionsSchema>;

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
  if (!/^0?[0-7]{3,4}$/.test(value) || parseInt(value, 8) > 0o7777) {
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
  const options: VolumeOptions = { propagation: 'rshared' };
  for (const [key, value] of entries) {
    if (typeof value !== 'string') {
      throw invalid(`volume ${JSON.stringify(volume)}: option ${key} must be a string`);
    }
    switch (key) {
      case 'uid':
      case 'gid':
        options[key] = parseId(volume, key, value);
        break;
      case 'mode':
        options.mode = parseMode(volume, value);
        break;
      case 'propagation':
        if (value !== 'rshared' && value !== 'shared') {
          throw invalid(
            `volume ${JSON.stringify(volume)}: option propagation=${JSON.stringify(value)} is not one of rshared, shared`,
          );
        }
        options.propagation = value;
        break;
      case 'type':
        if (value === 'tmpfs') options.type = 'tmpfs';
        else if (value !== 'directory') {
          throw invalid(
            `volume ${JSON.stringify(volume)}: option type=${JSON.stringify(value)} is not one of directory, tmpfs`,
          );
        }
        break;
      case 'size':
        // Exact bytes, so that 64m and 65536k are one size and the kernel reads no suffix.
        if (context.tmpfs === undefined) throw new Error('parseOptions: size needs tmpfs limits');
        options.size = parseTmpfsSize(volume, value, context.tmpfs).option;
        break;
      case 'path':
        options.path = parseHostPath(volume, value);
        break;
      case 'reap':
        if (value === 'on-unmount') options.reap = 'on-unmount';
        else if (value !== 'off') {
          throw invalid(
            `volume ${JSON.stringify(volume)}: option reap=${JSON.stringify(value)} is not one of off, on-unmount`,
          );
        }
        break;
    }
  }
  if (options.size !== undefined && options.type !== 'tmpfs') {
    throw invalid(`volume ${JSON.stringify(volume)}: option size applies only to type=tmpfs`);
  }
  if (options.type === 'tmpfs' && options.size === undefined && context.tmpfs !== undefined) {
    const size = defaultTmpfsSize(context.tmpfs);
    if (size !== undefined) options.size = size;
  }
  if (options.path !== undefined) {
    // reap detaches mounts under the volume, which would reach the host directory's own mounts.
    const conflicting = (['type', 'uid', 'gid', 'mode', 'reap'] as const).filter(
      (key) => options[key] !== undefined,
    );
    if (conflicting.length > 0) {
      throw invalid(
        `volume ${JSON.stringify(volume)}: option path adopts a directory as it is; it does not go with ${conflicting.join(', ')}`,
      );
    }
  }
  return options;
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
  if (value === '/' || KERNEL_TREES.some((tree) => isWithinPath(value, tree))) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: option path=${shown} is refused: / and the kernel's /proc, /sys and /dev are never a volume's data`,
    );
  }
  return value;
}

/** True when `p` is `dir` or beneath it (both normalised absolute paths). */
export function isWithinPath(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

export function sameOptions(a: VolumeOptions, b: VolumeOptions): boolean {
  return (
    a.propagation === b.propagation &&
    a.type === b.type &&
    a.size === b.size &&
    a.path === b.path &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.mode === b.mode &&
    a.reap === b.reap
  );
}

/** The mount options of a tmpfs volume's root: its size, owner and mode, as Create set them. */
export function tmpfsMountOptions(options: VolumeOptions): string {
  const parts = ['nosuid', 'nodev', `mode=0${(options.mode ?? 0o755).toString(8)}`];
  if (options.uid !== undefined) parts.push(`uid=${options.uid}`);
  if (options.gid !== undefined) parts.push(`gid=${options.gid}`);
  if (options.size !== undefined) parts.push(`size=${options.size}`);
  return parts.join(',');
}

export function describeOptions(options: VolumeOptions): string {
  const parts = [`propagation=${options.propagation}`];
  if (options.type !== undefined) parts.push(`type=${options.type}`);
  if (options.size !== undefined) parts.push(`size=${options.size}`);
  if (options.path !== undefined) parts.push(`path=${options.path}`);
  if (options.uid !== undefined) parts.push(`uid=${options.uid}`);
  if (options.gid !== undefined) parts.push(`gid=${options.gid}`);
  if (options.mode !== undefined) parts.push(`mode=0${options.mode.toString(8)}`);
  if (options.reap !== undefined) parts.push(`reap=${options.reap}`);
  return parts.join(' ');
}
