/**
 * The doctor's report and exit code, the fixes it names (for the plugin and the runtime asked
 * for), and a check that could not be made.
 */
import {
  checkDaemonNamespace,
  checkEngine,
  checkPlugin,
  checkRuntime,
  couldNotCheck,
} from '../../../src/doctor/checks.js';
import { checkContainerMounts, checkVolume } from '../../../src/doctor/volume-checks.js';
import { EngineError } from '../../../src/docker/engine-client.js';
import { exitCodeOf, toJson, toText } from '../../../src/doctor/report.js';
import { parseMountinfo } from '../../../src/system/mountinfo.js';
import { host, PROP, runningWith } from './host-table.js';

describe('report', () => {
  const results = [
    { check: 'engine', verdict: 'ok' as const, detail: 'fine' },
    { check: 'runtime', verdict: 'fail' as const, detail: 'missing', fix: 'make install-runtime' },
  ];
  it('prints one line per check with the fix, without colour off a TTY', () => {
    expect(toText(results, false)).toBe(
      'ok    engine: fine\nfail  runtime: missing\n      fix: make install-runtime',
    );
    expect(exitCodeOf(results)).toBe(1);
    expect(JSON.parse(toJson(results))).toMatchObject({
      healthy: false,
      summary: { ok: 1, fail: 1, warn: 0 },
    });
  });
});

describe('fixes name the plugin and the runtime they are about', () => {
  const running = runningWith([]);

  it('plugin: install under the name asked for', () => {
    expect(checkPlugin({ name: 'foo' }).fix).toMatch(/make install PLUGIN_NAME=foo/);
    expect(checkPlugin({ name: 'sharedprop' }).fix).toBe(
      'run `make install`, or start `sharedprop serve` on the host',
    );
  });

  it('daemon-namespace: restarts the plugin that was found', () => {
    const privateProp = parseMountinfo(`22 1 8:1 / / rw - ext4 /dev/sda1 rw
90 22 8:1 /x ${PROP} rw - ext4 /dev/sda1 rw`);
    const result = checkDaemonNamespace({
      pid: 42,
      sameNamespace: true,
      daemonMounts: privateProp,
      propagatedMount: PROP,
      plugin: 'foo:latest',
    });
    expect(result.fix).toMatch(/^sharedprop plugin restart --name foo:latest/);
  });

  it('runtime: registers the name asked for', () => {
    const missing = checkRuntime({ runtimes: {} }, 'bar');
    expect(missing.detail).toMatch(/no runtime named bar/);
    expect(missing.fix).toMatch(/"bar"/);
    expect(
      checkRuntime({ runtimes: { bar: { path: '/x' } }, executable: false }, 'bar').fix,
    ).toMatch(/runtime bar/);
  });

  it('volume: restart and prune commands carry the plugin', () => {
    const ref = { name: 'foo:latest', managed: true };
    expect(checkVolume('dup', `${PROP}/dup`, host, running, ref).fix).toBe(
      'sharedprop plugin restart --name foo:latest',
    );
    expect(checkVolume('plain', `${PROP}/plain`, host, running, ref).fix).toMatch(/foo:latest/);
    expect(checkVolume('netns', `${PROP}/netns`, host, running, ref).fix).toMatch(
      /^sharedprop prune --plugin foo \(or sharedprop doctor --plugin foo --fix\)/,
    );
    expect(
      checkVolume('plain', `${PROP}/plain`, host, running, { name: 'foo', managed: false }).fix,
    ).toMatch(/restart the `sharedprop serve` that serves foo/);
  });

  it('container: names the runtime asked for', () => {
    const [slave] = checkContainerMounts(
      'agent',
      [
        {
          destination: '/run/netns',
          volume: 'netns',
          entry: parseMountinfo('701 700 8:1 /x /run/netns rw master:301 - ext4 /dev/sda1 rw')[0],
        },
      ],
      'bar',
    );
    expect(slave?.detail).toMatch(/started without --runtime bar/);
    expect(slave?.fix).toMatch(/--runtime bar \(compose: runtime: bar\), or make bar/);
  });
});

describe('a check that could not be made', () => {
  it('says what stood in the way, and the exit code is 3 even with another failure', () => {
    const denied = Object.assign(new Error("EACCES: permission denied, open '/proc/7/mountinfo'"), {
      code: 'EACCES',
    });
    const result = couldNotCheck('daemon-namespace', denied);
    expect(result).toMatchObject({ verdict: 'fail', couldNotCheck: true });
    expect(result.detail).toBe(
      "could not check: EACCES: permission denied, open '/proc/7/mountinfo'",
    );
    expect(result.fix).toMatch(/as root/);
    const failed = { check: 'runtime', verdict: 'fail' as const, detail: 'missing' };
    expect(exitCodeOf([failed])).toBe(1);
    expect(exitCodeOf([failed, result])).toBe(3);
    expect(JSON.parse(toJson([failed, result]))).toMatchObject({ healthy: false, complete: false });
  });

  it('an engine error is reported as the engine said it', () => {
    const error = new EngineError(
      'permission',
      'permission denied connecting to the Docker engine at unix:///s: connect EACCES /s',
    );
    expect(checkEngine(error)).toMatchObject({
      verdict: 'fail',
      couldNotCheck: true,
      detail: 'permission denied connecting to the Docker engine at unix:///s: connect EACCES /s',
    });
  });
});
