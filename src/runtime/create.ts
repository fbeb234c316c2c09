/**
 * What `create` does before runc runs: rewrite the bundle's spec when it has sharedprop mounts,
 * and log the decision.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuncInvocation } from './argv.js';
import type { RuntimeConfig } from './config.js';
import { stringifyJson } from './json.js';
import { appendLogLine, formatLogLine, type LogFields } from './log.js';
import { checkRootFile } from './root-file.js';
import { sharedpropSources } from './sources.js';
import { rewriteSpec, specChanged, type SourcePredicate, type SpecRewrite } from './spec.js';
import { subpathSources } from './subpath.js';
import { readSpecFile, writeFileAtomically } from './spec-file.js';

export const LOG_PREFIX = 'sharedprop-runtime: ';

export interface Decision {
  specFile: string;
  rewrite: SpecRewrite;
  /** Files that would have changed the decision but do not count (a marker not root's). */
  warnings: string[];
}

/** True when the marker `file` counts; one that is there but does not is reported to `warn`. */
export function markerCounts(warn: (message: string) => void): (file: string) => boolean {
  return (file) => {
    const verdict = checkRootFile(file);
    if (verdict.kind === 'untrusted') {
      warn(`ignoring the mount-root marker ${file}: ${verdict.reason}`);
    }
    return verdict.kind === 'trusted';
  };
}

/** A sharedprop volume's mount point, or dockerd's temporary bind of a subpath of one. */
function volumeOrSubpath(
  roots: readonly string[],
  warn: (message: string) => void,
): SourcePredicate {
  const isVolume = sharedpropSources(roots, markerCounts(warn));
  const isSubpath = subpathSources(() => readFileSync('/proc/self/mountinfo', 'utf8'), isVolume);
  return (source) => isVolume(source) || isSubpath(source);
}

/** Rewrites `<bundle>/config.json` if it has sharedprop mounts; throws a readable Error if not possible. */
export function rewriteBundleSpec(bundle: string, roots: readonly string[]): Decision {
  const specFile = join(bundle, 'config.json');
  const { spec, ...owner } = readSpecFile(specFile);
  const warnings: string[] = [];
  let rewrite: SpecRewrite;
  try {
    rewrite = rewriteSpec(
      spec,
      volumeOrSubpath(roots, (message) => warnings.push(message)),
    );
  } catch (error) {
    throw new Error(`${specFile}: ${(error as Error).message}`);
  }
  if (specChanged(rewrite)) writeFileAtomically(specFile, stringifyJson(rewrite.spec), owner);
  return { specFile, rewrite, warnings };
}

export function describeDecision({ specFile, rewrite }: Pick<Decision, 'specFile' | 'rewrite'>): {
  msg: string;
  fields: LogFields;
} {
  const fields: LogFields = { spec: specFile };
  if (rewrite.matched === 0) return { msg: 'no sharedprop mounts; spec unchanged', fields };
  if (!specChanged(rewrite)) {
    return { msg: 'sharedprop mounts already rshared; spec unchanged', fields };
  }
  fields.mounts = rewrite.changed.map((c) => `${c.source}:${c.destination}`);
  if (rewrite.rootfsPropagation) {
    const { before, after } = rewrite.rootfsPropagation;
    fields.rootfsPropagation = `${before ?? '(unset)'} -> ${after}`;
  }
  return { msg: `rshared propagation for ${rewrite.matched} sharedprop mount(s)`, fields };
}

/**
 * Appends the decision, after a `warning` line for each of its warnings, to runc's `--log` (in
 * runc's log format), else to the configuration's `log` (JSON). Returns what to report on stderr
 * instead (never stdout): the warnings when there is no log, and a log that could not be written.
 */
export function logDecision(
  invocation: RuncInvocation,
  config: RuntimeConfig,
  decision: Decision,
  now: Date,
): string[] {
  const target = invocation.logFile
    ? { file: invocation.logFile, format: invocation.logFormat }
    : config.log
      ? { file: config.log, format: 'json' }
      : undefined;
  if (!target) return decision.warnings;
  const { msg, fields } = describeDecision(decision);
  const spec = { spec: decision.specFile };
  const lines = [
    ...decision.warnings.map((w) =>
      formatLogLine(target.format, 'warning', LOG_PREFIX + w, spec, now),
    ),
    formatLogLine(target.format, 'info', LOG_PREFIX + msg, fields, now),
  ];
  try {
    appendLogLine(target.file, lines.join(''));
    return [];
  } catch (error) {
    return [
      ...decision.warnings,
      `cannot append to the log ${target.file}: ${(error as Error).message}`,
    ];
  }
}
