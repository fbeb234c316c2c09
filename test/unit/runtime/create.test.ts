import * as fs from 'node:fs';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RuncInvocation } from '../../../src/runtime/argv.js';
import { logDecision, rewriteBundleSpec } from '../../../src/runtime/create.js';
import { MOUNT_ROOT_MARKER } from '../../../src/mount-root-marker.js';
import { itAsRealRoot } from '../../support/namespaces.js';

const NOW = new Date('2026-11-22T10:00:00.000Z');

describe('create: the bundle spec and the decision log', () => {
  let dir: string;
  let bundle: string;
  const invocation = (logFile?: string, logFormat = 'json'): RuncInvocation => ({
    subcommand: 'create',
    bundle,
    logFile,
    logFormat,
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-create-'));
    bundle = path.join(dir, 'bundle');
    mkdirSync(path.join(dir, 'mounts/vol'), { recursive: true });
    mkdirSync(bundle);
    writeFileSync(path.join(dir, 'mounts', MOUNT_ROOT_MARKER), '');
    fs.chmodSync(path.join(dir, 'mounts', MOUNT_ROOT_MARKER), 0o644); // as the driver writes it
    fs.chmodSync(path.join(dir, 'mounts'), 0o755);
    const spec = {
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/v', type: 'bind', source: `${dir}/mounts/vol`, options: ['rbind'] },
      ],
      linux: { rootfsPropagation: 'rprivate' },
    };
    writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("rewrites the spec and logs to runc's --log in its format", () => {
    const decision = rewriteBundleSpec(bundle, []);
    expect(decision.rewrite.changed.map((c) => c.destination)).toEqual(['/v']);
    const written = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    expect(written.linux.rootfsPropagation).toBe('shared');

    const log = path.join(dir, 'runc-log.txt');
    expect(logDecision(invocation(log, 'text'), { roots: [] }, decision, NOW)).toEqual([]);
    expect(readFileSync(log, 'utf8')).toBe(
      'time="2026-11-22T10:00:00.000Z" level=info ' +
        'msg="sharedprop-runtime: rshared propagation for 1 sharedprop mount(s)" ' +
        `spec="${bundle}/config.json" mounts="${dir}/mounts/vol:/v" rootfsPropagation="rprivate -> shared"\n`,
    );
  });

  it("logs JSON to the configuration's log when runc has none, and nowhere without either", () => {
    const decision = rewriteBundleSpec(bundle, []);
    const again = rewriteBundleSpec(bundle, []);
    const configured = path.join(dir, 'sharedprop.log');
    logDecision(invocation(), { roots: [], log: configured }, again, NOW);
    expect(JSON.parse(readFileSync(configured, 'utf8'))).toEqual({
      level: 'info',
      msg: 'sharedprop-runtime: sharedprop mounts already rshared; spec unchanged',
      time: '2026-11-22T10:00:00.000Z',
      spec: `${bundle}/config.json`,
    });
    expect(logDecision(invocation(), { roots: [] }, decision, NOW)).toEqual([]);
    expect(fs.readdirSync(dir).sort()).toEqual(['bundle', 'mounts', 'sharedprop.log']);
  });

  it('reports a log it cannot write instead of failing the container', () => {
    const decision = rewriteBundleSpec(bundle, []);
    const log = path.join(dir, 'no-such-dir', 'log.json');
    expect(logDecision(invocation(log), { roots: [] }, decision, NOW)).toEqual([
      expect.stringMatching(/^cannot append to the log .*log\.json: ENOENT/),
    ]);
  });

  itAsRealRoot(
    "leaves the spec alone for a marker not root's, and logs a warning before the decision",
    () => {
      const marker = path.join(dir, 'mounts', MOUNT_ROOT_MARKER);
      fs.chownSync(marker, 65534, 65534);
      const text = readFileSync(path.join(bundle, 'config.json'), 'utf8');
      const decision = rewriteBundleSpec(bundle, []);
      expect(readFileSync(path.join(bundle, 'config.json'), 'utf8')).toBe(text);
      const warning = `ignoring the mount-root marker ${marker}: ${marker} is owned by uid 65534, not root`;
      expect(decision.warnings).toEqual([warning]);

      const log = path.join(dir, 'runc-log.json');
      expect(logDecision(invocation(log), { roots: [] }, decision, NOW)).toEqual([]);
      const lines = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toEqual([
        expect.objectContaining({ level: 'warning', msg: `sharedprop-runtime: ${warning}` }),
        expect.objectContaining({
          level: 'info',
          msg: 'sharedprop-runtime: no sharedprop mounts; spec unchanged',
        }),
      ]);
      // Without a log, the warning is for stderr.
      expect(logDecision(invocation(), { roots: [] }, decision, NOW)).toEqual([warning]);
    },
  );

  it('names the spec file when the spec has the wrong shape', () => {
    writeFileSync(path.join(bundle, 'config.json'), '{"mounts":{}}');
    expect(() => rewriteBundleSpec(bundle, [])).toThrow(
      `${bundle}/config.json: "mounts" is not a list`,
    );
  });
});
