/**
 * The small parts of src/system every command goes through: how a failed child is reported (the
 * command line, then its stderr or why it failed), how a kernel error is named, and how the
 * runtime wrapper's version is read from its `--version` output.
 */
import { constants } from 'node:os';
import { CommandError, run } from '../../../src/system/exec.js';
import { KernelError } from '../../../src/system/kernel/ffi.js';
import { RUNTIME_VERSION_PREFIX, runtimeVersionOf, VERSION } from '../../../src/system/version.js';
import { readFileSync } from 'node:fs';

describe('run', () => {
  it('answers what the child wrote, in the C locale whatever the caller gave', async () => {
    const { stdout, stderr } = await run(
      'sh',
      ['-c', 'echo "$LC_ALL $LANG $LANGUAGE $X"; echo e >&2'],
      {
        env: { LC_ALL: 'de_DE.UTF-8', X: 'kept' },
      },
    );
    expect(stdout).toBe('C C C kept');
    expect(stderr).toBe('e');
  });

  it('a failure names the command line and says what the child said', async () => {
    await expect(run('sh', ['-c', 'echo "no such mount" >&2; exit 3'])).rejects.toMatchObject({
      name: 'CommandError',
      exitCode: 3,
      message: 'sh -c echo "no such mount" >&2; exit 3 failed: no such mount',
    });
  });

  it('a silent failure says how it ended (its exit code); a timed out one says so; a missing program says why', async () => {
    await expect(run('sh', ['-c', 'exit 4'])).rejects.toThrow(
      "sh -c exit 4 failed: Command failed with exit code 4: sh -c 'exit 4'",
    );
    await expect(run('sleep', ['5'], { timeout: 100 })).rejects.toThrow(
      'sleep 5 failed: timed out',
    );
    const missing = run('/nonexistent/program', []);
    await expect(missing).rejects.toBeInstanceOf(CommandError);
    await expect(missing).rejects.toThrow(/^\/nonexistent\/program failed: .*ENOENT/);
  });

  it('gives the child an open descriptor as its fd 3 when asked', async () => {
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync('/proc/self/mountinfo', 'r');
    try {
      const { stdout } = await run('sh', ['-c', 'head -c 2 <&3 >/dev/null && echo read'], {
        fd3: fd,
      });
      expect(stdout).toBe('read');
    } finally {
      closeSync(fd);
    }
  });

  it('a CommandError without stderr or exit code still says something', () => {
    expect(new CommandError('umount', ['/m'], undefined, '  ').message).toBe(
      'umount /m failed: exit code unknown',
    );
  });
});

describe('KernelError', () => {
  it('names the errno as Node does, and a number Node has no name for', () => {
    const known = new KernelError('statmount', constants.errno.ENOENT, 'mount 7');
    expect([known.code, known.message]).toEqual([
      'ENOENT',
      "ENOENT: no such file or directory, statmount 'mount 7'",
    ]);
    const quota = new KernelError('fsconfig', constants.errno.EDQUOT);
    expect([quota.code, quota.message]).toEqual(['E122', 'E122: unknown error, fsconfig']);
  });
});

describe('versions', () => {
  it("is package.json's from the sources", () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });

  it("reads the runtime wrapper's version from its own line only", () => {
    expect(
      runtimeVersionOf(`runc version 1.1.12\n${RUNTIME_VERSION_PREFIX}0.9.1 \ncommit: x`),
    ).toBe('0.9.1');
    expect(runtimeVersionOf('runc version 1.1.12\nspec: 1.0.2')).toBeUndefined();
    expect(runtimeVersionOf(`${RUNTIME_VERSION_PREFIX}  \nrunc version 1`)).toBeUndefined();
    expect(runtimeVersionOf(`x ${RUNTIME_VERSION_PREFIX}1.0`)).toBeUndefined();
    expect(runtimeVersionOf('')).toBeUndefined();
  });
});
