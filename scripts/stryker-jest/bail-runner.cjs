/**
 * jest's test-file runner for `make mutate` (stryker.config.mjs sets it): while Stryker runs a
 * mutant, the test files run one at a time and the run stops at the first file with a failing
 * test (the mutant is killed: nothing more can change that). Stryker's jest runner turns jest's
 * own `bail` off, so every file reaching a mutant ran even after it was killed. Outside a mutant
 * run (the dry run, `make test`) it is jest's runner unchanged.
 */
/* global require, module */
// jest loads a runner with require(): CommonJS.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { default: TestRunner } = require('jest-runner');

class BailingTestRunner extends TestRunner {
  async runTests(tests, watcher, options) {
    if (process.env.__STRYKER_ACTIVE_MUTANT__ === undefined || !options.serial) {
      return super.runTests(tests, watcher, options);
    }
    let failed = false;
    const unsubscribe = [
      this.on('test-file-success', ([, result]) => {
        if (result.numFailingTests > 0 || result.testExecError) failed = true;
      }),
      this.on('test-file-failure', () => {
        failed = true;
      }),
    ];
    try {
      for (const test of tests) {
        if (failed) break;
        await super.runTests([test], watcher, options);
      }
    } finally {
      for (const off of unsubscribe) off();
    }
  }
}

module.exports = BailingTestRunner;
