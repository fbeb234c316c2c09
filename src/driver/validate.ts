/** Volume names and Create options: checked before anything touches the filesystem. */
import { invalid } from './errors.js';

export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
export const NAME_MAX = 255;

export function validateName(name: string): void {
  const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}...` : name);
  if (name.length > NAME_MAX) {
    throw invalid(`invalid volume name ${shown}: longer than ${NAME_MAX} characters`);
  }
  if (!NAME_PATTERN.test(name)) {
    throw invalid(
      `invalid volume name ${shown}: use at least two characters from [a-zA-Z0-9_.-], starting with a letter or digit`,
    );
  }
}

export type PropagationOption = 'rshared' | 'shared';

/** Create options after validation, with defaults filled in, so that two can be compared. */
export interface VolumeOptions {
  propagation: PropagationOption;
  uid?: number;
  gid?: number;
  /** Permission bits of the volume directory. */
  mode?: number;
}

export const VALID_OPTIONS = ['uid', 'gid', 'mode', 'propagation'] as const;

const ID_MAX = 2 ** 32 - 2;

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

export function parseOptions(volume: string, raw: Record<string, string>): VolumeOptions {
  const unknown = Object.keys(raw).filter(
    (key) => !(VALID_OPTIONS as readonly string[]).includes(key),
  );
  if (unknown.length > 0) {
    const list = unknown.map((key) => JSON.stringify(key)).join(', ');
    throw invalid(
      `volume ${JSON.stringify(volume)}: unknown option${unknown.length > 1 ? 's' : ''} ${list} (valid options: ${VALID_OPTIONS.join(', ')})`,
    );
  }
  const options: VolumeOptions = { propagation: 'rshared' };
  for (const [key, value] of Object.entries(raw)) {
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

/** IDs are dockerd's opaque mount ids; keep them printable and bounded. */
export function validateMountId(volume: string, id: string): void {
  if (id.length === 0 || id.length > 512 || [...id].some((c) => c.charCodeAt(0) < 0x20)) {
    throw invalid(
      `volume ${JSON.stringify(volume)}: invalid mount ID ${JSON.stringify(id.slice(0, 80))}`,
    );
  }
}
