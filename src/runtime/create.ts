/**
 * What `create` does before runc runs: rewrite the bundle's spec when it has sharedprop mounts,
 * and log the decision.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuncInvocation } from './argv.js';
import type { RuntimeConfig } from './config.js';
import { stringifyJson } from './json.js';
import { appendLogLine, formatLogLine, type LogFields } from './log.js';
import { sharedpropSources } from './sources.js';
import { rewriteSpec, specChanged, type SourcePredicate, type SpecRewrite } from './spec.js';
import { subpathSources } from './subpath.js';
import { readSpecFile, writeFileAtomically } from './spec-file.js';

export const LOG_PREFIX = 'sharedprop-runtime: ';

export interface Decision {
  specFile: string;
  rewrite: SpecRewrite;
}

/** A sharedprop volume's mount point, or dockerd's temporary bind of a subpath of one. */
function volumeOrSubpath(roots: readonly string[]): SourcePredicate {
  const isVolume = sharedpropSources(roots, existsSync);
  const isSubpath = subpathSources(() => readFileSync('/proc/self/mountinfo', 'utf8'), isVolume);
  return (source) => isVolume(source) || isSubpath(source);
}

/** Rewrites `<bundle>/config.json` if it has sharedprop mounts; throws a readable Error if not possible. */
export function rewriteBundleSpec(bundle: string, roots: readonly string[]): Decision {
  const specFile = join(bundle, 'config.json');
  const { spec, ...owner } = readSpecFile(specFile);
  let rewrite: SpecRewrite;
  try {
    rewrite = rewriteSpec(spec, volumeOrSubpath(roots));
  } catch (error) {
    throw new Error(`${specFile}: ${(error as Error).message}`);
  }
  if (specChanged(rewrite)) writeFileAtomically(specFile, stringifyJson(rewrite.spec), owner);
  return { specFile, rewrite };
}

export function describeDecision({ specFile, rewrite }: Decision): {
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
 * Appends the decision to runc's `--log` (in runc's log format), else to the configuration's
 * `log` (JSON), else nowhere. Returns a problem to report, if the log could not be written.
 */
export function logDecision(
  invocation: RuncInvocation,
  config: RuntimeConfig,
  decision: Decision,
  now: Date,
): string | undefined {
  const target = invocation.logFile
    ? { file: invocation.logFile, format: invocation.logFormat }
    : config.log
      ? { file: config.log, format: 'json' }
      : undefined;
  if (!target) return undefined;
  const { msg, fields } = describeDecision(decision);
  try {
    appendLogLine(target.file, formatLogLine(target.format, 'info', LOG_PREFIX + msg, fields, now));
    return undefined;
  } catch (error) {
    return `cannot append to the log ${target.file}: ${(error as Error).message}`;
  }
}
