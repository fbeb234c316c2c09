/**
 * The mount layer on system calls against MountSystem (mount(8), mountinfo at every step):
 *   - detachAll of a volume with N submounts (default 2,000): listmount, mountinfo fallback,
 *     MountSystem (once: it takes about a minute);
 *   - ensureSharedMount of a bind (a Create's or a Mount's mount), and its detachAll.
 * `--table=N` adds N unrelated bind mounts first, as on a host with a big mount table.
 * Runs in a user and mount namespace of its own (it re-executes itself under unshare), so that
 * every mount vanishes with it. Run: npx tsx bench/mount-layer-bench.ts [--submounts=2000]
 * [--rounds=5] [--binds=200] [--table=0] [--no-reference] [--layers=listmount,fallback,reference]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { close, mount, moveMount, openDirectory, umount2 } from '../src/system/kernel/calls.js';
import { MS_BIND } from '../src/system/kernel/constants.js';
import { newTmpfs } from '../src/system/kernel/tmpfs.js';
import { MountSystem, type Mounts } from '../src/system/mounts.js';
import { SyscallMounts } from '../src/system/syscall-mounts.js';
import { ms, summarize, timed } from './stats.js';

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const submounts = arg('submounts', 2000);
const rounds = arg('rounds', 5);
const binds = arg('binds', 200);
const table = arg('table', 0);
const reference = !process.argv.includes('--no-reference');
/** Which layers to run: any of listmount, fallback, reference (default: all). */
const only = process.argv.find((a) => a.startsWith('--layers='))?.slice('--layers='.length);
const wanted = (name: string) => {
  const key = name.startsWith('MountSystem')
    ? 'reference'
    : name.includes('fallback')
      ? 'fallback'
      : 'listmount';
  return (reference || key !== 'reference') && (!only || only.split(',').includes(key));
};
const say = (line: string) => process.stdout.write(`${line}\n`);

function inOwnNamespace(): boolean {
  const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
  return !(map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
}

function tmpfsAt(target: string): void {
  const fd = openDirectory(target);
  const mnt = newTmpfs('size=64k');
  try {
    moveMount(mnt, fd);
  } finally {
    close(mnt);
    close(fd);
  }
}

const layers: [string, () => Mounts][] = [
  ['syscalls, listmount', () => new SyscallMounts({ fallback: false })],
  ['syscalls, mountinfo fallback', () => new SyscallMounts({ fallback: true })],
  ['MountSystem (mount(8))', () => new MountSystem()],
];

async function detachBench(
  base: string,
  name: string,
  mounts: Mounts,
  n: number,
): Promise<number[]> {
  const out: number[] = [];
  const times = name.startsWith('MountSystem') ? 1 : rounds;
  const tag = name.replace(/\W+/g, '-');
  for (let r = 0; r < times; r++) {
    const data = path.join(base, `data/${tag}-${r}`);
    mkdirSync(data, { recursive: true });
    const mp = path.join(base, `mnt/${tag}-${r}`);
    await mounts.ensureSharedMount({ kind: 'bind', directory: data }, mp, 'rshared');
    for (let i = 0; i < n; i++) {
      mkdirSync(path.join(mp, `s${i}`));
      tmpfsAt(path.join(mp, `s${i}`));
    }
    const { ms: took, value } = await timed(() => mounts.detachAll(mp, { includeSelf: true }));
    if (value.detached.length !== n + 1)
      throw new Error(`${name}: detached ${value.detached.length}`);
    out.push(took);
  }
  return out;
}

async function bindBench(
  base: string,
  name: string,
  mounts: Mounts,
): Promise<{ make: number[]; detach: number[] }> {
  const make: number[] = [];
  const detach: number[] = [];
  const count = name.startsWith('MountSystem') ? Math.min(binds, 50) : binds;
  const tag = name.replace(/\W+/g, '-');
  for (let i = 0; i < count; i++) {
    const data = path.join(base, `bind-data/${tag}-${i}`);
    mkdirSync(data, { recursive: true });
    const mp = path.join(base, `bind-mnt/${tag}-${i}`);
    make.push(
      (
        await timed(() =>
          mounts.ensureSharedMount({ kind: 'bind', directory: data }, mp, 'rshared'),
        )
      ).ms,
    );
  }
  for (let i = 0; i < count; i++) {
    const mp = path.join(base, `bind-mnt/${tag}-${i}`);
    detach.push((await timed(() => mounts.detachAll(mp, { includeSelf: true }))).ms);
  }
  return { make, detach };
}

async function main(): Promise<void> {
  const base = mkdtempSync(path.join(tmpdir(), 'sp-layer-bench-'));
  tmpfsAt(base);
  try {
    await runAll(base);
  } finally {
    // Everything else was on the tmpfs, and the namespace's mounts go with it.
    umount2(base, { detach: true });
    rmdirSync(base);
  }
}

async function runAll(base: string): Promise<void> {
  if (table > 0) {
    const extra = path.join(base, 'table');
    mkdirSync(extra);
    for (let i = 0; i < table; i++) {
      mkdirSync(path.join(extra, String(i)));
      mount(extra, path.join(extra, String(i)), null, MS_BIND);
    }
  }
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length - 1;
  say(`kernel ${execFileSync('uname', ['-r']).toString().trim()}, mount table ${lines} lines`);
  for (const [name, make] of layers) {
    if (!wanted(name)) continue;
    const mounts = make();
    const detached = summarize(await detachBench(base, name, mounts, submounts));
    say(
      `detachAll, ${submounts} submounts  ${name.padEnd(30)} median ${ms(detached.p50)} ms  (n=${detached.n}, min ${ms(detached.min)}, max ${ms(detached.max)})`,
    );
  }
  for (const [name, make] of layers) {
    if (!wanted(name)) continue;
    const { make: made, detach } = await bindBench(base, name, make());
    const m = summarize(made);
    const d = summarize(detach);
    say(
      `ensureSharedMount (bind)        ${name.padEnd(30)} median ${ms(m.p50)} ms, p99 ${ms(m.p99)} (n=${m.n}); its detachAll median ${ms(d.p50)} ms`,
    );
  }
}

if (!inOwnNamespace()) {
  try {
    execFileSync(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--mount',
        '--propagation',
        'private',
        process.execPath,
        ...process.execArgv,
        ...process.argv.slice(1),
      ],
      { stdio: 'inherit' },
    );
  } catch (error) {
    process.exit((error as { status?: number }).status ?? 1);
  }
} else {
  await main();
}
