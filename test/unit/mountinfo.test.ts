import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deviceNumber } from '../../src/system/mounts.js';
import {
  aboutPath,
  escapeMountPath,
  isWithin,
  mountsAt,
  mountsBelow,
  MountinfoReader,
  parseMountinfo,
  parseMountinfoLine,
  propagationOf,
  unescapeMountPath,
} from '../../src/system/mountinfo.js';

const sample = readFileSync(
  new URL('../fixtures/mountinfo-docker-host.txt', import.meta.url),
  'utf8',
);

describe('mountinfo parser', () => {
  const entries = parseMountinfo(sample);

  it('reads every line of a real sample', () => {
    expect(entries).toHaveLength(11);
    expect(entries[0]).toMatchObject({
      id: 22,
      parentId: 1,
      device: '8:1',
      root: '/',
      mountPoint: '/',
      fsType: 'ext4',
      source: '/dev/sda1',
      sharedGroup: 1,
    });
  });

  it('unescapes octal escapes in roots and mount points', () => {
    expect(unescapeMountPath('my\\040vol/net\\011ns\\012x\\134y')).toBe('my vol/net\tns\nx\\y');
    const volume = entries.find((e) => e.id === 27);
    expect(volume?.root).toBe('/var/lib/sharedprop/volumes/my vol/_data');
    expect(volume?.mountPoint).toBe('/var/lib/sharedprop/mounts/my vol');
    expect(entries.find((e) => e.id === 32)?.mountPoint).toBe('/mnt/back\\slash');
  });

  it('reads the optional propagation fields', () => {
    const byId = new Map(entries.map((e) => [e.id, e]));
    expect(propagationOf(byId.get(27)!)).toBe('shared');
    expect(byId.get(28)).toMatchObject({ sharedGroup: 241, masterGroup: 12 });
    expect(propagationOf(byId.get(28)!)).toBe('shared+slave');
    expect(propagationOf(byId.get(29)!)).toBe('unbindable');
    expect(propagationOf(byId.get(31)!)).toBe('slave');
    expect(propagationOf(byId.get(32)!)).toBe('private');
  });

  it('keeps super options with spaces-free commas intact', () => {
    expect(entries.find((e) => e.id === 31)?.superOptions).toBe(
      'rw,lowerdir=/a:/b,upperdir=/c,workdir=/d',
    );
  });

  it('lines without optional fields parse', () => {
    const entry = parseMountinfoLine('40 22 0:60 / /mnt/x rw - tmpfs tmpfs rw');
    expect(entry).toMatchObject({ id: 40, mountPoint: '/mnt/x', fsType: 'tmpfs' });
    expect(entry.sharedGroup).toBeUndefined();
  });

  it('rejects malformed lines', () => {
    expect(() => parseMountinfoLine('garbage')).toThrow(/malformed/);
    expect(() => parseMountinfoLine('1 2 3 4 5 6 7 8 9 10')).toThrow(/malformed/);
    // Every field there, but an ID that is no number.
    expect(() => parseMountinfoLine('x 2 0:1 / /m rw - tmpfs tmpfs rw')).toThrow(
      'malformed mountinfo line: "x 2 0:1 / /m rw - tmpfs tmpfs rw"',
    );
    expect(() => parseMountinfoLine('1 y 0:1 / /m rw - tmpfs tmpfs rw')).toThrow(/malformed/);
  });

  it('finds mounts at and below a path, deepest first', () => {
    const at = mountsAt(entries, '/var/lib/sharedprop/mounts/my vol');
    expect(at.map((e) => e.id)).toEqual([27]);
    const below = mountsBelow(entries, '/var/lib/sharedprop/mounts/my vol');
    expect(below.map((e) => e.id)).toEqual([28]);
    expect(mountsBelow(entries, '/var/lib/sharedprop/mounts/my').map((e) => e.id)).toEqual([]);
    const all = mountsBelow(entries, '/').map((e) => e.id);
    expect(all).not.toContain(22);
    expect(all.indexOf(28)).toBeLessThan(all.indexOf(27));
  });

  it('isWithin compares whole path components', () => {
    expect(isWithin('/a/b', '/a')).toBe(true);
    expect(isWithin('/a', '/a')).toBe(true);
    expect(isWithin('/ab', '/a')).toBe(false);
    expect(isWithin('/x', '/')).toBe(true);
    expect(isWithin('x', '/')).toBe(false); // not absolute: beneath nothing
  });

  it('escapes paths the way the kernel does', () => {
    expect(escapeMountPath('/a b\\c\td')).toBe('/a\\040b\\134c\\011d');
    expect(unescapeMountPath(escapeMountPath('/x y/\n'))).toBe('/x y/\n');
  });

  it('parses only the lines about a path when asked', () => {
    const about = parseMountinfo(sample, aboutPath('/var/lib/sharedprop/mounts/my vol', [22]));
    expect(about.map((e) => e.id)).toEqual([22, 27, 28]);
  });
});

describe('MountinfoReader', () => {
  it('parses again only when the table changed, and hands out a frozen array', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mountinfo-'));
    try {
      const file = path.join(dir, 'mountinfo');
      await writeFile(file, sample);
      const reader = new MountinfoReader(file, aboutPath('/var/lib/sharedprop/mounts'));
      const first = await reader.read();
      expect(first.map((e) => e.id)).toEqual([27, 28]);
      expect(await reader.read()).toBe(first); // same text: the same entries, no parse
      expect(Object.isFrozen(first)).toBe(true);
      expect(() => (first as unknown[]).push(1)).toThrow(TypeError);

      // A mount made elsewhere (a container's, under a volume) shows at the next read.
      const extra =
        '99 27 0:60 / /var/lib/sharedprop/mounts/my\\040vol/ns rw shared:50 - tmpfs tmpfs rw';
      await writeFile(file, `${sample.trimEnd()}\n${extra}\n`);
      const second = await reader.read();
      expect(second).not.toBe(first);
      expect(second.map((e) => e.id)).toEqual([27, 28, 99]);
      expect(second[2]).toMatchObject({ mountPoint: '/var/lib/sharedprop/mounts/my vol/ns' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deviceNumber', () => {
  it('decodes stat(2) device numbers as mountinfo writes them', async () => {
    expect(deviceNumber(0x801n)).toBe('8:1');
    expect(deviceNumber((259n << 8n) | 3n)).toBe('259:3');
    // Minors past 255 and majors past 4095 use the high bits (glibc's makedev).
    expect(deviceNumber((300n & 0xffn) | ((300n & ~0xffn) << 12n))).toBe('0:300');
    expect(deviceNumber(((4096n & ~0xfffn) << 32n) | 1n)).toBe('4096:1');
    // And agrees with the kernel on a real mount.
    const proc = parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'))
      .filter((e) => e.mountPoint === '/proc')
      .at(-1);
    expect(deviceNumber((await stat('/proc', { bigint: true })).dev)).toBe(proc?.device);
  });
});
