/**
 * The host-process service: the unit `sharedprop install --host-process` writes (ordered before
 * docker.service, wanted by it, no setting that would give the driver a mount namespace of its
 * own), ExecStart quoting that keeps any path one argument, and what install and uninstall do with
 * systemd running or not. `systemd-analyze verify` of the real unit is in the integration tier.
 */
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  installService,
  parseExecStart,
  renderUnit,
  shellQuote,
  systemdQuote,
  uninstallService,
} from '../../../src/install/service-unit.js';
import type { RunResult } from '../../../src/system/exec.js';

const OPTIONS = {
  name: 'sharedprop',
  dataDir: '/var/lib/sharedprop',
  command: ['/usr/bin/node', '/opt/sharedprop/dist/cli.js'],
  documentation: '/opt/sharedprop/README.md',
};

const execStartOf = (unit: string) =>
  unit
    .split('\n')
    .find((line) => line.startsWith('ExecStart='))
    ?.slice('ExecStart='.length) ?? '';

describe('the unit', () => {
  it('runs serve on /run/docker/plugins/NAME.sock before docker.service, and docker.service wants it', () => {
    const unit = renderUnit({ ...OPTIONS, logLevel: 'debug' });
    expect(parseExecStart(execStartOf(unit))).toEqual([
      '/usr/bin/node',
      '/opt/sharedprop/dist/cli.js',
      'serve',
      '--socket',
      '/run/docker/plugins/sharedprop.sock',
      '--data-root',
      '/var/lib/sharedprop',
    ]);
    expect(unit).toMatch(/^Before=docker\.service$/m);
    expect(unit).toMatch(/^WantedBy=multi-user\.target docker\.service$/m);
    expect(unit).toMatch(/^Environment=LOG_LEVEL=debug$/m);
    expect(unit).toMatch(/^Documentation=file:\/\/\/opt\/sharedprop\/README\.md$/m);
    // Its mounts must land in the host's namespace, where dockerd is.
    expect(unit).not.toMatch(/^(Private|Protect|ReadOnly|Temporary|Mount|Bind)/m);
  });

  it("a release's standalone executable serves by itself, with no Node and no Documentation line", () => {
    const unit = renderUnit({
      name: 'sp',
      dataDir: '/srv/sp',
      command: ['/usr/local/bin/sharedprop'],
    });
    expect(parseExecStart(execStartOf(unit))).toEqual([
      '/usr/local/bin/sharedprop',
      'serve',
      '--socket',
      '/run/docker/plugins/sp.sock',
      '--data-root',
      '/srv/sp',
    ]);
    expect(unit).not.toMatch(/^Documentation=/m);
  });

  it('keeps any path one argument, as is: spaces, quotes, backslashes, % and $', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }).filter((s) => !/[\n\r]/.test(s)),
        (dir) => {
          const dataDir = `/srv/${dir}`;
          const words = parseExecStart(execStartOf(renderUnit({ ...OPTIONS, dataDir })));
          expect(words.at(-1)).toBe(dataDir);
          expect(words).toHaveLength(7);
        },
      ),
    );
    expect(systemdQuote('/a b/%h/$HOME/"x"\\')).toBe('"/a b/%%h/$$HOME/\\"x\\"\\\\"');
    expect(shellQuote("/a b/it's")).toBe("'/a b/it'\\''s'");
    expect(shellQuote('/plain/path')).toBe('/plain/path');
  });

  it('refuses a name, data directory or log level that would not make a sound unit', () => {
    expect(() => renderUnit({ ...OPTIONS, name: '../x' })).toThrow(/not a valid unit/);
    expect(() => renderUnit({ ...OPTIONS, dataDir: 'data' })).toThrow(/absolute path/);
    expect(() => renderUnit({ ...OPTIONS, command: ['sharedprop'] })).toThrow(
      /command must start with an absolute path, not "sharedprop"/,
    );
    expect(() => renderUnit({ ...OPTIONS, command: [] })).toThrow(/absolute path, not undefined/);
    expect(() => renderUnit({ ...OPTIONS, logLevel: 'info\nExecStartPre=/bin/evil' })).toThrow(
      /unknown log level/,
    );
    expect(() => renderUnit({ ...OPTIONS, dataDir: '/a\nExecStartPre=/bin/evil' })).toThrow(
      /newline/,
    );
  });
});

describe('install and uninstall', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'service-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function fakeSystemd(runs: boolean) {
    const commands: string[] = [];
    const run = async (command: string, args: readonly string[]): Promise<RunResult> => {
      commands.push([command, ...args].join(' '));
      return { stdout: '', stderr: '' };
    };
    return { deps: { run, systemdRuns: async () => runs }, commands };
  }

  it('with systemd: writes the unit 0644, reloads, enables and starts it; uninstall undoes it', async () => {
    const { deps, commands } = fakeSystemd(true);
    const report = await installService({ ...OPTIONS, unitDir: dir }, deps);
    expect(report).toEqual({
      unitFile: path.join(dir, 'sharedprop.service'),
      systemd: { kind: 'enabled' },
    });
    expect(statSync(report.unitFile).mode & 0o777).toBe(0o644);
    expect(readFileSync(report.unitFile, 'utf8')).toBe(renderUnit(OPTIONS));
    expect(commands).toEqual([
      'systemctl daemon-reload',
      'systemctl enable --now sharedprop.service',
    ]);
    const removed = await uninstallService({ name: 'sharedprop', unitDir: dir }, deps);
    expect(removed.systemd).toEqual({ kind: 'disabled' });
    expect(existsSync(report.unitFile)).toBe(false);
    expect(commands.slice(2)).toEqual([
      'systemctl disable --now sharedprop.service',
      'systemctl daemon-reload',
    ]);
  });

  it('without systemd: writes the unit and says how to start the driver by hand', async () => {
    const { deps, commands } = fakeSystemd(false);
    const report = await installService(
      { ...OPTIONS, dataDir: '/srv/my data', unitDir: dir },
      deps,
    );
    expect(report.systemd).toEqual({
      kind: 'absent',
      start:
        "/usr/bin/node /opt/sharedprop/dist/cli.js serve --socket /run/docker/plugins/sharedprop.sock --data-root '/srv/my data'",
    });
    expect(commands).toEqual([]);
  });
});
