import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { appendLogLine, formatLogLine } from '../../../src/runtime/log.js';

const NOW = new Date('2026-11-22T10:00:00.000Z');

describe('create decision log lines', () => {
  it('are logrus JSON (level, msg, time) when runc logs JSON', () => {
    const line = formatLogLine('json', 'info', 'made 1 mount rshared', { mounts: ['/a:/b'] }, NOW);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.trimEnd()).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      level: 'info',
      msg: 'made 1 mount rshared',
      time: '2026-11-22T10:00:00.000Z',
      mounts: ['/a:/b'],
    });
  });

  it('are logrus text otherwise', () => {
    expect(formatLogLine('text', 'info', 'say "hi"', { spec: '/b/config.json', n: 2 }, NOW)).toBe(
      'time="2026-11-22T10:00:00.000Z" level=info msg="say \\"hi\\"" spec="/b/config.json" n=2\n',
    );
  });

  it('are appended to the log file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sharedprop-log-'));
    try {
      const file = path.join(dir, 'log.json');
      appendLogLine(file, 'one\n');
      appendLogLine(file, 'two\n');
      expect(readFileSync(file, 'utf8')).toBe('one\ntwo\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
