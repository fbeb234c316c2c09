/** Create options: parsed once, with defaults filled in, so that two can be compared. */
import { z } from 'zod';
import { invalid } from './errors.js';

export type PropagationOption = 'rshared' | 'shared';

export const optionsSchema = z.object({
  propagation: z.enum(['rshared', 'shared']),
  uid: z.number().int().nonnegative().optional(),
  gid: z.number().int().nonnegative().optional(),
  /** Permission bits of the volume directory. */
  mode: z.number().int().min(0).max(0o7777).optional(),
});

export type VolumeOptions = z.infer<typeof optionsSchema>;

export const VALID_OPTIONS = ['uid', 'gid', 'mode', 'propagation'] as const;

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

export function parseOptions(volume: string, raw: RawOptions): VolumeOptions {
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
    }
  }
  return options;
}

export function sameOptions(a: VolumeOptions, b: VolumeOptions): boolean {
  return a.propagation === b.propagation && a.uid === b.uid && a.gid === b.gid && a.mode === b.mode;
}

export function describeOptions(options: VolumeOptions): string {
  const parts = [`propagation=${options.propagation}`];
  if (options.uid !== undefined) parts.push(`uid=${options.uid}`);
  if (options.gid !== undefined) parts.push(`gid=${options.gid}`);
  if (options.mode !== undefined) parts.push(`mode=0${options.mode.toString(8)}`);
  return parts.join(' ');
}
