import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'build/', 'coverage/', 'plugin/rootfs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'execa', message: 'Run commands through src/system/exec.ts only.' },
            { name: 'child_process', message: 'Run commands through src/system/exec.ts only.' },
            {
              name: 'node:child_process',
              message: 'Run commands through src/system/exec.ts only.',
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
