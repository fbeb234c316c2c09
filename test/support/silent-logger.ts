import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';

export const silentLogger = () => createLogger({ silent: true });

/** A logger whose lines are kept, parsed, for a test to read (`lines()`), and nothing printed. */
export function recordingLogger() {
  const kept: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line) kept.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: createLogger({ stream, level: 'debug' }), lines: () => [...kept] };
}
