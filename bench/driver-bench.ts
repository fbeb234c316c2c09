/**
 * Driver-level benchmarks over the socket with a keep-alive client: per-endpoint latency with few
 * and many volumes, concurrent Mount/Unmount throughput, Create/Remove of many volumes, and the
 * driver's resident memory. The driver runs in a private mount namespace (unshare -m), so that its
 * thousands of mounts vanish with it and never touch the host's mount table. Its data root is a
 * shared mount there, as the managed plugin's propagated mount is (and a data root on a systemd
 * host, where / is shared): every bind of a Create lands under a shared mount.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PluginClient } from '../test/support/plugin-client.js';
import { summarize, timed, type Summary } from './stats.js';

export interface DriverBenchOptions {
  smallVolumes: number;
  largeVolumes: number;
  latencySamples: number;
  concurrent: number;
  createRemove: number;
  /** Create and Remove timed one at a time once the driver holds `largeVolumes`. */
  createRemoveLarge: number;
  /** Then the driver's mount table is grown to this many lines, and 20 more timed there. */
  tableLines: number;
}

export interface DriverBenchResult {
  latency: Record<string, Record<string, Summary>>;
  concurrentMountUnmount: { calls: number; ms: number; callsPerSecond: number };
  createRemove: CreateRemove;
  /** The same with `largeVolumes` volumes there. */
  createRemoveLarge: CreateRemove;
  /** The same in a mount table of `lines` lines (unrelated binds added to the driver's namespace). */
  createRemoveTable: CreateRemove & { lines: number };
  /** Seconds to grow from `smallVolumes` to `largeVolumes` (4 Creates at a time). */
  growS: number;
  rssMiB: Record<string, number>;
  targets: { name: string; value: number; limit: number; ok: boolean }[];
}

export interface CreateRemove {
  volumes: number;
  createMs: Summary;
  removeMs: Summary;
  totalCreateS: number;
  totalRemoveS: number;
}

/** The shared keep-alive client, answers checked but left unparsed (List at 10,000 is 1 MB). */
class Client extends PluginClient {
  async ok(endpoint: string, body: unknown): Promise<string> {
    const answer = await this.request(endpoint, JSON.stringify(body));
    if (answer.status !== 200) throw new Error(`${endpoint}: ${answer.status} ${answer.text}`);
    return answer.text;
  }
}

async function pool<T>(
  items: readonly T[],
  width: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

/** The Node flags the managed plugin runs with (config.json's entrypoint): a small young generation. */
const NODE_FLAGS = (
  process.env.SHAREDPROP_BENCH_NODE_FLAGS ?? '--max-semi-space-size=2 --max-old-space-size=64'
)
  .split(' ')
  .filter(Boolean);

/** The pid of the node process (unshare execs sh, which execs node: the child's own pid). */
async function startDriver(
  base: string,
): Promise<{ child: ResultPromise; client: Client; pid: number }> {
  const socket = path.join(base, 'sp.sock');
  const dataRoot = path.join(base, 'data');
  await mkdir(dataRoot);
  const child = execa(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount --bind "$0" "$0" && mount --make-shared "$0" && exec "$@"',
      dataRoot,
      process.execPath,
      ...NODE_FLAGS,
      path.resolve('dist/cli.js'),
      'serve',
      '--socket',
      socket,
      '--data-root',
      dataRoot,
    ],
    { env: { LOG_LEVEL: 'warn' }, stdout: 'ignore', stderr: 'inherit', reject: false },
  );
  const client = new Client(socket, 256);
  for (let i = 0; i < 300; i++) {
    if (
      (await client.request('/Plugin.Activate', '{}').catch(() => ({ status: 0 }))).status === 200
    ) {
      return { child, client, pid: child.pid as number };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error('driver did not start');
}

const mountTableLines = async (pid: number) =>
  (await readFile(`/proc/${pid}/mountinfo`, 'utf8')).split('\n').length - 1;

/**
 * Grows the mount table of the driver's namespace (private: the mounts vanish with the driver) to
 * `lines` lines with unrelated binds under `dir`; returns the lines it then has.
 */
async function growMountTable(pid: number, dir: string, lines: number): Promise<number> {
  const missing = lines - (await mountTableLines(pid));
  if (missing > 0) {
    await execa(
      'nsenter',
      [
        `--target=${pid}`,
        '--mount',
        `--wd=${process.cwd()}`,
        '--',
        process.execPath,
        '--import',
        'tsx',
        path.resolve('bench/inflate-mount-table.ts'),
        dir,
        String(missing),
      ],
      { stdio: 'inherit' },
    );
  }
  return mountTableLines(pid);
}

/** Create, then Remove, of `count` volumes, one at a time, timed per call. */
async function churn(client: Client, prefix: string, count: number): Promise<CreateRemove> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const createMs: number[] = [];
  const removeMs: number[] = [];
  const createAll = await timed(async () => {
    for (const Name of names)
      createMs.push((await timed(() => client.ok('/VolumeDriver.Create', { Name, Opts: {} }))).ms);
  });
  const removeAll = await timed(async () => {
    for (const Name of names)
      removeMs.push((await timed(() => client.ok('/VolumeDriver.Remove', { Name }))).ms);
  });
  return {
    volumes: count,
    createMs: summarize(createMs),
    removeMs: summarize(removeMs),
    totalCreateS: createAll.ms / 1000,
    totalRemoveS: removeAll.ms / 1000,
  };
}

async function endpointLatency(
  client: Client,
  names: string[],
  samples: number,
): Promise<Record<string, Summary>> {
  const pick = (i: number) => names[(i * 7919) % names.length] as string;
  const measure = async (work: (i: number) => Promise<unknown>) => {
    const out: number[] = [];
    for (let i = 0; i < samples; i++) out.push((await timed(() => work(i))).ms);
    return summarize(out);
  };
  return {
    Activate: await measure(() => client.ok('/Plugin.Activate', {})),
    Capabilities: await measure(() => client.ok('/VolumeDriver.Capabilities', {})),
    Get: await measure((i) => client.ok('/VolumeDriver.Get', { Name: pick(i) })),
    Path: await measure((i) => client.ok('/VolumeDriver.Path', { Name: pick(i) })),
    Mount: await measure((i) => client.ok('/VolumeDriver.Mount', { Name: pick(i), ID: 'bench' })),
    Unmount: await measure((i) =>
      client.ok('/VolumeDriver.Unmount', { Name: pick(i), ID: 'bench' }),
    ),
    List: await measure(() => client.ok('/VolumeDriver.List', {})),
  };
}

export async function runDriverBench(
  options: DriverBenchOptions,
  say: (line: string) => void,
): Promise<DriverBenchResult> {
  const base = await mkdtemp(path.join(tmpdir(), 'sharedprop-bench-'));
  const { child, client, pid } = await startDriver(base);
  try {
    const result: DriverBenchResult = {
      latency: {},
      concurrentMountUnmount: { calls: 0, ms: 0, callsPerSecond: 0 },
      createRemove: await churn(client, 'none', 0),
      createRemoveLarge: await churn(client, 'none', 0),
      createRemoveTable: { ...(await churn(client, 'none', 0)), lines: 0 },
      growS: 0,
      rssMiB: {},
      targets: [],
    };
    result.rssMiB.idle = await rssMiB(pid);

    result.createRemove = await churn(client, 'churn', options.createRemove);
    say(
      `create/remove of ${options.createRemove} volumes: ${result.createRemove.totalCreateS.toFixed(1)} s / ${result.createRemove.totalRemoveS.toFixed(1)} s`,
    );

    const names: string[] = [];
    const grow = async (target: number) => {
      const fresh = Array.from(
        { length: target - names.length },
        (_, i) => `vol${names.length + i}`,
      );
      await pool(fresh, 4, async (Name) => {
        await client.ok('/VolumeDriver.Create', { Name, Opts: {} });
      });
      names.push(...fresh);
    };

    await grow(options.smallVolumes);
    result.latency[String(options.smallVolumes)] = await endpointLatency(
      client,
      names,
      options.latencySamples,
    );
    result.rssMiB[String(options.smallVolumes)] = await rssMiB(pid);

    const calls = Array.from({ length: options.concurrent }, (_, i) => ({
      Name: names[i % names.length] as string,
      ID: `c${i}`,
    }));
    const burst = await timed(async () => {
      await Promise.all(calls.map((c) => client.ok('/VolumeDriver.Mount', c)));
      await Promise.all(calls.map((c) => client.ok('/VolumeDriver.Unmount', c)));
    });
    result.concurrentMountUnmount = {
      calls: calls.length * 2,
      ms: burst.ms,
      callsPerSecond: Math.round((calls.length * 2 * 1000) / burst.ms),
    };
    say(
      `${calls.length} concurrent Mount + Unmount: ${burst.ms.toFixed(0)} ms (${result.concurrentMountUnmount.callsPerSecond} calls/s)`,
    );

    say(`growing to ${options.largeVolumes} volumes...`);
    result.growS = (await timed(() => grow(options.largeVolumes))).ms / 1000;
    say(`grown in ${result.growS.toFixed(1)} s`);
    // Let the background mount snapshot settle, as it would on a quiet host.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const large = await endpointLatency(client, names, options.latencySamples);
    result.latency[String(options.largeVolumes)] = large;
    result.rssMiB[String(options.largeVolumes)] = await rssMiB(pid);
    result.createRemoveLarge = await churn(client, 'late', options.createRemoveLarge);
    const late = result.createRemoveLarge;
    say(
      `create/remove of ${late.volumes} more at ${options.largeVolumes} volumes: p50 ${late.createMs.p50.toFixed(2)} / ${late.removeMs.p50.toFixed(2)} ms`,
    );

    const lines = await growMountTable(pid, path.join(base, 'table'), options.tableLines);
    result.createRemoveTable = { ...(await churn(client, 'table', 20)), lines };
    const inTable = result.createRemoveTable;
    say(
      `create/remove of 20 in a ${lines}-line mount table: p50 ${inTable.createMs.p50.toFixed(2)} / ${inTable.removeMs.p50.toFixed(2)} ms`,
    );

    const target = (name: string, value: number, limit: number) =>
      result.targets.push({ name, value, limit, ok: value <= limit });
    const n = options.largeVolumes;
    target(`Get p99 ms @${n}`, large.Get!.p99, 5);
    target(`Path p99 ms @${n}`, large.Path!.p99, 5);
    target(`List p99 ms @${n}`, large.List!.p99, 50);
    target(`Mount p99 ms @${n}`, large.Mount!.p99, 1);
    target(`Unmount p99 ms @${n}`, large.Unmount!.p99, 1);
    target(`Create p50 ms @${n}`, result.createRemoveLarge.createMs.p50, 3);
    target(`Remove p50 ms @${n}`, result.createRemoveLarge.removeMs.p50, 5);
    target(`Create p50 ms, ${lines}-line mount table`, inTable.createMs.p50, 5);
    target(`Remove p50 ms, ${lines}-line mount table`, inTable.removeMs.p50, 10);
    target(`grow to ${n} volumes s`, result.growS, 60);
    target(`RSS MiB @${n}`, result.rssMiB[String(n)]!, 120);
    return result;
  } finally {
    client.close();
    child.kill('SIGTERM');
    await child;
    await rm(base, { recursive: true, force: true });
  }
}
