/**
 * What the tests of `sharedprop plugin install|uninstall` share: a fake engine's volumes,
 * containers and plugins, and a fake `run` that records the docker commands issued.
 */
import type { ContainerDetails, PluginSummary } from '../../../src/docker/engine-client.js';
import type { PluginDeps } from '../../../src/install/plugin-install.js';
import { CommandError, type RunResult } from '../../../src/system/exec.js';
import { FakeEngine, type FakeEngineState } from '../../support/cli-fakes.js';

const volume = (name: string, driver: string) => ({ name, driver, mountpoint: `/mnt/${name}` });
export const container = (name: string, volumes: string[], running = true): ContainerDetails => ({
  id: `id-${name}`,
  name,
  running,
  pid: running ? 100 : 0,
  mounts: volumes.map((v) => ({
    type: 'volume',
    name: v,
    driver: 'sharedprop',
    destination: '/mnt',
  })),
});
export const plugin = (name: string, enabled = true): PluginSummary => ({
  id: `id-${name}`,
  name,
  enabled,
});

export const VOLUMES = [
  volume('plain', 'sharedprop'),
  volume('tagged', 'sharedprop:latest'),
  volume('other-tag', 'sharedprop:v2'),
  volume('prefix', 'sharedprop-old:latest'),
  volume('local', 'local'),
];

/** A `run` that records every command and answers from `answers` (by its joined arguments). */
export function fakeRun(answers: Record<string, string | CommandError> = {}) {
  const commands: string[][] = [];
  const run = async (command: string, args: readonly string[]): Promise<RunResult> => {
    commands.push([command, ...args]);
    const answer = answers[args.join(' ')];
    if (answer instanceof CommandError) throw answer;
    return { stdout: answer ?? '', stderr: '' };
  };
  return { run, commands };
}

export const failed = (args: string[]) =>
  new CommandError('docker', args, 1, 'Error response from daemon');

export function depsFor(
  state: FakeEngineState,
  answers: Record<string, string | CommandError> = {},
) {
  const { run, commands } = fakeRun(answers);
  const lines: string[] = [];
  const deps: PluginDeps = { engine: new FakeEngine(state), run, say: (l) => lines.push(l) };
  return { deps, commands, lines };
}
