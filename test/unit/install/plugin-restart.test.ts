/**
 * `sharedprop plugin restart` and the wait it shares with upgrade: dockerd 20.10 and 26.1 unmount
 * a disabled plugin's mounts only after `docker plugin disable` returned, and an enable inside that
 * window loses the propagated mount. The fake dockerd here does exactly that: its disable leaves
 * the mounts under plugins/<id>, and they go a few polls later.
 */
import type { PluginSummary } from '../../../src/docker/engine-client.js';
import {
  PluginReleaseTimeout,
  waitForPluginRelease,
} from '../../../src/install/plugin-release-wait.js';
import { restartPlugin } from '../../../src/install/plugin-restart.js';
import type { RunResult } from '../../../src/system/exec.js';
import { FakeEngine } from '../../support/cli-fakes.js';
import { FakeHostMounts, hostEntry } from '../../support/host-mount-fakes.js';

const ROOT = '/var/lib/docker';
const DIR = `${ROOT}/plugins/0123456789abcdef`;
const PROP = `${DIR}/propagated-mount`;
const KEEP = '/run/sharedprop/restart-0123456789ab';

/** A clock that only moves when the code under test sleeps. */
function fakeClock() {
  let now = 0;
  return { now: () => now, sleep: async (ms: number) => void (now += ms) };
}

function setup(
  options: { enabled?: boolean; lateUnmountAfterPolls?: number; inUse?: boolean } = {},
) {
  const plugin: PluginSummary = {
    id: '0123456789abcdef',
    name: 'sharedprop:latest',
    enabled: options.enabled ?? true,
  };
  const engine = new FakeEngine({
    plugins: [plugin],
    volumes: [{ name: 'netns', driver: 'sharedprop:latest', mountpoint: '/mnt/volumes/netns' }],
    containers: options.inUse
      ? [
          {
            id: 'c1',
            name: 'l3',
            running: true,
            pid: 700,
            mounts: [
              {
                type: 'volume',
                name: 'netns',
                driver: 'sharedprop:latest',
                destination: '/run/netns',
              },
            ],
          },
        ]
      : [],
  });
  const mounts = new FakeHostMounts(
    options.enabled === false
      ? [hostEntry('/')]
      : [hostEntry('/'), hostEntry(PROP), hostEntry(`${PROP}/netns`)],
  );
  // dockerd's own mount of the plugin's rootfs: it unmounts it late, after disable returned.
  let lateLeft = -1;
  const table = mounts.table.bind(mounts);
  mounts.table = async () => {
    if (lateLeft > 0 && --lateLeft === 0) {
      mounts.entries = mounts.entries.filter((e) => !e.mountPoint.startsWith(`${DIR}/rootfs`));
    }
    return table();
  };
  const run = async (_command: string, args: readonly string[]): Promise<RunResult> => {
    mounts.calls.push(`docker ${args.slice(0, 2).join(' ')}`);
    if (args[1] === 'disable') {
      plugin.enabled = false;
      mounts.entries.push(hostEntry(`${DIR}/rootfs`));
      lateLeft = options.lateUnmountAfterPolls ?? 3;
    }
    if (args[1] === 'enable') {
      // dockerd mounts the propagated mount when it is not one yet; a late unmount left over
      // from the disable would take it away again.
      if (lateLeft > 0) throw new Error('enabled while dockerd was still unmounting');
      if (!mounts.entries.some((e) => e.mountPoint === PROP)) mounts.entries.push(hostEntry(PROP));
      plugin.enabled = true;
    }
    return { stdout: '', stderr: '' };
  };
  const lines: string[] = [];
  const clock = fakeClock();
  const deps = {
    engine,
    run,
    mounts,
    say: (l: string) => lines.push(l),
    releaseWait: { ...clock, settleMs: 2_000, timeoutMs: 60_000 },
  };
  return { deps, mounts, lines, plugin, clock };
}

describe('sharedprop plugin restart', () => {
  it('with its volumes in use: keeps the mounts, disables, waits for dockerd to let go, puts them back, enables, releases', async () => {
    const { deps, mounts, lines, plugin } = setup({ lateUnmountAfterPolls: 5, inUse: true });
    await restartPlugin({ name: 'sharedprop' }, deps);
    const order = mounts.calls.filter(
      (c) =>
        c.startsWith('docker plugin') || c.startsWith('mount --rbind') || c.startsWith('umount'),
    );
    expect(order).toEqual([
      `mount --rbind ${PROP}/netns ${KEEP}/netns`,
      `umount -l ${PROP}`,
      'docker plugin disable',
      `mount --rbind ${KEEP}/netns ${PROP}/netns`,
      'docker plugin enable',
      `umount -l ${KEEP}`,
    ]);
    expect(plugin.enabled).toBe(true);
    expect(mounts.at(PROP)).toBe(1);
    expect(mounts.at(`${PROP}/netns`)).toBe(1);
    expect(mounts.entries.filter((e) => e.mountPoint.startsWith(KEEP))).toEqual([]);
    expect(lines.at(-1)).toMatch(
      /^restarted sharedprop in \d+\.\d s; its volumes and running containers' mounts are kept$/,
    );
  });

  it('with no container on its volumes: disables, waits for dockerd to let go, enables; no keeper', async () => {
    const { deps, mounts, plugin } = setup({ lateUnmountAfterPolls: 5 });
    await restartPlugin({ name: 'sharedprop' }, deps);
    expect(
      mounts.calls.filter((c) => c.startsWith('docker plugin') || c.startsWith('mount')),
    ).toEqual(['docker plugin disable', 'docker plugin enable']);
    expect(plugin.enabled).toBe(true);
  });

  it('a disabled plugin is only enabled, after the wait', async () => {
    const { deps, mounts, lines } = setup({ enabled: false });
    await restartPlugin({ name: 'sharedprop' }, deps);
    expect(mounts.calls.filter((c) => c.startsWith('docker plugin'))).toEqual([
      'docker plugin enable',
    ]);
    expect(lines[0]).toBe('sharedprop was disabled; it is enabled');
  });

  it('refuses when no plugin is installed, and outside dockerd’s mount namespace', async () => {
    const none = setup();
    await expect(
      restartPlugin({ name: 'sharedprop' }, { ...none.deps, engine: new FakeEngine({}) }),
    ).rejects.toThrow('no plugin named sharedprop is installed; nothing was restarted');
    const elsewhere = setup();
    elsewhere.mounts.entries = [hostEntry('/')];
    await expect(restartPlugin({ name: 'sharedprop' }, elsewhere.deps)).rejects.toThrow(
      `${PROP} is not mounted here: run sharedprop plugin restart in dockerd's mount namespace`,
    );
    expect(elsewhere.mounts.calls.filter((c) => c.startsWith('docker plugin'))).toEqual([]);
  });

  it('says so when the propagated mount is gone after the enable', async () => {
    const { deps, mounts } = setup({ enabled: false });
    const run = deps.run;
    deps.run = async (command, args) => {
      const result = await run(command, args);
      if (args[1] === 'enable')
        mounts.entries = mounts.entries.filter((e) => e.mountPoint !== PROP);
      return result;
    };
    await expect(restartPlugin({ name: 'sharedprop' }, deps)).rejects.toThrow(
      /propagated mount .* is not mounted on the host .*run sharedprop plugin restart again/,
    );
  });
});

describe('waiting for dockerd to let go of a plugin’s mounts', () => {
  const table = (...lists: string[][]) => {
    let i = 0;
    return async () => (lists[Math.min(i++, lists.length - 1)] ?? []).map(hostEntry);
  };

  it('returns once nothing is left under the plugin’s directory', async () => {
    const clock = fakeClock();
    const left = await waitForPluginRelease(DIR, {
      ...clock,
      table: table([`${DIR}/rootfs`, PROP], [`${DIR}/rootfs`], []),
    });
    expect(left).toEqual([]);
    expect(clock.now()).toBe(100);
  });

  it('returns the same mounts once they stayed for the settle time; mounts elsewhere do not count', async () => {
    const clock = fakeClock();
    const left = await waitForPluginRelease(
      DIR,
      { ...clock, table: table(['/', `${DIR}-other`, `${DIR}/rootfs`]) },
      { settleMs: 1_000 },
    );
    expect(left).toEqual([`${DIR}/rootfs`]);
    expect(clock.now()).toBe(1_000);
  });

  it('gives up with a clear error when dockerd keeps changing them', async () => {
    const clock = fakeClock();
    let n = 0;
    await expect(
      waitForPluginRelease(
        DIR,
        { ...clock, table: async () => [hostEntry(`${DIR}/m${n++}`)] },
        { timeoutMs: 5_000 },
      ),
    ).rejects.toThrow(new PluginReleaseTimeout(DIR, 1).message);
    expect(clock.now()).toBeGreaterThan(5_000);
  });
});
