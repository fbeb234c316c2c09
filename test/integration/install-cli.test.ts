/**
 * `make install` puts one `sharedprop` command on PATH: the standalone executable and its delete
 * helper in BIN_DIR, which then runs with no Node on PATH; `make uninstall-cli` takes both away
 * and nothing else.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAKE_MS = 240_000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp('/tmp/sharedprop-install-cli-');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const make = (target: string, binDir: string) =>
  execa('make', ['-s', target, `BIN_DIR=${binDir}`], {
    cwd: REPO,
    reject: false,
    all: true,
    timeout: MAKE_MS,
  });

it(
  'make install-cli BIN_DIR=...: sharedprop and its helper on PATH, working with no Node; uninstall-cli removes them only',
  async () => {
    const bin = path.join(dir, 'bin with space');
    await mkdir(bin);
    await writeFile(path.join(bin, 'someone-else'), 'kept\n');
    const install = await make('install-cli', bin);
    expect({ exitCode: install.exitCode, output: install.all }).toEqual({
      exitCode: 0,
      output: expect.stringMatching(/installed .*\/sharedprop \(\d+\.\d+\.\d+/),
    });
    expect((await readdir(bin)).sort()).toEqual([
      'sharedprop',
      'sharedprop-rmtree',
      'someone-else',
    ]);

    // Found on PATH, with nothing else there (no node).
    const version = await execa('sharedprop', ['--version'], {
      env: { PATH: bin },
      extendEnv: false,
    });
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default;
    expect(version.stdout).toBe(pkg.version);
    const help = await execa('sharedprop', ['--help'], { env: { PATH: bin }, extendEnv: false });
    expect(help.stdout).toMatch(/^ {2}serve /m);

    const uninstall = await make('uninstall-cli', bin);
    expect(uninstall.exitCode).toBe(0);
    expect(await readdir(bin)).toEqual(['someone-else']);
  },
  MAKE_MS * 2,
);
