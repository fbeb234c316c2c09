/**
 * The VolumeDriver protocol under abuse, against the real `sharedprop serve` with real mounts:
 * mount IDs and options named like Object.prototype members (`__proto__`, `constructor`,
 * `valueOf`, ...) are counted, kept across kill -9, and refused like any other key.
 * docs/guarantees.md names these tests.
 */
import { jest } from '@jest/globals';
import { stat } from 'node:fs/promises';
import { hostMountsWithin } from '../../support/host-mounts.js';
import { PluginClient } from '../../support/plugin-client.js';
import { listed, mountpointOf, statusOf, volumesDir } from '../../support/volume-checks.js';
import { HEX } from './fuzz-fields.js';
import { destroyDrivers, diskProblems, entries, pairs, startDriver } from './harness.js';

jest.setTimeout(300_000);
afterEach(destroyDrivers);

describe('protocol abuse: names like Object.prototype members', () => {
  it('prototype-named mount IDs count like any other: valueOf, constructor, toString, __proto__ and hasOwnProperty with a real ID are 6 active mounts, across kill -9; Remove is refused until the last Unmount', async () => {
    const driver = await startDriver();
    const name = 'proto-ids';
    const ids = ['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty', HEX('9e1d')];
    await driver.ok('/VolumeDriver.Create', { Name: name, Opts: {} });
    for (const ID of ids) {
      expect(await driver.ok('/VolumeDriver.Mount', { Name: name, ID })).toEqual({
        Mountpoint: mountpointOf(driver, name),
      });
    }
    const expectCounts = async (live: string[]) => {
      const status = await statusOf(driver, name);
      expect(typeof status.activeMounts).toBe('number');
      expect(status.activeMounts).toBe(live.length);
      expect(pairs(status.mountIds)).toEqual([...live].sort().map((id) => [id, 1]));
    };
    await expectCounts(ids);
    // JSON.parse keeps "__proto__" as an own key: the answer really holds it as a count.
    const text = (
      await new PluginClient(driver.socket).request(
        '/VolumeDriver.Get',
        JSON.stringify({ Name: name }),
      )
    ).text;
    expect(text).toContain('"__proto__":1');

    await driver.stop('SIGKILL');
    await driver.restart();
    await expectCounts(ids);

    // An Unmount of an ID that was never counted, named like a prototype member, changes nothing.
    for (const ID of ['isPrototypeOf', 'propertyIsEnumerable', '__defineGetter__']) {
      await driver.ok('/VolumeDriver.Unmount', { Name: name, ID });
    }
    await expectCounts(ids);

    const live = [...ids];
    while (live.length > 0) {
      const refused = await driver.call('/VolumeDriver.Remove', { Name: name });
      expect(refused.status).toBe(409);
      expect(typeof refused.body.Err).toBe('string');
      const ID = live.shift()!;
      await driver.ok('/VolumeDriver.Unmount', { Name: name, ID });
      await expectCounts(live);
    }
    await driver.ok('/VolumeDriver.Remove', { Name: name });
    expect((await driver.call('/VolumeDriver.Get', { Name: name })).status).toBe(404);
    expect(await diskProblems(driver, [])).toEqual([]);
  });

  it('Opts with an own __proto__ key are refused with a 400 that names it, and nothing is created', async () => {
    const driver = await startDriver();
    // "pv", not "v": a one-letter name is itself invalid, and would hide what is tested here.
    const bodies: [string, string][] = [
      ['{"Name":"pv","Opts":{"__proto__":{"x":"y"}}}', '__proto__'],
      ['{"Name":"pv","Opts":{"__proto__":"1"}}', '__proto__'],
      ['{"Name":"pv","Opts":{"mode":"0750","__proto__":"1"}}', '__proto__'],
      ['{"Name":"pv","Opts":{"__proto__":{"mode":"0700"}}}', '__proto__'],
      ['{"Name":"pv","Opts":{"constructor":"1"}}', 'constructor'],
      ['{"Name":"pv","Opts":{"toString":"x"}}', 'toString'],
      ['{"Name":"pv","Opts":{"hasOwnProperty":"x"}}', 'hasOwnProperty'],
    ];
    const nothingCreated = async () => {
      expect((await driver.call('/VolumeDriver.Get', { Name: 'pv' })).status).toBe(404);
      expect(await listed(driver)).toEqual([]);
      expect(await entries(volumesDir(driver))).toEqual([]);
      expect(await entries(driver.mountRoot)).toEqual(['.sharedprop-mountroot']);
      expect(await hostMountsWithin(driver.mountRoot)).toEqual([]);
    };
    for (const [body, option] of bodies) {
      const answer = await driver.call('/VolumeDriver.Create', null, body);
      expect({ body, status: answer.status }).toEqual({ body, status: 400 });
      expect(answer.body.Err).toEqual(expect.stringContaining(option));
      await nothingCreated();
    }
    // The volume made properly afterwards has the default options, and the same bodies are
    // still refused as bad input (not as "exists with different options").
    await driver.ok('/VolumeDriver.Create', { Name: 'pv', Opts: {} });
    for (const [body, option] of bodies) {
      const answer = await driver.call('/VolumeDriver.Create', null, body);
      expect({ body, status: answer.status }).toEqual({ body, status: 400 });
      expect(answer.body.Err).toEqual(expect.stringContaining(option));
    }
    expect((await stat(mountpointOf(driver, 'pv'))).mode & 0o7777).toBe(0o755);
    await driver.ok('/VolumeDriver.Create', { Name: 'pv', Opts: null });
    await driver.ok('/VolumeDriver.Remove', { Name: 'pv' });
    await nothingCreated();
  });
});
