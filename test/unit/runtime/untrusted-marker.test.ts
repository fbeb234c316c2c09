/**
 * Issue 25's attack, run as the user it comes from: `nobody` (uid 65534, via setpriv) plants the
 * driver's mount-root marker in a 1777 directory beside another container's bind source, or a
 * configuration file of its own. The built runtime (scripts/build-runtime.sh: the sh front, and
 * the compiled wrapper it hands to) must leave that container's spec as it was, run the real
 * runc, and say why in runc's log; a marker root made in root's directory still works.
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
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { itAsRealRoot } from '../../support/namespaces.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const MARKER = '.sharedprop-mountroot';

let dir: string; // root's, 0755: nobody may pass through it
let front: string; // the built sh front
let calls: string; // what the runc fakes record
let shared: string; // 1777, like /tmp
let victim: string; // another user's bind source in it
let mountRoot: string; // the driver's, as it makes it

/** Runs `script` as uid/gid 65534 with no supplementary groups. */
function asNobody(script: string): void {
  const result = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script],
    { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } },
  );
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
}

/** A bundle whose spec binds `source` at /data, rprivate, as dockerd writes a `-v` bind. */
function bundle(name: string, source: string): string {
  const b = path.join(dir, 'bundles', name);
  mkdirSync(b, { recursive: true });
  const spec = {
    ociVersion: '1.0.2',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid'] },
      { destination: '/data', type: 'bind', source, options: ['rbind', 'rprivate'] },
    ],
    linux: { rootfsPropagation: 'rprivate' },
  };
  writeFileSync(path.join(b, 'config.json'), JSON.stringify(spec));
  return b;
}

interface Outcome {
  status: number | null;
  stdout: string;
  /** Who ran, and with what: `runc ARGS` or `evil ARGS`. */
  calls: string[];
  /** The spec after the run, and whether its file was replaced. */
  spec: { mounts: Array<{ destination: string; options: string[] }>; linux: object };
  rewritten: boolean;
  log: Array<{ level: string; msg: string }>;
}

/** Runs `create` of `b` through `executable` (the front, or the compiled wrapper). */
function create(b: string, executable: string, env: Record<string, string> = {}): Outcome {
  rmSync(calls, { force: true });
  const log = path.join(b, 'runc-log.json');
  rmSync(log, { force: true });
  const before = statSync(path.join(b, 'config.json'));
  const result = spawnSync(
    executable,
    ['--log', log, '--log-format', 'json', 'create', '--bundle', b, 'ctr'],
    {
      encoding: 'utf8',
      env: {
        PATH: `${path.join(dir, 'path')}:/usr/bin:/bin`,
        SHAREDPROP_RUNTIME_CONFIG: path.join(dir, 'no-config.json'),
        ...env,
      },
      timeout: 30_000,
    },
  );
  const after = statSync(path.join(b, 'config.json'));
  return {
    status: result.status,
    stdout: result.stdout,
    calls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [],
    spec: JSON.parse(readFileSync(path.join(b, 'config.json'), 'utf8')) as Outcome['spec'],
    rewritten: after.ino !== before.ino,
    log: existsSync(log)
      ? readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as { level: string; msg: string })
      : [],
  };
}

const UNCHANGED = {
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid'] },
    { destination: '/data', type: 'bind', source: '', options: ['rbind', 'rprivate'] },
  ],
  linux: { rootfsPropagation: 'rprivate' },
};
const unchanged = (source: string) => ({
  ...UNCHANGED,
  ociVersion: '1.0.2',
  mounts: [UNCHANGED.mounts[0], { ...UNCHANGED.mounts[1], source }],
});
const runcCall = (b: string) =>
  `runc --log ${b}/runc-log.json --log-format json create --bundle ${b} ctr`;

beforeAll(() => {
  dir = mkdtempSync('/tmp/sharedprop-untrusted-');
  chmodSync(dir, 0o755);
  front = path.join(dir, 'bin', 'sharedprop-runtime');
  execFileSync(path.join(REPO, 'scripts/build-runtime.sh'), [front], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  calls = path.join(dir, 'calls');
  mkdirSync(path.join(dir, 'path'));
  const recorder = (who: string) =>
    `#!/bin/sh\necho "${who} $*" >> ${calls}\necho "${who} stdout"\n`;
  writeFileSync(path.join(dir, 'path', 'runc'), recorder('runc'), { mode: 0o755 });
  writeFileSync(path.join(dir, 'evil-runc'), recorder('evil'), { mode: 0o755 });
  shared = path.join(dir, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  victim = path.join(shared, 'data');
  mkdirSync(victim);
  mountRoot = path.join(dir, 'mounts');
  mkdirSync(path.join(mountRoot, 'vol'), { recursive: true });
  chmodSync(mountRoot, 0o755);
  writeFileSync(path.join(mountRoot, MARKER), '{}\n', { mode: 0o644 });
  chmodSync(path.join(mountRoot, MARKER), 0o644);
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  for (const name of [MARKER, 'runtime.json']) rmSync(path.join(shared, name), { force: true });
});

describe('a marker that nobody planted beside a bind source', () => {
  beforeEach(() => {
    asNobody(`echo '{}' > ${shared}/${MARKER}`);
    expect(statSync(path.join(shared, MARKER)).uid).toBe(65534);
  });

  itAsRealRoot('the sh front sends the create straight to runc: the spec is not touched', () => {
    const b = bundle('front', victim);
    const outcome = create(b, front);
    expect(outcome).toMatchObject({ status: 0, stdout: 'runc stdout\n', rewritten: false });
    expect(outcome.calls).toEqual([runcCall(b)]);
    expect(outcome.spec).toEqual(unchanged(victim));
    expect(outcome.log).toEqual([]); // the compiled wrapper, which logs every create, never ran
  });

  itAsRealRoot('the compiled wrapper leaves the spec as it was, runs runc, and logs why', () => {
    const b = bundle('compiled', victim);
    const outcome = create(b, `${front}-create`, {
      SHAREDPROP_RUNC: path.join(dir, 'path', 'runc'),
    });
    expect(outcome).toMatchObject({ status: 0, stdout: 'runc stdout\n', rewritten: false });
    expect(outcome.calls).toEqual([runcCall(b)]);
    expect(outcome.spec).toEqual(unchanged(victim));
    const marker = path.join(shared, MARKER);
    expect(outcome.log).toEqual([
      expect.objectContaining({
        level: 'warning',
        msg: `sharedprop-runtime: ignoring the mount-root marker ${marker}: ${marker} is owned by uid 65534, not root`,
      }),
      expect.objectContaining({
        level: 'info',
        msg: 'sharedprop-runtime: no sharedprop mounts; spec unchanged',
      }),
    ]);
  });
});

itAsRealRoot(
  'a marker root wrote, in a directory anyone can write (where nobody could replace it): the spec is not touched',
  () => {
    writeFileSync(path.join(shared, MARKER), '{}\n');
    chmodSync(path.join(shared, MARKER), 0o644);
    const b = bundle('root-in-1777', victim);
    for (const outcome of [
      create(b, front),
      create(b, `${front}-create`, { SHAREDPROP_RUNC: path.join(dir, 'path', 'runc') }),
    ]) {
      expect(outcome).toMatchObject({ status: 0, rewritten: false });
      expect(outcome.calls).toEqual([runcCall(b)]);
      expect(outcome.spec).toEqual(unchanged(victim));
    }
  },
);

itAsRealRoot('a configuration file nobody wrote is ignored: not its runc, not its roots', () => {
  const config = path.join(shared, 'runtime.json');
  asNobody(
    `echo '${JSON.stringify({ runc: path.join(dir, 'evil-runc'), roots: [shared] })}' > ${config}`,
  );
  const b = bundle('config', victim);
  const outcome = create(b, front, { SHAREDPROP_RUNTIME_CONFIG: config });
  expect(outcome).toMatchObject({ status: 0, stdout: 'runc stdout\n', rewritten: false });
  expect(outcome.calls).toEqual([runcCall(b)]);
  expect(outcome.spec).toEqual(unchanged(victim));
  expect(outcome.log[0]).toEqual(
    expect.objectContaining({
      level: 'warning',
      msg: `sharedprop-runtime: ignoring configuration file ${config}: ${config} is owned by uid 65534, not root`,
    }),
  );
});

itAsRealRoot(
  'every other command keeps away from the runc a configuration file nobody wrote names',
  () => {
    const config = path.join(shared, 'runtime.json');
    asNobody(`echo '${JSON.stringify({ runc: path.join(dir, 'evil-runc') })}' > ${config}`);
    rmSync(calls, { force: true });
    const result = spawnSync(front, ['state', 'ctr'], {
      encoding: 'utf8',
      env: { PATH: `${path.join(dir, 'path')}:/usr/bin:/bin`, SHAREDPROP_RUNTIME_CONFIG: config },
    });
    expect({ status: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({
      status: 0,
      stdout: 'runc stdout\n',
      stderr: `sharedprop-runtime: ignoring configuration file ${config}: ${config} is owned by uid 65534, not root\n`,
    });
    expect(readFileSync(calls, 'utf8')).toBe('runc state ctr\n');
  },
);

itAsRealRoot(
  "the positive control: the driver's own marker, root's in root's directory, still works",
  () => {
    const source = path.join(mountRoot, 'vol');
    const b = bundle('control', source);
    const outcome = create(b, front);
    expect(outcome).toMatchObject({ status: 0, stdout: 'runc stdout\n', rewritten: true });
    expect(outcome.calls).toEqual([runcCall(b)]);
    expect(outcome.spec.mounts[1]?.options).toEqual(['rbind', 'rshared']);
    expect(outcome.spec.linux).toEqual({ rootfsPropagation: 'shared' });
    expect(outcome.log.map((l) => l.level)).toEqual(['info']);
  },
);
