/** The driver's errors: a kind the protocol maps to a status, and a message the user reads. */
import { conflict, invalid, notFound, unavailable, VolumeError } from '../../src/model/errors.js';

describe('VolumeError', () => {
  it('has a kind for each answer and says its name in a stack trace', () => {
    const made = [invalid('bad'), notFound('v1'), conflict('busy'), unavailable('full')];
    expect(made.map((e) => e.kind)).toEqual(['invalid', 'not_found', 'conflict', 'unavailable']);
    for (const error of made) {
      expect(error).toBeInstanceOf(VolumeError);
      expect(error.name).toBe('VolumeError');
      expect(String(error)).toMatch(/^VolumeError: /);
    }
  });

  it('names the volume that does not exist, quoted as JSON', () => {
    expect(notFound('v1').message).toBe('volume "v1" does not exist');
    expect(notFound('a"b').message).toBe('volume "a\\"b" does not exist');
  });
});
