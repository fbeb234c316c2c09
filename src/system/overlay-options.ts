/**
 * An overlay's layers, read from its super options in mountinfo (the field after the fs type
 * and the source). Two escapings lie on top of each other there:
 * - the kernel's, in mountinfo (seq_show_option): in a value, `,` space, tab, newline and `\`
 *   are printed as octal (`\054`, `\040`, `\011`, `\012`, `\134`), so options are split at
 *   literal commas first and each is unescaped after;
 * - overlay's own, as the mounter wrote the option (the kernel keeps and shows that string): a
 *   backslash takes the next character literally (`\,` `\:` `\\`), and `:` separates lower
 *   layers. A path is unescaped as the kernel's ovl_unescape does.
 * Paths are shown as the mounter gave them: absolute or relative to its working directory.
 */
import { unescapeMountPath } from './mountinfo.js';

export interface OverlayLayers {
  /** `lowerdir` (split), then `lowerdir+` and `datadir+`, in order. */
  lowerdirs: string[];
  /** Absent on a read-only overlay, and when the table shows it more than once. */
  upperdir?: string;
  workdir?: string;
}

/** `key[=value]` pairs of a super options field, the kernel's octal escapes undone. */
export function superOptionPairs(text: string): Array<[string, string | undefined]> {
  return text
    .split(',')
    .filter((option) => option !== '')
    .map((option) => {
      const equals = option.indexOf('=');
      return equals < 0
        ? [unescapeMountPath(option), undefined]
        : [unescapeMountPath(option.slice(0, equals)), unescapeMountPath(option.slice(equals + 1))];
    });
}

/** Overlay's unescaping of one path: a backslash takes the next character literally. */
export function unescapeOverlayPath(text: string): string {
  return splitEscaped(text, '').join(''); // no separator: one part
}

/** A `lowerdir` list: split at unescaped colons, each unescaped; `::` (data-only layers) skipped. */
export function splitOverlayList(text: string): string[] {
  return splitEscaped(text, ':').filter((part) => part !== '');
}

/** Split at each unescaped `separator` (none when it is '': no character equals it). */
function splitEscaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\') {
      i++;
      current += text[i] ?? '';
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

/** The layers of an overlay whose super options field is `superOptions`. */
export function overlayLayers(superOptions: string): OverlayLayers {
  const layers: OverlayLayers = { lowerdirs: [] };
  const seen = new Map<string, string[]>();
  for (const [key, value] of superOptionPairs(superOptions)) {
    if (value === undefined) continue;
    if (key === 'lowerdir') layers.lowerdirs.push(...splitOverlayList(value));
    else if (key === 'lowerdir+' || key === 'datadir+') {
      layers.lowerdirs.push(unescapeOverlayPath(value));
    } else if (key === 'upperdir' || key === 'workdir') {
      seen.set(key, [...(seen.get(key) ?? []), unescapeOverlayPath(value)]);
    }
  }
  for (const key of ['upperdir', 'workdir'] as const) {
    const values = seen.get(key);
    if (values?.length === 1) layers[key] = values[0];
  }
  return layers;
}
