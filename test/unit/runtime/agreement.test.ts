/**
 * The sh front (src/runtime/front.sh) and the compiled wrapper (argv.ts, sources.ts, spec.ts)
 * must agree on two things: how a runc command line reads (subcommand, bundle), and what a
 * sharedprop mount is. One table of cases runs through both. The front may hand a create to the
 * wrapper when in doubt (the wrapper then decides); it may never send to runc what the wrapper
 * would have changed.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRuncArgs } from '../../../src/runtime/argv.js';
import { markerCounts } from '../../../src/runtime/create.js';
import { parseJson } from '../../../src/runtime/json.js';
import { sharedpropSources } from '../../../src/runtime/sources.js';
import { rewriteSpec } from '../../../src/runtime/spec.js';
import { itAsRealRoot } from '../../support/namespaces.js';

const FRONT = path.resolve('src/runtime/front.sh');

let dir: string;
let root: string; // a mount root, with the driver's marker
let unmarked: string; // a directory that looks like one, without it
let VOL: string; // a bundle whose spec has a sharedprop volume
let PLAIN: string; // a bundle whose spec has none
let cwd: string; // holds a plain spec
let busyboxApplets: string; // busybox's stat, as a busybox host has it

function spec(sources: string[], pretty = false): string {
  const mounts = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid'] },
    ...sources.map((source, i) => ({
      destination: `/m${i}`,
      type: 'bind',
      source,
      options: ['rbind', 'rprivate'],
    })),
  ];
  return JSON.stringify({ ociVersion: '1.0.2', mounts }, null, pretty ? 2 : undefined);
}

function bundle(name: string, text: string): string {
  const b = path.join(dir, name);
  mkdirSync(b, { recursive: true });
  writeFileSync(path.join(b, 'config.json'), text);
  return b;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-agree-'));
  root = path.join(dir, 'plugins', 'abc', 'propagated-mount');
  unmarked = path.join(dir, 'elsewhere');
  mkdirSync(root, { recursive: true });
  mkdirSync(unmarked, { recursive: true });
  writeFileSync(path.join(root, '.sharedprop-mountroot'), '{}');
  chmodSync(path.join(root, '.sharedprop-mountroot'), 0o644); // as the driver writes it
  chmodSync(root, 0o755);
  mkdirSync(path.join(dir, 'bin'));
  mkdirSync(path.join(dir, 'path'));
  copyFileSync(FRONT, path.join(dir, 'bin', 'sharedprop-runtime'));
  const recorder = (who: string) => `#!/bin/sh\necho ${who} > ${path.join(dir, 'who')}\n`;
  writeFileSync(path.join(dir, 'bin', 'sharedprop-runtime-create'), recorder('wrapper'), {
    mode: 0o755,
  });
  writeFileSync(path.join(dir, 'path', 'runc'), recorder('runc'), { mode: 0o755 });
  VOL = bundle('vol', spec([path.join(root, 'v')]));
  PLAIN = bundle('plain', spec([path.join(unmarked, 'v'), '/var/lib/docker/volumes/x/_data']));
  cwd = bundle('cwd', spec([]));
  busyboxApplets = path.join(dir, 'busybox');
  mkdirSync(busyboxApplets);
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
  if (!busybox)
    throw new Error(
      'busybox is missing: apt-get install busybox-static (scripts/install-test-deps.sh)',
    );
  symlinkSync(busybox, path.join(busyboxApplets, 'stat'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Verdict = 'wrapper' | 'runc';

/**
 * What the front decides, run by its `#!/bin/sh` (dash on Debian), or by busybox's sh with
 * busybox's `stat` first in PATH (a busybox host).
 */
function viaFront(args: string[], at = cwd, shell: 'sh' | 'busybox' = 'sh'): Verdict {
  rmSync(path.join(dir, 'who'), { force: true });
  const front = path.join(dir, 'bin', 'sharedprop-runtime');
  const [command, argv, applets] =
    shell === 'sh' ? [front, args, ''] : ['busybox', ['sh', front, ...args], `${busyboxApplets}:`];
  const result = spawnSync(command, argv, {
    cwd: at,
    encoding: 'utf8',
    env: {
      PATH: `${applets}${path.join(dir, 'path')}:/usr/bin:/bin`,
      SHAREDPROP_RUNTIME_CONFIG: path.join(dir, 'no-config.json'),
    },
  });
  if (result.status !== 0) throw new Error(`front failed: ${result.stderr}`);
  return readFileSync(path.join(dir, 'who'), 'utf8').trim() as Verdict;
}

/** What the wrapper decides: a create whose bundle's spec has a sharedprop mount. */
function viaWrapper(args: string[], at = cwd): Verdict {
  const invocation = parseRuncArgs(args, at);
  if (invocation.subcommand !== 'create') return 'runc';
  const file = path.join(invocation.bundle ?? at, 'config.json');
  if (!existsSync(file)) return 'wrapper'; // it reports the missing spec
  const rewrite = rewriteSpec(
    parseJson(readFileSync(file, 'utf8')),
    sharedpropSources(
      [],
      markerCounts(() => undefined),
    ),
  );
  return rewrite.matched > 0 ? 'wrapper' : 'runc';
}

describe('command lines: the front reads them as argv.ts does', () => {
  const V = () => VOL;
  const P = () => PLAIN;
  it.each<[string, () => string[], Verdict]>([
    ['--bundle B', () => ['create', '--bundle', V(), 'id'], 'wrapper'],
    ['--bundle=B', () => ['create', `--bundle=${V()}`, 'id'], 'wrapper'],
    ['-b B', () => ['create', '-b', V(), 'id'], 'wrapper'],
    ['-b=B', () => ['create', `-b=${V()}`, 'id'], 'wrapper'],
    ['--b B', () => ['create', '--b', V(), 'id'], 'wrapper'],
    ['-bundle B', () => ['create', '-bundle', V(), 'id'], 'wrapper'],
    ['the bundle after the id', () => ['create', 'id', '--bundle', V()], 'wrapper'],
    ['the last --bundle wins', () => ['create', '--bundle', P(), '--bundle', V(), 'id'], 'wrapper'],
    [
      'the last --bundle wins (plain)',
      () => ['create', '--bundle', V(), '--bundle', P(), 'id'],
      'runc',
    ],
    ['-- ends create flags', () => ['create', '--', '--bundle', V()], 'runc'],
    [
      'a value flag eats the next word',
      () => ['create', '--console-socket', '--bundle', V(), 'id'],
      'runc',
    ],
    [
      '--pid-file takes a value',
      () => ['create', '--pid-file', '/p', '--bundle', V(), 'id'],
      'wrapper',
    ],
    ['--bundle with no value', () => ['create', '--bundle'], 'runc'],
    ['a trailing --bundle with no value', () => ['create', '--bundle', V(), '--bundle'], 'runc'],
    ['an empty --bundle=', () => ['create', '--bundle=', 'id'], 'runc'],
    [
      'global value flags',
      () => ['--root', '/r', '--log', '/l', '--log-format', 'json', 'create', '-b', V(), 'id'],
      'wrapper',
    ],
    ['a global flag value named create', () => ['--root', 'create', 'start', 'id'], 'runc'],
    [
      'a global flag value named create, then create',
      () => ['--root', 'create', 'create', '-b', V(), 'id'],
      'wrapper',
    ],
    ['inline global values', () => ['--log=/l', '--root=/r', 'create', '-b', V(), 'id'], 'wrapper'],
    [
      'a boolean global flag',
      () => ['--debug', '--systemd-cgroup', 'create', '-b', V(), 'id'],
      'wrapper',
    ],
    ['-- before the subcommand', () => ['--', 'create', '-b', V(), 'id'], 'wrapper'],
    ['a lone - is the subcommand', () => ['-', 'create', '-b', V(), 'id'], 'runc'],
    ['other subcommands', () => ['start', '--bundle', V()], 'runc'],
    ['delete', () => ['delete', '--force', 'id'], 'runc'],
    ['no arguments', () => [], 'runc'],
  ])('%s', (_, args, expected) => {
    expect(viaWrapper(args())).toBe(expected);
    expect(viaFront(args())).toBe(expected);
  });

  it('a relative bundle, and the current directory by default', () => {
    expect([
      viaWrapper(['create', '-b', 'vol', 'id'], dir),
      viaFront(['create', '-b', 'vol', 'id'], dir),
    ]).toEqual(['wrapper', 'wrapper']);
    expect([viaWrapper(['create', 'id'], VOL), viaFront(['create', 'id'], VOL)]).toEqual([
      'wrapper',
      'wrapper',
    ]);
    expect([viaWrapper(['create', 'id'], PLAIN), viaFront(['create', 'id'], PLAIN)]).toEqual([
      'runc',
      'runc',
    ]);
  });
});

describe('specs: the front recognises a sharedprop mount as sources.ts does', () => {
  it.each<[string, () => string, Verdict, Verdict?]>([
    ['a child of a marked mount root', () => spec([path.join(root, 'v')]), 'wrapper'],
    ['pretty-printed', () => spec([path.join(root, 'v')], true), 'wrapper'],
    ['among other mounts', () => spec(['/etc/hosts', path.join(root, 'v'), '/dev/shm']), 'wrapper'],
    ['with a trailing slash', () => spec([`${path.join(root, 'v')}/`]), 'wrapper'],
    [
      'a look-alike path without the marker',
      () => spec([path.join(unmarked, 'v'), '/var/lib/docker/plugins/x/propagated-mount/v']),
      'runc',
    ],
    ['the mount root itself', () => spec([root]), 'runc'],
    ['below a volume (a subpath mount)', () => spec([path.join(root, 'v', 'sub')]), 'runc'],
    ['relative sources only', () => spec(['tmpfs', 'devpts']), 'runc'],
    ['no mounts at all', () => JSON.stringify({ ociVersion: '1.0.2' }), 'runc'],
    // In doubt, the front hands over and the wrapper decides (second column).
    ['an escaped character in a source', () => spec([path.join(root, 'a"b')]), 'wrapper'],
    ['a path that is not normal', () => spec([`${root}//v`]), 'wrapper'],
    ['a path that is not normal, unmarked', () => spec([`${unmarked}//v`]), 'runc', 'wrapper'],
    // dockerd's temporary bind for a subpath mount: only the wrapper can tell (mountinfo's peer
    // groups, subpath.ts); this one is in no sharedprop volume's group.
    [
      'a subpath mount (safe-mount bind)',
      () => spec(['/var/lib/docker/tmp/safe-mount42']),
      'runc',
      'wrapper',
    ],
    // Not JSON, and no source in it: nothing to change, so runc gets it and reports it.
    ['a spec that is not JSON', () => '{"mounts": [', 'wrapper', 'runc'],
  ])('%s', (_, text, wrapperVerdict, frontVerdict = wrapperVerdict) => {
    const b = bundle('case', text());
    const args = ['create', '--bundle', b, 'id'];
    let fromWrapper: Verdict;
    try {
      fromWrapper = viaWrapper(args);
    } catch {
      fromWrapper = 'wrapper'; // a spec it cannot read: it runs, and reports
    }
    expect(fromWrapper).toBe(wrapperVerdict);
    expect(viaFront(args)).toBe(frontVerdict);
  });
});

/** Who made a marker, and how: only root's file, in root's directory, closed to others, counts. */
interface MarkerSetup {
  /** The marker's mode, or what it is instead of a regular file. */
  file?: number | 'symlink' | 'directory' | 'fifo';
  fileOwner?: [number, number];
  dirMode?: number;
  dirOwner?: [number, number];
}

const NOBODY: [number, number] = [65534, 65534];
let setups = 0;

/** A mount root made as `setup` says; returns a volume source in it. */
function markedRoot(setup: MarkerSetup): string {
  const at = path.join(dir, 'roots', String(++setups));
  mkdirSync(at, { recursive: true });
  const marker = path.join(at, '.sharedprop-mountroot');
  const file = setup.file ?? 0o644;
  if (file === 'symlink') symlinkSync(path.join(root, '.sharedprop-mountroot'), marker);
  else if (file === 'directory') mkdirSync(marker);
  else if (file === 'fifo') {
    expect(spawnSync('mkfifo', [marker]).status).toBe(0);
  } else {
    writeFileSync(marker, '{}\n');
    chmodSync(marker, file);
  }
  if (setup.fileOwner) chownSync(marker, ...setup.fileOwner);
  chmodSync(at, setup.dirMode ?? 0o755);
  if (setup.dirOwner) chownSync(at, ...setup.dirOwner);
  return path.join(at, 'v');
}

describe("markers: only one that root made, in a directory of root's, counts, for both", () => {
  const verdictOf = (setup: MarkerSetup, expected: Verdict) => {
    const b = bundle('case', spec([markedRoot(setup)]));
    const args = ['create', '--bundle', b, 'id'];
    expect(viaWrapper(args)).toBe(expected);
    expect(viaFront(args)).toBe(expected);
    expect(viaFront(args, cwd, 'busybox')).toBe(expected);
  };
  it.each<[string, MarkerSetup, Verdict]>([
    ['root 0644 file in a root 0755 directory', {}, 'wrapper'],
    ['root 0600 file in a root 0700 directory', { file: 0o600, dirMode: 0o700 }, 'wrapper'],
    ['root 0444 file in a root 0555 directory', { file: 0o444, dirMode: 0o555 }, 'wrapper'],
    ['a group-writable file (0664)', { file: 0o664 }, 'runc'],
    ['a file others can write (0646)', { file: 0o646 }, 'runc'],
    ['a directory like /tmp (1777)', { dirMode: 0o1777 }, 'runc'],
    ['a group-writable directory (0775)', { dirMode: 0o775 }, 'runc'],
    ['a directory others can write (0757)', { dirMode: 0o757 }, 'runc'],
    ['a symlink to a marker that counts', { file: 'symlink' }, 'runc'],
    ['a directory named like the marker', { file: 'directory' }, 'runc'],
    ['a FIFO named like the marker', { file: 'fifo' }, 'runc'],
  ])('%s', (_, setup, expected) => verdictOf(setup, expected));

  // Files of another owner: only the host's root can make them (make test runs these).
  itAsRealRoot.each<[string, MarkerSetup, Verdict]>([
    ["root's file of group 65534, not writable by it", { fileOwner: [0, 65534] }, 'wrapper'],
    ['a file owned by uid 65534', { fileOwner: NOBODY }, 'runc'],
    ['a directory owned by uid 65534', { dirOwner: NOBODY }, 'runc'],
  ])('%s', (_, setup, expected) => verdictOf(setup, expected));

  it("a mount root reached through a symlink: the directory's own path may pass through one", () => {
    const link = path.join(dir, 'link-to-root');
    symlinkSync(root, link);
    const b = bundle('case', spec([path.join(link, 'v')]));
    const args = ['create', '--bundle', b, 'id'];
    expect([viaWrapper(args), viaFront(args), viaFront(args, cwd, 'busybox')]).toEqual([
      'wrapper',
      'wrapper',
      'wrapper',
    ]);
  });

  itAsRealRoot(
    'the wrapper says why a marker that is there does not count, and nothing for none',
    () => {
      const warnings: string[] = [];
      const counts = markerCounts((message) => warnings.push(message));
      const source = markedRoot({ fileOwner: NOBODY });
      expect(counts(path.join(path.dirname(source), '.sharedprop-mountroot'))).toBe(false);
      expect(counts(path.join(unmarked, '.sharedprop-mountroot'))).toBe(false);
      expect(counts(path.join(root, '.sharedprop-mountroot'))).toBe(true);
      expect(warnings).toEqual([
        `ignoring the mount-root marker ${path.dirname(source)}/.sharedprop-mountroot: ` +
          `${path.dirname(source)}/.sharedprop-mountroot is owned by uid 65534, not root`,
      ]);
    },
  );
});
