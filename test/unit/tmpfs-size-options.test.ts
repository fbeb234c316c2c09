/**
 * Create options with a tmpfs size: the exact parser behind `-o size=`, the limit passed in by
 * the caller (serve's), the cap as the default size, and idempotent Create.
 */
import { execa } from 'execa';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { VolumeError } from '../../src/model/errors.js';
import {
  describeOptions,
  parseOptions,
  sameOptions,
  tmpfsMountOptions,
  type TmpfsOptions,
  type VolumeOptions,
} from '../../src/model/options.js';
import { tmpfsSizeLimits, type TmpfsSizeLimits } from '../../src/model/tmpfs-size.js';
import { serve } from '../../src/serve.js';
import { SharedpropDriver } from '../../src/driver/sharedprop-driver.js';
import { FakeMounts, FakeStore } from '../support/driver-fakes.js';
import { silentLogger } from '../support/silent-logger.js';

const GiB = 1024n ** 3n;
const TiB = 1024n ** 4n;
const HOST: TmpfsSizeLimits = { pageSize: 4096, memoryBytes: 64n * GiB };

/** Options that must be a tmpfs's (the kind narrows the union). */
function asTmpfs(options: VolumeOptions): TmpfsOptions {
  if (options.kind !== 'tmpfs') throw new Error(`not a tmpfs: ${options.kind}`);
  return options;
}
const BIG_HOST: TmpfsSizeLimits = { pageSize: 4096, memoryBytes: 2n * TiB };

function refusal(fn: () => unknown): VolumeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VolumeError);
    return error as VolumeError;
  }
  throw new Error('accepted');
}

describe('parseOptions with a tmpfs size', () => {
  it.each(['17179869184g', '16777216g', '9999999999999999'])(
    'refuses %j (accepted and mounted without a limit before) with a 400 naming the limit',
    (size) => {
      const error = refusal(() => parseOptions('netns', { type: 'tmpfs', size }, { tmpfs: HOST }));
      expect(error.kind).toBe('invalid');
      expect(error.message).toMatch(
        new RegExp(
          `^volume "netns": option size="${size}" .*the limit is 68719476736 bytes \\(64 GiB\\), the host's memory$`,
        ),
      );
    },
  );

  it('accepts 1t when the limit allows it, and stores the exact bytes the kernel gets', () => {
    const options = asTmpfs(parseOptions('v', { type: 'tmpfs', size: '1t' }, { tmpfs: BIG_HOST }));
    expect(options).toEqual({ kind: 'tmpfs', propagation: 'rshared', size: '1099511627776' });
    expect(tmpfsMountOptions(options)).toBe('nosuid,nodev,mode=0755,size=1099511627776');
    expect(describeOptions(options)).toBe('propagation=rshared type=tmpfs size=1099511627776');
  });

  it('refuses a size above serve --tmpfs-max-size, naming it', () => {
    const limits = tmpfsSizeLimits(HOST, '256m');
    expect(
      asTmpfs(parseOptions('v', { type: 'tmpfs', size: '256M' }, { tmpfs: limits })).size,
    ).toBe('268435456');
    expect(
      refusal(() => parseOptions('v', { type: 'tmpfs', size: '257m' }, { tmpfs: limits })).message,
    ).toBe(
      'volume "v": option size="257m" is 269484032 bytes (257 MiB), above the limit: the limit is 268435456 bytes (256 MiB), serve --tmpfs-max-size',
    );
  });

  it("names the host's memory as the limit when the cap is all of it", () => {
    const limits = tmpfsSizeLimits(HOST, String(HOST.memoryBytes));
    expect(limits.maxBytes).toBe(HOST.memoryBytes);
    expect(
      refusal(() =>
        parseOptions(
          'v',
          { type: 'tmpfs', size: String(HOST.memoryBytes + 4096n) },
          { tmpfs: limits },
        ),
      ).message,
    ).toMatch(/the limit is \d+ bytes \(\d+ GiB\), the host's memory$/);
  });

  it('gives a tmpfs created without a size the cap; without a cap, the kernel default stays', () => {
    const limits = tmpfsSizeLimits(HOST, '256m');
    const capped = asTmpfs(parseOptions('v', { type: 'tmpfs' }, { tmpfs: limits }));
    expect(capped).toEqual({ kind: 'tmpfs', propagation: 'rshared', size: '268435456' });
    expect(tmpfsMountOptions(capped)).toBe('nosuid,nodev,mode=0755,size=268435456');
    expect(parseOptions('v', { type: 'tmpfs' }, { tmpfs: HOST })).toEqual({
      kind: 'tmpfs',
      propagation: 'rshared',
    });
    // Only tmpfs volumes have a size.
    expect(parseOptions('v', {}, { tmpfs: limits })).toEqual({
      kind: 'directory',
      propagation: 'rshared',
    });
    expect(parseOptions('v', { path: '/srv/x' }, { tmpfs: limits })).toEqual({
      kind: 'path',
      propagation: 'rshared',
      path: '/srv/x',
    });
  });

  it('keeps Create idempotent: the same text twice, another case or spelling of the same bytes', () => {
    const parse = (size?: string) =>
      parseOptions('v', size === undefined ? { type: 'tmpfs' } : { type: 'tmpfs', size }, {
        tmpfs: tmpfsSizeLimits(HOST, '1g'),
      });
    expect(sameOptions(parse('64m'), parse('64m'))).toBe(true);
    expect(sameOptions(parse('64m'), parse('64M'))).toBe(true);
    expect(sameOptions(parse('64m'), parse('65536k'))).toBe(true);
    expect(sameOptions(parse('1'), parse('4096'))).toBe(true);
    expect(sameOptions(parse('1%'), parse('1%'))).toBe(true);
    expect(sameOptions(parse(), parse())).toBe(true);
    expect(sameOptions(parse(), parse('1g'))).toBe(true);
    expect(sameOptions(parse('64m'), parse('65m'))).toBe(false);
  });

  it('reads no host: a size needs the limits passed in, a tmpfs without one does not', () => {
    expect(() => parseOptions('v', { type: 'tmpfs', size: '1m' })).toThrow(
      'parseOptions: size needs tmpfs limits',
    );
    expect(parseOptions('v', { type: 'tmpfs' })).toEqual({ kind: 'tmpfs', propagation: 'rshared' });
  });

  it('still refuses a size without type=tmpfs, checking the size first', () => {
    expect(() => parseOptions('v', { size: '64m' }, { tmpfs: HOST })).toThrow(
      'volume "v": option size applies only to type=tmpfs',
    );
    expect(() => parseOptions('v', { size: '0' }, { tmpfs: HOST })).toThrow(/is zero/);
  });
});

describe('serve --tmpfs-max-size', () => {
  it('refuses to start on a bad value, before it touches the socket or the data root', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'sharedprop-unit-'));
    try {
      // A data root beneath a file cannot be made: were the value taken, serve would still stop
      // (at its lock, with another message) instead of starting a driver in this test.
      await writeFile(path.join(base, 'file'), '');
      const dataRoot = path.join(base, 'file', 'data');
      const socket = path.join(base, 'sp.sock');
      for (const [size, message] of [
        ['64x', '--tmpfs-max-size "64x" is not a size such as 64m'],
        ['0', '--tmpfs-max-size "0" is zero'],
        ['1e', "above the host's memory"],
      ]) {
        await expect(
          serve({ socket, dataRoot, tmpfsMaxSize: size }, silentLogger()),
        ).rejects.toThrow(message);
      }
      expect(await readdir(base)).toEqual(['file']);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});

describe('the driver with tmpfs size limits', () => {
  async function driverWith(tmpfsSizeLimits?: TmpfsSizeLimits) {
    const store = new FakeStore();
    const mounts = new FakeMounts();
    const driver = new SharedpropDriver({
      dataRoot: '/fake/data',
      mountRoot: '/fake/mounts',
      logger: silentLogger(),
      store,
      mounts,
      statusMaxAgeMs: 0,
      ...(tmpfsSizeLimits ? { tmpfsSizeLimits } : {}),
    });
    await driver.start();
    return { driver, store, mounts };
  }

  it('mounts a tmpfs created without size at the cap, and refuses one above it, creating nothing', async () => {
    const { driver, store, mounts } = await driverWith(tmpfsSizeLimits(HOST, '16m'));
    await driver.create('capped', new Map([['type', 'tmpfs']]));
    expect((store.volumes.get('capped')?.options as TmpfsOptions | undefined)?.size).toBe(
      '16777216',
    );
    expect(mounts.calls).toEqual([
      'tmpfs /fake/mounts/capped nosuid,nodev,mode=0755,size=16777216',
    ]);
    expect((await driver.get('capped')).status).toMatchObject({ size: '16777216' });
    // The same Create again is not a conflict.
    await driver.create('capped', new Map([['type', 'tmpfs']]));
    await expect(
      driver.create(
        'big',
        new Map([
          ['type', 'tmpfs'],
          ['size', '17m'],
        ]),
      ),
    ).rejects.toThrow(
      /size="17m" is 17825792 bytes \(17 MiB\), above the limit: the limit is 16777216 bytes \(16 MiB\), serve --tmpfs-max-size/,
    );
    expect(store.volumes.has('big')).toBe(false);
    expect(mounts.calls).toHaveLength(1);
  });

  it("checks against the host's memory when it is given no limits", async () => {
    const { driver, store } = await driverWith();
    const error = await driver
      .create(
        'huge',
        new Map([
          ['type', 'tmpfs'],
          ['size', '17179869184g'],
        ]),
      )
      .then(
        () => undefined,
        (e: unknown) => e as VolumeError,
      );
    expect(error?.kind).toBe('invalid');
    expect(error?.message).toMatch(/does not fit in the kernel's 64 bits.*the host's memory$/);
    await driver.create(
      'whole',
      new Map([
        ['type', 'tmpfs'],
        ['size', '100%'],
      ]),
    );
    const { stdout } = await execa('grep', ['^MemTotal:', '/proc/meminfo']);
    const memTotal = BigInt(/(\d+) kB/.exec(stdout)?.[1] ?? '0') * 1024n;
    expect((store.volumes.get('whole')?.options as TmpfsOptions | undefined)?.size).toBe(
      memTotal.toString(),
    );
  });
});
