/**
 * The mountinfo parser against what the kernel really writes (in the unit tier's own mount
 * namespace): mount points with the characters the kernel escapes, and the line filter that
 * picks the mounts about a path without parsing the rest.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  aboutPath,
  escapeMountPath,
  mountsAt,
  MountinfoReader,
  readMountinfo,
} from '../../../src/system/mountinfo.js';
import { requireOwnMountNamespace } from '../../support/mount-worlds.js';

let base: string;
beforeAll(async () => {
  await requireOwnMountNamespace();
  base = await mkdtemp(path.join(tmpdir(), 'sharedprop-mountinfo-'));
});
afterAll(async () => {
  for (const entry of (await readMountinfo()).filter((e) => e.mountPoint.startsWith(base))) {
    await execa('umount', ['-l', entry.mountPoint], { reject: false });
  }
  await rm(base, { recursive: true, force: true });
});

it('reads back mount points with spaces, tabs, newlines and backslashes exactly', async () => {
  const odd = path.join(base, 'a dir\twith\nodd\\name');
  await mkdir(odd);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'odd source', odd]);
  try {
    const text = await execa('cat', ['/proc/self/mountinfo']);
    expect(text.stdout).toContain(` ${escapeMountPath(odd)} `); // the kernel escapes as we do
    const [entry, ...more] = mountsAt(await readMountinfo(), odd);
    expect(more).toEqual([]);
    expect(entry).toMatchObject({ mountPoint: odd, fsType: 'tmpfs', source: 'odd source' });
    expect(entry?.superOptions).toMatch(/size=1024k/);
    // The filter keeps it (and only what is about the path).
    const about = await readMountinfo(undefined, aboutPath(odd));
    expect(about.map((e) => e.mountPoint)).toEqual([odd]);
  } finally {
    await execa('umount', [odd]);
  }
  expect(mountsAt(await readMountinfo(), odd)).toEqual([]);
});

it('MountinfoReader sees a change of the real table and nothing else', async () => {
  const dir = path.join(base, 'watched');
  await mkdir(dir);
  const reader = new MountinfoReader('/proc/self/mountinfo', aboutPath(dir));
  const before = await reader.read();
  expect(before).toEqual([]);
  expect(await reader.read()).toBe(before);
  await execa('mount', ['-t', 'tmpfs', 'watched', dir]);
  try {
    expect((await reader.read()).map((e) => e.mountPoint)).toEqual([dir]);
  } finally {
    await execa('umount', [dir]);
  }
  expect(await reader.read()).toEqual([]);
});
