/**
 * The VolumeDriver protocol under abuse, against the real `sharedprop serve` with real mounts:
 * 300 parallel Creates of one name, with one option set and with two, and 300 parallel Removes.
 * docs/guarantees.md names these tests.
 */
import { jest } from '@jest/globals';
import { stat } from 'node:fs/promises';
import { hostMountsAt } from '../../support/host-mounts.js';
import { PluginClient } from '../../support/plugin-client.js';
import { listed, mountpointOf, volumesDir } from '../../support/volume-checks.js';
import {
  destroyDrivers,
  entries,
  mountShowsData,
  settledDiskProblems,
  startDriver,
} from './harness.js';

jest.setTimeout(300_000);
afterEach(destroyDrivers);

describe('protocol abuse: parallel Creates of one name', () => {
  it('300 parallel Creates of one name: all answered 200, exactly one mount at the mount point and one volume directory; 300 parallel Removes then leave nothing', async () => {
    const driver = await startDriver();
    const client = new PluginClient(driver.socket, 300);
    try {
      const answers = await Promise.all(
        Array.from({ length: 300 }, () =>
          client.request('/VolumeDriver.Create', JSON.stringify({ Name: 'same', Opts: {} })),
        ),
      );
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      expect(await entries(volumesDir(driver))).toEqual(['same']);
      expect(await hostMountsAt(mountpointOf(driver, 'same'))).toHaveLength(1);
      expect(await settledDiskProblems(driver, ['same'])).toEqual([]);
      expect(await mountShowsData(driver, 'same')).toBe(true);
      expect(await listed(driver)).toEqual(['same']);

      const removes = await Promise.all(
        Array.from({ length: 300 }, () =>
          client.request('/VolumeDriver.Remove', JSON.stringify({ Name: 'same' })),
        ),
      );
      const tally = removes.reduce<Record<number, number>>(
        (t, a) => ({ ...t, [a.status]: (t[a.status] ?? 0) + 1 }),
        {},
      );
      expect(tally).toEqual({ 200: 1, 404: 299 });
      expect(await settledDiskProblems(driver, [])).toEqual([]);
      expect(await entries(volumesDir(driver))).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('300 parallel Creates of one name with two option sets: one set wins whole (all 200), the other is refused (all 409), one mount', async () => {
    const driver = await startDriver();
    const client = new PluginClient(driver.socket, 300);
    try {
      const options = (i: number) => (i % 2 === 0 ? {} : { mode: '0750' });
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          client.request(
            '/VolumeDriver.Create',
            JSON.stringify({ Name: 'raced', Opts: options(i) }),
          ),
        ),
      );
      const byOptions = [0, 1].map((parity) =>
        answers.filter((_, i) => i % 2 === parity).map((a) => a.status),
      );
      const winner = byOptions[0]!.includes(200) ? 0 : 1;
      expect(byOptions[winner]).toEqual(Array(150).fill(200));
      expect(byOptions[1 - winner]).toEqual(Array(150).fill(409));
      expect((await stat(mountpointOf(driver, 'raced'))).mode & 0o777).toBe(
        winner === 0 ? 0o755 : 0o750,
      );
      expect(await settledDiskProblems(driver, ['raced'])).toEqual([]);
    } finally {
      client.close();
    }
  });
});
