/**
 * The reliability suite, end-to-end tier: the managed plugin killed in the middle of `docker
 * run`, and dockerd restarted (with and without live-restore) while a container uses a volume.
 * The README's Reliability table names these tests.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { E2eEnvironment, type CommandResult, hostPathOfRoot, onEngine } from './harness/index.js';
import { waitForFile } from './harness/containers.js';

const SETUP_MS = 600_000;
const TEST_MS = 300_000;

let env: E2eEnvironment;
beforeAll(async () => {
  env = await E2eEnvironment.start({ name: 'plugin-reliability' });
}, SETUP_MS);
afterAll(() => env?.stop(), SETUP_MS);

const dataPathOf = (volume: string) => path.join(env.dataDir, 'volumes', volume, '_data');

async function activeMounts(volume: string): Promise<number> {
  return Number((await env.volumeStatus(volume)).activeMounts);
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The volume's mount point on the host: one peer group, as Docker's managed layout shows it. */
async function expectMountedOnce(volume: string): Promise<void> {
  const at = await env.hostMountsAt(await env.volumeHostPath(volume));
  expect(at.length).toBeGreaterThan(0);
  // The data root and the propagated mount share a peer group, so the host sees the one mount
  // under both: never two groups, never a stack of our own binds.
  expect(new Set(at.map((e) => e.sharedGroup)).size).toBe(1);
  for (const entry of at) expect(await hostPathOfRoot(entry)).toBe(dataPathOf(volume));
  expect(at.length).toBeLessThanOrEqual(2);
}

describe(onEngine('the managed plugin killed during docker run'), () => {
  it(
    'comes back by itself; every run ends cleanly; data, listing and one mount are intact; the volume can be removed',
    async () => {
      await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'killed']);
      await env.runOk(['-v', 'killed:/mnt'], ['sh', '-c', 'echo before > /mnt/before']);
      const before = await env.pluginPid();
      expect(before).toBeDefined();

      const runs: Promise<CommandResult>[] = [];
      for (let i = 0; i < 6; i++) {
        runs.push(
          env.run(['-v', 'killed:/mnt'], ['sh', '-c', `echo ${i} > /mnt/run-${i}; sleep 1`]),
        );
        if (i === 2) {
          await new Promise((resolve) => setTimeout(resolve, 300));
          process.kill(before!, 'SIGKILL');
        }
      }
      const results = await Promise.all(runs);
      // Runs that needed the plugin while it was down may fail, but they end, and say why.
      for (const result of results) {
        if (result.exitCode !== 0) expect(result.stderr).not.toBe('');
      }
      await env.waitForPlugin({ notPid: before, timeoutMs: 60_000 });

      expect(await readFile(path.join(dataPathOf('killed'), 'before'), 'utf8')).toBe('before\n');
      expect(await env.dockerOk(['volume', 'ls', '-q'])).toMatch(/^killed$/m);
      await expectMountedOnce('killed');
      expect((await env.runOk(['-v', 'killed:/mnt'], ['cat', '/mnt/before'])).trim()).toBe(
        'before',
      );
      // Every container has exited: no count may be left behind.
      await until('the counts to drop to zero', async () => (await activeMounts('killed')) === 0);
      const hostPath = await env.volumeHostPath('killed');
      await env.dockerOk(['volume', 'rm', 'killed']);
      expect(await env.hostMountsAt(hostPath)).toEqual([]);
    },
    TEST_MS,
  );
});

/** Sets the plugin's fault-injection point (empty: none); the plugin restarts with it. */
async function setCrashPoint(point: string): Promise<void> {
  if ((await env.plugin()).enabled) await env.disablePlugin();
  await env.dockerOk(['plugin', 'set', 'sharedprop', `SHAREDPROP_CRASH_AT=${point}`]);
  await env.dockerOk(['plugin', 'enable', 'sharedprop']);
  await env.waitForPlugin({ timeoutMs: 60_000 });
}

describe(onEngine('the managed plugin killed between counting a Mount and answering it'), () => {
  it(
    'the run fails with a message (dockerd gets no answer, and 20.10 retries with an empty body), and no count is left behind: the volume is usable and docker volume rm works, without a reboot',
    async () => {
      await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'cut']);
      await env.runOk(['-v', 'cut:/mnt'], ['sh', '-c', 'echo before > /mnt/before']);
      await setCrashPoint('mount:counted');
      try {
        const run = await env.run(['-v', 'cut:/mnt'], ['true']);
        expect(run.exitCode).not.toBe(0);
        expect(run.stderr).toMatch(/VolumeDriver\.Mount/);
      } finally {
        await setCrashPoint('');
      }
      // dockerd treats that Mount as failed and never unmounts it: nothing may count it.
      expect(await activeMounts('cut')).toBe(0);
      expect((await env.runOk(['-v', 'cut:/mnt'], ['cat', '/mnt/before'])).trim()).toBe('before');
      await until('the counts to drop to zero', async () => (await activeMounts('cut')) === 0);
      await env.dockerOk(['volume', 'rm', 'cut']);
    },
    TEST_MS,
  );
});

describe(onEngine('dockerd restarted while a container uses a volume'), () => {
  it(
    'without live-restore: the container stops, counts return to zero, data is intact, Remove works',
    async () => {
      await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'restarted']);
      await env.startContainer(
        'user-plain',
        ['-v', 'restarted:/mnt'],
        ['sh', '-c', 'echo up > /mnt/up; sleep 3600'],
      );
      await waitForFile(path.join(dataPathOf('restarted'), 'up'));
      expect(await activeMounts('restarted')).toBe(1);
      const hostPath = await env.volumeHostPath('restarted');

      await env.reconfigure('live-restore', false);
      const state = await env.dockerOk(['inspect', '--format', '{{.State.Running}}', 'user-plain']);
      expect(state.trim()).toBe('false');
      await until(
        'the counts to drop to zero',
        async () => (await activeMounts('restarted')) === 0,
      );
      expect(await readFile(path.join(dataPathOf('restarted'), 'up'), 'utf8')).toBe('up\n');
      await expectMountedOnce('restarted');
      await env.dockerOk(['rm', 'user-plain']);
      await env.dockerOk(['volume', 'rm', 'restarted']);
      expect(await env.hostMountsAt(hostPath)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'with live-restore: the container keeps running and sharing the volume; Remove waits until it is gone',
    async () => {
      await env.reconfigure('live-restore', true);
      try {
        await env.dockerOk(['volume', 'create', '-d', 'sharedprop', 'live']);
        await env.startContainer('user-live', ['-v', 'live:/mnt']);
        expect(await activeMounts('live')).toBe(1);
        const hostPath = await env.volumeHostPath('live');

        await env.restart(); // live-restore is on: the container survives
        const state = await env.dockerOk([
          'inspect',
          '--format',
          '{{.State.Running}}',
          'user-live',
        ]);
        expect(state.trim()).toBe('true');
        await writeFile(path.join(dataPathOf('live'), 'from-host'), 'hello\n');
        expect((await env.dockerOk(['exec', 'user-live', 'cat', '/mnt/from-host'])).trim()).toBe(
          'hello',
        );
        await env.dockerOk(['exec', 'user-live', 'sh', '-c', 'echo back > /mnt/from-container']);
        expect(await readFile(path.join(dataPathOf('live'), 'from-container'), 'utf8')).toBe(
          'back\n',
        );
        await expectMountedOnce('live');

        // In use: refused, data intact.
        const refused = await env.docker(['volume', 'rm', 'live']);
        expect(refused.exitCode).not.toBe(0);
        expect(await readFile(path.join(dataPathOf('live'), 'from-host'), 'utf8')).toBe('hello\n');

        await env.dockerOk(['rm', '-f', 'user-live']);
        await until('the counts to drop to zero', async () => (await activeMounts('live')) === 0);
        await env.dockerOk(['volume', 'rm', 'live']);
        expect(await env.hostMountsAt(hostPath)).toEqual([]);
      } finally {
        await env.docker(['rm', '-f', 'user-live']);
        await env.reconfigure('live-restore', false);
      }
    },
    TEST_MS,
  );
});
