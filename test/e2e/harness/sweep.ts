/**
 * Leftovers of aborted runs: a run killed before its clean-up (a jest timeout, kill -9, a lost
 * machine) leaves its dockerd's directories, mounts and processes. Each run writes its owner
 * (the test process: pid and start time) into its directory; a later run sweeps every run whose
 * owner is gone: it ends the processes that name the run's directories, detaches every mount
 * under them, and deletes them. A run whose owner still lives is never touched.
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { unmountEverythingUnder } from '../../support/host-mounts.js';
import { processTable, readProcess, signalAll, treesOf, waitUntilGone } from './proc.js';

const OWNER_FILE = 'owner.json';
/** A directory without an owner file (a run that died while starting) is swept after this. */
const ORPHAN_AGE_MS = 30 * 60_000;

interface Owner {
  pid: number;
  startTime: string;
  shortBase: string;
}

export async function recordOwner(base: string, shortBase: string): Promise<void> {
  const me = await readProcess(process.pid);
  const owner: Owner = { pid: process.pid, startTime: me?.startTime ?? '', shortBase };
  await writeFile(path.join(base, OWNER_FILE), JSON.stringify(owner) + '\n');
}

async function ownerAlive(owner: Owner): Promise<boolean> {
  const info = await readProcess(owner.pid);
  return info !== undefined && info.startTime === owner.startTime;
}

/** Sweeps the directories of aborted runs under /tmp; returns the ones it removed. */
export async function sweepAbortedRuns(): Promise<string[]> {
  const swept: string[] = [];
  for (const entry of await readdir('/tmp')) {
    if (!entry.startsWith('sharedprop-e2e-')) continue;
    const base = path.join('/tmp', entry);
    const owner = await readFile(path.join(base, OWNER_FILE), 'utf8').then(
      (text) => JSON.parse(text) as Owner,
      () => undefined,
    );
    if (owner ? await ownerAlive(owner) : await young(base)) continue;
    const dirs = [base, ...(owner?.shortBase ? [owner.shortBase] : [])];
    const table = await processTable();
    const left = treesOf(table, (info) =>
      info.cmdline.some((arg) => dirs.some((dir) => arg.includes(dir))),
    ).filter((info) => info.pid !== process.pid);
    await signalAll(left, 'SIGKILL');
    await waitUntilGone(left, 10_000);
    for (const dir of dirs) {
      if ((await unmountEverythingUnder(dir)).length === 0) {
        await rm(dir, { recursive: true, force: true });
      }
    }
    swept.push(base);
  }
  return swept;
}

async function young(dir: string): Promise<boolean> {
  const info = await stat(dir).catch(() => undefined);
  return info !== undefined && Date.now() - info.mtimeMs < ORPHAN_AGE_MS;
}
