/**
 * The one change the wrapper makes to an OCI spec: every mount of a sharedprop volume gets
 * `rshared` propagation, and the container's root gets `shared` propagation (what dockerd does
 * for an `:rshared` bind), so submounts made in the volume reach the host and other containers.
 * Pure: the input is not modified, and every key it does not know is kept as it was.
 */
import { isJsonObject, type JsonObject, type JsonValue } from './json.js';

/** Mount options that set propagation; all of them give way to `rshared`. */
const PROPAGATION_OPTIONS = new Set([
  'private',
  'rprivate',
  'slave',
  'rslave',
  'shared',
  'rshared',
]);

/** Root propagation values that already let the volume's submounts out. */
const SHARED_ROOT = new Set(['shared', 'rshared']);

export type SourcePredicate = (source: string) => boolean;

export interface MountChange {
  destination: string;
  source: string;
  /** The mount's options before and after. */
  before: string[];
  after: string[];
}

export interface SpecRewrite {
  /** The spec to hand to runc (the input itself when nothing changed). */
  spec: JsonValue;
  /** The sharedprop mounts whose options changed. */
  changed: MountChange[];
  /** How many mounts are of sharedprop volumes, changed or not. */
  matched: number;
  /** The change to `linux.rootfsPropagation` (`before` is undefined when it was absent). */
  rootfsPropagation?: { before: string | undefined; after: string };
}

export class SpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpecError';
  }
}

/** `options` with its propagation options replaced by a single `rshared` (appended if none). */
export function withRshared(options: readonly string[]): string[] {
  const result: string[] = [];
  let placed = false;
  for (const option of options) {
    if (!PROPAGATION_OPTIONS.has(option)) result.push(option);
    else if (!placed) {
      result.push('rshared');
      placed = true;
    }
  }
  if (!placed) result.push('rshared');
  return result;
}

function stringOptions(mount: JsonObject, index: number): string[] {
  const options = mount.options;
  if (options === undefined || options === null) return [];
  if (!Array.isArray(options) || options.some((o) => typeof o !== 'string')) {
    throw new SpecError(`mounts[${index}].options is not a list of strings`);
  }
  return options as string[];
}

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((item, i) => item === b[i]);

/** Rewrites `spec` for the mounts whose source `isSharedpropSource` accepts. */
export function rewriteSpec(spec: JsonValue, isSharedpropSource: SourcePredicate): SpecRewrite {
  if (!isJsonObject(spec)) throw new SpecError('the spec is not a JSON object');
  const mounts = spec.mounts;
  if (mounts === undefined || mounts === null) return { spec, changed: [], matched: 0 };
  if (!Array.isArray(mounts)) throw new SpecError('"mounts" is not a list');

  const changed: MountChange[] = [];
  let matched = 0;
  const newMounts = mounts.map((mount, index): JsonValue => {
    if (!isJsonObject(mount)) throw new SpecError(`mounts[${index}] is not an object`);
    const source = mount.source;
    if (typeof source !== 'string' || !isSharedpropSource(source)) return mount;
    matched++;
    const before = stringOptions(mount, index);
    const after = withRshared(before);
    if (sameList(before, after)) return mount;
    const destination = typeof mount.destination === 'string' ? mount.destination : '';
    changed.push({ destination, source, before, after });
    return { ...mount, options: after };
  });
  if (matched === 0) return { spec, changed, matched };

  const linux = spec.linux ?? {};
  if (!isJsonObject(linux)) throw new SpecError('"linux" is not an object');
  const current = linux.rootfsPropagation;
  if (current !== undefined && current !== null && typeof current !== 'string') {
    throw new SpecError('"linux.rootfsPropagation" is not a string');
  }
  const rootShared = typeof current === 'string' && SHARED_ROOT.has(current);
  if (changed.length === 0 && rootShared) return { spec, changed, matched };

  const result: JsonObject = { ...spec, mounts: newMounts };
  const rewrite: SpecRewrite = { spec: result, changed, matched };
  if (!rootShared) {
    result.linux = { ...linux, rootfsPropagation: 'shared' };
    rewrite.rootfsPropagation = { before: current ?? undefined, after: 'shared' };
  }
  return rewrite;
}

/** True when the rewrite changed anything, i.e. the spec file must be written. */
export const specChanged = (rewrite: SpecRewrite): boolean =>
  rewrite.changed.length > 0 || rewrite.rootfsPropagation !== undefined;
