/**
 * Set up after the test environment, in `make mutate` only (stryker.config.mjs adds it): during
 * Stryker's dry run, writes which mutants each test file's tests reach, one JSON line per file,
 * to $SHAREDPROP_COVERING_FILES. covering-files-sequencer.mjs then runs, for each mutant, only
 * the test files that reach it.
 *
 * Without this, Stryker's jest runner runs every test file related to the mutated source and
 * filters their tests by name: each file is still loaded (its ES module graph linked), about half
 * a second each, and a mutant of the driver took about 30 s where its tests took 2.
 */
import { afterAll, beforeEach, expect } from '@jest/globals';
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const out = process.env.SHAREDPROP_COVERING_FILES;
/** The instrumented code's shared context, put on the test global by Stryker's environment. */
const stryker = globalThis.__stryker__;

if (out && stryker && process.env.__STRYKER_ACTIVE_MUTANT__ === undefined) {
  const started = performance.now();
  const names = new Set();
  beforeEach(() => {
    const name = stryker.currentTestId ?? expect.getState().currentTestName;
    if (name) names.add(name);
  });
  afterAll(() => {
    const perTest = stryker.mutantCoverage?.perTest ?? {};
    const mutants = new Set();
    for (const name of names) for (const id of Object.keys(perTest[name] ?? {})) mutants.add(id);
    const file = expect.getState().testPath;
    const ms = Math.round(performance.now() - started);
    appendFileSync(out, `${JSON.stringify({ file, ms, mutants: [...mutants] })}\n`);
  });
}
