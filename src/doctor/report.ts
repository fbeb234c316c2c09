/** Renders doctor results: one line per check (colour only on a TTY), or a JSON document. */
import pc from 'picocolors';
import type { CheckResult, Verdict } from './checks.js';

export function exitCodeOf(results: readonly CheckResult[]): number {
  return results.some((r) => r.verdict === 'fail') ? 1 : 0;
}

export function toJson(results: readonly CheckResult[]): string {
  const summary = { ok: 0, warn: 0, fail: 0 };
  for (const r of results) summary[r.verdict]++;
  return JSON.stringify({ healthy: exitCodeOf(results) === 0, summary, checks: results }, null, 2);
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
