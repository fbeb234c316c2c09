/**
 * Issue 25's attack on a private dockerd whose `default-runtime` is the sharedprop wrapper (what
 * the README recommends for Swarm): a local user, uid 65534, plants the driver's mount-root
 * marker in a 1777 directory beside another user's bind source. That container's bind must stay
 * private, whether the sh front decides (nothing else in the spec) or the compiled wrapper does
 * (the container also has a sharedprop volume, which still becomes shared). The control: root's
 * marker in root's directory makes the same kind of bind shared, so the daemon really runs the
 * wrapper and the attack would have worked had the marker counted.
 *
 * Its own file (and dockerd): the default runtime must not leak into runtime.test.ts, whose
 * scenarios without the wrapper rely on runc being the default.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { E2eEnvironment, onEngine } from './harness/index.js';
import { CAN_MOUNT } from './harness/containers.js';
import { parseMountinfo, propagationOf } from '../../src/system/mountinfo.js';

jest.setTimeout(300_000);

const MARKER = '.sharedprop-mountroot';

let env: E2eEnvironment;
// Both directories are outside the harness's (0700) and its sweep's `sharedprop-e2e-` prefix:
// uid 65534 must reach the first, and a sweep must not take them from a run still using them.
/** Like /tmp: 1777, root's; `data` in it is another user's bind source. */
let shared: string;
/** A directory of root's (0755) holding root's marker (0644), and `data`. */
let rootOwned: string;

beforeAll(async () => {
  env = await E2eEnvironment.start({ name: 'runtime-trust' });
  await env.reconfigure('default-runtime', 'sharedprop');
  shared = await mkdtemp('/tmp/sharedprop-trust-');
  await chmod(shared, 0o1777);
  await mkdir(path.join(shared, 'data'));
  rootOwned = await mkdtemp('/tmp/sharedprop-trusted-');
  await chmod(rootOwned, 0o755);
  await mkdir(path.join(rootOwned, 'data'));
  await writeFile(path.join(rootOwned, MARKER), '{}\n', { mode: 0o644 });
  await chmod(path.join(rootOwned, MARKER), 0o644);
}, 600_000);
afterAll(async () => {
  for (const dir of [shared, rootOwned]) {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
  await env?.stop();
}, 600_000);

/** As uid and gid 65534, no groups: writes the marker beside `<shared>/data`. */
async function plantAsNobody(): Promise<void> {
  await execa(
    'setpriv',
    [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'sh',
      '-c',
      `echo '{}' > "$1/${MARKER}"`,
      'sh',
      shared,
    ],
    { env: { PATH: '/usr/bin:/bin' }, extendEnv: false },
  );
  expect((await stat(path.join(shared, MARKER))).uid).toBe(65534);
}

/**
 * Starts `name` (no --runtime: the default) with `args`, and returns, as its own
 * /proc/self/mountinfo shows them, the propagation at each of `destinations`.
 */
async function propagationIn(
  name: string,
  args: string[],
  destinations: string[],
): Promise<Record<string, string>> {
  await env.startContainer(name, [...CAN_MOUNT, ...args]);
  try {
    const runtime = await env.dockerOk(['inspect', '--format', '{{.HostConfig.Runtime}}', name]);
    expect(runtime.trim()).toBe('sharedprop');
    const table = parseMountinfo(await env.dockerOk(['exec', name, 'cat', '/proc/self/mountinfo']));
    const result: Record<string, string> = {};
    for (const destination of destinations) {
      const entry = table.filter((e) => e.mountPoint === destination).at(-1);
      result[destination] = entry ? propagationOf(entry) : 'no mount';
    }
    return result;
  } finally {
    await env.docker(['rm', '-f', name]);
  }
}

describe(onEngine('with "default-runtime": "sharedprop", a marker only root made counts'), () => {
  afterEach(() => rm(path.join(shared, MARKER), { force: true }));

  it("the control: root's marker in root's directory makes a bind beside it rshared", async () => {
    const seen = await propagationIn('trust-control', ['-v', `${rootOwned}/data:/data`], ['/data']);
    expect(seen).toEqual({ '/data': 'shared' });
  });

  it('uid 65534 plants the marker beside a bind source: the bind stays private (the sh front decides)', async () => {
    await plantAsNobody();
    const seen = await propagationIn('trust-front', ['-v', `${shared}/data:/data`], ['/data']);
    expect(seen).toEqual({ '/data': 'private' });
  });

  it('the same beside a sharedprop volume (the compiled wrapper decides): the volume is shared, the planted bind private', async () => {
    await plantAsNobody();
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'trustvol']);
    try {
      const seen = await propagationIn(
        'trust-wrapper',
        ['-v', `${shared}/data:/data`, '-v', 'trustvol:/vol'],
        ['/data', '/vol'],
      );
      expect(seen).toEqual({ '/data': 'private', '/vol': 'shared' });
    } finally {
      await env.docker(['volume', 'rm', 'trustvol']);
    }
  });
});
