/**
 * The options model: a discriminated union by kind, one schema per kind, and records of older
 * versions (no `kind`) that still load into it.
 */
import {
  describeOptions,
  optionsSchema,
  parseOptions,
  sameOptions,
} from '../../src/model/options.js';
import { countsFromJson, optionsToJson, recordFromJson } from '../../src/model/record.js';
import { parseRecord } from '../../src/state/record-file.js';
import { statusJsonSchema, type VolumeStatus } from '../../src/model/status.js';
import { statusJson } from '../../src/protocol/status-json.js';

describe('the options union', () => {
  it('gives each Create its kind', () => {
    expect(parseOptions('v', {}).kind).toBe('directory');
    expect(parseOptions('v', { type: 'tmpfs' }).kind).toBe('tmpfs');
    expect(parseOptions('v', { path: '/srv/x' })).toEqual({
      kind: 'path',
      propagation: 'rshared',
      path: '/srv/x',
    });
  });

  it.each([
    [{ kind: 'directory', propagation: 'rshared', size: '1m' }],
    [{ kind: 'directory', propagation: 'rshared', path: '/srv/x' }],
    [{ kind: 'path', propagation: 'rshared', path: '/srv/x', uid: 1 }],
    [{ kind: 'path', propagation: 'rshared', path: '/srv/x', reap: 'on-unmount' }],
    [{ kind: 'path', propagation: 'rshared' }],
    [{ kind: 'tmpfs', propagation: 'rshared', path: '/srv/x' }],
    [{ kind: 'bogus', propagation: 'rshared' }],
  ])('cannot represent %j', (options) => {
    expect(optionsSchema.safeParse(options).success).toBe(false);
  });

  it('compares by kind, then by every option the kind declares', () => {
    const dir = parseOptions('v', { uid: '1' });
    expect(sameOptions(dir, parseOptions('v', { uid: '1' }))).toBe(true);
    expect(sameOptions(dir, parseOptions('v', { uid: '1', type: 'tmpfs' }))).toBe(false);
    expect(sameOptions(dir, parseOptions('v', { uid: '1', reap: 'on-unmount' }))).toBe(false);
    expect(sameOptions(dir, parseOptions('v', { uid: '1', gid: '1' }))).toBe(false);
    const adopted = parseOptions('v', { path: '/srv/a' });
    expect(sameOptions(adopted, parseOptions('v', { path: '/srv/b' }))).toBe(false);
    expect(sameOptions(adopted, parseOptions('v', { path: '/srv/a', propagation: 'shared' }))).toBe(
      false,
    );
  });
});

describe('volume.json of every version', () => {
  const old = (options: Record<string, unknown>) =>
    JSON.stringify({ version: 2, name: 'v', createdAt: 't', options });

  it('takes the kind a record names, whatever else it holds', () => {
    // A tmpfs written without the `type` older drivers need (by hand, or a later version).
    expect(parseRecord(old({ kind: 'tmpfs', propagation: 'rshared', size: '8m' })).options).toEqual(
      { kind: 'tmpfs', propagation: 'rshared', size: '8m' },
    );
  });

  it('loads a record written before the kind: neither type nor path is a directory', () => {
    expect(parseRecord(old({ propagation: 'rshared', uid: 5, mode: 0o700 })).options).toEqual({
      kind: 'directory',
      propagation: 'rshared',
      uid: 5,
      mode: 0o700,
    });
    expect(parseRecord(old({ propagation: 'shared', type: 'tmpfs', size: '8m' })).options).toEqual({
      kind: 'tmpfs',
      propagation: 'shared',
      size: '8m',
    });
    expect(parseRecord(old({ propagation: 'rshared', path: '/srv/h' })).options).toEqual({
      kind: 'path',
      propagation: 'rshared',
      path: '/srv/h',
    });
  });

  it('loads a version 1 record (counts inside) of the old format', () => {
    const record = recordFromJson({
      version: 1,
      name: 'v',
      createdAt: 't',
      options: { propagation: 'rshared', reap: 'on-unmount' },
      mounts: { c1: 2 },
    });
    expect(record.options).toEqual({
      kind: 'directory',
      propagation: 'rshared',
      reap: 'on-unmount',
    });
    expect(record.mounts).toEqual(new Map([['c1', 2]]));
    // Counts that are neither pairs nor an object are refused, never read as none.
    expect(() => countsFromJson(5)).toThrow(/unexpected mount count 5/);
    expect(countsFromJson(null)).toEqual(new Map());
  });

  it('refuses an option whose value is not a string, naming it', () => {
    expect(() => parseOptions('v', { size: 5 } as unknown as Record<string, string>)).toThrow(
      /option size must be a string/,
    );
  });

  it('refuses an old record with options that never went together', () => {
    expect(() => parseRecord(old({ propagation: 'rshared', path: '/srv/h', uid: 1 }))).toThrow(
      /unexpected content/,
    );
    expect(() => parseRecord(old({ propagation: 'rshared', size: '1m' }))).toThrow(
      /unexpected content/,
    );
  });

  it('writes the kind, and a tmpfs also as `type`, which older versions read', () => {
    const tmpfs = parseOptions(
      'v',
      { type: 'tmpfs', size: '1m' },
      { tmpfs: { pageSize: 4096, memoryBytes: 2n ** 40n } },
    );
    expect(optionsToJson(tmpfs)).toEqual({
      kind: 'tmpfs',
      type: 'tmpfs',
      propagation: 'rshared',
      size: '1048576',
    });
    for (const options of [tmpfs, parseOptions('v', { path: '/srv/h' }), parseOptions('v', {})]) {
      const json = JSON.stringify({
        version: 2,
        name: 'v',
        createdAt: 't',
        options: optionsToJson(options),
      });
      expect(parseRecord(json).options).toEqual(options);
    }
  });
});

describe("a volume's Status as JSON", () => {
  it('is read back as the driver answered it (the CLI reads `docker volume inspect`)', () => {
    const status: VolumeStatus = {
      propagation: 'rshared',
      type: 'tmpfs',
      size: '64m',
      activeMounts: 3,
      mountIds: new Map([
        ['c1', 2],
        ['c2', 1],
      ]),
      countsSaved: true,
      mountPoint: 'shared',
      submounts: [{ path: '/netns/a', fsType: 'nsfs', source: 'nsfs', root: 'net:[4026532]' }],
    };
    const read = statusJsonSchema.parse(JSON.parse(JSON.stringify(statusJson(status))));
    expect(read).toEqual(status);
    expect(read.mountIds).toBeInstanceOf(Map);
  });

  it('of a driver that said no type is a directory', () => {
    const older = {
      propagation: 'rshared',
      activeMounts: 0,
      mountIds: {},
      mountPoint: 'shared',
      submounts: [],
    };
    expect(statusJsonSchema.parse(older)).toMatchObject({ type: 'directory', mountIds: new Map() });
  });
});

describe('option path', () => {
  it('takes a path of up to 4000 bytes, and shows at most 200 characters of one it refuses', () => {
    const at = (bytes: number) => `/${'a'.repeat(bytes - 1)}`;
    expect(parseOptions('v', { path: at(4000) })).toMatchObject({ kind: 'path', path: at(4000) });
    expect(() => parseOptions('v', { path: at(4001) })).toThrow(/is not an absolute, normalised/);
    const long = `relative/${'b'.repeat(5000)}`;
    let message = '';
    try {
      parseOptions('v', { path: long });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`path=${JSON.stringify(long.slice(0, 200))} is not`);
    expect(message.length).toBeLessThan(400);
  });
});

describe('describeOptions', () => {
  it('writes every option of each kind back as the user gives it, in the documented order', () => {
    const tmpfs = parseOptions(
      'v',
      { type: 'tmpfs', size: '8m', uid: '5', gid: '6', mode: '0750', reap: 'on-unmount' },
      { tmpfs: { pageSize: 4096, memoryBytes: 1n << 30n } },
    );
    expect(describeOptions(tmpfs)).toBe(
      'propagation=rshared type=tmpfs size=8388608 uid=5 gid=6 mode=0750 reap=on-unmount',
    );
    const dir = parseOptions('v', { propagation: 'shared', uid: '1', gid: '2', mode: '0700' });
    expect(describeOptions(dir)).toBe('propagation=shared uid=1 gid=2 mode=0700');
  });
});

describe('option uid, gid and mode', () => {
  const refused = (options: Record<string, string>) => () => parseOptions('v', options);

  it('take ids up to 2^32 - 2 (the kernel keeps -1 for "no id"), written in decimal only', () => {
    expect(parseOptions('v', { uid: '4294967294', gid: '0' })).toMatchObject({
      uid: 4294967294,
      gid: 0,
    });
    for (const value of ['4294967295', '12a', 'a12', '-1', '1.0', '00000000001'])
      expect(refused({ uid: value })).toThrow(/is not a numeric id \(0-4294967294\)/);
  });

  it('take a mode of three or four octal digits, with or without a leading 0', () => {
    expect(parseOptions('v', { mode: '7777' })).toMatchObject({ mode: 0o7777 });
    expect(parseOptions('v', { mode: '0755' })).toMatchObject({ mode: 0o755 });
    expect(parseOptions('v', { mode: '755' })).toMatchObject({ mode: 0o755 });
    for (const value of ['0755x', 'x0755', '07777 ', '17777', '0800', '75'])
      expect(refused({ mode: value })).toThrow(/is not an octal mode such as 0755/);
  });
});
