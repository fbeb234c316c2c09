/**
 * The compiled wrapper, end to end, against a fake runc that records what it was given.
 * Builds the executable with scripts/build-runtime.sh (Bun), so it tests what ships.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const FIXTURE_PLUGIN_MOUNTS =
  '/var/lib/docker/plugins/c0ffee4d2b7a9e1f3c5d7b9a1e3f5c7d9b1a3e5f7c9d1b3a5e7f9c1d3b5a7e9f/propagated-mount';

const FAKE_RUNC = `#!/bin/sh
# Records its pid, argv and stdin, talks on stdout and stderr, and exits as told.
echo $$ > "$FAKE_DIR/pid"
printf '%s\\n' "$@" > "$FAKE_DIR/argv"
cat > "$FAKE_DIR/stdin"
echo "runc stdout"
echo "runc stderr" >&2
if [ -n "$FAKE_SIGNAL" ]; then kill -"$FAKE_SIGNAL" $$; fi
exit "\${FAKE_EXIT:-0}"
`;

let dir: string;
let binary: string;
let fake: string;
let mountRoot: string;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

function run(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; input?: string } = {},
): Run {
  const result = spawnSync(binary, args, {
    cwd: options.cwd ?? dir,
    input: options.input ?? '',
    encoding: 'utf8',
    env: {
      PATH: '/usr/bin:/bin',
      SHAREDPROP_RUNC: fake,
      SHAREDPROP_RUNTIME_CONFIG: path.join(dir, 'no-such-config.json'),
      FAKE_DIR: dir,
      ...options.env,
    },
    timeout: 30_000,
  });
  if (result.error) throw result.error;
  return {
    status: result.status,
    signal: result.signal,
    stdout: result.stdout,
    stderr: result.stderr,
    pid: result.pid,
  };
}

/** The driver's marker as it writes it: root's, 0644, in a root 0755 (root-file.ts). */
function writeMarker(): void {
  chmodSync(mountRoot, 0o755);
  writeFileSync(path.join(mountRoot, '.sharedprop-mountroot'), '{}\n');
  chmodSync(path.join(mountRoot, '.sharedprop-mountroot'), 0o644);
}

const runcArgv = () => readFileSync(path.join(dir, 'argv'), 'utf8').split('\n').slice(0, -1);
const runcWasCalled = () => existsSync(path.join(dir, 'argv'));

/** A bundle whose config.json is the Docker fixture, its volume under our mount root. */
function bundle(name: string, fixture = 'docker-20.10-sharedprop-volume.json'): string {
  const bundleDir = path.join(dir, name);
  mkdirSync(bundleDir, { recursive: true });
  const text = readFileSync(path.join(REPO, 'test/fixtures/oci', fixture), 'utf8');
  writeFileSync(
    path.join(bundleDir, 'config.json'),
    text.replaceAll(FIXTURE_PLUGIN_MOUNTS, mountRoot),
  );
  chmodSync(path.join(bundleDir, 'config.json'), 0o600);
  return bundleDir;
}

const specOf = (bundleDir: string) =>
  JSON.parse(readFileSync(path.join(bundleDir, 'config.json'), 'utf8')) as {
    mounts: Array<{ destination: string; options?: string[] }>;
    linux: { rootfsPropagation?: string };
  };
const optionsAt = (bundleDir: string, destination: string) =>
  specOf(bundleDir).mounts.find((m) => m.destination === destination)?.options;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-runtime-bin-'));
  binary = path.join(dir, 'bin', 'sharedprop-runtime');
  execFileSync(path.join(REPO, 'scripts/build-runtime.sh'), [binary], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  fake = path.join(dir, 'fake-runc');
  writeFileSync(fake, FAKE_RUNC, { mode: 0o755 });
  mountRoot = path.join(dir, 'propagated-mount');
  mkdirSync(path.join(mountRoot, 'myvol'), { recursive: true });
  writeMarker();
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  for (const file of ['pid', 'argv', 'stdin']) rmSync(path.join(dir, file), { force: true });
});

describe('the build script', () => {
  it('does nothing when the binary is newer than every source file', () => {
    const before = statSync(binary);
    const output = execFileSync(path.join(REPO, 'scripts/build-runtime.sh'), [binary], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(output).toBe('');
    expect(statSync(binary).mtimeMs).toBe(before.mtimeMs);
    expect(statSync(binary).ino).toBe(before.ino);
  });
});

describe('create', () => {
  it('makes the sharedprop mount rshared, then becomes runc with the same arguments', () => {
    const b = bundle('b1');
    const logFile = path.join(dir, 'b1-log.json');
    const args = [
      '--root',
      '/var/run/docker/runtime-runc/moby',
      '--log',
      logFile,
      '--log-format',
      'json',
      'create',
      '--bundle',
      b,
      '--pid-file',
      path.join(b, 'init.pid'),
      'container-1',
    ];
    const result = run(args, { input: 'to runc' });

    expect(result).toMatchObject({ status: 0, stdout: 'runc stdout\n', stderr: 'runc stderr\n' });
    expect(runcArgv()).toEqual(args);
    expect(readFileSync(path.join(dir, 'stdin'), 'utf8')).toBe('to runc');
    // execve, not a child process: runc ran with the wrapper's pid.
    expect(Number(readFileSync(path.join(dir, 'pid'), 'utf8'))).toBe(result.pid);

    expect(optionsAt(b, '/mnt')).toEqual(['rbind', 'rshared']);
    expect(optionsAt(b, '/etc/hosts')).toEqual(['rbind', 'rprivate']);
    expect(specOf(b).linux.rootfsPropagation).toBe('shared');
    expect(statSync(path.join(b, 'config.json')).mode & 0o7777).toBe(0o600);

    const [line, ...rest] = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    expect(rest).toEqual([]);
    expect(JSON.parse(line as string)).toMatchObject({
      level: 'info',
      msg: expect.stringMatching(/^sharedprop-runtime: rshared propagation for 1 /),
      time: expect.any(String),
      mounts: [`${mountRoot}/myvol:/mnt`],
    });
  });

  it('keeps uint64 limits digit for digit', () => {
    const b = bundle('b-kolla', 'docker-20.10-kolla-netns.json');
    expect(run(['create', '-b', b, 'c']).status).toBe(0);
    const text = readFileSync(path.join(b, 'config.json'), 'utf8');
    expect(text).toContain('"hard":18446744073709551615');
    expect(optionsAt(b, '/run/netns')).toEqual(['rbind', 'rshared']);
    expect(optionsAt(b, '/var/lib/neutron')).toEqual(['rbind', 'rprivate']);
  });

  it('does not rewrite a spec without sharedprop mounts', () => {
    const b = bundle('b2');
    rmSync(path.join(mountRoot, '.sharedprop-mountroot'));
    try {
      const before = statSync(path.join(b, 'config.json'));
      const text = readFileSync(path.join(b, 'config.json'), 'utf8');
      expect(run(['create', `--bundle=${b}`, 'c']).status).toBe(0);
      const after = statSync(path.join(b, 'config.json'));
      expect(after.ino).toBe(before.ino);
      expect(after.mtimeMs).toBe(before.mtimeMs);
      expect(readFileSync(path.join(b, 'config.json'), 'utf8')).toBe(text);
      expect(runcWasCalled()).toBe(true);
    } finally {
      writeMarker();
    }
  });

  it('uses the current directory as the bundle, and a bundle directory named create', () => {
    const cwdBundle = bundle('b3');
    expect(run(['create', 'c'], { cwd: cwdBundle }).status).toBe(0);
    expect(optionsAt(cwdBundle, '/mnt')).toEqual(['rbind', 'rshared']);

    const named = bundle('create');
    expect(run(['--root', '/r', 'create', '--bundle', 'create', 'create']).status).toBe(0);
    expect(optionsAt(named, '/mnt')).toEqual(['rbind', 'rshared']);
    expect(runcArgv()).toEqual(['--root', '/r', 'create', '--bundle', 'create', 'create']);
  });

  it('treats sources below a configured root as sharedprop volumes', () => {
    const b = path.join(dir, 'b4');
    mkdirSync(b);
    const root = path.join(dir, 'srv/shared');
    const spec = {
      mounts: [
        { destination: '/data', type: 'bind', source: `${root}/a`, options: ['rbind', 'rprivate'] },
        { destination: '/etc/hosts', type: 'bind', source: `${dir}/hosts`, options: ['rbind'] },
      ],
      linux: {},
    };
    writeFileSync(path.join(b, 'config.json'), JSON.stringify(spec));
    const config = path.join(dir, 'roots.json');
    writeFileSync(config, JSON.stringify({ roots: [root] }), { mode: 0o644 });
    const result = run(['create', '-b', b, 'c'], { env: { SHAREDPROP_RUNTIME_CONFIG: config } });
    expect(result.status).toBe(0);
    expect(optionsAt(b, '/data')).toEqual(['rbind', 'rshared']);
    expect(optionsAt(b, '/etc/hosts')).toEqual(['rbind']);
    expect(specOf(b).linux.rootfsPropagation).toBe('shared');
  });

  it('refuses a garbled spec: exit 1, a reason on stderr, nothing on stdout, runc not run', () => {
    const b = path.join(dir, 'garbled');
    mkdirSync(b);
    writeFileSync(path.join(b, 'config.json'), '{"mounts":[{"source":');
    const result = run(['create', '--bundle', b, 'c']);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `sharedprop-runtime: ${b}/config.json is not valid JSON: unexpected end of input at position 21\n`,
    );
    expect(runcWasCalled()).toBe(false);
    expect(readFileSync(path.join(b, 'config.json'), 'utf8')).toBe('{"mounts":[{"source":');
  });

  it('refuses a spec it cannot read', () => {
    const b = path.join(dir, 'unreadable');
    mkdirSync(path.join(b, 'config.json'), { recursive: true });
    const result = run(['create', '--bundle', b, 'c']);
    expect(result).toMatchObject({ status: 1, stdout: '' });
    expect(result.stderr).toMatch(/^sharedprop-runtime: cannot read the OCI spec .*\(EISDIR\)\n$/);
    expect(runcWasCalled()).toBe(false);
  });

  it('refuses to create with a garbled configuration file, which does not block other commands', () => {
    const config = path.join(dir, 'garbled-config.json');
    writeFileSync(config, '{"roots": [', { mode: 0o644 });
    const b = bundle('b5');
    const created = run(['create', '-b', b, 'c'], { env: { SHAREDPROP_RUNTIME_CONFIG: config } });
    expect(created).toMatchObject({ status: 1, stdout: '' });
    expect(created.stderr).toMatch(
      new RegExp(`^sharedprop-runtime: configuration file ${config}: not valid JSON`),
    );
    expect(runcWasCalled()).toBe(false);
    expect(optionsAt(b, '/mnt')).toEqual(['rbind', 'rprivate']);

    // Without SHAREDPROP_RUNC the configuration is consulted for runc: a warning, then runc.
    const binDir = path.join(dir, 'path-bin');
    mkdirSync(binDir, { recursive: true });
    writeFileSync(path.join(binDir, 'runc'), FAKE_RUNC, { mode: 0o755 });
    const state = run(['state', 'c'], {
      env: {
        SHAREDPROP_RUNC: '',
        SHAREDPROP_RUNTIME_CONFIG: config,
        PATH: `${binDir}:/usr/bin:/bin`,
      },
    });
    expect(state).toMatchObject({ status: 0, stdout: 'runc stdout\n' });
    expect(state.stderr).toMatch(
      /^sharedprop-runtime: ignoring configuration file .*\nrunc stderr\n$/,
    );
    expect(runcArgv()).toEqual(['state', 'c']);
  });

  it('says so when there is no runc to run', () => {
    const b = bundle('b6');
    const result = run(['create', '-b', b, 'c'], {
      env: { SHAREDPROP_RUNC: path.join(dir, 'no-runc') },
    });
    expect(result).toMatchObject({ status: 1, stdout: '' });
    expect(result.stderr).toMatch(
      /^sharedprop-runtime: SHAREDPROP_RUNC .* is not an executable file\n$/,
    );
    expect(optionsAt(b, '/mnt')).toEqual(['rbind', 'rprivate']);
  });
});

describe('every other command', () => {
  it('goes to runc with stdin, stdout, stderr and the exit code passed through', () => {
    const args = ['--root', '/r', 'exec', '--process', '/p.json', 'container-1'];
    const result = run(args, { input: 'process input', env: { FAKE_EXIT: '7' } });
    expect(result).toMatchObject({ status: 7, stdout: 'runc stdout\n', stderr: 'runc stderr\n' });
    expect(runcArgv()).toEqual(args);
    expect(readFileSync(path.join(dir, 'stdin'), 'utf8')).toBe('process input');
    expect(Number(readFileSync(path.join(dir, 'pid'), 'utf8'))).toBe(result.pid);
  });

  it('reads nothing, not even a garbled config.json in the current directory', () => {
    const cwd = path.join(dir, 'cwd-garbled');
    mkdirSync(cwd);
    writeFileSync(path.join(cwd, 'config.json'), 'not json');
    const result = run(['list'], { cwd });
    expect(result).toMatchObject({ status: 0, stdout: 'runc stdout\n', stderr: 'runc stderr\n' });
    expect(runcArgv()).toEqual(['list']);
  });

  it.each([['--version'], ['-v']])(
    '%s: the wrapper names itself and its version, then runc answers (dockerd reads the last "version" line: runc\'s)',
    (flag) => {
      const version = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
        version: string;
      };
      const result = run([flag]);
      expect(result).toMatchObject({
        status: 0,
        stdout: `sharedprop-runtime version ${version.version}\nrunc stdout\n`,
      });
      expect(runcArgv()).toEqual([flag]);
    },
  );

  it('does not load .env or bunfig.toml from the current directory', () => {
    const cwd = path.join(dir, 'cwd-dotenv');
    mkdirSync(cwd);
    writeFileSync(path.join(cwd, '.env'), 'SHAREDPROP_RUNC=/bin/echo\nFAKE_EXIT=9\n');
    writeFileSync(path.join(cwd, 'bunfig.toml'), 'preload = ["./nope.ts"]\n');
    const result = run(['state', 'c'], { cwd });
    expect(result).toMatchObject({ status: 0, stdout: 'runc stdout\n', stderr: 'runc stderr\n' });
    expect(runcArgv()).toEqual(['state', 'c']);
  });

  it('finds runc in PATH, skipping the wrapper itself when it is installed as runc', () => {
    const wrapped = path.join(dir, 'wrapped-bin');
    const real = path.join(dir, 'real-bin');
    mkdirSync(wrapped, { recursive: true });
    mkdirSync(real, { recursive: true });
    rmSync(path.join(wrapped, 'runc'), { force: true });
    symlinkSync(binary, path.join(wrapped, 'runc'));
    writeFileSync(path.join(real, 'runc'), FAKE_RUNC, { mode: 0o755 });
    const result = run(['state', 'c'], {
      env: { SHAREDPROP_RUNC: '', PATH: `${wrapped}:${real}:/usr/bin:/bin` },
    });
    expect(result).toMatchObject({ status: 0, stdout: 'runc stdout\n', stderr: 'runc stderr\n' });
    expect(runcArgv()).toEqual(['state', 'c']);
  });

  it('ends the way runc ends, down to the signal', () => {
    const result = run(['kill', 'c', 'TERM'], { env: { FAKE_SIGNAL: 'TERM' } });
    expect(result.signal).toBe('SIGTERM');
    expect(result.status).toBeNull();
  });
});
