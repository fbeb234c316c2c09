/** `sharedprop runtime install|uninstall`: the runtime wrapper's binary and its daemon.json entry. */
import type { Command } from 'commander';
import {
  installRuntime,
  uninstallRuntime,
  type InstallReport,
  type Reload,
  type UninstallReport,
  type RuntimeTarget,
} from '../install/runtime-install.js';
import { RUNTIME_NAME } from '../install/daemon-json.js';

function withTargetOptions(command: Command): Command {
  return command
    .option('--dir <dir>', 'directory for the sharedprop-runtime binary', '/usr/local/bin')
    .option('--daemon-json <file>', "dockerd's configuration file", '/etc/docker/daemon.json')
    .option('--pidfile <file>', "dockerd's pidfile (it gets a SIGHUP)", '/var/run/docker.pid');
}

function describeReload(reload: Reload): string | undefined {
  switch (reload.kind) {
    case 'not-needed':
      return undefined;
    case 'signalled':
      return `dockerd (pid ${reload.pid}) reloaded its configuration (SIGHUP)`;
    case 'skipped':
      return `dockerd not reloaded: ${reload.reason}; it reads daemon.json when it starts`;
  }
}

/** What `runtime install` did, one line each. */
export function installLines(result: InstallReport, options: RuntimeTarget): string[] {
  const lines = [
    result.binaryChanged ? `installed ${result.binaryPath}` : `${result.binaryPath} is up to date`,
    result.daemonJsonChanged
      ? `registered runtime ${RUNTIME_NAME} in ${options.daemonJson}` +
        (result.backup ? ` (previous file saved as ${result.backup})` : '')
      : `runtime ${RUNTIME_NAME} already registered in ${options.daemonJson}`,
  ];
  const reload = describeReload(result.reload);
  if (reload) lines.push(reload);
  lines.push(`use it with: docker run --runtime ${RUNTIME_NAME} ...`);
  return lines;
}

/** What `runtime uninstall` did, one line each. */
export function uninstallLines(result: UninstallReport, options: RuntimeTarget): string[] {
  const lines = [
    result.daemonJsonChanged
      ? `removed runtime ${RUNTIME_NAME} from ${options.daemonJson}` +
        (result.backup ? ` (previous file saved as ${result.backup})` : '')
      : `runtime ${RUNTIME_NAME} is not registered in ${options.daemonJson}`,
    result.binaryRemoved
      ? `removed ${result.binaryPath}`
      : `${result.binaryPath} was not installed`,
  ];
  const reload = describeReload(result.reload);
  if (reload) lines.push(reload);
  return lines;
}

async function report(action: () => Promise<string[]>, verb: string): Promise<void> {
  try {
    for (const line of await action()) process.stdout.write(line + '\n');
  } catch (error) {
    process.stderr.write(`sharedprop runtime ${verb}: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}

export function registerRuntimeCommands(program: Command): void {
  const runtime = program
    .command('runtime')
    .description('install the OCI runtime wrapper that gives containers rshared sharedprop mounts');

  withTargetOptions(
    runtime
      .command('install')
      .description(`install the wrapper and register it in daemon.json as "${RUNTIME_NAME}"`)
      .requiredOption(
        '--binary <file>',
        'the built wrapper (make runtime: build/sharedprop-runtime)',
      ),
  ).action((options: RuntimeTarget & { binary: string }) =>
    report(async () => installLines(await installRuntime(options), options), 'install'),
  );

  withTargetOptions(
    runtime
      .command('uninstall')
      .description(`remove the wrapper and its "${RUNTIME_NAME}" entry from daemon.json`),
  ).action((options: RuntimeTarget) =>
    report(async () => uninstallLines(await uninstallRuntime(options), options), 'uninstall'),
  );
}
