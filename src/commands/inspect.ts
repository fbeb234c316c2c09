/** `sharedprop doctor`, `sharedprop ls` and `sharedprop prune`: what the engine and kernel say. */
import type { Command, CommanderError } from 'commander';
import pc from 'picocolors';
import { connectEngine, EngineError, type EngineClient } from '../docker/engine-client.js';
import {
  checkEngine,
  couldNotCheck,
  DEFAULT_PLUGIN,
  DEFAULT_RUNTIME,
  type CheckResult,
} from '../doctor/checks.js';
import { classifySubmounts } from '../doctor/volume-checks.js';
import { diagnose, diagnoseContainer, listOurVolumes, runningRoots } from '../doctor/gather.js';
import { procHost, type HostProbe } from '../doctor/host.js';
import { pruneLeaks, type PruneResult } from '../doctor/prune.js';
import { EXIT, EXIT_CODES_HELP, exitCodeOf, toJson, toText } from '../doctor/report.js';
import { findPlugin } from '../docker/plugin-volumes.js';
import { restartPlugin } from '../install/plugin-restart.js';
import { hostMountOps } from '../install/upgrade-mounts.js';
import { run } from '../system/exec.js';
import type { Mounts } from '../system/mounts.js';

/** What the commands use of the world; the defaults are the real ones, unit tests pass fakes. */
export interface InspectDeps {
  /** A client for the engine DOCKER_HOST names; throws an EngineError when it cannot make one. */
  connect(): Promise<EngineClient>;
  host: HostProbe;
  /** What prune detaches with (default: the real mount table). */
  mounts?: Pick<Mounts, 'detachAll'>;
  /** `sharedprop plugin restart` of a managed plugin, for doctor --fix (default: the real one). */
  restartPlugin?: (engine: EngineClient, name: string) => Promise<void>;
  stdout(text: string): void;
  stderr(text: string): void;
  colour(): boolean;
  /** Sets the exit code the process ends with. */
  setExitCode(code: number): void;
  /** Ends the process at once (usage errors, --help). */
  exit(code: number): never;
}

const realRestart = (engine: EngineClient, name: string) =>
  restartPlugin({ name }, { engine, run, mounts: hostMountOps, say: () => undefined });

export const realDeps: InspectDeps = {
  connect: () => connectEngine(),
  host: procHost,
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  colour: () => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
  setExitCode: (code) => {
    process.exitCode = code;
  },
  exit: (code) => process.exit(code),
};

interface Common {
  plugin: string;
  json?: boolean;
}

/**
 * A failure of `ls` or `prune` as one line on stderr (no stack trace), with its exit code: the
 * engine's errors and unreadable mount tables mean "could not check".
 */
function fail(deps: InspectDeps, command: string, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  deps.stderr(`sharedprop ${command}: ${message}\n`);
  deps.setExitCode(EXIT.couldNotCheck);
}

/** Usage errors exit with EXIT.usage; --help still exits 0. The help text lists the codes. */
function withExitCodes(command: Command, deps: InspectDeps): Command {
  return command
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride((error: CommanderError) =>
      deps.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage),
    );
}

export function registerInspectCommands(program: Command, deps: InspectDeps = realDeps): void {
  withExitCodes(program.command('doctor'), deps)
    .description(
      'check why propagation works or not: engine, plugin, dockerd namespace, runtime, volumes',
    )
    .option('--plugin <name>', 'name of the plugin (volume driver)', DEFAULT_PLUGIN)
    .option('--runtime <name>', 'name the runtime wrapper is registered under', DEFAULT_RUNTIME)
    .option('--container <name>', 'check that a running container has its sharedprop mounts shared')
    .option(
      '--fix',
      'detach leaked submounts first (see `sharedprop prune`), and restart a managed plugin whose volumes are not mounted',
    )
    .option('--json', 'print a JSON document')
    .action(async (options: Common & { runtime: string; container?: string; fix?: boolean }) => {
      const results = await doctor(deps, options);
      deps.stdout((options.json ? toJson(results) : toText(results, deps.colour())) + '\n');
      deps.setExitCode(exitCodeOf(results));
    });

  withExitCodes(program.command('ls'), deps)
    .description('list sharedprop volumes with their mount counts, submounts and host paths')
    .option('--plugin <name>', 'name of the plugin (volume driver)', DEFAULT_PLUGIN)
    .option('--json', 'print JSON')
    .action(async (options: Common) => {
      let rows: LsRow[];
      try {
        rows = await listRows(await deps.connect(), deps.host, options.plugin);
      } catch (error) {
        fail(deps, 'ls', error);
        return;
      }
      if (options.json) {
        deps.stdout(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const paint = pc.createColors(deps.colour());
      const table = [['NAME', 'MOUNTS', 'SUBMOUNTS', 'MOUNTPOINT', 'DATA']].concat(
        rows.map((r) => {
          const leaks = r.submounts.filter((s) => s.leaked).length;
          const subs = `${r.submounts.length}${leaks ? paint.red(` (${leaks} leaked)`) : ''}`;
          return [r.name, String(r.activeMounts ?? '?'), subs, r.mountpoint, r.dataPath];
        }),
      );
      deps.stdout(formatTable(table) + '\n');
    });

  withExitCodes(program.command('prune'), deps)
    .description(
      'detach leaked submounts: mounts that pin the files of containers no longer running',
    )
    .option('--plugin <name>', 'name of the plugin (volume driver)', DEFAULT_PLUGIN)
    .option('--dry-run', 'only say what would be detached')
    .option('--json', 'print JSON')
    .action(async (options: Common & { dryRun?: boolean }) => {
      let results: PruneResult[];
      try {
        results = await pruneLeaks(await deps.connect(), options.plugin, {
          dryRun: options.dryRun,
          mounts: deps.mounts,
          host: deps.host,
        });
      } catch (error) {
        fail(deps, 'prune', error);
        return;
      }
      const failures = results.flatMap((r) => r.failed.map((f) => ({ volume: r.volume, ...f })));
      for (const f of failures) {
        deps.stderr(
          `sharedprop prune: could not detach ${f.path} (volume ${f.volume}): ${f.error}\n`,
        );
      }
      if (failures.length > 0) deps.setExitCode(EXIT.failed);
      if (options.json) {
        deps.stdout(JSON.stringify(results, null, 2) + '\n');
        return;
      }
      const verb = options.dryRun ? 'would detach' : 'detached';
      let total = 0;
      for (const r of results) {
        for (const leak of r.detached) {
          total++;
          deps.stdout(`${r.volume}: ${verb} ${leak.path} (${leak.fsType})\n`);
        }
      }
      deps.stdout(`${total} leaked submount(s) ${verb}\n`);
    });
}

/** The doctor's results; with --fix, what prune did comes last. Never throws. */
async function doctor(
  deps: InspectDeps,
  options: Common & { runtime: string; container?: string; fix?: boolean },
): Promise<CheckResult[]> {
  let engine: EngineClient;
  try {
    engine = await deps.connect();
  } catch (error) {
    return [checkEngine(error instanceof Error ? error : new Error(String(error)))];
  }
  const fixes: CheckResult[] = [];
  if (options.fix) {
    try {
      const pruned = await pruneLeaks(engine, options.plugin, {
        mounts: deps.mounts,
        host: deps.host,
      });
      fixes.push(...fixResults(pruned));
    } catch (error) {
      // An engine that cannot be reached is the engine check's failure; say it once.
      if (!(error instanceof EngineError && error.kind !== 'api')) {
        fixes.push(couldNotCheck('fix', error));
      }
    }
  }
  const doctorOptions = { plugin: options.plugin, runtime: options.runtime };
  try {
    if (options.container) {
      return [
        ...(await diagnoseContainer(engine, options.container, doctorOptions, deps.host)),
        ...fixes,
      ];
    }
    let results = await diagnose(engine, doctorOptions, deps.host);
    if (options.fix && results.some(isUnmountedVolume)) {
      fixes.push(await restartForUnmounted(deps, engine, options.plugin));
      results = await diagnose(engine, doctorOptions, deps.host);
    }
    return [...results, ...fixes];
  } catch (error) {
    return [couldNotCheck(options.container ? `container ${options.container}` : 'doctor', error)];
  }
}

/** A volume check that found the volume's mount point missing on the host (by its data, not its text). */
const isUnmountedVolume = (r: CheckResult) =>
  r.check.startsWith('volume ') && r.data?.mounted === false;

/**
 * doctor --fix for volumes whose mount points are missing: a managed plugin is restarted (it puts
 * every mount point back, and the restart waits until dockerd has let go of its old mounts); a
 * host process cannot be restarted from here.
 */
async function restartForUnmounted(
  deps: InspectDeps,
  engine: EngineClient,
  plugin: string,
): Promise<CheckResult> {
  const managed = await findPlugin(engine, plugin).catch(() => undefined);
  if (!managed) {
    return {
      check: 'fix',
      verdict: 'fail',
      detail: `volumes are not mounted, and ${plugin} is no managed plugin here: restart the \`sharedprop serve\` that serves it`,
    };
  }
  try {
    await (deps.restartPlugin ?? realRestart)(engine, managed.name);
    return {
      check: 'fix',
      verdict: 'ok',
      detail: `restarted ${managed.name}: it puts every mount point back`,
    };
  } catch (error) {
    return {
      check: 'fix',
      verdict: 'fail',
      detail: `could not restart ${managed.name}: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}

function fixResults(pruned: PruneResult[]): CheckResult[] {
  const detached = pruned.flatMap((r) => r.detached.map((s) => s.path));
  const results: CheckResult[] = pruned.flatMap((r) =>
    r.failed.map((f) => ({
      check: 'fix',
      verdict: 'fail' as const,
      detail: `could not detach ${f.path} (volume ${r.volume}): ${f.error}`,
    })),
  );
  results.unshift({
    check: 'fix',
    verdict: 'ok',
    detail:
      detached.length > 0
        ? `detached ${detached.length} leaked submount(s): ${detached.join(', ')}`
        : 'no leaked submount to detach',
  });
  return results;
}

interface LsRow {
  name: string;
  activeMounts?: number;
  mountpoint: string;
  dataPath: string;
  submounts: { path: string; fsType: string; leaked: boolean }[];
}

async function listRows(engine: EngineClient, host: HostProbe, plugin: string): Promise<LsRow[]> {
  const info = await engine.info();
  const [volumes, hostMounts, running] = await Promise.all([
    listOurVolumes(engine, plugin, info),
    host.mounts(),
    runningRoots(engine, host, info),
  ]);
  return volumes.map((v) => ({
    name: v.name,
    activeMounts: v.status?.activeMounts,
    mountpoint: v.mountpoint,
    dataPath:
      v.status?.type === 'tmpfs'
        ? `(tmpfs${v.status.size === undefined ? '' : ` ${v.status.size}`}, in memory)`
        : (v.status?.dataPath ?? ''),
    submounts: classifySubmounts(hostMounts, v.mountpoint, running).map((s) => ({
      path: s.path.slice(v.mountpoint.length),
      fsType: s.fsType,
      leaked: s.leaked,
    })),
  }));
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
