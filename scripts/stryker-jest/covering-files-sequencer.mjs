/**
 * jest's test sequencer for `make mutate` (stryker.config.mjs sets it): while Stryker runs a
 * mutant (__STRYKER_ACTIVE_MUTANT__), only the test files that the dry run saw reach that mutant
 * are run (record-covering-files.mjs), the quickest first: bail-runner.cjs stops at the first
 * file that kills the mutant. Whenever it cannot tell (no record, a mutant no file
 * reached, a file it never saw) it runs them all, as without it: it only ever leaves out files
 * whose tests could not kill the mutant, so it changes no result, only the time.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import Sequencer from '@jest/test-sequencer';

let cache = { mtimeMs: -1, byMutant: new Map(), files: new Set(), ms: new Map() };

function coverage(file) {
  if (!file || !existsSync(file)) return undefined;
  const { mtimeMs } = statSync(file);
  if (mtimeMs !== cache.mtimeMs) {
    const byMutant = new Map();
    const files = new Set();
    const ms = new Map();
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      const entry = JSON.parse(line);
      files.add(entry.file);
      ms.set(entry.file, (ms.get(entry.file) ?? 0) + entry.ms);
      for (const id of entry.mutants) {
        if (!byMutant.has(id)) byMutant.set(id, new Set());
        byMutant.get(id).add(entry.file);
      }
    }
    cache = { mtimeMs, byMutant, files, ms };
  }
  return cache;
}

/** @jest/test-sequencer is CommonJS: its class is the default export's `default`. */
const DefaultSequencer = Sequencer.default ?? Sequencer;

export default class CoveringFilesSequencer extends DefaultSequencer {
  sort(tests) {
    const mutant = process.env.__STRYKER_ACTIVE_MUTANT__;
    const known =
      mutant === undefined ? undefined : coverage(process.env.SHAREDPROP_COVERING_FILES);
    const reaching = known?.byMutant.get(mutant);
    if (!known || !reaching) return super.sort(tests);
    // A file the dry run never saw is kept (nothing says its tests cannot reach the mutant), last.
    const cost = (t) => known.ms.get(t.path) ?? Number.MAX_SAFE_INTEGER;
    return tests
      .filter((t) => reaching.has(t.path) || !known.files.has(t.path))
      .sort((a, b) => cost(a) - cost(b));
  }
}
