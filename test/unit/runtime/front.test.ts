/**
 * The POSIX-sh front (src/runtime/front.sh): only a `create` whose spec may hold a sharedprop
 * volume reaches the compiled wrapper; everything else goes straight to runc.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const FRONT = path.resolve('src/runtime/front.sh');

let dir: string;
let calls: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-front-'));
  calls = path.join(dir, 'calls');
  mkdirSync(path.join(dir, 'bin'));
  mkdirSync(path.join(dir, 'path'));
  copyFileSync(FRONT, path.join(dir, 'bin', 'sharedprop-runtime'));
  const recorder = (who: string, code: number) =>
    `#!/bin/sh\necho "${who} [\${SHAREDPROP_RUNC:-}] [\${SHAREDPROP_RUNTIME_FRONT:+front}] $*" >> ${calls}\necho out; echo err >&2\nexit ${code}\n`;
  writeFileSync(path.join(dir, 'bin', 'sharedprop-runtime-create'), recorder('wrapper', 0), {
    mode: 0o755,
  });
  writeFileSync(path.join(dir, 'path', 'runc'), recorder('runc', 3), { mode: 0o755 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function front(args: string[], options: { cwd?: string; config?: string } = {}) {
  const result = spawnSync(path.join(dir, 'bin', 'sharedprop-runtime'), args, {
    cwd: options.cwd ?? dir,
    encoding: 'utf8',
    env: {
      PATH: `${path.join(dir, 'path')}:/usr/bin:/bin`,
      SHAREDPROP_RUNTIME_CONFIG: options.config ?? path.join(dir, 'no-config.json'),
    },
  });
  return { ...result, calls: readFileSync(calls, 'utf8').trim() };
}

/** A mount root with the driver's marker, as the driver makes it: its children are volumes. */
function volumeSource(name = 'v'): string {
  const root = path.join(dir, 'propagated-mount');
  mkdirSync(root, { recursive: true });
  writeFileSync(path.join(root, '.sharedprop-mountroot'), '{}');
  chmodSync(path.join(root, '.sharedprop-mountroot'), 0o644); // as the driver writes it
  chmodSync(root, 0o755);
  return path.join(root, name);
}

function bundle(name: string, source: string): string {
  const b = path.join(dir, name);
  mkdirSync(b, { recursive: true });
  writeFileSync(
    path.join(b, 'config.json'),
    JSON.stringify({ mounts: [{ destination: '/mnt', type: 'bind', source, options: ['rbind'] }] }),
  );
  return b;
}

const GLOBALS = ['--root', '/run/r', '--log', '/run/log.json', '--log-format', 'json'];

describe('sh front', () => {
  it('passes other subcommands straight to runc, with stdio and exit code', () => {
    const r = front([...GLOBALS, 'start', 'ctr1']);
    expect(r.calls).toBe(`runc [] [] ${[...GLOBALS, 'start', 'ctr1'].join(' ')}`);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  it('a global flag value named create is not the subcommand', () => {
    expect(front(['--root', 'create', 'delete', 'x']).calls).toBe(
      'runc [] [] --root create delete x',
    );
  });

  it('create of a spec without a sharedprop volume goes to runc unread', () => {
    const b = bundle('plain', '/var/lib/docker/volumes/x/_data');
    expect(front([...GLOBALS, 'create', '--bundle', b, 'id']).calls).toMatch(/^runc \[\] \[\] /);
    // A path that merely looks like a plugin's is not a volume: the marker decides.
    const lookalike = bundle('lookalike', '/var/lib/docker/plugins/0123/propagated-mount/v');
    expect(front(['create', '--bundle', lookalike, 'id']).calls).toMatch(/^runc /);
  });

  it.each([
    ['--bundle B', (b: string) => ['--bundle', b]],
    ['--bundle=B', (b: string) => [`--bundle=${b}`]],
    ['-b B', (b: string) => ['-b', b]],
  ])(
    'create with %s and a managed-plugin volume goes to the wrapper, with runc resolved',
    (_, flag) => {
      const b = bundle('managed', volumeSource());
      const r = front([...GLOBALS, 'create', ...flag(b), '--pid-file', '/p', 'id']);
      expect(r.calls).toBe(
        `wrapper [${path.join(dir, 'path', 'runc')}] [front] ${[...GLOBALS, 'create', ...flag(b), '--pid-file', '/p', 'id'].join(' ')}`,
      );
      expect(r.status).toBe(0);
    },
  );

  it('a bundle directory named create, and the current directory by default', () => {
    bundle('create', volumeSource());
    expect(front(['create', '--bundle', 'create', 'id']).calls).toMatch(/^wrapper /);
    const cwd = bundle('cwd', volumeSource());
    expect(front(['create', 'id'], { cwd }).calls).toMatch(/^wrapper /);
  });

  it('an unreadable spec goes to the wrapper, which reports it', () => {
    expect(front(['create', '--bundle', path.join(dir, 'missing'), 'id']).calls).toMatch(
      /^wrapper /,
    );
  });

  it.each([
    ['fails', 'exit 1'],
    ['prints what it should not', 'echo "root 41ed"; echo "0 zz"'],
  ])('a marker it cannot stat (stat %s) goes to the wrapper, which decides', (_, fakeStat) => {
    writeFileSync(path.join(dir, 'path', 'stat'), `#!/bin/sh\n${fakeStat}\n`, { mode: 0o755 });
    const b = bundle('doubt', volumeSource());
    expect(front(['create', '--bundle', b, 'id']).calls).toMatch(/^wrapper /);
    // Without a marker, stat is never asked.
    const plain = bundle('plain', path.join(dir, 'elsewhere', 'v'));
    expect(front(['create', '--bundle', plain, 'id']).calls.split('\n').at(-1)).toMatch(/^runc /);
  });

  it('with a configuration file, everything goes to the wrapper', () => {
    const config = path.join(dir, 'runtime.json');
    writeFileSync(config, '{}');
    expect(front(['start', 'id'], { config }).calls).toBe('wrapper [] [front] start id');
  });
});
