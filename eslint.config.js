import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const EXECA_ONLY_IN_EXEC = [
  { name: 'execa', message: 'Run commands through src/system/exec.ts only.' },
  { name: 'child_process', message: 'Run commands through src/system/exec.ts only.' },
  { name: 'node:child_process', message: 'Run commands through src/system/exec.ts only.' },
];

/**
 * The layers of src/, lowest first. A folder may import from its own layer's folders and from
 * lower layers, never from a higher one (README: Architecture). The runtime wrapper is a separate
 * executable and imports nothing of the rest.
 */
const LAYERS = [
  ['model'],
  ['system'],
  ['state'],
  ['driver'],
  ['protocol', 'docker'],
  ['doctor', 'install'],
  ['commands'],
];
const ALL = LAYERS.flat();
const TOP_FILES = ['serve', 'cli'];

function forbidden(folder) {
  const layer = LAYERS.findIndex((folders) => folders.includes(folder));
  const higher = LAYERS.slice(layer + 1).flat();
  return [...higher.map((f) => `../${f}/*`), ...TOP_FILES.map((f) => `../${f}.js`)];
}

const layerRules = ALL.map((folder) => ({
  files: [`src/${folder}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        paths: EXECA_ONLY_IN_EXEC,
        patterns: [
          {
            group: forbidden(folder),
            message: `src/${folder} may not import from a higher layer (README: Architecture).`,
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'build/', 'coverage/', 'plugin/rootfs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { paths: EXECA_ONLY_IN_EXEC }],
      // Small modules, one job each: no file over 400 lines, tests and scripts included.
      'max-lines': ['error', { max: 400, skipBlankLines: false, skipComments: false }],
    },
  },
  ...layerRules,
  {
    files: ['src/runtime/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: EXECA_ONLY_IN_EXEC,
          patterns: [
            {
              group: [...ALL.map((f) => `../${f}/*`), '../log.js', '../serve.js', '../cli.js'],
              message:
                'The runtime wrapper is its own executable: it imports nothing of the driver.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/system/exec.ts', 'test/**', 'bench/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
