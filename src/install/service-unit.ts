/**
 * Host-process mode as a systemd service: `sharedprop serve` on the host, started before dockerd,
 * which finds it by its socket in /run/docker/plugins. Written by `sharedprop install
 * --host-process`; the driver runs with the Node and the sources it was installed from (the
 * standalone CLI does not serve).
 */
import { access, constants, rm } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { run, CommandError } from '../system/exec.js';

export const PLUGIN_SOCKET_DIR = '/run/docker/plugins';

export interface ServiceOptions {
  /** The driver's name: dockerd finds it as PLUGIN_SOCKET_DIR/NAME.sock; the unit is NAME.service. */
  name: string;
  dataDir: string;
  logLevel?: string;
  /**
   * What runs `serve`: the executable and the words before `serve` (`[sharedprop]` for a release,
   * `[node, dist/cli.js]` for a checkout).
   */
  command: readonly string[];
  /** The README's path, for the unit's Documentation= line (a checkout has one). */
  documentation?: string;
  /** More `serve` options, last on its line (serve-settings.ts serveArguments). */
  serveArguments?: readonly string[];
}

/**
 * One ExecStart argument in systemd's syntax: double-quoted, with `\` and `"` escaped, `%` (a
 * specifier) doubled and `$` (a variable) doubled, so that any path stays one argument, as is.
 */
export function systemdQuote(arg: string): string {
  if (/[\n\r]/.test(arg))
    throw new Error(`a newline cannot be part of a unit: ${JSON.stringify(arg)}`);
  const escaped = arg
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/%/g, '%%')
    .replace(/\$/g, '$$$$');
  return `"${escaped}"`;
}

/** The words of an ExecStart line, as systemd reads the quoting systemdQuote writes. */
export function parseExecStart(line: string): string[] {
  const words: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const match of line.matchAll(pattern)) {
    const raw = match[1] ?? match[2] ?? '';
    words.push(
      match[1] === undefined
        ? raw
        : raw.replace(/\\(.)/g, '$1').replace(/%%/g, '%').replace(/\$\$/g, '$'),
    );
  }
  return words;
}

/** A word for a POSIX shell: as is when it is plain, else single-quoted. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];

function validate(options: ServiceOptions): void {
  if (!NAME.test(options.name)) {
    throw new Error(
      `the driver name ${JSON.stringify(options.name)} is not a valid unit and socket name`,
    );
  }
  const executable = options.command[0];
  if (executable === undefined || !path.isAbsolute(executable)) {
    throw new Error(
      `the driver's command must start with an absolute path, not ${JSON.stringify(executable)}`,
    );
  }
  if (!path.isAbsolute(options.dataDir)) {
    throw new Error(`the data directory must be an absolute path, not ${options.dataDir}`);
  }
  if (options.logLevel !== undefined && !LOG_LEVELS.includes(options.logLevel)) {
    throw new Error(
      `unknown log level ${JSON.stringify(options.logLevel)}: ${LOG_LEVELS.join(', ')}`,
    );
  }
}

export const unitName = (name: string) => `${name}.service`;
export const socketOf = (name: string) => path.join(PLUGIN_SOCKET_DIR, `${name}.sock`);

export function serveCommand(options: ServiceOptions): string[] {
  return [
    ...options.command,
    'serve',
    '--socket',
    socketOf(options.name),
    '--data-root',
    options.dataDir,
    ...(options.serveArguments ?? []),
  ];
}

export function renderUnit(options: ServiceOptions): string {
  validate(options);
  const lines = [
    '# Written by `sharedprop install --host-process`; `sharedprop uninstall --host-process` removes it.',
    '[Unit]',
    `Description=sharedprop volume driver ${options.name}: named volumes with rshared mount propagation`,
    ...(options.documentation ? [`Documentation=file://${encodeURI(options.documentation)}`] : []),
    // dockerd finds the driver by its socket when it starts, and its volumes are mounted there.
    'Before=docker.service',
    'After=local-fs.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${serveCommand(options).map(systemdQuote).join(' ')}`,
    ...(options.logLevel ? [`Environment=LOG_LEVEL=${options.logLevel}`] : []),
    // The mounts it makes must be in the host's mount namespace, where dockerd is: no
    // PrivateMounts, PrivateTmp, ProtectSystem or any other setting that gives it a namespace.
    'Restart=on-failure',
    'RestartSec=1',
    // SIGTERM: it stops taking requests and finishes those in flight; volume mounts stay.
    'KillMode=mixed',
    'TimeoutStopSec=30',
    '',
    '[Install]',
    'WantedBy=multi-user.target docker.service',
    '',
  ];
  return lines.join('\n');
}

export interface ServiceReport {
  unitFile: string;
  /** What was done with systemd, or why nothing was. */
  systemd: { kind: 'enabled' } | { kind: 'disabled' } | { kind: 'absent'; start: string };
}

/** True when systemd is the init system here (sd_booted's test). */
async function systemdRuns(): Promise<boolean> {
  return access('/run/systemd/system', constants.F_OK).then(
    () => true,
    () => false,
  );
}

export interface ServiceDeps {
  run: typeof run;
  systemdRuns: () => Promise<boolean>;
}

const defaultDeps: ServiceDeps = { run, systemdRuns };

/** Writes the unit; with systemd running, reloads it and enables and starts the service. */
export async function installService(
  options: ServiceOptions & { unitDir: string },
  deps: ServiceDeps = defaultDeps,
): Promise<ServiceReport> {
  const unitFile = path.join(options.unitDir, unitName(options.name));
  await writeFileAtomic(unitFile, renderUnit(options), { mode: 0o644 });
  if (!(await deps.systemdRuns())) {
    return {
      unitFile,
      systemd: { kind: 'absent', start: serveCommand(options).map(shellQuote).join(' ') },
    };
  }
  await deps.run('systemctl', ['daemon-reload']);
  await deps.run('systemctl', ['enable', '--now', unitName(options.name)]);
  return { unitFile, systemd: { kind: 'enabled' } };
}

/** Stops and disables the service (with systemd running) and removes its unit; keeps the data. */
export async function uninstallService(
  options: { name: string; unitDir: string },
  deps: ServiceDeps = defaultDeps,
): Promise<ServiceReport> {
  const unitFile = path.join(options.unitDir, unitName(options.name));
  const running = await deps.systemdRuns();
  if (running) {
    await deps
      .run('systemctl', ['disable', '--now', unitName(options.name)])
      .catch((error: unknown) => {
        if (!(error instanceof CommandError)) throw error;
      });
  }
  await rm(unitFile, { force: true });
  if (running) await deps.run('systemctl', ['daemon-reload']);
  return {
    unitFile,
    systemd: running ? { kind: 'disabled' } : { kind: 'absent', start: '' },
  };
}
