/**
 * Container-to-container propagation through the sharedprop runtime wrapper where newer engines
 * differ (docs/engines.md): subpath mounts, read-only volumes (`rro`), and the runtime's
 * `features`, on a private dockerd with the plugin and the runtime installed by `make install`.
 * The rest of the runtime's scenarios are in runtime.test.ts.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  E2eEnvironment,
  hostMountsAt,
  hostMountsWithin,
  isEngine25OrLater,
  mountTmpfs,
  onEngine,
} from './harness/index.js';
import { parseMountinfo, propagationOf } from '../../src/system/mountinfo.js';
import { CAN_MOUNT, MAKE_QROUTER_NETNS, WITH_RUNTIME, waitForFile } from './harness/containers.js';

jest.setTimeout(300_000);

let env: E2eEnvironment;
beforeAll(async () => {
  env = await E2eEnvironment.start();
}, 600_000);
afterAll(() => env?.stop(), 600_000);

/** The propagation of the mount at `destination` inside a running container. */
async function propagationInside(container: string, destination: string): Promise<string> {
  const pid = (await env.dockerOk(['inspect', '--format', '{{.State.Pid}}', container])).trim();
  const table = parseMountinfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8'));
  const entry = table.filter((e) => e.mountPoint === destination).at(-1);
  if (!entry) throw new Error(`${container} has no mount at ${destination}`);
  return propagationOf(entry);
}

describe(onEngine('what changed in newer engines'), () => {
  it('subpath mounts (volume-subpath, Docker 26+) propagate like whole volumes; 20.10 ignores the option', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'subvol']);
    const host = await env.volumeHostPath('subvol');
    await mkdir(path.join(host, 'agents'));
    const subpath = ['--mount', 'type=volume,src=subvol,dst=/run/netns,volume-subpath=agents'];
    if (!isEngine25OrLater()) {
      // No subpath mounts before API 1.45, and the 20.10 CLI ignores the key without a word:
      // the container gets the whole volume (docs/engines.md).
      const whole = await env.runOk(subpath, ['ls', '/run/netns']);
      expect(whole.trim().split('\n')).toContain('agents');
      await env.dockerOk(['volume', 'rm', 'subvol']);
      return;
    }
    // A reader with a subpath mount and no runtime, up before the namespace exists.
    await env.startContainer('sub-reader', [...CAN_MOUNT, ...subpath]);
    await env.startContainer('sub-l3', [...WITH_RUNTIME, ...subpath], MAKE_QROUTER_NETNS);
    try {
      await waitForFile(path.join(host, 'agents', 'qrouter-1.id'));
      const routerNs = (await readFile(path.join(host, 'agents', 'qrouter-1.id'), 'utf8')).trim();
      expect(await propagationInside('sub-l3', '/run/netns')).toBe('shared');
      // The namespace reaches the host, the reader, and a container with the whole volume.
      expect((await hostMountsAt(path.join(host, 'agents', 'qrouter-1')))[0]?.fsType).toBe('nsfs');
      const enter = ['nsenter', '--net=/run/netns/qrouter-1', 'readlink', '/proc/self/ns/net'];
      expect((await env.dockerOk(['exec', 'sub-reader', ...enter])).trim()).toBe(routerNs);
      const entered = await env.runOk(
        [...CAN_MOUNT, '-v', 'subvol:/vol'],
        ['nsenter', '--net=/vol/agents/qrouter-1', 'readlink', '/proc/self/ns/net'],
      );
      expect(entered.trim()).toBe(routerNs);
      // doctor names the subpath mount and what differs about it.
      const doctor = await env.sharedprop(['doctor']);
      expect(doctor.stdout).toMatch(
        /^warn +subpath-mounts: .*sub-l3: subvol\/agents at \/run\/netns/m,
      );
      // dockerd binds a subpath non-recursively: a subpath mount made later does not show what
      // was mounted in the directory before (docs/engines.md: subpath mounts). Docker's rule,
      // not ours.
      const late = await env.run([...CAN_MOUNT, ...subpath], enter);
      expect(late.exitCode).not.toBe(0);
    } finally {
      await env.docker(['rm', '-f', 'sub-l3', 'sub-reader']);
    }
    // dockerd's temporary binds are gone, and Remove leaves nothing mounted.
    expect(await hostMountsWithin(path.join(env.daemon.dataRoot, 'tmp'))).toEqual([]);
    await env.dockerOk(['volume', 'rm', 'subvol']);
    expect(await hostMountsWithin(host)).toEqual([]);
  });

  it('`-v vol:/x:ro` stays read-only and rshared; on Docker 25+ read-only all the way down (rro)', async () => {
    await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'rovol']);
    const host = await env.volumeHostPath('rovol');
    await mkdir(path.join(host, 'inner'));
    await mountTmpfs(path.join(host, 'inner'));
    try {
      await env.startContainer('ro-reader', [...WITH_RUNTIME, '-v', 'rovol:/x:ro']);
      const probe = await env.dockerOk([
        'exec',
        'ro-reader',
        'sh',
        '-c',
        'touch /x/f 2>/dev/null; echo top=$?; touch /x/inner/f 2>/dev/null; echo inner=$?',
      ]);
      // dockerd 25+ asks for `rro` when the runtime's `features` (passed through the wrapper)
      // list it, and the wrapper keeps it next to rshared; 20.10 makes only the top read-only.
      expect(probe.trim().split('\n')).toEqual([
        'top=1',
        isEngine25OrLater() ? 'inner=1' : 'inner=0',
      ]);
      expect(await propagationInside('ro-reader', '/x')).toBe('shared');
    } finally {
      await env.docker(['rm', '-f', 'ro-reader']);
    }
    await env.dockerOk(['volume', 'rm', 'rovol']);
    expect(await hostMountsWithin(host)).toEqual([]);
  });

  it('`sharedprop-runtime features` answers what runc answers', async () => {
    const runtime = path.join(env.daemon.base, 'bin', 'sharedprop-runtime');
    const [viaWrapper, viaRunc] = await Promise.all([
      execa(runtime, ['features'], { reject: false }),
      execa('runc', ['features'], { reject: false }),
    ]);
    expect(viaRunc.exitCode).toBe(0);
    expect(viaWrapper.exitCode).toBe(0);
    expect(JSON.parse(viaWrapper.stdout)).toEqual(JSON.parse(viaRunc.stdout));
    if (isEngine25OrLater()) {
      expect((JSON.parse(viaWrapper.stdout) as { mountOptions?: string[] }).mountOptions).toContain(
        'rro',
      );
    }
  });
});
