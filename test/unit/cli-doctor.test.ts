/**
 * `sharedprop doctor` through its real command definition, with a fake engine client and a fake
 * host: failures are reported as what they are, with the documented exit codes, and fixes name
 * the plugin and runtime given on the command line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EngineError } from '../../src/docker/engine-client.js';
import { VERSION } from '../../src/system/version.js';
import { connectTo, FAKE_ADDRESS, FakeEngine, runCli, socketError } from '../support/cli-fakes.js';
import {
  AGENT,
  DAEMON_MOUNTS_PRIVATE_PROP,
  fooEngine,
  fooHost,
  fooPlugin,
  HOST_MOUNTS,
  PROP,
} from '../support/cli-world.js';

const FOO = ['--plugin', 'foo', '--runtime', 'bar'];

describe('doctor when the engine cannot be checked', () => {
  it('an unreachable engine is the engine failure, not "no managed plugin"; exit 3', async () => {
    const engine = new FakeEngine({ failAll: socketError('ENOENT') });
    const run = await runCli(['doctor'], { engine });
    expect(run.stdout).toBe(
      `fail  engine: cannot reach the Docker engine at ${FAKE_ADDRESS}: connect ENOENT /run/fake-docker.sock\n` +
        '      fix: start dockerd, or point DOCKER_HOST at the engine to check\n',
    );
    expect(run.stdout).not.toMatch(/no managed plugin|make install/);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(3);
    expect(engine.calls).toEqual(['version']); // nothing else was asked of a dead engine
  });

  it('the same through the real client, for a socket nobody listens on', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sharedprop-cli-'));
    try {
      const socket = path.join(dir, 'docker.sock');
      const run = await runCli(['doctor'], { engine: () => connectTo(`unix://${socket}`) });
      expect(run.stdout).toMatch(
        new RegExp(`^fail {2}engine: cannot reach the Docker engine at unix://${socket}: .*ENOENT`),
      );
      expect(run.exitCode).toBe(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('EACCES on the socket says permission denied; exit 3', async () => {
    const run = await runCli(['doctor'], {
      engine: new FakeEngine({ failAll: socketError('EACCES') }),
    });
    expect(run.stdout).toMatch(
      new RegExp(
        `^fail {2}engine: permission denied connecting to the Docker engine at ${FAKE_ADDRESS}: connect EACCES`,
      ),
    );
    expect(run.stdout).toMatch(/fix: run sharedprop as root/);
    expect(run.exitCode).toBe(3);
  });

  it('--json says the same: unhealthy, incomplete, exit 3', async () => {
    const run = await runCli(['doctor', '--json'], {
      engine: new FakeEngine({ failAll: socketError('ECONNREFUSED') }),
    });
    const doc = JSON.parse(run.stdout) as {
      healthy: boolean;
      complete: boolean;
      checks: { check: string; verdict: string; couldNotCheck?: boolean; detail: string }[];
    };
    expect(doc).toMatchObject({ healthy: false, complete: false });
    expect(doc.checks).toEqual([
      expect.objectContaining({ check: 'engine', verdict: 'fail', couldNotCheck: true }),
    ]);
    expect(run.exitCode).toBe(3);
  });

  it('--container and --fix report an unreachable engine once, as the engine', async () => {
    for (const args of [
      ['doctor', '--container', 'agent'],
      ['doctor', '--fix'],
    ]) {
      const run = await runCli(args, {
        engine: new FakeEngine({ failAll: socketError('ENOENT') }),
      });
      expect(run.stdout.match(/cannot reach the Docker engine/g)).toHaveLength(1);
      expect(run.stdout).toMatch(/^fail {2}engine: /);
      expect(run.exitCode).toBe(3);
    }
  });

  it('a DOCKER_HOST that cannot be used is reported, not thrown', async () => {
    const run = await runCli(['doctor'], { engine: () => connectTo('tcp://[bad') });
    expect(run.stdout).toMatch(/^fail {2}engine: cannot reach the Docker engine at tcp:\/\/\[bad/);
    expect(run.exitCode).toBe(3);
  });

  it('an error answer part-way is reported where it happened; the other checks still run', async () => {
    const engine = fooEngine({
      failOn: {
        listVolumes: new EngineError(
          'api',
          `the Docker engine at ${FAKE_ADDRESS} could not list volumes: HTTP 500: boom`,
          500,
        ),
      },
    });
    const run = await runCli(['doctor', ...FOO], { engine, host: fooHost() });
    expect(run.stdout).toMatch(/^ok {4}engine: /m);
    expect(run.stdout).toMatch(/^ok {4}plugin: managed plugin foo:latest is enabled/m);
    expect(run.stdout).toMatch(/^ok {4}runtime: runtime bar -> /m);
    expect(run.stdout).toMatch(
      /^fail {2}volumes: the Docker engine at \S+ could not list volumes: HTTP 500: boom$/m,
    );
    expect(run.exitCode).toBe(3);
  });

  it("dockerd's mount table that cannot be read is a check not made, not a crash", async () => {
    const host = fooHost();
    host.mountsOf = async (pid) => {
      throw Object.assign(new Error(`EACCES: permission denied, open '/proc/${pid}/mountinfo'`), {
        code: 'EACCES',
      });
    };
    const run = await runCli(['doctor', ...FOO], { engine: fooEngine(), host });
    expect(run.stdout).toMatch(
      /^fail {2}daemon-namespace: could not check: EACCES: permission denied, open '\/proc\/42\/mountinfo'\n {6}fix: run doctor as root/m,
    );
    expect(run.exitCode).toBe(3);
  });
});

describe('doctor exit codes', () => {
  it('0 when every check passes (a warning does not count)', async () => {
    const run = await runCli(['doctor', ...FOO], { engine: fooEngine(), host: fooHost() });
    expect(run.stdout).not.toMatch(/^fail/m);
    expect(run.stdout).toMatch(/^warn {2}volume v: /m);
    expect(run.exitCode).toBe(0);
  });

  it('1 when a check fails', async () => {
    const run = await runCli(['doctor', '--plugin', 'foo', '--runtime', 'nope'], {
      engine: fooEngine(),
      host: fooHost(),
    });
    expect(run.stdout).toMatch(/^fail {2}runtime: no runtime named nope/m);
    expect(run.exitCode).toBe(1);
  });

  it('1 for a container that does not exist', async () => {
    const run = await runCli(['doctor', '--container', 'ghost'], {
      engine: fooEngine(),
      host: fooHost(),
    });
    expect(run.stdout).toBe('fail  container ghost: no such container\n');
    expect(run.exitCode).toBe(1);
  });

  it('2 for a usage error, 0 for --help, which lists the codes', async () => {
    const bad = await runCli(['doctor', '--bogus'], {});
    expect(bad.stderr).toMatch(/unknown option '--bogus'/);
    expect(bad.exitCode).toBe(2);
    const missing = await runCli(['doctor', '--plugin'], {});
    expect(missing.exitCode).toBe(2);
    for (const command of ['doctor', 'ls', 'prune']) {
      const help = await runCli([command, '--help'], {});
      expect(help.exitCode).toBe(0);
      expect(help.stdout).toMatch(
        /Exit codes:\n {2}0 {2}all ok.*\n {2}1 {2}a check failed.*\n {2}2 {2}usage error.*\n {2}3 {2}could not check/,
      );
    }
  });
});

describe('fixes name --plugin and --runtime', () => {
  const noDefaultName = (text: string) => {
    expect(text).not.toMatch(/plugin (enable|disable)( -f)? sharedprop/);
    expect(text).not.toMatch(/runtime[ :] ?sharedprop\b(?! serve)/);
  };

  it('a managed plugin foo and runtime bar: restart, prune and register commands', async () => {
    const run = await runCli(['doctor', ...FOO, '--runtime', 'baz'], {
      engine: fooEngine(),
      host: fooHost({ processMounts: { 42: DAEMON_MOUNTS_PRIVATE_PROP } }),
    });
    const fixes = run.stdout.split('\n').filter((l) => l.trimStart().startsWith('fix:'));
    expect(run.stdout).toMatch(
      /fail {2}daemon-namespace: .*\n {6}fix: sharedprop plugin restart --name foo:latest/,
    );
    expect(run.stdout).toMatch(/fail {2}runtime: no runtime named baz .*\n {6}fix: .*"baz"/);
    expect(run.stdout).toMatch(
      /warn {2}volume v: .*\n {6}fix: sharedprop prune --plugin foo \(or sharedprop doctor --plugin foo --fix\)/,
    );
    expect(fixes).toHaveLength(3);
    noDefaultName(run.stdout);
  });

  it('no plugin foo installed: install it under that name', async () => {
    const run = await runCli(['doctor', ...FOO], {
      engine: fooEngine({ plugins: [] }),
      host: fooHost(),
    });
    expect(run.stdout).toMatch(
      /^fail {2}plugin: no managed plugin named foo .*\n {6}fix: run `make install PLUGIN_NAME=foo`/m,
    );
    noDefaultName(run.stdout);
  });

  it('--container with --runtime bar', async () => {
    const run = await runCli(['doctor', '--container', AGENT.name, ...FOO], {
      engine: fooEngine(),
      host: fooHost(),
    });
    expect(run.stdout).toMatch(
      /^fail {2}container agent: \/run\/netns: volume v is a slave mount: the container was started without --runtime bar/m,
    );
    expect(run.stdout).toMatch(
      /fix: recreate the container with --runtime bar \(compose: runtime: bar\), or make bar dockerd's default-runtime/,
    );
    noDefaultName(run.stdout);
    expect(run.exitCode).toBe(1);
  });
});

describe('doctor lists a doubled mount once', () => {
  it('names the leak once, and --fix detaches it once', async () => {
    const run = await runCli(['doctor', ...FOO], { engine: fooEngine(), host: fooHost() });
    expect(run.stdout).toMatch(
      new RegExp(
        `^warn {2}volume v: shared mount point, 1 submount\\(s\\), 1 leaked: ${PROP}/v/etc$`,
        'm',
      ),
    );

    const detached: string[] = [];
    const fixed = await runCli(['doctor', '--fix', ...FOO], {
      engine: fooEngine(),
      host: fooHost(),
      mounts: {
        async detachAll(dir) {
          detached.push(dir);
          return { detached: [dir], lazy: [] };
        },
      },
    });
    expect(detached).toEqual([`${PROP}/v/etc`]);
    expect(fixed.stdout).toMatch(
      new RegExp(`^ok {4}fix: detached 1 leaked submount\\(s\\): ${PROP}/v/etc$`, 'm'),
    );
  });

  it('the recorded table really holds the leak twice', () => {
    expect(HOST_MOUNTS.match(/ \/var\/lib\/docker\/\S+\/v\/etc /g)).toHaveLength(2);
  });
});

describe('doctor --fix for a volume whose mount point is missing', () => {
  /** The host before the restart: the propagated mount is there, the volume's mount point is not. */
  const UNMOUNTED = HOST_MOUNTS.split('\n')
    .filter((line) => !line.includes(`${PROP}/v`))
    .join('\n');

  it('restarts the managed plugin through sharedprop plugin restart, then checks again', async () => {
    const restarted: string[] = [];
    const before = fooHost({ mounts: UNMOUNTED });
    const after = fooHost();
    const host = { ...before, mounts: () => (restarted.length > 0 ? after : before).mounts() };
    const plain = await runCli(['doctor', ...FOO], { engine: fooEngine(), host });
    expect(plain.stdout).toMatch(
      new RegExp(
        `^fail {2}volume v: its mount point ${PROP}/v is not mounted\n {6}fix: .*sharedprop plugin restart --name foo:latest`,
        'm',
      ),
    );
    expect(restarted).toEqual([]);

    const fixed = await runCli(['doctor', '--fix', ...FOO], {
      engine: fooEngine(),
      host,
      mounts: { detachAll: async () => ({ detached: [], lazy: [] }) },
      restartPlugin: async (_engine, name) => void restarted.push(name),
    });
    expect(restarted).toEqual(['foo:latest']);
    expect(fixed.stdout).toMatch(
      /^ok {4}fix: restarted foo:latest: it puts every mount point back$/m,
    );
    expect(fixed.stdout).toMatch(/^warn {2}volume v: shared mount point/m);
    expect(fixed.stdout).not.toMatch(/is not mounted/);
  });

  it('says why when the restart fails, and when the driver is no managed plugin', async () => {
    const failed = await runCli(['doctor', '--fix', ...FOO], {
      engine: fooEngine(),
      host: fooHost({ mounts: UNMOUNTED }),
      mounts: { detachAll: async () => ({ detached: [], lazy: [] }) },
      restartPlugin: async () => {
        throw new Error('dockerd kept changing the 3 mounts');
      },
    });
    expect(failed.stdout).toMatch(
      /^fail {2}fix: could not restart foo:latest: dockerd kept changing the 3 mounts$/m,
    );
    const hostProcess = await runCli(['doctor', '--fix', ...FOO], {
      engine: fooEngine({ plugins: [] }),
      host: fooHost({ mounts: UNMOUNTED }),
      mounts: { detachAll: async () => ({ detached: [], lazy: [] }) },
    });
    expect(hostProcess.stdout).not.toMatch(/fix: restarted/);
  });
});

describe('doctor compares the versions of the CLI, the runtime and the plugin', () => {
  const RUNTIME = '/usr/local/bin/sharedprop-runtime';

  it('one release: ok, naming each', async () => {
    const run = await runCli(['doctor', ...FOO], {
      engine: fooEngine({ plugins: [fooPlugin({ version: VERSION })] }),
      host: fooHost({ runtimeVersions: { [RUNTIME]: VERSION } }),
    });
    expect(run.stdout).toMatch(
      new RegExp(`^ok {4}versions: CLI ${VERSION}, runtime ${VERSION}, plugin ${VERSION}$`, 'm'),
    );
  });

  it('a plugin upgraded alone: a warning that names each version, and how to align them', async () => {
    const run = await runCli(['doctor', ...FOO], {
      engine: fooEngine({ plugins: [fooPlugin({ version: '9.9.9' })] }),
      host: fooHost({ runtimeVersions: { [RUNTIME]: VERSION } }),
    });
    expect(run.stdout).toMatch(
      new RegExp(
        `^warn {2}versions: the parts of sharedprop are of different versions: CLI ${VERSION}, runtime ${VERSION}, plugin 9\\.9\\.9\\n {6}fix: .*sharedprop upgrade`,
        'm',
      ),
    );
    expect(run.exitCode).toBe(0);
  });

  it('a runtime that does not say its version (older, or not ours) is left out, not guessed', async () => {
    const run = await runCli(['doctor', ...FOO], { engine: fooEngine(), host: fooHost() });
    expect(run.stdout).toMatch(new RegExp(`^ok {4}versions: CLI ${VERSION}$`, 'm'));
  });
});
