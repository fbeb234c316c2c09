/**
 * One log line per create decision, in runc's own log format so that containerd, which reads
 * runc's `--log` file as logrus output, takes it in its stride. Never stdout.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export type LogFields = Record<string, string | number | string[]>;

/** A logrus line: JSON `{"level","msg","time",...}`, or logrus' text format otherwise. */
export function formatLogLine(
  format: string,
  level: 'info' | 'warning' | 'error',
  msg: string,
  fields: LogFields,
  now: Date,
): string {
  const time = now.toISOString();
  if (format === 'json') return JSON.stringify({ level, msg, time, ...fields }) + '\n';
  const pairs = Object.entries(fields).map(
    ([key, value]) => `${key}=${JSON.stringify(Array.isArray(value) ? value.join(',') : value)}`,
  );
  return (
    [`time="${time}"`, `level=${level}`, `msg=${JSON.stringify(msg)}`, ...pairs].join(' ') + '\n'
  );
}

/** Appends `line` with one write (O_APPEND), creating the file if need be. */
export function appendLogLine(file: string, line: string): void {
  const fd = openSync(file, 'a', 0o644);
  try {
    writeSync(fd, line);
  } finally {
    closeSync(fd);
  }
}
