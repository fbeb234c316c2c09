/**
 * `sharedprop plugin uninstall` with a fake engine and a fake `run`: the refusal while running
 * containers use the plugin's volumes, the docker commands issued, the messages and the exit
 * codes of the command. No root, no docker.
 */
import { Command } from 'commander';
import { registerPluginCommands } from '../../../src/commands/plugin.js';
import { uninstallPlugin } from '../../../src/install/plugin-install.js';
import { FakeEngine, socketError, type FakeEngineState } from '../../support/cli-fakes.js';
import { FakeHostMounts, hostEntry } from '../../support/host-mount-fakes.js';
import { container, depsFor, failed, fakeRun, plugin, VOLUMES } from './plugin-harness.js';

describe('plugin uninstall', () => {
  const mounts = JSON.stringify([
    { Name: 'data', Source: '/srv/sharedprop', Destination: '/data' },
  ]);
  const inspect = 'plugin inspect --format {{json .Settings.Mounts}} sharedprop';
  const options = { name: 'sharedprop', force: false, fallbackDataDir: '/var/lib/sharedprop' };

  it('disables with -f, removes, and says where the data is kept and how many volumes', async () => {
    const { deps, commands, lines } = depsFor(
      { plugins: [plugin('sharedprop:latest')], volumes: VOLUMES },
      { [inspect]: mounts },
    );
    await uninstallPlugin(options, deps);
    expect(commands).toEqual([
      ['docker', '--version'],
      ['docker', 'plugin', 'inspect', '--format', '{{json .Settings.Mounts}}', 'sharedprop'],
      ['docker', 'plugin', 'disable', '-f', 'sharedprop'],
      ['docker', 'plugin', 'rm', '-f', 'sharedprop'],
    ]);
    expect(lines).toEqual([
      'removed plugin sharedprop',
      'volume data is kept in /srv/sharedprop (2 volume(s)): install the plugin again with DATA_DIR=/srv/sharedprop to use them, or delete that directory to discard them',
    ]);
  });

  it('does nothing when the plugin is not installed (a plugin with a common prefix is not it)', async () => {
    const { deps, commands, lines } = depsFor({ plugins: [plugin('sharedprop-old:latest')] });
    await uninstallPlugin(options, deps);
    expect(commands).toEqual([['docker', '--version']]);
    expect(lines).toEqual(['no plugin named sharedprop is installed; nothing to do']);
  });

  it('refuses while a running container uses a volume, unless forced', async () => {
    const state = {
      plugins: [plugin('sharedprop:latest')],
      volumes: VOLUMES,
      containers: [container('web', ['plain'])],
    };
    const refused = depsFor(state, { [inspect]: mounts });
    await expect(uninstallPlugin(options, refused.deps)).rejects.toThrow(
      'running containers use volumes of sharedprop: web(plain); stop them first, or use --force (make: FORCE=1) to remove the plugin anyway',
    );
    expect(refused.commands).toEqual([['docker', '--version']]);

    const forced = depsFor(state, { [inspect]: mounts });
    await uninstallPlugin({ ...options, force: true }, forced.deps);
    expect(forced.commands.at(-1)).toEqual(['docker', 'plugin', 'rm', '-f', 'sharedprop']);
  });

  it('reports the fallback data directory when the plugin has no data mount source', async () => {
    const { deps, lines } = depsFor(
      { plugins: [plugin('sharedprop:latest')] },
      { [inspect]: '[]' },
    );
    await uninstallPlugin(options, deps);
    expect(lines[1]).toMatch(/^volume data is kept in \/var\/lib\/sharedprop \(0 volume\(s\)\)/);
  });
});

describe('the plugin commands', () => {
  async function cli(args: string[], state: FakeEngineState, answers = {}) {
    const { run } = fakeRun(answers);
    let stdout = '';
    let stderr = '';
    let code = 0;
    const program = new Command().exitOverride();
    registerPluginCommands(program, {
      connect: async () => new FakeEngine(state),
      run,
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      setExitCode: (c) => (code = c),
      env: {},
      mounts: new FakeHostMounts([hostEntry('/')]),
    });
    await program.parseAsync(['node', 'sharedprop', 'plugin', ...args]);
    return { stdout, stderr, code };
  }

  it('exits 3 with one line when the engine cannot be reached', async () => {
    const result = await cli(['uninstall'], { failAll: socketError('ECONNREFUSED') });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /^sharedprop plugin uninstall: cannot reach the Docker engine at .*\n$/,
    );
  });

  it('exits 1 with one line when it refuses', async () => {
    const result = await cli(['uninstall', '--name', 'sharedprop'], {
      plugins: [plugin('sharedprop:latest')],
      volumes: VOLUMES,
      containers: [container('web', ['plain'])],
    });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')).toEqual([
      'sharedprop plugin uninstall: running containers use volumes of sharedprop: web(plain); stop them first, or use --force (make: FORCE=1) to remove the plugin anyway',
      '',
    ]);
  });

  it('exits 1 when the docker CLI is missing', async () => {
    const result = await cli(['uninstall'], {}, { '--version': failed(['--version']) });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('sharedprop plugin uninstall: the docker CLI is required\n');
  });

  it('exits 0 and prints what it did', async () => {
    const result = await cli(['uninstall'], {});
    expect(result).toEqual({
      stdout: 'no plugin named sharedprop is installed; nothing to do\n',
      stderr: '',
      code: 0,
    });
  });
});
