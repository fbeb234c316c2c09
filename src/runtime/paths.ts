/**
 * POSIX path arithmetic, as node:path does it, for the wrapper's hot path: in the compiled
 * wrapper, loading Bun's node:path costs about a millisecond of every container start.
 */

export const isAbsolute = (p: string): boolean => p.startsWith('/');

/** Resolves `.`, `..` and repeated slashes; keeps a trailing slash, like path.posix.normalize. */
export function normalize(p: string): string {
  if (p === '') return '.';
  const absolute = isAbsolute(p);
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') parts.push(part);
    else if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
    else if (!absolute) parts.push('..');
  }
  let result = (absolute ? '/' : '') + parts.join('/');
  if (result === '') return absolute ? '/' : '.';
  if (p.endsWith('/') && result !== '/') result += '/';
  return result;
}

export function join(...parts: string[]): string {
  const joined = parts.filter((part) => part !== '').join('/');
  return joined === '' ? '.' : normalize(joined);
}

/** `p` made absolute against `cwd` (itself absolute), normalised, without a trailing slash. */
export function resolve(cwd: string, p: string): string {
  const result = normalize(isAbsolute(p) ? p : `${cwd}/${p}`);
  return result.length > 1 && result.endsWith('/') ? result.slice(0, -1) : result;
}

/** As path.posix.dirname (the same algorithm). */
export function dirname(p: string): string {
  if (p === '') return '.';
  const hasRoot = p.startsWith('/');
  let end = -1;
  let matchedSlash = true;
  for (let i = p.length - 1; i >= 1; i--) {
    if (p[i] === '/') {
      if (!matchedSlash) {
        end = i;
        break;
      }
    } else matchedSlash = false;
  }
  if (end === -1) return hasRoot ? '/' : '.';
  if (hasRoot && end === 1) return '//';
  return p.slice(0, end);
}

export function basename(p: string): string {
  let end = p.length;
  while (end > 1 && p[end - 1] === '/') end--;
  const trimmed = p.slice(0, end);
  if (trimmed === '/') return '';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
