/** `sharedprop doctor`, `sharedprop ls` and `sharedprop prune`: what the engine and kernel say. */
import type { Command } from 'commander';
import pc from 'picocolors';
import { diagnose, diagnoseContainer, listOurVolumes } from '../doctor/gather.js';
import { pruneLeaks } from '../doctor/prune.js';
import { exitCodeOf, toJson, toText } from '../doctor/report.js';
import { classifySubmounts } from '../doctor/checks.js';
import { readMountinfo } from '../system/mountinfo.js';
import { runningRoots } from '../doctor/gather.js';

/** dockerode is loaded only by the commands that talk to the engine, not by `serve`. */
async function engine() {
  const { default: Docker } = await import('dockerode');
  return new Docker();
}

const colour = () => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

interface Common {
  plugin: string;
  json?: boolean;
}

export function registerInspectCommands(program: Command): void {
  program
    .command('doctor')
    .description(
      'check why propagation works or not: engine, plugin, dockerd namespace, runtime, volumes',
    )
    .option('--plugin <name>', 'name of the plugin (volume driver)', 'sharedprop')
    .option('--runtime <name>', 'name the runtime wrapper is registered under', 'sharedprop')
    .option('--container <name>', 'check that a running container has its sharedprop mounts shared')
    .option('--fix', 'detach leaked submounts (see `sharedprop prune`)')
    .option('--json', 'print a JSON document')
    .action(async (options: Common & { runtime: string; container?: string; fix?: boolean }) => {
      const docker = await engine();
      if (options.fix) await pruneLeaks(docker, options.plugin);
      const results = options.container
        ? await diagnoseContainer(docker, options.container, options.plugin)
        : await diagnose(docker, options);
      process.stdout.write((options.json ? toJson(results) : toText(results, colour())) + '\n');
      process.exitCode = exitCodeOf(results);
    });

  program
    .command('ls')
    .description('list sharedprop volumes with their mount counts, submounts and host paths')
    .option('--plugin <name>', 'name of the plugin (volume driver)', 'sharedprop')
    .option('--json', 'print JSON')
    .action(async (options: Common) => {
      const docker = await engine();
      const [volumes, hostMounts, running] = await Promise.all([
        listOurVolumes(docker, options.plugin),
        readMountinfo(),
        runningRoots(docker),
      ]);
      const rows = volumes.map((v) => ({
        name: v.name,
        activeMounts: v.status?.activeMounts,
        mountpoint: v.mountpoint,
        dataPath: v.status?.dataPath ?? '',
        submounts: classifySubmounts(hostMounts, v.mountpoint, running).map((s) => ({
          path: s.path.slice(v.mountpoint.length),
          fsType: s.fsType,
          leaked: s.leaked,
        })),
      }));
      if (options.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const paint = pc.createColors(colour());
      const table = [['NAME', 'MOUNTS', 'SUBMOUNTS', 'MOUNTPOINT', 'DATA']].concat(
        rows.map((r) => {
          const leaks = r.submounts.filter((s) => s.leaked).length;
          const subs = `${r.submounts.length}${leaks ? paint.red(` (${leaks} leaked)`) : ''}`;
          return [r.name, String(r.activeMounts ?? '?'), subs, r.mountpoint, r.dataPath];
        }),
      );
      process.stdout.write(formatTable(table) + '\n');
    });

  program
    .command('prune')
    .description(
      'detach leaked submounts: mounts that pin the files of containers no longer running',
    )
    .option('--plugin <name>', 'name of the plugin (volume driver)', 'sharedprop')
    .option('--dry-run', 'only say what would be detached')
    .option('--json', 'print JSON')
    .action(async (options: Common & { dryRun?: boolean }) => {
      const results = await pruneLeaks(await engine(), options.plugin, { dryRun: options.dryRun });
      if (options.json) {
        process.stdout.write(JSON.stringify(results, null, 2) + '\n');
        return;
      }
      const verb = options.dryRun ? 'would detach' : 'detached';
      let total = 0;
      for (const r of results) {
        for (const leak of r.detached) {
          total++;
          process.stdout.write(`${r.volume}: ${verb} ${leak.path} (${leak.fsType})\n`);
        }
      }
      process.stdout.write(`${total} leaked submount(s) ${verb}\n`);
    });
}

function formatTable(rows: string[][]): string {
  // eslint-disable-next-line no-control-regex
  const visible = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => visible(r[i] ?? ''))));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell + ' '.repeat((widths[i] ?? 0) - visible(cell)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
