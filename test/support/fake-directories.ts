/**
 * Directories by identity in FakeMounts, as openat2 and statx see them: a symlink on the way is
 * ELOOP, a bind alias reaches its target's identity, a replaced directory (`mv; mkdir`) has a new
 * inode, and a directory something is mounted over shows another identity at its name.
 */
import type { DirectoryIdentity } from '../../src/model/directory-identity.js';
import type { HeldDirectory } from '../../src/system/held-directory.js';

export interface FakeDirectoryState {
  directories: Set<string>;
  symlinks: Map<string, string>;
  files: Set<string>;
  aliases: Map<string, string>;
  replaced: Map<string, number>;
  mountedOver: Set<string>;
  heldOpen: string[];
  inodes: Map<string, number>;
}

function fail(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

/** The directory a path (no symlink in it) names once bind aliases are followed. */
function canonical(state: FakeDirectoryState, dir: string): string {
  let real = '';
  for (const name of dir.split('/').filter((n) => n !== '')) {
    real = state.aliases.get(`${real}/${name}`) ?? `${real}/${name}`;
    if (real === '/') real = '';
  }
  return real || '/';
}

function identityAt(state: FakeDirectoryState, dir: string, beneath = false): DirectoryIdentity {
  const real = canonical(state, dir);
  const over = !beneath && state.mountedOver.has(real) ? '#over' : '';
  const key = `${real}#${state.replaced.get(real) ?? 0}${over}`;
  if (!state.inodes.has(key)) state.inodes.set(key, state.inodes.size + 2);
  return { device: '8:1', ino: String(state.inodes.get(key)) };
}

export function holdFake(state: FakeDirectoryState, dir: string, places = true): HeldDirectory {
  const prefixes = ['/'];
  for (const name of dir.split('/').filter((n) => n !== '')) {
    const last = prefixes.at(-1) as string;
    const prefix = `${last === '/' ? '' : last}/${name}`;
    if (state.symlinks.has(prefix)) throw fail('ELOOP');
    prefixes.push(prefix);
  }
  const real = canonical(state, dir);
  if (state.files.has(real)) throw fail('ENOTDIR');
  if (real !== '/' && !state.directories.has(real)) throw fail('ENOENT');
  const lineage = prefixes.reverse().map((p) => identityAt(state, p));
  // Every alias on the way is a bind mount: rooted where its target lies (one filesystem here).
  const boundRoots = prefixes
    .filter((p) => state.aliases.has(p))
    .map((p) => ({ device: '8:1', path: canonical(state, p) }))
    .filter((root) => root.path !== '/');
  state.heldOpen.push(dir);
  let open = true;
  const release = () => {
    if (open) state.heldOpen.splice(state.heldOpen.indexOf(dir), 1);
    open = false;
  };
  const identity = lineage[0] as DirectoryIdentity;
  const place = { device: '8:1', path: real };
  if (!places) return { fd: -1, path: dir, identity, lineage, boundRoots: [], release };
  return { fd: -1, path: dir, identity, lineage, place, boundRoots, release };
}

export function beneathFake(state: FakeDirectoryState, dir: string): DirectoryIdentity {
  if (!state.directories.has(canonical(state, dir))) throw fail('ENOENT');
  return identityAt(state, dir, true);
}
