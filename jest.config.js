/** Three tiers, one config: `--selectProjects unit|integration|e2e`. */
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Per real user: in the unit tier's namespace (scripts/in-mount-namespace.sh) everyone is uid 0,
 * and jest's default (/tmp/jest_0) may belong to the host's root.
 */
const cacheDirectory = path.join(
  tmpdir(),
  `jest_sharedprop_${process.env.SHAREDPROP_HOST_UID ?? process.getuid?.() ?? 'any'}`,
);

const common = {
  cacheDirectory,
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testEnvironment: 'node',
  modulePathIgnorePatterns: ['<rootDir>/build/', '<rootDir>/.stryker-tmp/'],
};

export default {
  cacheDirectory,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
  ],
};
