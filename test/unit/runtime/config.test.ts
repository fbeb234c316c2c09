import { chmodSync, chownSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ConfigError,
  configFile,
  DEFAULT_CONFIG_FILE,
  loadConfig,
  parseConfig,
} from '../../../src/runtime/config.js';
import { readText as readRootText } from '../../../src/runtime/host.js';
import { itAsRealRoot } from '../../support/namespaces.js';

const readText = (file: string) => readFile(file, 'utf8');

describe('the runtime configuration file', () => {
  it('is SHAREDPROP_RUNTIME_CONFIG, else /etc/sharedprop/runtime.json', () => {
    expect(configFile({ SHAREDPROP_RUNTIME_CONFIG: '/x.json' })).toBe('/x.json');
    expect(configFile({ SHAREDPROP_RUNTIME_CONFIG: '' })).toBe(DEFAULT_CONFIG_FILE);
    expect(configFile({})).toBe('/etc/sharedprop/runtime.json');
  });

  it('accepts runc, roots and log', () => {
    const text = '{"runc":"/opt/runc","roots":["/srv/a","/srv/b/"],"log":"/var/log/sp.log"}';
    expect(parseConfig(text, 'f')).toEqual({
      runc: '/opt/runc',
      roots: ['/srv/a', '/srv/b/'],
      log: '/var/log/sp.log',
    });
    expect(parseConfig('{"runc":"runc.real"}', 'f')).toEqual({ runc: 'runc.real', roots: [] });
    expect(parseConfig('{}', 'f')).toEqual({ roots: [] });
  });

  it.each([
    ['{', /f: not valid JSON/],
    ['[]', /must be a JSON object/],
    ['null', /must be a JSON object/],
    ['{"root":["/srv"]}', /unknown key\(s\) "root"/],
    ['{"runc":""}', /"runc" must be a non-empty string/],
    ['{"runc":7}', /"runc" must be a non-empty string/],
    ['{"runc":"bin/runc"}', /absolute path or a bare command name/],
    ['{"roots":"/srv"}', /"roots" must be a list/],
    ['{"roots":["srv"]}', /"srv" is not an absolute path/],
    ['{"roots":["//"]}', /must not contain "\/"/],
    ['{"log":"log.json"}', /"log" must be an absolute path/],
  ])('rejects %s', (text, message) => {
    expect(() => parseConfig(text, 'f')).toThrow(ConfigError);
    expect(() => parseConfig(text, 'f')).toThrow(message);
  });

  describe('on disk', () => {
    let dir: string;
    beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-config-'))));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('gives the defaults when it does not exist', async () => {
      await expect(loadConfig(path.join(dir, 'missing.json'), readText)).resolves.toEqual({
        roots: [],
      });
    });

    it('is read and validated', async () => {
      const file = path.join(dir, 'ok.json');
      writeFileSync(file, '{"roots":["/srv/x"]}');
      await expect(loadConfig(file, readText)).resolves.toEqual({ roots: ['/srv/x'] });
      writeFileSync(file, 'garbled');
      await expect(loadConfig(file, readText)).rejects.toThrow(
        `configuration file ${file}: not valid JSON`,
      );
    });

    it('is an error when it cannot be read', async () => {
      await expect(loadConfig(dir, readText)).rejects.toThrow(ConfigError);
      await expect(loadConfig(dir, readText)).rejects.toThrow(/cannot be read \(EISDIR\)/);
      // Root reads a mode 000 file, and CI runs as root: the denial comes from the reader.
      const denied = async () => {
        throw Object.assign(new Error('permission denied'), { code: 'EACCES' });
      };
      await expect(loadConfig(path.join(dir, 'locked.json'), denied)).rejects.toThrow(
        /locked\.json: cannot be read \(EACCES\)/,
      );
    });
  });

  describe("as the wrapper reads it: only root's counts", () => {
    let dir: string;
    const good = '{"runc":"/opt/runc"}';
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-config-root-'));
      chmodSync(dir, 0o755);
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    function configAt(name: string, mode = 0o644): string {
      const file = path.join(dir, name);
      writeFileSync(file, good);
      chmodSync(file, mode);
      return file;
    }

    it('reads a file root owns, in a directory root owns, neither writable by others', async () => {
      const file = configAt('runtime.json', 0o600);
      await expect(loadConfig(file, readRootText)).resolves.toEqual({
        roots: [],
        runc: '/opt/runc',
      });
      await expect(loadConfig(path.join(dir, 'missing.json'), readRootText)).resolves.toEqual({
        roots: [],
      });
    });

    const ignoresIt = async (spoil: (file: string) => void, reason: string) => {
      const file = configAt('runtime.json');
      spoil(file);
      const config = await loadConfig(file, readRootText);
      expect(config).toEqual({ roots: [], ignored: expect.stringContaining(reason) });
      expect(config.ignored).toMatch(new RegExp(`^ignoring configuration file ${file}: `));
    };
    it.each<[string, (file: string) => void, string]>([
      ['group-writable', (f) => chmodSync(f, 0o664), 'is writable by group or others (mode 0664)'],
      [
        'in a 1777 directory',
        () => chmodSync(dir, 0o1777),
        'is writable by group or others (mode 1777)',
      ],
    ])('ignores one %s, as if missing, and says why', (_, spoil, reason) =>
      ignoresIt(spoil, reason),
    );
    // Files of another owner: only the host's root can make them (make test runs these).
    itAsRealRoot.each<[string, (file: string) => void, string]>([
      ['owned by uid 65534', (f) => chownSync(f, 65534, 65534), 'is owned by uid 65534, not root'],
      [
        'in a directory of uid 65534',
        () => chownSync(dir, 65534, 65534),
        'is owned by uid 65534, not root',
      ],
    ])('ignores one %s, as if missing, and says why', (_, spoil, reason) =>
      ignoresIt(spoil, reason),
    );

    it('ignores a symlink to a good one', async () => {
      const real = configAt('real.json');
      const link = path.join(dir, 'runtime.json');
      symlinkSync(real, link);
      await expect(loadConfig(link, readRootText)).resolves.toEqual({
        roots: [],
        ignored: `ignoring configuration file ${link}: ${link} is a symbolic link, not a regular file`,
      });
    });
  });
});
