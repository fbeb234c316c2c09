/**
 * The managed plugin's manifest (config.json) against the code that reads and carries its
 * settings: every setting of the driver that `sharedprop install` passes on can be set on the
 * plugin, and every one a user can set survives `sharedprop upgrade`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { settingsToCarry } from '../../../src/install/plugin-upgrade.js';
import {
  pluginEnvironment,
  ENGINE_STORAGE_ENV,
  TMPFS_MAX_SIZE_ENV,
} from '../../../src/install/serve-settings.js';

interface ManifestEnv {
  name: string;
  value: string;
  settable: string[];
}

const manifest = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../config.json', import.meta.url)), 'utf8'),
) as { env: ManifestEnv[] };
const settable = manifest.env.filter((e) => e.settable.includes('value')).map((e) => e.name);

describe('the plugin manifest', () => {
  it('declares, settable and empty by default, each setting install passes to the plugin', () => {
    const given = pluginEnvironment({ tmpfsMaxSize: '1g', engineStorage: ['/srv/overlay2'] });
    const names = given.map((setting) => setting.slice(0, setting.indexOf('=')));
    expect(names).toEqual([TMPFS_MAX_SIZE_ENV, ENGINE_STORAGE_ENV]);
    for (const name of names) {
      expect(settable).toContain(name);
      expect(manifest.env.find((e) => e.name === name)?.value).toBe('');
    }
  });

  it('every setting a user can set is carried over by upgrade, but the test-only crash point', () => {
    const env = settable.map((name) => `${name}=x`);
    expect(settingsToCarry({ Env: env })).toEqual(
      env.filter((setting) => !setting.startsWith('SHAREDPROP_CRASH_AT=')),
    );
  });
});
