/**
 * The driver writes its mount-root marker so that the runtime wrapper trusts it (root's, in
 * root's directory, neither writable by others: src/runtime/root-file.ts), whatever the umask
 * and whatever was there before.
 */
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MOUNT_ROOT_MARKER } from '../../src/mount-root-marker.js';
import { checkRootFile } from '../../src/runtime/root-file.js';
import { MountSystem } from '../../src/system/mounts.js';
import { itAsRealRoot } from '../support/namespaces.js';

const CONTENT = '{"dataRoot":"/var/lib/sharedprop"}\n';

let dir: string;
let root: string;
let marker: string;
let umask: number;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-mount-root-'));
  root = path.join(dir, 'mounts');
  marker = path.join(root, MOUNT_ROOT_MARKER);
  umask = process.umask(0); // the most permissive: nothing is taken away from what is asked for
});
afterEach(() => {
  process.umask(umask);
  rmSync(dir, { recursive: true, force: true });
});

const prepare = () =>
  new MountSystem().prepareMountRoot(root, { name: MOUNT_ROOT_MARKER, content: CONTENT });
const modeOf = (file: string) => statSync(file).mode & 0o7777;

/** What the driver's marker must be after prepare(), whatever it was before. */
function expectTrusted(): void {
  expect(modeOf(root)).toBe(0o755);
  expect(lstatSync(marker).isFile()).toBe(true);
  expect(modeOf(marker)).toBe(0o644);
  expect(statSync(marker).uid).toBe(0);
  expect(readFileSync(marker, 'utf8')).toBe(CONTENT);
  expect(readdirSync(root)).toEqual([MOUNT_ROOT_MARKER]);
  expect(checkRootFile(marker)).toEqual({ kind: 'trusted' });
}

describe("the driver's mount-root marker counts for the runtime wrapper", () => {
  it('a new mount root: 0755, the marker 0644, with umask 0', async () => {
    await prepare();
    expectTrusted();
  });

  it('a new mount root: 0755, the marker 0644, with umask 077 too', async () => {
    process.umask(0o077);
    await prepare();
    expectTrusted();
  });

  it('an old marker others could write (0666), in a root they could too (0777): fixed', async () => {
    mkdirSync(root);
    chmodSync(root, 0o777);
    writeFileSync(marker, 'old');
    chmodSync(marker, 0o666);
    await prepare();
    expectTrusted();
  });

  itAsRealRoot(
    "an old marker of uid 65534, or a symlink, is replaced by root's own; the link's target is untouched",
    async () => {
      mkdirSync(root, { mode: 0o755 });
      writeFileSync(marker, 'old');
      chownSync(marker, 65534, 65534);
      await prepare();
      expectTrusted();

      const target = path.join(dir, 'elsewhere');
      writeFileSync(target, 'not yours');
      rmSync(marker);
      symlinkSync(target, marker);
      await prepare();
      expectTrusted();
      expect(readFileSync(target, 'utf8')).toBe('not yours');
    },
  );

  it('a leftover temporary file (a crash mid-write) is replaced too', async () => {
    mkdirSync(root, { mode: 0o755 });
    writeFileSync(path.join(root, `${MOUNT_ROOT_MARKER}.tmp`), 'half');
    await prepare();
    expectTrusted();
  });
});
