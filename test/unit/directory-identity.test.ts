/** How a recorded directory identity is compared with the directory found now (pure). */
import {
  describeIdentity,
  isRecordedDirectory,
  isSameDirectory,
  recordedIdentitySchema,
} from '../../src/model/directory-identity.js';
import {
  describeOptions,
  parseOptions,
  sameOptions,
  type PathOptions,
} from '../../src/model/options.js';
import { recordFromJson } from '../../src/model/record.js';

const dir = { device: '8:1', ino: '42', btime: '1700000000.000000001' };

describe('isSameDirectory', () => {
  it('needs the same device and inode', () => {
    expect(isSameDirectory(dir, { ...dir })).toBe(true);
    expect(isSameDirectory(dir, { ...dir, device: '8:2' })).toBe(false);
    expect(isSameDirectory(dir, { ...dir, ino: '43' })).toBe(false);
  });

  it('and the same birth time where both have one (an inode number reused after rmdir; mkdir)', () => {
    expect(isSameDirectory(dir, { ...dir, btime: '1700000001.000000001' })).toBe(false);
    expect(isSameDirectory({ device: '8:1', ino: '42' }, dir)).toBe(true);
    expect(isSameDirectory(dir, { device: '8:1', ino: '42' })).toBe(true);
  });
});

describe('isRecordedDirectory', () => {
  const recorded = { ...dir, boot: 'b1' };

  it('within one boot: the same directory only', () => {
    expect(isRecordedDirectory(recorded, dir, 'b1')).toBe(true);
    expect(isRecordedDirectory(recorded, { ...dir, device: '8:17' }, 'b1')).toBe(false);
    expect(isRecordedDirectory(recorded, { ...dir, ino: '7' }, 'b1')).toBe(false);
  });

  it('after a reboot the device number may change when inode and birth time match', () => {
    expect(isRecordedDirectory(recorded, { ...dir, device: '8:17' }, 'b2')).toBe(true);
    expect(isRecordedDirectory(recorded, { ...dir, device: '8:17', ino: '7' }, 'b2')).toBe(false);
    const reborn = { ...dir, device: '8:17', btime: '1700000002.000000000' };
    expect(isRecordedDirectory(recorded, reborn, 'b2')).toBe(false);
  });

  it('without a birth time, or without boot ids, the device must match', () => {
    const noBtime = { device: '8:1', ino: '42', boot: 'b1' };
    expect(isRecordedDirectory(noBtime, { device: '8:17', ino: '42' }, 'b2')).toBe(false);
    const moved = { ...dir, device: '8:17' };
    expect(isRecordedDirectory(recorded, { device: '8:17', ino: '42' }, 'b2')).toBe(false);
    expect(isRecordedDirectory({ ...dir }, moved, 'b2')).toBe(false);
    expect(isRecordedDirectory(recorded, moved, undefined)).toBe(false);
  });
});

describe('the recorded identity', () => {
  it('is strict about its shape', () => {
    expect(recordedIdentitySchema.parse(recorded())).toEqual(recorded());
    for (const bad of [
      { ...recorded(), device: '8' },
      { ...recorded(), ino: '4a' },
      { ...recorded(), btime: '17.1' },
      { ...recorded(), boot: '' },
      { ...recorded(), extra: 1 },
      { device: 'x8:1', ino: '1' },
      { device: '8:1x', ino: '1' },
      { device: '8:1', ino: '1x' },
      { device: '8:1', ino: 'x1' },
      { device: '8:1', ino: '1', btime: 'x1.000000000' },
      { device: '8:1', ino: '1', btime: '1.0000000001' },
    ]) {
      expect(recordedIdentitySchema.safeParse(bad).success).toBe(false);
    }
    expect(
      recordedIdentitySchema.safeParse({ device: '8:1', ino: '1', btime: '-1.000000000' }).success,
    ).toBe(true);
  });

  it('is described by device and inode', () => {
    expect(describeIdentity(dir)).toBe('device 8:1, inode 42');
  });

  function recorded() {
    return { device: '259:3', ino: '12', btime: '1700000000.123456789', boot: 'b' };
  }
});

describe('an adopted directory identity in the options a record keeps', () => {
  const given = parseOptions('v', { path: '/srv/hd' }) as PathOptions;
  const recorded = { ...given, identity: { device: '8:1', ino: '42', boot: 'b' } };

  it('is no option: Create again with the same options is the same volume, and it is never shown', () => {
    expect(sameOptions(recorded, given)).toBe(true);
    expect(sameOptions(recorded, { ...given, propagation: 'shared' })).toBe(false);
    expect(describeOptions(recorded)).toBe('propagation=rshared path=/srv/hd');
    expect(() => parseOptions('v', { path: '/srv/hd', identity: '8:1' })).toThrow(/identity/);
  });

  it('is loaded from a record, and refused when malformed', () => {
    const file = { version: 2, name: 'v', createdAt: 't', options: recorded };
    expect(recordFromJson(file).options).toEqual(recorded);
    const bad = { ...file, options: { ...recorded, identity: { device: '8:1' } } };
    expect(() => recordFromJson(bad)).toThrow(/options\.identity\.ino/);
  });
});
