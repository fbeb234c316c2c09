import { readFileSync } from 'node:fs';
import {
  JsonNumber,
  JsonSyntaxError,
  parseJson,
  stringifyJson,
  type JsonObject,
} from '../../../src/runtime/json.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../fixtures/oci/${name}`, import.meta.url), 'utf8');

describe('lossless JSON', () => {
  it('keeps uint64 values that a JavaScript number would round', () => {
    const text = '{"hard":18446744073709551615,"soft":-1,"f":1.50,"e":2E+3}';
    const value = parseJson(text) as JsonObject;
    expect(value.hard).toEqual(new JsonNumber('18446744073709551615'));
    expect(stringifyJson(value)).toBe(text);
  });

  it('reads what JSON.parse reads and writes compact JSON with every number as written', () => {
    for (const name of ['docker-20.10-sharedprop-volume.json', 'docker-20.10-kolla-netns.json']) {
      const text = fixture(name);
      const out = stringifyJson(parseJson(text));
      expect(JSON.parse(out)).toEqual(JSON.parse(text));
      // Every number token, in order: the big ones must come out digit for digit.
      const numbers = (s: string) => s.match(/(?<=[:[,]\s*)-?\d[\d.eE+-]*/g);
      expect(numbers(out)).toEqual(numbers(text));
    }
  });

  it('gives short integers as plain numbers (the native path)', () => {
    const value = parseJson('{"a":-123456789012345,"b":[0,7],"c":"x"}') as JsonObject;
    expect(value).toEqual({ a: -123456789012345, b: [0, 7], c: 'x' });
    expect(stringifyJson(value)).toBe('{"a":-123456789012345,"b":[0,7],"c":"x"}');
  });

  it.each([
    '{"n":9007199254740993}',
    '{"n":-9223372036854775808}',
    '{"n":[1,-0]}',
    '{"n":0.1}',
    '{"n":1e400}',
    '{"n":12345678901234567890123}',
    '{"id":"docker:1234567890123456789","n":[1, 2.50]}',
    '{"s":"a:1.5","n":3}',
  ])('writes %s back exactly (compact)', (text) => {
    expect(stringifyJson(parseJson(text))).toBe(text.replace(', ', ','));
  });

  it('decodes escapes and writes strings back in valid JSON', () => {
    const text = String.raw`{"a":"tab\there \"q\" \u00e9 \ud83d\ude00 \/","b":[true,false,null,{}],"c":[]}`;
    const value = parseJson(text);
    expect(value).toEqual(JSON.parse(text));
    expect(JSON.parse(stringifyJson(value))).toEqual(JSON.parse(text));
  });

  it('keeps a key named __proto__ as data', () => {
    const value = parseJson('{"__proto__":{"polluted":"yes"}}') as JsonObject;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(stringifyJson(value)).toBe('{"__proto__":{"polluted":"yes"}}');
  });

  it.each([
    ['', /unexpected end of input/],
    ['{', /unexpected end of input/],
    ['{"a":1,}', /expected a key/],
    ['{"a" 1}', /expected ":"/],
    ['[1 2]', /expected "]"/],
    ['01', /unexpected character after the JSON value/],
    ['{"a":tru}', /unexpected character/],
    ['"unterminated', /unterminated or invalid string/],
    ['"raw\ncontrol"', /unterminated or invalid string/],
    ["{'a':1}", /expected a key/],
    ['{} x', /unexpected character after the JSON value/],
  ])('rejects %j', (text, message) => {
    expect(() => parseJson(text)).toThrow(JsonSyntaxError);
    expect(() => parseJson(text)).toThrow(message);
  });

  it('rejects absurd nesting instead of overflowing the stack', () => {
    expect(() => parseJson('['.repeat(100_000))).toThrow(/nesting too deep/);
  });
});
