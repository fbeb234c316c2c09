/**
 * `sharedprop upgrade` with a fake engine, a fake `run` and a fake mount table: the order of what
 * it does (keep, detach without propagation, disable, upgrade, settings, restore, enable, release),
 * that every unmount it makes comes after a make-rslave of the same mount, that the settings are
 * carried over, and that a failed upgrade still brings the previous version back with its mounts.
 */
import type { PluginSummary } from '../../../src/docker/engine-client.js';
import { upgradePlugin, settingsToCarry } from '../../../src/install/plugin-upgrade.js';
import { detachWithoutPropagation, volumeMountsIn } from '../../../src/install/upgrade-mounts.js';
import { CommandError, type RunResult } from '../../../src/system/exec.js';
import type { MountEntry } from '../../../src/system/mountinfo.js';
import { FakeEngine } from '../../support/cli-fakes.js';
import {
  FakeHostMounts as FakeMounts,
  hostEntry as entry,
} from '../../support/host-mount-fakes.js';

const PROP = '/var/lib/docker/plugins/0123456789abcdef/propagated-mount';
const KEEP = '/run/sharedprop/upgrade-0123456789ab';

/** dockerd's namespace with the plugin enabled, a volume in use with a namespace bind in it. */
function runningTable(): MountEntry[] {
  return [
    entry('/'),
    // The copy beneath the propagated mount (dockerd's data root is its peer), then the top ones.
    entry(`${PROP}/netns`),
    entry(`${PROP}/netns/qrouter-1`),
    entry(PROP),
    entry(`${PROP}/netns`),
    entry(`${PROP}/netns/qrouter-1`),
    entry(`${PROP}/idle`),
  ];
}

const SETTINGS = JSON.stringify({
  Env: [
    'SHAREDPROP_VERSION=1.0.0',
    'LOG_LEVEL=debug',
    'HOST_DATA_DIR=/srv/sp',
    'SHAREDPROP_CRASH_AT=',
  ],
  Mounts: [{ Name: 'data', Source: '/srv/sp', Destination: '/data' }],
});

function setup(options: { enabled?: boolean; failUpgrade?: boolean; table?: MountEntry[] } = {}) {
  const plugin: PluginSummary = {
    id: '0123456789abcdef',
    name: 'sharedprop:latest',
    enabled: options.enabled ?? true,
    version: '1.0.0',
  };
  const engine = new FakeEngine({ plugins: [plugin] });
  const mounts = new FakeMounts(options.table ?? runningTable());
  const commands: string[] = [];
  const run = async (command: string, args: readonly string[]): Promise<RunResult> => {
    commands.push(args.slice(0, 2).join(' '));
    mounts.calls.push(`docker ${args.slice(0, 2).join(' ')}`);
    if (args[1] === 'inspect') return { stdout: SETTINGS, stderr: '' };
    if (args[1] === 'upgrade') {
      if (options.failUpgrade) {
        throw new CommandError(
          command,
          [...args],
          1,
          'Error response from daemon: manifest unknown',
        );
      }
      plugin.version = '1.1.0';
    }
    return { stdout: '', stderr: '' };
  };
  const lines: string[] = [];
  const deps = { engine, run, mounts, say: (l: string) => lines.push(l) };
  return { deps, mounts, commands, lines, plugin };
}

describe('the volumes an upgrade keeps', () => {
  it('are the mount points directly in the propagated mount, each once', () => {
    expect(volumeMountsIn(runningTable(), PROP)).toEqual(['idle', 'netns']);
    expect(volumeMountsIn([entry('/'), entry(PROP)], PROP)).toEqual([]);
  });

  it('settings carried over: the data directory, LOG_LEVEL and HOST_DATA_DIR; never the version', () => {
    expect(settingsToCarry(JSON.parse(SETTINGS) as never)).toEqual([
      'data.source=/srv/sp',
      'LOG_LEVEL=debug',
      'HOST_DATA_DIR=/srv/sp',
    ]);
    const driverSettings = [
      'SHAREDPROP_ENGINE_STORAGE=/srv/docker/overlay2',
      'SHAREDPROP_TMPFS_MAX_SIZE=25%',
    ];
    expect(settingsToCarry({ Env: [...driverSettings, 'SHAREDPROP_CRASH_AT=x'] })).toEqual(
      driverSettings,
    );
    expect(settingsToCarry({})).toEqual([]);
  });
});

describe('detaching the propagated mount', () => {
  it('makes every mount a slave before it goes, hidden copies too, until nothing is left', async () => {
    const mounts = new FakeMounts(runningTable());
    await detachWithoutPropagation(mounts, PROP);
    expect(mounts.entries.map((e) => e.mountPoint)).toEqual(['/']);
    const calls = mounts.calls;
    for (const [i, call] of calls.entries()) {
      if (!call.startsWith('umount')) continue;
      const target = call.split(' ').at(-1);
      expect(calls[i - 1]).toBe(`mount --make-rslave ${target}`);
    }
    expect(calls.filter((c) => c.startsWith('umount'))).toEqual([
      `umount -l ${PROP}`,
      `umount -l ${PROP}/netns`,
    ]);
  });
});

describe('sharedprop upgrade', () => {
  it('keeps the mounts, detaches without propagation, upgrades, sets the settings, restores, enables, releases', async () => {
    const { deps, mounts, lines } = setup();
    await upgradePlugin({ ref: 'reg:5000/sharedprop:1.1.0', name: 'sharedprop' }, deps);
    const order = mounts.calls.filter(
      (c) =>
        c.startsWith('docker plugin') ||
        c.startsWith('mount --rbind') ||
        c.startsWith('umount') ||
        c === `mount --make-rprivate ${KEEP}`,
    );
    expect(order).toEqual([
      'docker plugin inspect',
      `mount --rbind ${PROP}/idle ${KEEP}/idle`,
      `mount --rbind ${PROP}/netns ${KEEP}/netns`,
      `umount -l ${PROP}`,
      `umount -l ${PROP}/netns`,
      'docker plugin disable',
      'docker plugin upgrade',
      'docker plugin set',
      `mount --rbind ${KEEP}/idle ${PROP}/idle`,
      `mount --rbind ${KEEP}/netns ${PROP}/netns`,
      'docker plugin enable',
      `mount --make-rprivate ${KEEP}`,
      `umount -l ${KEEP}`,
    ]);
    // What the new plugin finds: each volume once, with its namespace bind; no keeper left.
    expect(
      [PROP, `${PROP}/netns`, `${PROP}/netns/qrouter-1`, `${PROP}/idle`].map((d) => mounts.at(d)),
    ).toEqual([1, 1, 1, 1]);
    expect(mounts.entries.filter((e) => e.mountPoint.startsWith(KEEP))).toEqual([]);
    expect(lines).toEqual([
      'keeping the mounts of 2 volume(s) through the upgrade',
      'upgrading sharedprop (1.0.0) to reg:5000/sharedprop:1.1.0',
      "upgraded sharedprop to reg:5000/sharedprop:1.1.0 (version 1.1.0); its volumes and running containers' mounts are kept",
    ]);
  });

  it('a failed upgrade still gets the settings, the mounts and the previous version back, and says so', async () => {
    const { deps, mounts } = setup({ failUpgrade: true });
    await expect(
      upgradePlugin({ ref: 'reg:5000/sharedprop:9.9.9', name: 'sharedprop' }, deps),
    ).rejects.toThrow(
      'upgrade to reg:5000/sharedprop:9.9.9 failed, and sharedprop runs its previous version again: Error response from daemon: manifest unknown',
    );
    expect(mounts.calls.filter((c) => c.startsWith('docker plugin')).slice(-3)).toEqual([
      'docker plugin upgrade',
      'docker plugin set',
      'docker plugin enable',
    ]);
    expect(mounts.at(`${PROP}/netns/qrouter-1`)).toBe(1);
    expect(mounts.entries.filter((e) => e.mountPoint.startsWith(KEEP))).toEqual([]);
  });

  it('a plugin that cannot be disabled keeps running, with the host view of its volumes back and no keeper left', async () => {
    const { deps, mounts } = setup();
    const run = deps.run;
    deps.run = async (command, args) => {
      if (args[1] === 'disable') throw new CommandError(command, [...args], 1, 'plugin is busy');
      return run(command, args);
    };
    await expect(
      upgradePlugin({ ref: 'reg:5000/sharedprop:1.1.0', name: 'sharedprop' }, deps),
    ).rejects.toThrow(
      'nothing was upgraded: could not take sharedprop down with its mounts kept: plugin is busy',
    );
    expect(mounts.at(`${PROP}/netns/qrouter-1`)).toBe(1);
    expect(mounts.entries.filter((e) => e.mountPoint.startsWith(KEEP))).toEqual([]);
    expect(mounts.calls).not.toContain('docker plugin upgrade');
  });

  it('after a run killed with the plugin down, the next run puts the kept mounts back and enables it', async () => {
    // Killed between `docker plugin disable` and the restore: keepers mounted, propagated mount gone.
    const killed = [
      entry('/'),
      entry(KEEP),
      entry(`${KEEP}/netns`),
      entry(`${KEEP}/netns/qrouter-1`),
    ];
    const { deps, mounts, lines } = setup({ enabled: false, table: killed });
    await upgradePlugin({ ref: 'reg:5000/sharedprop:1.1.0', name: 'sharedprop' }, deps);
    expect(lines[0]).toBe(
      `an interrupted upgrade left the mounts of 1 volume(s) in ${KEEP}; they are put back`,
    );
    expect(mounts.calls.filter((c) => c.startsWith('docker plugin'))).toEqual([
      'docker plugin inspect',
      'docker plugin upgrade',
      'docker plugin set',
      'docker plugin enable',
    ]);
    expect(mounts.at(`${PROP}/netns/qrouter-1`)).toBe(1);
    expect(mounts.entries.filter((e) => e.mountPoint.startsWith(KEEP))).toEqual([]);
  });

  it('a disabled plugin is upgraded and stays disabled, with no mount touched', async () => {
    const { deps, mounts, commands } = setup({ enabled: false, table: [entry('/')] });
    await upgradePlugin({ ref: 'reg:5000/sharedprop:1.1.0', name: 'sharedprop' }, deps);
    expect(commands).toEqual(['--version', 'plugin inspect', 'plugin upgrade', 'plugin set']);
    expect(mounts.calls.filter((c) => c.startsWith('mount') || c.startsWith('umount'))).toEqual([]);
  });

  it('refuses outside dockerd’s mount namespace, and when no plugin is installed', async () => {
    const outside = setup({ table: [entry('/')] });
    await expect(
      upgradePlugin({ ref: 'r/sharedprop:2', name: 'sharedprop' }, outside.deps),
    ).rejects.toThrow(
      `${PROP} is not mounted here: run sharedprop upgrade in dockerd's mount namespace`,
    );
    expect(outside.commands).not.toContain('plugin disable');

    const none = setup();
    await expect(upgradePlugin({ ref: 'r/other:2', name: 'other' }, none.deps)).rejects.toThrow(
      'no plugin named other is installed; install it with: sharedprop install --plugin r/other:2',
    );
  });
});
