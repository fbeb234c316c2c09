import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { JsonNumber } from '../../../src/runtime/json.js';
import {
  readSpecFile,
  SpecFileError,
  writeFileAtomically,
} from '../../../src/runtime/spec-file.js';

describe('the bundle spec file', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-specfile-'));
    file = path.join(dir, 'config.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is read losslessly, with its mode and owner', () => {
    writeFileSync(file, '{"n":18446744073709551615}');
    chmodSync(file, 0o640);
    const read = readSpecFile(file);
    expect(read.spec).toEqual({ n: new JsonNumber('18446744073709551615') });
    expect(read.mode).toBe(0o640);
    expect(read.uid).toBe(statSync(file).uid);
  });

  it('says why it cannot be read or parsed', () => {
    expect(() => readSpecFile(file)).toThrow(SpecFileError);
    expect(() => readSpecFile(file)).toThrow(`cannot read the OCI spec ${file} (ENOENT)`);
    writeFileSync(file, '{"mounts":[');
    expect(() => readSpecFile(file)).toThrow(`${file} is not valid JSON: unexpected end of input`);
  });

  it('is replaced atomically with the same mode, leaving no temporary file', () => {
    writeFileSync(file, 'old');
    const { mode, uid, gid } = statSync(file);
    writeFileAtomically(file, '{"new":true}', { mode: 0o600, uid, gid });
    expect(readFileSync(file, 'utf8')).toBe('{"new":true}');
    expect(statSync(file).mode & 0o7777).toBe(0o600);
    expect(mode & 0o7777).not.toBe(0o600);
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it('keeps a mode wider than the umask', () => {
    writeFileSync(file, 'old');
    const { uid, gid } = statSync(file);
    const umask = process.umask(0o077);
    try {
      writeFileAtomically(file, 'new', { mode: 0o644, uid, gid });
    } finally {
      process.umask(umask);
    }
    expect(statSync(file).mode & 0o7777).toBe(0o644);
  });

  it('leaves the old file and no temporary file when it cannot be replaced', () => {
    writeFileSync(file, 'old');
    const { uid, gid } = statSync(file);
    rmSync(dir, { recursive: true });
    expect(() => writeFileAtomically(file, 'new', { mode: 0o644, uid, gid })).toThrow(
      `cannot write the OCI spec ${file} (ENOENT)`,
    );
  });

  it('cleans up its temporary file when the rename fails', () => {
    // Renaming a file over a non-empty directory fails after the temporary file is written.
    const target = path.join(dir, 'adir');
    mkdirSync(target);
    writeFileSync(path.join(target, 'entry'), '');
    const { uid, gid } = statSync(dir);
    expect(() => writeFileAtomically(target, 'new', { mode: 0o644, uid, gid })).toThrow(
      /cannot write the OCI spec .*adir \((EISDIR|ENOTEMPTY|EEXIST)\)/,
    );
    expect(readdirSync(dir)).toEqual(['adir']);
  });
});
