/**
 * The process table from /proc: who started whom. Used to find this run's plugin process and to
 * end every process this run left behind, and never one of another run.
 */
import { readdir, readFile } from 'node:fs/promises';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot: with the pid, it names one process for good. */
  startTime: string;
  cmdline: string[];
}

export async function readProcess(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the fields after the last ')' do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return {
      pid,
      ppid: Number(fields[1]),
      startTime: fields[19] ?? '',
      cmdline: cmdline.split('\0').filter(Boolean),
    };
  } catch {
    return undefined;
  }
}

export async function processTable(): Promise<Map<number, ProcessInfo>> {
  const table = new Map<number, ProcessInfo>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = await readProcess(Number(entry));
    if (info) table.set(info.pid, info);
  }
  return table;
}

/** The parent chain of `pid`, nearest first, not including `pid` itself. */
export function ancestorsOf(table: Map<number, ProcessInfo>, pid: number): ProcessInfo[] {
  const chain: ProcessInfo[] = [];
  const seen = new Set<number>([pid]);
  let current = table.get(pid);
  while (current && current.ppid > 0 && !seen.has(current.ppid)) {
    seen.add(current.ppid);
    const parent = table.get(current.ppid);
    if (!parent) break;
    chain.push(parent);
    current = parent;
  }
  return chain;
}

/** Processes for which `isRoot` holds, and every process whose parent chain reaches one. */
export function treesOf(
  table: Map<number, ProcessInfo>,
  isRoot: (info: ProcessInfo) => boolean,
): ProcessInfo[] {
  return [...table.values()].filter(
    (info) => isRoot(info) || ancestorsOf(table, info.pid).some(isRoot),
  );
}

/** True while the very process `info` names (same pid, same start time) exists. */
export async function stillRunning(info: ProcessInfo): Promise<boolean> {
  const now = await readProcess(info.pid);
  if (!now || now.startTime !== info.startTime) return false;
  const state = await readFile(`/proc/${info.pid}/stat`, 'utf8').catch(() => '');
  return !/\) Z /.test(state);
}

/** Sends `signal` to each process that is still the one recorded (pid reuse is checked). */
export async function signalAll(list: ProcessInfo[], signal: NodeJS.Signals): Promise<void> {
  for (const info of list) {
    if (!(await stillRunning(info))) continue;
    try {
      process.kill(info.pid, signal);
    } catch {
      // exited in between
    }
  }
}

export async function waitUntilGone(list: ProcessInfo[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = [];
    for (const info of list) if (await stillRunning(info)) alive.push(info);
    if (alive.length === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves to true when `promise` settles within `ms`, false otherwise; leaves no timer behind. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
