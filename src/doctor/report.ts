/** Renders doctor results: one line per check (colour only on a TTY), or a JSON document. */
import pc from 'picocolors';
import type { CheckResult, Verdict } from './checks.js';

/** The exit codes of `doctor`, `ls` and `prune` (README: Seeing what is going on). */
export const EXIT = {
  /** Everything was checked (or done) and nothing failed; warnings do not count. */
  ok: 0,
  /** doctor: a check failed. prune: a leaked submount could not be detached. */
  failed: 1,
  /** The command line is wrong: an unknown option, a missing value. */
  usage: 2,
  /** Could not check: the engine is unreachable, permission denied, an error answer. */
  couldNotCheck: 3,
} as const;

/** The help text that documents EXIT, for `--help`. */
export const EXIT_CODES_HELP = `
Exit codes:
  0  all ok (warnings do not count)
  1  a check failed (doctor); a leaked submount could not be detached (prune)
  2  usage error: unknown option, missing value
  3  could not check: the Docker engine is unreachable, permission denied,
     an error answer from the engine, a mount table that cannot be read`;

/** 3 when something could not be checked (even if a check also failed), 1 when one failed. */
export function exitCodeOf(results: readonly CheckResult[]): number {
  if (results.some((r) => r.couldNotCheck)) return EXIT.couldNotCheck;
  return results.some((r) => r.verdict === 'fail') ? EXIT.failed : EXIT.ok;
}

export function toJson(results: readonly CheckResult[]): string {
  const summary = { ok: 0, warn: 0, fail: 0 };
  for (const r of results) summary[r.verdict]++;
  const exitCode = exitCodeOf(results);
  return JSON.stringify(
    {
      healthy: exitCode === EXIT.ok,
      complete: !results.some((r) => r.couldNotCheck),
      summary,
      checks: results,
    },
    null,
    2,
  );
}

export function toText(results: readonly CheckResult[], colour: boolean): string {
  const paint = pc.createColors(colour);
  const label: Record<Verdict, string> = {
    ok: paint.green('ok  '),
    warn: paint.yellow('warn'),
    fail: paint.red('fail'),
  };
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${label[r.verdict]}  ${paint.bold(r.check)}: ${r.detail}`);
    if (r.fix && r.verdict !== 'ok') lines.push(`      fix: ${r.fix}`);
  }
  return lines.join('\n');
}
