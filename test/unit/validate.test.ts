import {
  describeOptions,
  parseOptions,
  sameOptions,
  tmpfsMountOptions,
  type TmpfsOptions,
} from '../../src/model/options.js';
import {
  shownName,
  validateDerivedPaths,
  validateMountId,
  validateName,
} from '../../src/model/names.js';
import { VolumeError } from '../../src/model/errors.js';

describe('volume names', () => {
  it('are shown quoted, and cut after 64 characters', () => {
    expect(shownName('a"b\n')).toBe('"a\\"b\\n"');
    expect(shownName('x'.repeat(64))).toBe(`"${'x'.repeat(64)}"`);
    expect(shownName(`${'x'.repeat(64)}yz`)).toBe(`"${'x'.repeat(64)}..."`);
  });

  it.each(['ab', 'my-vol', 'vol_1.data', 'A9', 'x'.repeat(255)])('accepts %s', (name) => {
    expect(() => validateName(name)).not.toThrow();
  });

  it.each([
    ['..', /invalid volume name/],
    ['.hidden', /starting with a letter or digit/],
    ['a/b', /invalid volume name/],
    ['a', /at least two characters/],
    ['', /invalid volume name/],
    ['nul\u0000x', /invalid volume name/],
    ['x'.repeat(300), /longer than 255/],
    ['-rf', /invalid/],
    ['sp ace', /invalid/],
    ['../../etc', /invalid/],
  ])('rejects %j', (name, message) => {
    let caught: unknown;
    try {
      validateName(name);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(VolumeError);
    expect((caught as VolumeError).kind).toBe('invalid');
    expect((caught as VolumeError).message).toMatch(message);
  });
});

/** A 64 GiB host with 4 KiB pages, as serve passes the tmpfs size limits. */
const HOST = { pageSize: 4096, memoryBytes: 64n * 1024n ** 3n };

/** Options that must be a tmpfs's. */
function tmpfsOptions(raw: Record<string, string>): TmpfsOptions {
  const options = parseOptions('v', raw, { tmpfs: HOST });
  if (options.kind !== 'tmpfs') throw new Error(`not a tmpfs: ${options.kind}`);
  return options;
}

describe('create options', () => {
  it('defaults to rshared', () => {
    expect(parseOptions('v1', {})).toEqual({ kind: 'directory', propagation: 'rshared' });
  });

  it('parses uid, gid, mode and propagation', () => {
    expect(
      parseOptions('v1', { uid: '1000', gid: '0', mode: '0750', propagation: 'shared' }),
    ).toEqual({
      kind: 'directory',
      uid: 1000,
      gid: 0,
      mode: 0o750,
      propagation: 'shared',
    });
    expect(parseOptions('v1', { mode: '1777' })).toMatchObject({ mode: 0o1777 });
  });

  it('rejects unknown options and lists the valid ones', () => {
    expect(() => parseOptions('v1', { bogus: '1' })).toThrow(
      'volume "v1": unknown option "bogus" (valid options: type, size, path, uid, gid, mode, propagation, reap)',
    );
    expect(() => parseOptions('v1', { a: '1', b: '2' })).toThrow(/unknown options "a", "b"/);
  });

  it.each([
    [{ uid: '-1' }, /uid="-1" is not a numeric id/],
    [{ uid: 'root' }, /not a numeric id/],
    [{ gid: '99999999999' }, /not a numeric id/],
    [{ mode: '999' }, /not an octal mode/],
    [{ mode: 'rwx' }, /not an octal mode/],
    [{ propagation: 'private' }, /is not one of rshared, shared/],
    [{ type: 'ramfs' }, /type="ramfs" is not one of directory, tmpfs/],
    [{ reap: 'yes' }, /reap="yes" is not one of off, on-unmount/],
    [{ path: 'relative/dir' }, /is not an absolute, normalised directory path/],
    [{ path: '/a/../etc' }, /is not an absolute, normalised directory path/],
    [{ path: '/a//b' }, /is not an absolute, normalised directory path/],
    [{ path: '/a/b/' }, /is not an absolute, normalised directory path/],
    [{ path: '/a/\u0000b' }, /is not an absolute, normalised directory path/],
    [{ path: '/' }, /is refused: \/ and the kernel's/],
    [{ path: '/proc' }, /is refused/],
    [{ path: '/sys/fs/cgroup' }, /is refused/],
    [{ path: '/dev/shm' }, /is refused/],
    [{ path: '/srv/x', type: 'tmpfs' }, /does not go with type/],
    [{ path: '/srv/x', type: 'directory' }, /does not go with type/],
    [{ path: '/srv/x', uid: '1', mode: '0700' }, /does not go with uid, mode/],
    [{ path: '/srv/x', reap: 'on-unmount' }, /does not go with reap/],
    [{ size: '64m' }, /size applies only to type=tmpfs/],
    [{ type: 'directory', size: '64m' }, /size applies only to type=tmpfs/],
    [{ type: 'tmpfs', size: '0' }, /is zero, which the kernel reads as no limit/],
    [{ type: 'tmpfs', size: '64m,exec' }, /is not a size such as 64m/],
    [{ type: 'tmpfs', size: '101%' }, /above the limit/],
    [{ type: 'tmpfs', size: '1p' }, /above the limit/],
    [{ type: 'tmpfs', size: '1'.repeat(21) }, /does not fit in the kernel's 64 bits/],
  ])('rejects %j', (opts, message) => {
    expect(() => parseOptions('v1', opts as Record<string, string>, { tmpfs: HOST })).toThrow(
      message,
    );
  });

  it('parses type and size; a size is kept as the exact bytes the kernel gets', () => {
    expect(parseOptions('v1', { type: 'directory' })).toEqual({
      kind: 'directory',
      propagation: 'rshared',
    });
    expect(parseOptions('v1', { type: 'tmpfs' })).toEqual({
      kind: 'tmpfs',
      propagation: 'rshared',
    });
    // A host of 1,000 pages of 4 KiB for the percentages, of 1 TiB for the rest.
    const small = { pageSize: 4096, memoryBytes: 1000n * 4096n };
    const large = { pageSize: 4096, memoryBytes: 2n ** 40n };
    for (const [size, kept, tmpfs] of [
      ['64M', '67108864', large],
      ['1g', '1073741824', large],
      ['65536', '65536', large],
      ['512k', '524288', large],
      ['10%', '409600', small],
      ['100%', '4096000', small],
    ] as const) {
      expect(parseOptions('v1', { type: 'tmpfs', size }, { tmpfs })).toMatchObject({ size: kept });
    }
  });

  it('gives a tmpfs the mount options of its size, owner and mode, 0755 by default', () => {
    expect(tmpfsMountOptions(tmpfsOptions({ type: 'tmpfs' }))).toBe('nosuid,nodev,mode=0755');
    expect(
      tmpfsMountOptions(
        tmpfsOptions({ type: 'tmpfs', size: '8m', uid: '1', gid: '2', mode: '1770' }),
      ),
    ).toBe('nosuid,nodev,mode=01770,uid=1,gid=2,size=8388608');
  });

  it('compares options after defaults are filled in', () => {
    expect(sameOptions(parseOptions('v', {}), parseOptions('v', { type: 'directory' }))).toBe(true);
    expect(sameOptions(parseOptions('v', {}), parseOptions('v', { type: 'tmpfs' }))).toBe(false);
    expect(
      sameOptions(
        parseOptions('v', { type: 'tmpfs', size: '1g' }, { tmpfs: HOST }),
        parseOptions('v', { type: 'tmpfs', size: '1G' }, { tmpfs: HOST }),
      ),
    ).toBe(true);
    expect(
      sameOptions(
        parseOptions('v', { type: 'tmpfs', size: '1g' }, { tmpfs: HOST }),
        parseOptions('v', { type: 'tmpfs' }),
      ),
    ).toBe(false);
    expect(describeOptions(parseOptions('v', { type: 'tmpfs', size: '8m' }, { tmpfs: HOST }))).toBe(
      'propagation=rshared type=tmpfs size=8388608',
    );
    expect(sameOptions(parseOptions('v', {}), parseOptions('v', { propagation: 'rshared' }))).toBe(
      true,
    );
    expect(sameOptions(parseOptions('v', {}), parseOptions('v', { uid: '1' }))).toBe(false);
    expect(describeOptions(parseOptions('v', { uid: '1', mode: '700' }))).toBe(
      'propagation=rshared uid=1 mode=0700',
    );
  });

  it('refuses an own __proto__ key (as JSON.parse makes it) like any unknown option', () => {
    const raw = JSON.parse('{"__proto__":{"x":"y"},"uid":"1"}') as Record<string, unknown>;
    expect(() => parseOptions('v1', raw)).toThrow(/unknown option "__proto__"/);
    expect(() => parseOptions('v1', new Map([['constructor', '1']]))).toThrow(
      /unknown option "constructor"/,
    );
    expect(parseOptions('v1', new Map([['uid', '7']]))).toEqual({
      kind: 'directory',
      propagation: 'rshared',
      uid: 7,
    });
  });

  it('refuses a name whose derived paths would pass PATH_MAX', () => {
    expect(() => validateDerivedPaths('v', ['/a/' + 'x'.repeat(4000)])).not.toThrow();
    expect(() => validateDerivedPaths('v', ['/a/' + 'x'.repeat(4093)])).toThrow(
      /too long for this data root/,
    );
    // The longest decides, wherever it is in the list, and the message gives its length.
    expect(() => validateDerivedPaths('v', ['/a', '/a/' + 'x'.repeat(4093), '/b'])).toThrow(
      /would be 4096 bytes; the limit is 4095/,
    );
  });

  it('checks mount IDs', () => {
    expect(() => validateMountId('v', 'abc123')).not.toThrow();
    expect(() => validateMountId('v', '')).toThrow(/invalid mount ID/);
    expect(() => validateMountId('v', 'a\nb')).toThrow(/invalid mount ID/);
    expect(() => validateMountId('v', 'x'.repeat(512))).not.toThrow();
    expect(() => validateMountId('v', 'x'.repeat(513))).toThrow(
      new RegExp(`^volume "v": invalid mount ID "x{80}"$`),
    );
    expect(() => validateMountId('v', 'a b\u00e9')).not.toThrow();
  });
});
