/**
 * The kept-running delete helper (rmtree-server.ts): one process for many requests, each answered
 * on its own, and a helper that dies, hangs or is missing fails only its request.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RmtreePool, RmtreeServer } from '../../src/system/rmtree-server.js';
import { HELPER_NAME } from '../../src/system/safe-delete.js';

const helper = path.resolve('dist', 'native', HELPER_NAME);
const MINUTE = 60_000;

beforeAll(async () => {
  await execa('scripts/build-native.sh', ['dist/native']);
}, 120_000);

let base: string;
const servers: RmtreeServer[] = [];
beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sharedprop-rmtree-server-'));
});
afterEach(async () => {
  for (const server of servers.splice(0)) server.close();
  await rm(base, { recursive: true, force: true });
});

const serverOf = (program: string) => {
  const server = new RmtreeServer(program);
  servers.push(server);
  return server;
};

/** A stand-in helper: answers each request with `body` (bash, $name set). */
async function fakeHelper(body: string): Promise<string> {
  const fake = path.join(base, `fake-${servers.length}-${Math.random().toString(16).slice(2)}`);
  await writeFile(
    fake,
    `#!/bin/bash\n[ "$1" = --serve ] || exit 9\n` +
      `while IFS= read -r -d '' parent && IFS= read -r -d '' name; do\n${body}\ndone\n`,
  );
  await chmod(fake, 0o755);
  return fake;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitUntilGone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
  expect(alive(pid)).toBe(false);
}

describe('RmtreeServer', () => {
  it('deletes tree after tree through one helper process, each answer its own', async () => {
    const server = serverOf(helper);
    for (const name of ['a', 'b', 'c']) {
      await mkdir(path.join(base, name, 'sub'), { recursive: true });
      await writeFile(path.join(base, name, 'sub', 'f'), name);
    }
    expect(await server.delete(base, 'a', MINUTE)).toEqual({ exitCode: 0, diagnostics: '' });
    const pid = server.pid;
    expect(pid).toBeGreaterThan(0);
    // A refused request in between: its diagnostics are its own, and the next one is clean.
    const refused = await server.delete('relative', 'b', MINUTE);
    expect(refused.exitCode).toBe(2);
    expect(refused.diagnostics).toMatch(/^sharedprop-rmtree: usage/);
    expect(await server.delete(base, 'b', MINUTE)).toEqual({ exitCode: 0, diagnostics: '' });
    expect(await server.delete(base, 'c', MINUTE)).toEqual({ exitCode: 0, diagnostics: '' });
    expect(server.pid).toBe(pid);
    expect(await readdir(base)).toEqual([]);
  });

  it('answers requests made at once in order, each with its own answer', async () => {
    const server = serverOf(
      await fakeHelper('  echo "sharedprop-rmtree: $name"; echo "exit ${#name}"'),
    );
    const names = ['x', 'xxxx', 'xx', 'xxxxxxx', 'xxx'];
    const answers = await Promise.all(names.map((name) => server.delete(base, name, MINUTE)));
    expect(answers).toEqual(
      names.map((name) => ({ exitCode: name.length, diagnostics: `sharedprop-rmtree: ${name}` })),
    );
  });

  it('sends each request once, to the one helper it keeps running', async () => {
    const log = path.join(base, 'requests');
    const server = serverOf(await fakeHelper(`  echo "$$ $name" >> ${log}; echo "exit 0"`));
    for (const name of ['a', 'b', 'c'])
      expect((await server.delete(base, name, MINUTE)).exitCode).toBe(0);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines.map((line) => line.split(' ')[1])).toEqual(['a', 'b', 'c']);
    expect(new Set(lines.map((line) => line.split(' ')[0])).size).toBe(1);
  });

  it('keeps the first 50 lines of an answer, blank ones included, and reads on to its exit line', async () => {
    const server = serverOf(
      await fakeHelper('  echo; for i in $(seq 1 60); do echo "line $i"; done; echo "exit 3"'),
    );
    const answer = await server.delete(base, 'many', MINUTE);
    expect(answer.exitCode).toBe(3);
    const lines = answer.diagnostics.split('\n');
    expect(lines).toHaveLength(50);
    expect(lines[0]).toBe('');
    expect(lines[49]).toBe('line 49');
    // The next answer is its own: nothing of the 10 lines left over.
    expect(await server.delete(base, 'next', MINUTE)).toEqual({
      exitCode: 3,
      diagnostics: lines.join('\n'),
    });
  });

  it('a helper that dies fails only the request it had; the next one gets a new helper', async () => {
    const server = serverOf(
      await fakeHelper(
        '  [ "$name" = die ] && { echo "sharedprop-rmtree: dying"; exit 7; }\n  echo "exit 0"',
      ),
    );
    expect((await server.delete(base, 'ok', MINUTE)).exitCode).toBe(0);
    const first = server.pid as number;
    const died = await server.delete(base, 'die', MINUTE);
    expect(died.exitCode).toBeUndefined();
    expect(died.diagnostics).toBe('sharedprop-rmtree: dying\nthe helper ended (exit code 7)');
    expect((await server.delete(base, 'ok', MINUTE)).exitCode).toBe(0);
    expect(server.pid).not.toBe(first);
  });

  it('a helper past the timeout is killed, and the next request gets a new helper', async () => {
    const server = serverOf(
      await fakeHelper('  [ "$name" = hang ] && exec sleep 60\n  echo "exit 0"'),
    );
    expect((await server.delete(base, 'ok', MINUTE)).exitCode).toBe(0);
    const hung = server.pid as number;
    const answer = await server.delete(base, 'hang', 300);
    expect(answer).toEqual({ diagnostics: 'timed out after 300 ms and was killed' });
    await waitUntilGone(hung);
    expect((await server.delete(base, 'ok', MINUTE)).exitCode).toBe(0);
    expect(server.pid).not.toBe(hung);
  });

  it('a missing helper fails each request, and one put back later is used', async () => {
    const missing = path.join(base, 'not-yet');
    const server = serverOf(missing);
    const answer = await server.delete(base, 'x', MINUTE);
    expect(answer.exitCode).toBeUndefined();
    expect(answer.diagnostics).toMatch(/^the helper did not start: .*ENOENT/);
    await writeFile(
      missing,
      '#!/bin/bash\nwhile read -r -d "" p && read -r -d "" n; do echo "exit 0"; done\n',
    );
    await chmod(missing, 0o755);
    expect(await server.delete(base, 'x', MINUTE)).toEqual({ exitCode: 0, diagnostics: '' });
  });

  it('a helper that had died while idle, unseen, is replaced and the request sent again', async () => {
    // It answers its first request, then dies at the next one without a word: as a helper
    // killed while idle looks to the request that finds it.
    const server = serverOf(
      await fakeHelper('  n=$((n + 1)); [ "$n" -gt 1 ] && exit 0\n  echo "exit 0"'),
    );
    expect(await server.delete(base, 'first', MINUTE)).toEqual({ exitCode: 0, diagnostics: '' });
    const first = server.pid as number;
    expect(await server.delete(base, 'second', MINUTE)).toEqual({ exitCode: 0, diagnostics: '' });
    expect(server.pid).not.toBe(first);
  });

  it('a request cut short by the end of input is not carried out (the driver died writing)', async () => {
    await mkdir(path.join(base, 'abc'));
    await mkdir(path.join(base, 'abcdef'));
    const result = await execa(helper, ['--serve'], {
      input: `${base}\0abcdef\0${base}\0abc`,
      reject: false,
    });
    expect([result.exitCode, result.stdout]).toEqual([0, 'exit 0']);
    expect(await readdir(base)).toEqual(['abc']);
  });

  it('the helper ends when its input closes (as when the driver is gone)', async () => {
    const server = serverOf(helper);
    expect((await server.delete(base, 'none', MINUTE)).exitCode).toBe(0);
    const pid = server.pid as number;
    server.close();
    await waitUntilGone(pid);
  });
});

describe('RmtreePool', () => {
  const pools: RmtreePool[] = [];
  afterEach(() => pools.splice(0).forEach((pool) => pool.close()));

  it('a delete that hangs holds up no other; the pool keeps one helper when idle', async () => {
    const fake = await fakeHelper(
      '  [ "$name" = hang ] && exec sleep 60\n  echo "$$" >> "$0.pids"; echo "exit 0"',
    );
    const pool = new RmtreePool(fake);
    pools.push(pool);
    const order: string[] = [];
    const hung = pool.delete(base, 'hang', 2_000).then((answer) => {
      order.push('hang');
      return answer;
    });
    const others = await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        pool.delete(base, name, MINUTE).then((answer) => {
          order.push(name);
          return answer;
        }),
      ),
    );
    expect(others.map((answer) => answer.exitCode)).toEqual([0, 0, 0]);
    expect((await hung).diagnostics).toBe('timed out after 2000 ms and was killed');
    expect(order.at(-1)).toBe('hang');
    // Three answered at once by three helpers; of all, one is kept, the others end.
    const pids = [...new Set((await readFile(`${fake}.pids`, 'utf8')).trim().split('\n'))];
    expect(pids.length).toBe(3);
    const living = () => pids.map(Number).filter(alive).length;
    for (let i = 0; i < 200 && living() > 1; i++) await new Promise((r) => setTimeout(r, 25));
    expect(living()).toBe(1);
  });
});
