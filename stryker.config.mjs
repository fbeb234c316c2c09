// @ts-check
/**
 * Mutation testing (`make mutate`): StrykerJS mutates src/driver, src/system and src/model and
 * runs the unit tier against each mutant. The unit tier must run in a mount namespace of its own
 * (scripts/in-mount-namespace.sh) so that src/system is tested against the real kernel; the
 * Makefile starts Stryker in one, and its workers inherit it.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import jestConfig from './jest.config.js';

const unit = jestConfig.projects.find((project) => project.displayName === 'unit');
if (!unit) throw new Error('jest.config.js has no project named unit');
// The runner takes one flat config, not a multi-project one. Each mutant runs only the test files
// that reach it (scripts/stryker-jest: recorded in the dry run, chosen by the sequencer).
const unitConfig = {
  ...unit,
  setupFilesAfterEnv: [
    ...(unit.setupFilesAfterEnv ?? []),
    '<rootDir>/scripts/stryker-jest/record-covering-files.mjs',
  ],
  testSequencer: '<rootDir>/scripts/stryker-jest/covering-files-sequencer.mjs',
  runner: '<rootDir>/scripts/stryker-jest/bail-runner.cjs',
};
delete unitConfig.displayName;
const coveringFiles = path.join(import.meta.dirname, 'reports/mutation/covering-files.jsonl');
mkdirSync(path.dirname(coveringFiles), { recursive: true });
rmSync(coveringFiles, { force: true });
process.env.SHAREDPROP_COVERING_FILES = coveringFiles;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: { projectType: 'custom', config: unitConfig, enableFindRelatedTests: true },
  checkers: ['typescript'],
  plugins: ['@stryker-mutator/*', './scripts/stryker-log-ignorer.mjs'],
  ignorers: ['log-calls'],
  // The checker type-checks src alone: the tests are transpiled without types (ts-jest, isolated
  // modules), and checking them too made each mutant's check about 3.5 s, the run's bottleneck.
  tsconfigFile: 'tsconfig.mutate.json',
  coverageAnalysis: 'perTest',
  mutate: [
    'src/driver/**/*.ts',
    'src/system/**/*.ts',
    'src/model/**/*.ts',
    // Its mutants make the process exit at every step (that is its job): they kill the worker.
    '!src/driver/crash-points.ts',
  ],
  ignorePatterns: ['dist', 'build', 'coverage', 'reports', 'bench/results.json'],
  // Static mutants (module-level constants) run the whole tier each: half the time for few kills.
  ignoreStatic: true,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  concurrency: 2,
  // A jest worker that ran many mutants holds gigabytes (every run's modules): start a fresh one.
  maxTestRunnerReuse: 200,
  timeoutMS: 20_000,
  // The dry run (the whole unit tier, with coverage) takes about a minute idle; a loaded machine
  // can take several times that, past Stryker's default of 5 minutes.
  dryRunTimeoutMinutes: 20,
  reporters: ['json', 'html', 'clear-text', 'progress'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
