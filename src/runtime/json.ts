/**
 * JSON that survives a round trip with every number exactly as written. OCI specs carry uint64
 * values that a JavaScript number cannot hold (`docker run --ulimit memlock=-1` puts
 * 18446744073709551615 into `process.rlimits`); `JSON.parse` would round them and runc would
 * then refuse the spec. Texts whose numbers are all short integers (nearly every spec) take the
 * native JSON.parse/JSON.stringify; the others get a parser that keeps numbers as source text.
 */

/** A JSON number kept as written in the source. */
export class JsonNumber {
  constructor(readonly text: string) {}

  /** Makes JSON.stringify give way to {@link stringifyJson}'s own writer. */
  toJSON(): never {
    throw NEEDS_SOURCE_TEXT;
  }
}

const NEEDS_SOURCE_TEXT = new Error('a JsonNumber must be written by stringifyJson');

export type JsonValue = null | boolean | string | number | JsonNumber | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export class JsonSyntaxError extends Error {
  constructor(message: string, position: number) {
    super(`${message} at position ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

/**
 * A number token that a double may not give back as written: 16 digits or more, a fraction, an
 * exponent, or -0. Tokens follow `:`, `,` or `[`; a match inside a string only costs speed.
 */
const RISKY_NUMBER = /[:,[]\s*(?:-?\d{16}|-?\d+[.eE]|-0(?!\d))/;

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// JSON forbids raw control characters in strings.
// eslint-disable-next-line no-control-regex
const STRING_BODY = /(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

/**
 * Parses RFC 8259 JSON. Numbers that a double would change become {@link JsonNumber}s; the
 * last of duplicate keys wins. Syntax errors are {@link JsonSyntaxError}s with a position.
 */
export function parseJson(text: string): JsonValue {
  if (!RISKY_NUMBER.test(text)) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      // fall through: the parser below says where the text goes wrong
    }
  }
  return parseKeepingNumbers(text);
}

/** Parses with every number as a {@link JsonNumber}. */
function parseKeepingNumbers(text: string): JsonValue {
  let pos = 0;

  const fail = (message: string): never => {
    throw new JsonSyntaxError(
      pos >= text.length ? 'unexpected end of input' : `${message} ${JSON.stringify(text[pos])}`,
      pos,
    );
  };
  const skipSpace = () => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
  };
  const expect = (char: string) => {
    skipSpace();
    if (text[pos] !== char) fail(`expected ${JSON.stringify(char)}, found`);
    pos++;
  };
  const literal = (word: string, value: JsonValue): JsonValue => {
    if (!text.startsWith(word, pos)) fail('unexpected character');
    pos += word.length;
    return value;
  };
  const string = (): string => {
    const start = pos; // at the opening quote
    STRING_BODY.lastIndex = pos + 1;
    if (!STRING_BODY.test(text)) throw new JsonSyntaxError('unterminated or invalid string', start);
    pos = STRING_BODY.lastIndex;
    return JSON.parse(text.slice(start, pos)) as string;
  };

  const value = (depth: number): JsonValue => {
    if (depth > 512) fail('nesting too deep at');
    skipSpace();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const object: JsonObject = {};
      skipSpace();
      if (text[pos] === '}') {
        pos++;
        return object;
      }
      for (;;) {
        skipSpace();
        if (text[pos] !== '"') fail('expected a key, found');
        const key = string();
        expect(':');
        const member = value(depth + 1);
        // A plain assignment to "__proto__" would change the prototype instead.
        Object.defineProperty(object, key, {
          value: member,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        expect('}');
        return object;
      }
    }
    if (c === '[') {
      pos++;
      const array: JsonValue[] = [];
      skipSpace();
      if (text[pos] === ']') {
        pos++;
        return array;
      }
      for (;;) {
        array.push(value(depth + 1));
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        expect(']');
        return array;
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true', true);
    if (c === 'f') return literal('false', false);
    if (c === 'n') return literal('null', null);
    NUMBER.lastIndex = pos;
    const match = NUMBER.exec(text);
    if (!match) return fail('unexpected character');
    pos = NUMBER.lastIndex;
    return new JsonNumber(match[0]);
  };

  const result = value(0);
  skipSpace();
  if (pos < text.length) fail('unexpected character after the JSON value:');
  return result;
}

/** Compact JSON text; {@link JsonNumber}s are written exactly as they were read. */
export function stringifyJson(value: JsonValue): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (error !== NEEDS_SOURCE_TEXT) throw error;
  }
  return write(value);
}

function write(value: JsonValue): string {
  if (value instanceof JsonNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(write).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.keys(value).map(
      (key) => `${JSON.stringify(key)}:${write(value[key] as JsonValue)}`,
    );
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof JsonNumber)
  );
}
