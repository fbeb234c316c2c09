/**
 * Parser for /proc/<pid>/mountinfo (proc(5)). Paths are unescaped (\040 and friends), and the
 * optional fields give each mount's propagation: shared:N, master:N, propagate_from:N, unbindable.
 */
import { readFile } from 'node:fs/promises';
import { isWithin } from '../model/paths.js';

export interface MountEntry {
  id: number;
  parentId: number;
  /** major:minor of the filesystem. */
  device: string;
  /** The path inside the filesystem that is mounted (the source of a bind mount). */
  root: string;
  mountPoint: string;
  mountOptions: string;
  /** Peer group this mount shares events with, when it is shared. */
  sharedGroup?: number;
  /** Peer group this mount receives events from, when it is a slave. */
  masterGroup?: number;
  unbindable: boolean;
  fsType: string;
  source: string;
  superOptions: string;
}

export type Propagation = 'shared' | 'slave' | 'shared+slave' | 'private' | 'unbindable';

/** Turns the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) back. */
export function unescapeMountPath(text: string): string {
  if (!text.includes('\\')) return text; // nearly every path: no regular expression to run
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/** The kernel's escaping of a path in mountinfo: the inverse of unescapeMountPath. */
export function escapeMountPath(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function parseMountinfoLine(line: string): MountEntry {
  const fields = line.split(' ');
  const separator = fields.indexOf('-', 6);
  if (fields.length < 10 || separator < 0 || fields.length < separator + 3) {
    throw new Error(`malformed mountinfo line: ${JSON.stringify(line)}`);
  }
  // Every field read below exists: checked just above.
  const entry: MountEntry = {
    id: Number(fields[0]),
    parentId: Number(fields[1]),
    device: fields[2] as string,
    root: unescapeMountPath(fields[3] as string),
    mountPoint: unescapeMountPath(fields[4] as string),
    mountOptions: fields[5] as string,
    unbindable: false,
    fsType: unescapeMountPath(fields[separator + 1] as string),
    source: unescapeMountPath(fields[separator + 2] as string),
    superOptions: fields.slice(separator + 3).join(' '),
  };
  for (const optional of fields.slice(6, separator)) {
    const [tag, value] = optional.split(':');
    if (tag === 'shared') entry.sharedGroup = Number(value);
    else if (tag === 'master') entry.masterGroup = Number(value);
    else if (tag === 'unbindable') entry.unbindable = true;
  }
  if (!Number.isInteger(entry.id) || !Number.isInteger(entry.parentId)) {
    throw new Error(`malformed mountinfo line: ${JSON.stringify(line)}`);
  }
  return entry;
}

/** Parses every line, or only the lines `keep` accepts (a cheap text test before parsing). */
export function parseMountinfo(text: string, keep?: (line: string) => boolean): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || (keep && !keep(line))) continue;
    entries.push(parseMountinfoLine(line));
  }
  return entries;
}

export async function readMountinfo(
  path = '/proc/self/mountinfo',
  keep?: (line: string) => boolean,
): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(path, 'utf8'), keep);
}

/**
 * One filtered view of a mount table, read again and again: the text is parsed only when it
 * changed since the last read, and otherwise the same (frozen) array is returned. Mounts change far
 * less often than they are asked about, and with tens of thousands of mounts the parse, not the
 * kernel's text, is what blocks the event loop. It holds the last text and its entries.
 */
export class MountinfoReader {
  private last?: { text: string; entries: readonly MountEntry[] };

  constructor(
    private readonly path: string,
    private readonly keep?: (line: string) => boolean,
  ) {}

  async read(): Promise<readonly MountEntry[]> {
    const text = await readFile(this.path, 'utf8');
    if (this.last?.text !== text) {
      this.last = { text, entries: Object.freeze(parseMountinfo(text, this.keep)) };
    }
    return this.last.entries;
  }
}

/**
 * A line filter that keeps the mounts whose mount point may be `dir` or lie under it, and the
 * mounts with the given ids: with tens of thousands of mounts, only these few get parsed.
 */
export function aboutPath(dir: string, ids: readonly number[] = []): (line: string) => boolean {
  const needle = ` ${escapeMountPath(dir)}`;
  const prefixes = ids.map((id) => `${id} `);
  return (line) => line.includes(needle) || prefixes.some((p) => line.startsWith(p));
}

export function propagationOf(entry: MountEntry): Propagation {
  if (entry.sharedGroup !== undefined && entry.masterGroup !== undefined) return 'shared+slave';
  if (entry.sharedGroup !== undefined) return 'shared';
  if (entry.masterGroup !== undefined) return 'slave';
  return entry.unbindable ? 'unbindable' : 'private';
}

/** The one `isWithin` of the codebase, re-exported for the mount layer's users. */
export { isWithin };

/** Every mount whose mount point is `path` exactly, bottom of the stack first. */
export function mountsAt(entries: readonly MountEntry[], path: string): MountEntry[] {
  return entries.filter((e) => e.mountPoint === path);
}

/** Mounts strictly beneath `dir`, deepest first: the order in which they can be detached. */
export function mountsBelow(entries: readonly MountEntry[], dir: string): MountEntry[] {
  return entries
    .filter((e) => e.mountPoint !== dir && isWithin(e.mountPoint, dir))
    .sort((a, b) => depth(b.mountPoint) - depth(a.mountPoint) || b.id - a.id);
}

function depth(path: string): number {
  return path.split('/').length;
}

/** The mount that holds `path`: the deepest one whose mount point contains it (last on a tie). */
export function holderOf(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const e of entries) {
    if (!isWithin(path, e.mountPoint)) continue;
    if (!best || e.mountPoint.length >= best.mountPoint.length) best = e;
  }
  return best;
}

/**
 * Where `dir` is on the host: mountinfo gives, for the mount that holds it, the path inside the
 * filesystem that is mounted there (for the plugin's /data, the host directory bound to it).
 *
 * That path is the host's only when the host's `/` is the filesystem's root. On a btrfs subvolume
 * root (`/@`) or an engine in a pivot_root'ed tree, it has a prefix the host does not show. So
 * `known`, the host path the installer recorded for `dir` (the plugin's HOST_DATA_DIR), wins
 * when the table agrees with it: the table's path is `known` itself, or ends with it; or the
 * mount is a whole filesystem, which says nothing either way.
 */
export function hostPathOf(entries: readonly MountEntry[], dir: string, known?: string): string {
  const holder = holderOf(entries, dir);
  if (!holder) return known ?? dir;
  const relative = holder.mountPoint === '/' ? dir : dir.slice(holder.mountPoint.length);
  // Only a bind of a subdirectory says where it comes from; a whole filesystem's root does not.
  const fromTable = holder.root === '/' ? undefined : holder.root + relative;
  if (known !== undefined && (fromTable === undefined || fromTable.endsWith(known))) {
    return known;
  }
  return fromTable ?? dir;
}
