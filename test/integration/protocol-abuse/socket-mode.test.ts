/**
 * The VolumeDriver protocol under abuse, against the real `sharedprop serve` with real mounts:
 * the socket's mode and owner under umask 000, across a restart and across kill -9.
 * docs/guarantees.md names this test.
 */
import { jest } from '@jest/globals';
import { chmod, lstat } from 'node:fs/promises';
import type { DriverProcess } from '../../support/driver-process.js';
import { destroyDrivers, startDriver } from './harness.js';

jest.setTimeout(300_000);
afterEach(destroyDrivers);

describe('protocol abuse: the socket', () => {
  it('the socket is mode 0600 and owned by root, even under umask 000, and stays so after a restart and after kill -9', async () => {
    const old = process.umask(0);
    let driver: DriverProcess;
    try {
      driver = await startDriver();
      const expectPrivate = async (when: string) => {
        const socket = await lstat(driver.socket);
        expect({
          when,
          socket: socket.isSocket(),
          mode: socket.mode & 0o7777,
          uid: socket.uid,
        }).toEqual({
          when,
          socket: true,
          mode: 0o600,
          uid: 0,
        });
        expect((await driver.call('/Plugin.Activate', {})).status).toBe(200);
      };
      await expectPrivate('at start');
      await driver.stop('SIGTERM');
      await driver.restart();
      await expectPrivate('after SIGTERM and a restart');
      await driver.stop('SIGKILL');
      // The stale socket left by kill -9, opened up by someone: replaced by a private one.
      await chmod(driver.socket, 0o666);
      await driver.restart();
      await expectPrivate('after kill -9 and a restart');
    } finally {
      process.umask(old);
    }
  });
});
