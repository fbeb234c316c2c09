/**
 * `make bench`: the benchmark suite. Prints a table and writes bench/results.json.
 * `--smoke` runs every benchmark with tiny sizes, so that `make test` keeps it from rotting;
 * its numbers mean nothing and its targets are not judged. Otherwise every target is judged, and
 * a missed one makes the run exit 1.
 */
import { writeFile } from 'node:fs/promises';
import { runDriverBench } from './driver-bench.js';
import { ms } from './stats.js';

const smoke = process.argv.includes('--smoke');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
/** `--volumes=N`, `--churn=N`: the driver bench's large size and first Create/Remove run. */
const churn = Number(
  process.argv.find((a) => a.startsWith('--churn='))?.slice('--churn='.length) ?? 1_000,
);
const volumes = Number(
  process.argv.find((a) => a.startsWith('--volumes='))?.slice('--volumes='.length) ?? 10_000,
);
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const results: Record<string, unknown> = { smoke, startedAt: new Date().toISOString() };
  const targets: { name: string; value: number; limit: number; ok: boolean }[] = [];

  if (!only || only === 'driver') {
    say('== driver level (over the socket, keep-alive client)');
    const driver = await runDriverBench(
      smoke
        ? {
            smallVolumes: 5,
            largeVolumes: 20,
            latencySamples: 20,
            concurrent: 20,
            createRemove: 10,
            createRemoveLarge: 10,
            tableLines: 300,
          }
        : {
            smallVolumes: 10,
            largeVolumes: volumes,
            latencySamples: 2_000,
            concurrent: 200,
            createRemove: churn,
            createRemoveLarge: 200,
            tableLines: 25_000,
          },
      say,
    );
    results.driver = driver;
    targets.push(...driver.targets);
    for (const [volumes, table] of Object.entries(driver.latency)) {
      say(`latency with ${volumes} volumes (ms):   p50     p99     max`);
      for (const [endpoint, s] of Object.entries(table)) {
        say(
          `  ${endpoint.padEnd(14)} ${ms(s.p50).padStart(8)} ${ms(s.p99).padStart(7)} ${ms(s.max).padStart(8)}`,
        );
      }
    }
    say(`resident memory (MiB): ${JSON.stringify(driver.rssMiB)}`);
  }

  if (!only || only === 'docker') {
    const { runDockerBench } = await import('./docker-bench.js');
    say('== docker level (private dockerd; side by side, alternating; medians)');
    const docker = await runDockerBench({ smoke }, say);
    results.docker = docker;
    targets.push(...docker.targets);
  }

  say('== targets');
  for (const t of targets) {
    const verdict = smoke ? 'smoke' : t.ok ? 'ok' : 'MISSED';
    say(
      `  ${t.name.padEnd(52)} ${t.value.toFixed(3).padStart(9)}  <= ${String(t.limit).padEnd(5)} ${verdict}`,
    );
  }
  results.targets = targets;
  await writeFile(
    new URL('./results.json', import.meta.url),
    JSON.stringify(results, null, 2) + '\n',
  );
  say('results written to bench/results.json');
  const missed = targets.filter((t) => !t.ok);
  if (!smoke && missed.length > 0) {
    say(`${missed.length} target(s) missed: ${missed.map((t) => t.name).join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
