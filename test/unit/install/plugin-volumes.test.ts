/**
 * Which volumes are the plugin's (by its reference, as `sharedprop plugin install|uninstall` and
 * the doctor ask), and which running containers use them, with a fake engine. No root, no docker.
 */
import {
  containersUsingVolumes,
  isPluginReference,
  volumesOfPlugin,
} from '../../../src/docker/plugin-volumes.js';
import { isOurDriver } from '../../../src/doctor/gather.js';
import { FakeEngine } from '../../support/cli-fakes.js';
import { container, VOLUMES } from './plugin-harness.js';

describe('which volumes belong to the plugin', () => {
  it.each([
    ['sharedprop', 'sharedprop', true],
    ['sharedprop:latest', 'sharedprop', true],
    ['sharedprop', 'sharedprop:latest', true],
    ['sharedprop:latest', 'sharedprop:latest', true],
    ['sharedprop:v2', 'sharedprop:v2', true],
    ['sharedprop:v2', 'sharedprop', false],
    ['sharedprop', 'sharedprop:v2', false],
    ['sharedprop-old', 'sharedprop', false],
    ['sharedprop-old:latest', 'sharedprop', false],
    ['sharedpro', 'sharedprop', false],
    ['localhost:5000/sharedprop', 'localhost:5000/sharedprop:latest', true],
    ['localhost:5000/sharedprop', 'sharedprop', false],
    ['local', 'sharedprop', false],
  ])('driver %s is plugin %s: %s', (driver, name, expected) => {
    expect(isPluginReference(driver, name)).toBe(expected);
    // The doctor asks the same question and gets the same answer.
    expect(isOurDriver(driver, name)).toBe(expected);
  });

  it('lists the volumes of NAME and NAME:latest, not another tag or a plugin with a common prefix', async () => {
    const engine = new FakeEngine({ volumes: VOLUMES });
    expect(await volumesOfPlugin(engine, 'sharedprop')).toEqual(['plain', 'tagged']);
    expect(await volumesOfPlugin(engine, 'sharedprop:latest')).toEqual(['plain', 'tagged']);
    expect(await volumesOfPlugin(engine, 'sharedprop:v2')).toEqual(['other-tag']);
    expect(await volumesOfPlugin(engine, 'sharedprop-old')).toEqual(['prefix']);
  });

  it('finds the running containers that use them', async () => {
    const engine = new FakeEngine({
      volumes: VOLUMES,
      containers: [
        container('web', ['tagged', 'local']),
        container('db', ['plain']),
        container('stopped', ['plain'], false),
        container('elsewhere', ['prefix', 'other-tag']),
      ],
    });
    expect(await containersUsingVolumes(engine, 'sharedprop')).toEqual([
      { container: 'db', volume: 'plain' },
      { container: 'web', volume: 'tagged' },
    ]);
  });
});
