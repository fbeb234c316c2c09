/**
 * The host-process service as installed: `sharedprop install --host-process` writes a unit that
 * `systemd-analyze verify` accepts (and a unit whose ExecStart is missing is refused, so the check
 * is real), and its ExecStart line, run as systemd would run it, serves the VolumeDriver protocol
 * on /run/docker/plugins/NAME.sock and keeps the volume's data in its data directory. These
 * machines run no systemd as PID 1; the driver runs in a private mount namespace with a /run of its
 * own, so nothing of the host's /run/docker/plugins is touched.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { installService, parseExecStart } from '../../src/install/service-unit.js';
import { PluginClient } from '../support/plugin-client.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(REPO, 'dist', 'cli.js');
const NO_SYSTEMD = {
  run: async () => ({ stdout: '', stderr: '' }),
  systemdRuns: async () => false,
};

let dir: string;
let driver: ResultPromise | undefined;
beforeEach(async () => {
  dir = await mkdtemp('/tmp/sharedprop-unit-');
});
afterEach(async () => {
  if (driver && driver.exitCode === null) {
    driver.kill('SIGKILL');
    await driver.catch(() => undefined);
  }
  driver = undefined;
  // The driver's namespace went with it: its mounts with it. Only files are left.
  await rm(dir, { recursive: true, force: true });
});

async function writeUnit(options: { name: string; dataDir: string; node?: string }) {
  const report = await installService(
    { command: [options.node ?? process.execPath, CLI], unitDir: dir, ...options },
    NO_SYSTEMD,
  );
  return report.unitFile;
}

const verify = (unit: string) =>
  execa('systemd-analyze', ['verify', unit], { reject: false, all: true, env: { LC_ALL: 'C' } });

it('systemd-analyze verify accepts the unit, and refuses one whose ExecStart does not exist', async () => {
  const good = await verify(await writeUnit({ name: 'sp-good', dataDir: path.join(dir, 'data') }));
  expect({ exitCode: good.exitCode, output: good.all }).toEqual({ exitCode: 0, output: '' });

  const bad = await verify(
    await writeUnit({
      name: 'sp-bad',
      dataDir: path.join(dir, 'data'),
      node: path.join(dir, 'no-such-node'),
    }),
  );
  expect(bad.exitCode).not.toBe(0);
  expect(bad.all).toMatch(/no-such-node/);
}, 60_000);

it("the installed unit's ExecStart serves the VolumeDriver protocol on /run/docker/plugins/NAME.sock", async () => {
  const name = `sp-svc-${randomBytes(3).toString('hex')}`;
  const dataDir = path.join(dir, 'data dir with spaces');
  const unit = await readFile(await writeUnit({ name, dataDir }), 'utf8');
  const execStart = unit.split('\n').find((l) => l.startsWith('ExecStart='));
  const words = parseExecStart(execStart?.slice('ExecStart='.length) ?? '');
  expect(words.slice(2)).toEqual([
    'serve',
    '--socket',
    `/run/docker/plugins/${name}.sock`,
    '--data-root',
    dataDir,
  ]);

  // As systemd would start it, in a mount namespace whose /run is its own.
  driver = execa(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      'mount -t tmpfs sp-run /run && mkdir -p /run/docker/plugins && exec "$@"',
      'sh',
      ...words,
    ],
    { reject: false, all: true },
  );
  const pid = driver.pid as number;
  const socket = `/proc/${pid}/root/run/docker/plugins/${name}.sock`;
  const deadline = Date.now() + 30_000;
  while (
    !(await stat(socket).then(
      (s) => s.isSocket(),
      () => false,
    ))
  ) {
    if (Date.now() > deadline || driver.exitCode !== null) {
      throw new Error(`the service did not start: ${String((await driver).all)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const client = new PluginClient(socket);
  try {
    const activate = await client.request('/Plugin.Activate', '{}');
    expect(JSON.parse(activate.text)).toEqual({ Implements: ['VolumeDriver'] });
    const created = await client.request('/VolumeDriver.Create', '{"Name":"svc","Opts":{}}');
    expect({ status: created.status, body: JSON.parse(created.text) as unknown }).toEqual({
      status: 200,
      body: {},
    });
    const mounted = JSON.parse(
      (await client.request('/VolumeDriver.Mount', '{"Name":"svc","ID":"c1"}')).text,
    ) as { Mountpoint: string };
    expect(mounted.Mountpoint).toMatch(/\/svc$/);
    await writeFile(
      path.join(`/proc/${pid}/root`, mounted.Mountpoint, 'file'),
      'from the service\n',
    );
    expect(await readFile(path.join(dataDir, 'volumes', 'svc', '_data', 'file'), 'utf8')).toBe(
      'from the service\n',
    );
  } finally {
    client.close();
  }

  // systemd stops it with SIGTERM (KillMode=mixed): it ends cleanly, and the data stays.
  driver.kill('SIGTERM');
  const result = await driver;
  expect(result.exitCode).toBe(0);
  expect(await readFile(path.join(dataDir, 'volumes', 'svc', '_data', 'file'), 'utf8')).toBe(
    'from the service\n',
  );
}, 60_000);
