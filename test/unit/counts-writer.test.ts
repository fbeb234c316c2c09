/**
 * The counts writer on its own, with jest's fake clock: a save that fails is kept in memory, logged
 * once, and retried in the background after 1 s, 2 s, 4 s ... at most 60 s apart, with one timer
 * that never keeps the process alive; a save that works again resets the delay.
 */
import { afterEach, beforeEach, jest } from '@jest/globals';
import { CountsWriter } from '../../src/driver/counts-writer.js';
import { recordingLogger } from '../support/silent-logger.js';

/** A writer whose save fails while `failing` holds the name; `saves` lists every attempt. */
function writerWorld() {
  const failing = new Set<string>();
  const saves: string[] = [];
  const { logger, lines } = recordingLogger();
  const writer = new CountsWriter((name) => {
    saves.push(name);
    if (failing.has(name)) throw Object.assign(new Error('no space left'), { code: 'ENOSPC' });
  }, logger);
  const messages = () => lines().map((l) => `${String(l.level)}: ${String(l.message)}`);
  return { writer, failing, saves, lines, messages };
}

// The logger's stream uses immediates and ticks: only the writer's setTimeout is faked and counted.
beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

describe('the counts writer', () => {
  it('a save that works is saved, logs nothing and starts no timer', () => {
    const { writer, saves, messages } = writerWorld();
    writer.write('v1');
    expect(saves).toEqual(['v1']);
    expect(writer.isSaved('v1')).toBe(true);
    expect(writer.pending()).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
    expect(messages()).toEqual([]);
  });

  it('a failing save is kept unsaved, logged once with its code, with one timer for all', () => {
    const { writer, failing, lines } = writerWorld();
    failing.add('v1').add('v2');
    writer.write('v1');
    writer.write('v1');
    writer.write('v2');
    expect(writer.isSaved('v1')).toBe(false);
    expect(writer.isSaved('v2')).toBe(false);
    expect(writer.isSaved('v3')).toBe(true);
    expect(writer.pending()).toEqual(['v1', 'v2']);
    expect(jest.getTimerCount()).toBe(1);
    const warnings = lines().filter((l) => l.level === 'warn');
    expect(warnings.map((l) => [l.volume, l.code])).toEqual([
      ['v1', 'ENOSPC'],
      ['v2', 'ENOSPC'],
    ]);
    expect(String(warnings[0]!.error)).toContain('no space left');
  });

  it('retries after 1 s, then 2 s, 4 s ... never more than 60 s apart', () => {
    const { writer, failing, saves } = writerWorld();
    failing.add('v1');
    writer.write('v1');
    const retriesAt: number[] = [];
    let elapsed = 0;
    while (elapsed < 200_000) {
      const before = saves.length;
      jest.advanceTimersByTime(1_000);
      elapsed += 1_000;
      if (saves.length > before) retriesAt.push(elapsed / 1_000);
    }
    expect(retriesAt).toEqual([1, 3, 7, 15, 31, 63, 123, 183]);
    expect(jest.getTimerCount()).toBe(1);
  });

  it('a retry that works saves, logs it, stops the timer and resets the delay to 1 s', () => {
    const { writer, failing, saves, messages } = writerWorld();
    failing.add('v1');
    writer.write('v1');
    jest.advanceTimersByTime(1_000 + 2_000); // two failed retries: the next is 4 s away
    failing.delete('v1');
    jest.advanceTimersByTime(3_999);
    expect(writer.isSaved('v1')).toBe(false);
    jest.advanceTimersByTime(1);
    expect(writer.isSaved('v1')).toBe(true);
    expect(writer.pending()).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
    expect(messages()).toEqual([
      'warn: could not save mount counts; they are kept in memory and the save is retried',
      'info: mount counts saved after an earlier failure',
    ]);
    // Failing again: retried after 1 s, not 8.
    failing.add('v1');
    writer.write('v1');
    const attempts = saves.length;
    jest.advanceTimersByTime(999);
    expect(saves.length).toBe(attempts);
    jest.advanceTimersByTime(1);
    expect(saves.length).toBe(attempts + 1);
  });

  it('a write that works after a failure saves at once and logs it', () => {
    const { writer, failing, messages } = writerWorld();
    failing.add('v1');
    writer.write('v1');
    failing.delete('v1');
    writer.write('v1');
    expect(writer.isSaved('v1')).toBe(true);
    expect(messages()).toHaveLength(2);
    expect(messages()[1]).toBe('info: mount counts saved after an earlier failure');
  });

  it('retries every unsaved volume, keeps those still failing, and forgets removed ones', () => {
    const { writer, failing, saves } = writerWorld();
    failing.add('v1').add('v2').add('v3');
    writer.write('v1');
    writer.write('v2');
    writer.write('v3');
    writer.forget('v3');
    failing.delete('v1');
    saves.length = 0;
    jest.advanceTimersByTime(1_000);
    expect(saves).toEqual(['v1', 'v2']);
    expect(writer.pending()).toEqual(['v2']);
    expect(jest.getTimerCount()).toBe(1);
  });

  it('its timer does not keep the process alive', () => {
    const setTimer = jest.spyOn(global, 'setTimeout');
    const { writer, failing } = writerWorld();
    failing.add('v1');
    writer.write('v1');
    expect(setTimer).toHaveBeenCalledTimes(1);
    const timer = setTimer.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    setTimer.mockRestore();
  });
});
