import {
  accessSync,
  chmodSync,
  constants,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  FALLBACK_DIRS,
  findRunc,
  RuncNotFoundError,
  type RuncLookupOps,
} from '../../../src/runtime/runc.js';

/** node:fs stand-ins for the Bun natives the wrapper uses (Bun.which, Bun.file().stat()). */
const isExecutableFile = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
};
const looked: string[] = [];
const ops: RuncLookupOps = {
  which(command, searchPath) {
    if (command.includes('/')) return isExecutableFile(command) ? command : null;
    for (const dir of searchPath.split(':').filter(Boolean)) {
      looked.push(dir);
      const file = path.join(dir, command);
      if (isExecutableFile(file)) return file;
    }
    return null;
  },
  async sameFile(a, b) {
    try {
      const [x, y] = await Promise.all([stat(a), stat(b)]);
      return x.dev === y.dev && x.ino === y.ino;
    } catch {
      return false;
    }
  },
};

describe('finding the real runc', () => {
  let dir: string;
  let self: string;
  const at = (...parts: string[]) => path.join(dir, ...parts);
  const executable = (file: string) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, '#!/bin/sh\n');
    chmodSync(file, 0o755);
    return file;
  };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-runc-'));
    self = executable(at('bin/sharedprop-runtime'));
    executable(at('a/runc'));
    executable(at('b/runc'));
    executable(at('b/runc.real'));
    writeFileSync(at('runc'), ''); // not executable
    mkdirSync(at('dirrunc/runc'), { recursive: true }); // a directory named runc
    mkdirSync(at('symlinked'));
    symlinkSync(self, at('symlinked/runc')); // the wrapper installed as runc...
    mkdirSync(at('hardlinked'));
    linkSync(self, at('hardlinked/runc')); // ...or hard-linked as runc
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => (looked.length = 0));

  const find = (env: Record<string, string>, configured?: string) =>
    findRunc({ env, configured, self, ops });

  it('takes SHAREDPROP_RUNC first', async () => {
    await expect(
      find({ SHAREDPROP_RUNC: at('b/runc'), PATH: at('a') }, at('a/runc')),
    ).resolves.toBe(at('b/runc'));
  });

  it("then the configuration's runc, a path or a name looked up in PATH", async () => {
    const PATH = `${at('a')}:${at('b')}`;
    await expect(find({ PATH }, at('b/runc'))).resolves.toBe(at('b/runc'));
    await expect(find({ PATH }, 'runc.real')).resolves.toBe(at('b/runc.real'));
  });

  it('then the first executable runc file in PATH', async () => {
    const PATH = [dir, at('dirrunc'), at('b'), at('a')].join(':');
    await expect(find({ PATH })).resolves.toBe(at('b/runc'));
  });

  it('never looks in relative PATH entries (the current directory is the bundle)', async () => {
    await find({ PATH: `.::bin:${at('a')}` });
    expect(looked).toEqual([at('a')]);
  });

  it('skips the wrapper itself when it is installed as runc', async () => {
    await expect(find({ PATH: `${at('symlinked')}:${at('a')}` })).resolves.toBe(at('a/runc'));
    await expect(find({ PATH: `${at('hardlinked')}:${at('b')}` })).resolves.toBe(at('b/runc'));
  });

  it('refuses an explicit runc that is the wrapper itself or not executable', async () => {
    await expect(find({ SHAREDPROP_RUNC: at('symlinked/runc') })).rejects.toThrow(
      'SHAREDPROP_RUNC (' + at('symlinked/runc') + ') is sharedprop-runtime itself, not runc',
    );
    await expect(find({}, at('runc'))).rejects.toThrow(RuncNotFoundError);
    await expect(find({ PATH: dir }, 'nope')).rejects.toThrow(
      /the configuration file's "runc" \(nope\) is not an executable file/,
    );
  });

  it('falls back to /usr/bin, /usr/sbin, /usr/local/bin, /usr/local/sbin', async () => {
    const found = await find({ PATH: '' }).catch((error: Error) => error.message);
    expect(looked).toEqual(FALLBACK_DIRS.slice(0, looked.length));
    if (found.startsWith('/')) expect(FALLBACK_DIRS).toContain(path.dirname(found));
    else expect(found).toMatch(/cannot find runc .*; set SHAREDPROP_RUNC/);
  });
});
