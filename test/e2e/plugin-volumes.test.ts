/**
 * End-to-end: the managed plugin on a private dockerd, driven with the docker CLI the way users
 * drive it. Volumes: lifecycle, data between containers, propagation from the host, docker cp,
 * errors, hostile names, removal in use, and a mount table that does not grow.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isWithin, parseMountinfo } from '../../src/system/mountinfo.js';
import {
  E2eEnvironment,
  hostMountTable,
  hostMountsWithin,
  mountTmpfs,
  unmount,
  onEngine,
  hostPathOfRoot,
} from './harness/index.js';

const SETUP_MS = 600_000;
const TEST_MS = 180_000;

let env: E2eEnvironment;
beforeAll(async () => {
  env = await E2eEnvironment.start({ name: 'plugin-volumes' });
}, SETUP_MS);
afterAll(async () => {
  await env?.stop();
}, SETUP_MS);

const volumeArg = (volume: string, target = '/mnt') => ['-v', `${volume}:${target}`];
const dataPathOf = (volume: string) => path.join(env.dataDir, 'volumes', volume, '_data');

async function createVolume(volume: string, options: string[] = []): Promise<void> {
  const out = await env.dockerOk(['volume', 'create', '-d', 'sharedprop', ...options, volume]);
  expect(out).toBe(volume);
}

async function listedVolumes(): Promise<string[]> {
  const out = await env.dockerOk(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']);
  return out.split('\n').filter(Boolean);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Mount lines the docker run can have changed: under this run's directories, or outside /tmp. */
async function mountCounts(): Promise<{ ours: number; system: number }> {
  const table = await hostMountTable();
  const ours = table.filter(
    (e) => isWithin(e.mountPoint, env.daemon.base) || isWithin(e.mountPoint, env.daemon.shortBase),
  );
  const system = table.filter((e) => !isWithin(e.mountPoint, '/tmp'));
  return { ours: ours.length, system: system.length };
}

describe(onEngine('volume lifecycle through the docker CLI'), () => {
  it(
    'creates, inspects, lists and removes a volume',
    async () => {
      await createVolume('lifecycle');
      const [info] = JSON.parse(await env.dockerOk(['volume', 'inspect', 'lifecycle'])) as Array<{
        Name: string;
        Driver: string;
        Mountpoint: string;
        Scope: string;
        Status: Record<string, unknown>;
      }>;
      expect(info).toMatchObject({
        Name: 'lifecycle',
        Driver: 'sharedprop:latest',
        Scope: 'local',
      });
      expect(info?.Mountpoint).toBe('/mnt/volumes/lifecycle');
      expect(info?.Status).toMatchObject({
        activeMounts: 0,
        mountIds: {},
        mountPoint: 'shared',
        propagation: 'rshared',
        submounts: [],
        dataPath: dataPathOf('lifecycle'),
      });
      expect(await listedVolumes()).toContain('sharedprop:latest lifecycle');
      expect((await stat(dataPathOf('lifecycle'))).isDirectory()).toBe(true);

      // Inside the plugin, exactly one mount at the mount point (the README's promise).
      const pid = await env.pluginPid();
      const inPlugin = parseMountinfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8')).filter(
        (e) => e.mountPoint === '/mnt/volumes/lifecycle',
      );
      expect(inPlugin).toHaveLength(1);
      expect(inPlugin[0]?.sharedGroup).toBeDefined();
      // On the host, that one mount as Docker's layout shows it: the data root and the propagated
      // mount are one peer group, so it appears at most twice, every line in that one group,
      // every line showing the volume's data.
      const hostPath = await env.volumeHostPath('lifecycle');
      expect(hostPath).toBe(path.join((await env.plugin()).hostPropagatedMount, 'lifecycle'));
      const atHost = await env.hostMountsAt(hostPath);
      expect(atHost.length).toBeGreaterThanOrEqual(1);
      expect(atHost.length).toBeLessThanOrEqual(2);
      expect(new Set(atHost.map((e) => e.sharedGroup))).toEqual(
        new Set([inPlugin[0]?.sharedGroup]),
      );
      for (const entry of atHost) {
        expect(await hostPathOfRoot(entry)).toBe(dataPathOf('lifecycle'));
      }

      // Creating it again with the same options is not an error.
      await createVolume('lifecycle');

      await env.dockerOk(['volume', 'rm', 'lifecycle']);
      expect(await listedVolumes()).not.toContain('sharedprop:latest lifecycle');
      expect(await exists(path.join(env.dataDir, 'volumes', 'lifecycle'))).toBe(false);
      expect(await env.hostMountsAt(hostPath)).toHaveLength(0);
    },
    TEST_MS,
  );

  it(
    'passes options through: owner and mode of the volume directory',
    async () => {
      await createVolume('owned', ['-o', 'uid=1234', '-o', 'gid=2345', '-o', 'mode=0750']);
      // nocopy: otherwise dockerd gives an empty volume the owner and mode of the image's /mnt.
      const out = await env.runOk(['-v', 'owned:/mnt:nocopy'], ['stat', '-c', '%u %g %a', '/mnt']);
      expect(out).toBe('1234 2345 750');
      await env.dockerOk(['volume', 'rm', 'owned']);
    },
    TEST_MS,
  );
});

describe(onEngine('data and propagation'), () => {
  it(
    'lets one container read what another wrote',
    async () => {
      await createVolume('handoff');
      await env.runOk(volumeArg('handoff'), ['sh', '-c', 'echo written-by-a > /mnt/greeting']);
      expect(await env.runOk(volumeArg('handoff', '/data'), ['cat', '/data/greeting'])).toBe(
        'written-by-a',
      );
      expect(await readFile(path.join(dataPathOf('handoff'), 'greeting'), 'utf8')).toBe(
        'written-by-a\n',
      );
      await env.dockerOk(['volume', 'rm', 'handoff']);
    },
    TEST_MS,
  );

  it(
    'shows a mount made on the host under the volume in a running container',
    async () => {
      await createVolume('fromhost');
      const reader = await env.startContainer('fromhost-reader', volumeArg('fromhost'));
      const hostPath = await env.volumeHostPath('fromhost');
      const sub = path.join(hostPath, 'sub');
      await mkdir(sub);
      await mountTmpfs(sub);
      try {
        await writeFile(path.join(sub, 'note'), 'mounted-on-the-host\n');
        expect(await env.dockerOk(['exec', reader, 'cat', '/mnt/sub/note'])).toBe(
          'mounted-on-the-host',
        );
        const inside = await env.dockerOk(['exec', reader, 'cat', '/proc/self/mountinfo']);
        expect(inside).toMatch(/ \/mnt\/sub \S+ .*- tmpfs /);
      } finally {
        while ((await env.hostMountsAt(sub)).length > 0) await unmount(sub);
      }
      expect(await env.dockerOk(['exec', reader, 'ls', '/mnt/sub'])).toBe('');
      await env.dockerOk(['rm', '-f', reader]);
      await env.dockerOk(['volume', 'rm', 'fromhost']);
      expect(await hostMountsWithin(hostPath)).toHaveLength(0);
    },
    TEST_MS,
  );
});

describe(onEngine('mount counts'), () => {
  it(
    'comes back to zero after docker cp into a running container and a stop',
    async () => {
      await createVolume('copied');
      const target = await env.startContainer('cp-target', volumeArg('copied'));
      expect(await env.volumeStatus('copied')).toMatchObject({ activeMounts: 1 });

      const source = path.join(env.daemon.base, 'cp-source.txt');
      await writeFile(source, 'copied-in\n');
      await env.dockerOk(['cp', source, `${target}:/mnt/copied.txt`]);
      expect(await env.dockerOk(['exec', target, 'cat', '/mnt/copied.txt'])).toBe('copied-in');
      // dockerd mounts the container's ID a second time for the copy and unmounts it once.
      expect(await env.volumeStatus('copied')).toMatchObject({ activeMounts: 1 });

      await env.dockerOk(['stop', '-t', '1', target]);
      expect(await env.volumeStatus('copied')).toMatchObject({ activeMounts: 0, mountIds: {} });
      await env.dockerOk(['rm', target]);
      expect(await readFile(path.join(dataPathOf('copied'), 'copied.txt'), 'utf8')).toBe(
        'copied-in\n',
      );
      await env.dockerOk(['volume', 'rm', 'copied']);
    },
    TEST_MS,
  );
});

describe(onEngine('refusals'), () => {
  it(
    "passes the driver's errors to the user verbatim, and creates nothing",
    async () => {
      const bogus = await env.docker([
        'volume',
        'create',
        '-d',
        'sharedprop',
        '-o',
        'bogus=1',
        'optvol',
      ]);
      expect(bogus.exitCode).not.toBe(0);
      expect(bogus.stderr).toContain(
        'volume "optvol": unknown option "bogus" (valid options: type, size, path, uid, gid, mode, propagation, reap)',
      );
      const mode = await env.docker([
        'volume',
        'create',
        '-d',
        'sharedprop',
        '-o',
        'mode=999',
        'optvol',
      ]);
      expect(mode.exitCode).not.toBe(0);
      expect(mode.stderr).toContain('option mode="999" is not an octal mode');
      expect(await listedVolumes()).not.toContain('sharedprop:latest optvol');
      expect(await exists(path.join(env.dataDir, 'volumes', 'optvol'))).toBe(false);
    },
    TEST_MS,
  );

  it(
    'refuses hostile names and makes nothing outside its data directory',
    async () => {
      const plugin = await env.plugin();
      const pluginDir = path.dirname(plugin.hostPropagatedMount);
      // Where `..` and `/` in a name could lead: around the data directory, around the mount
      // points, and in the plugin's rootfs (its /mnt and /data). /tmp and / are shared with
      // other work on the machine, so only a new entry named like the hostile names counts there.
      const watched = [
        env.daemon.base,
        env.dataDir,
        path.join(env.dataDir, 'volumes'),
        pluginDir,
        plugin.hostPropagatedMount,
        path.join(pluginDir, 'rootfs'),
        path.join(pluginDir, 'rootfs', 'mnt'),
        path.join(pluginDir, 'rootfs', 'data'),
      ];
      const listing = async (dir: string, keep: (name: string) => boolean = () => true) =>
        `${dir}: ${(await readdir(dir)).filter(keep).sort().join(' ')}`;
      const hostile = (name: string) => /evil|^b$/.test(name);
      const snapshot = () =>
        Promise.all([
          ...watched.map((dir) => listing(dir)),
          listing('/', hostile),
          listing('/tmp', hostile),
        ]);
      const before = await snapshot();
      const mountsBefore = await mountCounts();

      for (const name of ['../evil', 'a/b', '..', '.hidden', 'x'.repeat(300)]) {
        const result = await env.docker(['volume', 'create', '-d', 'sharedprop', name]);
        expect({ name, failed: result.exitCode !== 0 }).toEqual({ name, failed: true });
        expect(result.stderr).toMatch(/invalid volume name/);
      }
      const long = await env.docker(['volume', 'create', '-d', 'sharedprop', 'y'.repeat(300)]);
      expect(long.stderr).toContain('longer than 255 characters');

      expect(await snapshot()).toEqual(before);
      expect(await mountCounts()).toEqual(mountsBefore);
      expect((await listedVolumes()).filter((line) => /evil|a\/b|yyy/.test(line))).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'refuses to remove a volume in use, and keeps its data',
    async () => {
      await createVolume('busy');
      await env.runOk(volumeArg('busy'), ['sh', '-c', 'echo precious > /mnt/keep']);
      const user = await env.startContainer('busy-user', volumeArg('busy'));
      for (const args of [
        ['volume', 'rm', 'busy'],
        ['volume', 'rm', '-f', 'busy'],
      ]) {
        const result = await env.docker(args);
        expect(result.exitCode).not.toBe(0);
        expect(result.stderr).toContain('volume is in use');
      }
      expect(await env.dockerOk(['exec', user, 'cat', '/mnt/keep'])).toBe('precious');
      expect(await readFile(path.join(dataPathOf('busy'), 'keep'), 'utf8')).toBe('precious\n');
      expect(await listedVolumes()).toContain('sharedprop:latest busy');

      await env.dockerOk(['rm', '-f', user]);
      await env.dockerOk(['volume', 'rm', 'busy']);
    },
    TEST_MS,
  );
});

describe(onEngine('mount table'), () => {
  it(
    'does not grow over 20 container runs',
    async () => {
      await createVolume('churn');
      await env.runOk(volumeArg('churn'), ['true']);
      const hostPath = await env.volumeHostPath('churn');
      const before = {
        ...(await mountCounts()),
        atVolume: (await env.hostMountsAt(hostPath)).length,
      };

      for (let run = 1; run <= 20; run++) {
        await env.runOk(volumeArg('churn'), ['sh', '-c', `echo ${run} >> /mnt/runs`]);
      }

      const after = {
        ...(await mountCounts()),
        atVolume: (await env.hostMountsAt(hostPath)).length,
      };
      expect(after).toEqual(before);
      expect(
        (await readFile(path.join(dataPathOf('churn'), 'runs'), 'utf8')).split('\n'),
      ).toHaveLength(21);
      expect(await env.volumeStatus('churn')).toMatchObject({ activeMounts: 0 });
      await env.dockerOk(['volume', 'rm', 'churn']);
      expect(await env.hostMountsAt(hostPath)).toHaveLength(0);
    },
    TEST_MS,
  );
});
