/** The layering of src/ is enforced by the lint rule in eslint.config.js: prove that it bites. */
import { ESLint } from 'eslint';

const eslint = new ESLint();

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => m.message);
}

describe('import layers', () => {
  it.each([
    ['src/model/x.ts', "import { run } from '../system/exec.js';\nexport const y = run;\n"],
    [
      'src/system/x.ts',
      "import { VolumeStore } from '../state/volume-store.js';\nexport const y = VolumeStore;\n",
    ],
    [
      'src/state/x.ts',
      "import type { VolumeDriver } from '../driver/types.js';\nexport type Y = VolumeDriver;\n",
    ],
    [
      'src/driver/x.ts',
      "import { createApp } from '../protocol/app.js';\nexport const y = createApp;\n",
    ],
    ['src/protocol/x.ts', "import { serve } from '../serve.js';\nexport const y = serve;\n"],
    [
      'src/runtime/x.ts',
      "import { createLogger } from '../log.js';\nexport const y = createLogger;\n",
    ],
  ])('%s may not import upward', async (filePath, code) => {
    expect((await problems(filePath, code)).join('\n')).toMatch(/import is restricted/);
  });

  it.each([
    [
      'src/state/x.ts',
      "import { NO_MOUNTS } from '../model/counts.js';\nexport const y = NO_MOUNTS;\n",
    ],
    [
      'src/protocol/x.ts',
      "import type { VolumeDriver } from '../driver/types.js';\nexport type Y = VolumeDriver;\n",
    ],
    [
      'src/commands/x.ts',
      "import { toJson } from '../doctor/report.js';\nexport const y = toJson;\n",
    ],
  ])('%s may import downward', async (filePath, code) => {
    expect(await problems(filePath, code)).toEqual([]);
  });
});
