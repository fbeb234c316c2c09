/**
 * The sh front (src/runtime/front.sh) and the compiled wrapper (argv.ts, sources.ts, spec.ts)
 * must agree on two things: how a runc command line reads (subcommand, bundle), and what a
 * sharedprop mount is. One table of cases runs through both. The front may hand a create to the
 * wrapper when in doubt (the wrapper then decides); it may never send to runc what the wrapper
 * would have changed.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRuncArgs } from '../../../src/runtime/argv.js';
import { parseJson } from '../../../src/runtime/json.js';
import { sharedpropSources } from '../../../src/runtime/sources.js';
import { rewriteSpec } from '../../../src/runtime/spec.js';

const FRONT = path.resolve('src/runtime/front.sh');

let dir: string;
let root: string; // a mount root, with the driver's marker
let unmarked: string; // a directory that looks like one, without it
let VOL: string; // a bundle whose spec has a sharedprop volume
let PLAIN: string; // a bundle whose spec has none
let cwd: string; // holds a plain spec

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
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Verdict = 'wrapper' | 'runc';

function viaFront(args: string[], at = cwd): Verdict {
  rmSync(path.join(dir, 'who'), { force: true });
  const result = spawnSync(path.join(dir, 'bin', 'sharedprop-runtime'), args, {
    cwd: at,
    encoding: 'utf8',
    env: {
      PATH: `${path.join(dir, 'path')}:/usr/bin:/bin`,
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
    sharedpropSources([], existsSync),
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
