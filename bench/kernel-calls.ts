/**
 * What one system call costs through koffi: statx of a path 100,000 times through the binding,
 * against Node's own fs.statSync (libuv, no FFI) and fs.statSync with bigint; and the cost of
 * openat2 + close, and of statmount. Run: npx tsx bench/kernel-calls.ts [count]
 */
import { statSync } from 'node:fs';
import { AT_FDCWD } from '../src/system/kernel/constants.js';
import { close, openDirectory, statx } from '../src/system/kernel/calls.js';
import { statmount } from '../src/system/kernel/statmount.js';

const count = Number(process.argv[2] ?? 100_000);
const target = '/usr/lib';

function perCall(name: string, work: () => unknown): void {
  for (let i = 0; i < 1000; i++) work(); // warm up (JIT, koffi's call cache)
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) work();
    runs.push(Number(process.hrtime.bigint() - start) / count);
  }
  runs.sort((a, b) => a - b);
  process.stdout.write(
    `${name.padEnd(34)} median ${(runs[2] as number).toFixed(0)} ns/call (5 runs of ${count})\n`,
  );
}

perCall('fs.statSync(path)', () => statSync(target));
perCall('fs.statSync(path, {bigint})', () => statSync(target, { bigint: true }));
perCall('koffi statx(path)', () => statx(AT_FDCWD, target));
perCall('koffi openat2 + close', () => close(openDirectory(target)));
const id = statx(AT_FDCWD, target).uniqueMountId;
if (id !== undefined) perCall('koffi statmount(id)', () => statmount(id));
