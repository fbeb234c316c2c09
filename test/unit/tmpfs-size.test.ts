/**
 * A tmpfs `size` read exactly as the kernel reads it (memparse, then shmem's `%` and page
 * rounding), checked against an injected limit. The expected bytes are computed here a second
 * way (multiplication, not shifts; remainder, not DIV_ROUND_UP) so the two can disagree.
 */
import fc from 'fast-check';
import { execa } from 'execa';
import { VolumeError } from '../../src/model/errors.js';
import {
  describeBytes,
  defaultTmpfsSize,
  parseTmpfsSize,
  readTmpfsSize,
  tmpfsSizeLimits,
  type TmpfsSizeLimits,
} from '../../src/model/tmpfs-size.js';
import os from 'node:os';
import {
  auxvWord,
  hostMemory,
  kernelPageSize,
  pageSizeFromAuxv,
} from '../../src/system/host-memory.js';

const KiB = 1024n;
const GiB = KiB ** 3n;
const TiB = KiB ** 4n;
const TWO_64 = 2n ** 64n;
const FACTOR: Record<string, bigint> = {
  '': 1n,
  k: KiB,
  m: KiB ** 2n,
  g: KiB ** 3n,
  t: KiB ** 4n,
  p: KiB ** 5n,
  e: KiB ** 6n,
};

/** A 64 GiB host with 4 KiB pages. */
const HOST: TmpfsSizeLimits = { pageSize: 4096, memoryBytes: 64n * GiB };

function roundUp(bytes: bigint, page: bigint): bigint {
  const rest = bytes % page;
  return rest === 0n ? bytes : bytes - rest + page;
}

/** What the kernel gives the tmpfs for `digits` + `suffix`, or undefined when it would wrap. */
function expectedBytes(n: bigint, suffix: string, limits: TmpfsSizeLimits): bigint | undefined {
  const page = BigInt(limits.pageSize);
  const raw =
    suffix === '%' ? (n * limits.memoryBytes) / 100n : n * (FACTOR[suffix.toLowerCase()] as bigint);
  if (suffix === '%' && n * page >= TWO_64) return undefined;
  if (suffix === '%' && n * limits.memoryBytes >= TWO_64) return undefined;
  if (raw + page - 1n >= TWO_64) return undefined;
  return roundUp(raw, page);
}

function refusal(fn: () => unknown): VolumeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VolumeError);
    return error as VolumeError;
  }
  throw new Error('accepted');
}

const pageSizes = fc.constantFrom(4096, 16384, 65536);
const hosts = fc
  .tuple(pageSizes, fc.bigInt({ min: 1n, max: 4n * TiB }))
  .map(([pageSize, memory]): TmpfsSizeLimits => {
    const page = BigInt(pageSize);
    return { pageSize, memoryBytes: (memory / page + 1n) * page };
  });
const limitsArb = fc
  .tuple(hosts, fc.option(fc.bigInt({ min: 1n, max: 4n * TiB }), { nil: undefined }))
  .map(([host, max]): TmpfsSizeLimits => {
    if (max === undefined) return host;
    const page = BigInt(host.pageSize);
    const capped = (max / page + 1n) * page;
    return { ...host, maxBytes: capped < host.memoryBytes ? capped : host.memoryBytes };
  });
const numbers = fc.oneof(
  fc.bigInt({ min: 1n, max: 10_000n }),
  fc.bigInt({ min: 1n, max: TWO_64 - 1n }),
  fc.bigInt({ min: 1n, max: 10n ** 25n }),
);
const suffixes = fc.constantFrom(
  '',
  'k',
  'K',
  'm',
  'M',
  'g',
  'G',
  't',
  'T',
  'p',
  'P',
  'e',
  'E',
  '%',
);
/** Numbers that the kernel's 64 bits wrap to a small size: k × 2^(64 - shift) + a little. */
const wrapping = fc
  .tuple(
    fc.constantFrom('k', 'm', 'g', 't', 'p', 'e'),
    fc.bigInt({ min: 1n, max: 1000n }),
    fc.bigInt({ min: 0n, max: 2n ** 20n }),
  )
  .map(([suffix, k, small]): [bigint, string] => {
    const shift = BigInt(Math.log2(Number(FACTOR[suffix])));
    return [k * (TWO_64 >> shift) + small, suffix];
  });

describe('readTmpfsSize / parseTmpfsSize: the kernel exactly', () => {
  it('gives every accepted value the bytes of an independent BigInt computation, and accepts exactly those within the limit', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(numbers, suffixes), wrapping),
        limitsArb,
        ([n, suffix], limits) => {
          const text = `${n}${suffix}`;
          const expected = expectedBytes(n, suffix, limits);
          const limit =
            limits.maxBytes !== undefined && limits.maxBytes < limits.memoryBytes
              ? limits.maxBytes
              : limits.memoryBytes;
          let got: bigint | undefined;
          try {
            got = parseTmpfsSize('v', text, limits).bytes;
          } catch (error) {
            expect((error as VolumeError).kind).toBe('invalid');
            const { message } = error as Error;
            expect(message).toContain(`the limit is ${limit} bytes`);
            // The refusal says why, with the exact bytes when they fit.
            if (expected === undefined)
              expect(message).toMatch(/does not fit in the kernel's 64 bits/);
            else if (expected === 0n) expect(message).toMatch(/is zero/);
            else expect(message).toContain(`is ${expected} bytes`);
          }
          if (expected !== undefined && expected > 0n && expected <= limit) {
            expect(got).toBe(expected);
          } else {
            expect(got).toBeUndefined();
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('never accepts anything above the limit, zero, or what is not whole pages, whatever the text', () => {
    const text = fc.string({
      unit: fc.constantFrom(...'0123456789kKmMgGtTpPeE%x .-+'.split('')),
      maxLength: 24,
    });
    fc.assert(
      fc.property(text, limitsArb, (value, limits) => {
        let got: { bytes: bigint; option: string } | undefined;
        try {
          got = parseTmpfsSize('v', value, limits);
        } catch (error) {
          expect((error as VolumeError).kind).toBe('invalid');
          return;
        }
        const page = BigInt(limits.pageSize);
        expect(got.bytes > 0n).toBe(true);
        expect(got.bytes <= limits.memoryBytes).toBe(true);
        if (limits.maxBytes !== undefined) expect(got.bytes <= limits.maxBytes).toBe(true);
        expect(got.bytes % page).toBe(0n);
        expect(got.option).toBe(got.bytes.toString());
        expect(got.option).toMatch(/^[1-9][0-9]*$/);
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['17179869184g', /does not fit in the kernel's 64 bits/], // 2^64 bytes: wraps to 0, no limit
    ['18446744073709551616', /does not fit in the kernel's 64 bits/], // 2^64
    ['16e', /does not fit in the kernel's 64 bits/], // 2^64
    ['18446744073709551615', /does not fit in the kernel's 64 bits/], // rounding up to pages wraps
    ['99999999999999999999999', /does not fit in the kernel's 64 bits/],
    ['16777216g', /is 18014398509481984 bytes \(16 PiB\), above the limit/],
    ['9999999999999999', /is 10000000000000000 bytes, above the limit/],
    ['1p', /above the limit/],
    ['15e', /above the limit/],
    ['101%', /above the limit/],
    ['65g', /above the limit/],
    ['0', /is zero, which the kernel reads as no limit/],
    ['0k', /is zero/],
    ['0%', /is zero/],
    ['010', /is not a size such as/], // the kernel reads 8 (octal)
    ['0x10', /is not a size such as/],
    ['1kb', /is not a size such as/],
    ['1 g', /is not a size such as/],
    ['-1', /is not a size such as/],
    ['1%%', /is not a size such as/],
    ['', /is not a size such as/],
  ])('refuses %j on a 64 GiB host, naming the volume, the value and the limit', (value, why) => {
    const error = refusal(() => parseTmpfsSize('netns', value, HOST));
    expect(error.kind).toBe('invalid');
    expect(error.message).toMatch(why);
    expect(error.message).toContain(`volume "netns": option size=${JSON.stringify(value)}`);
    expect(error.message).toContain("the limit is 68719476736 bytes (64 GiB), the host's memory");
  });

  it('truncates a long value in the message', () => {
    const error = refusal(() => parseTmpfsSize('v', '9'.repeat(5000), HOST));
    expect(error.message).toContain(`size=${JSON.stringify('9'.repeat(80))} does not fit`);
    expect(error.message.length).toBeLessThan(400);
  });

  it('accepts 1t when the host has the memory, and refuses it when not', () => {
    expect(parseTmpfsSize('v', '1t', { pageSize: 4096, memoryBytes: 2n * TiB })).toEqual({
      bytes: TiB,
      option: '1099511627776',
    });
    expect(parseTmpfsSize('v', '1T', { pageSize: 4096, memoryBytes: TiB }).bytes).toBe(TiB);
    expect(refusal(() => parseTmpfsSize('v', '1t', HOST)).message).toMatch(
      /is 1099511627776 bytes \(1 TiB\), above the limit/,
    );
  });

  it('rounds up to whole pages, of the page size it is given', () => {
    expect(parseTmpfsSize('v', '1', HOST).option).toBe('4096');
    expect(parseTmpfsSize('v', '4096', HOST).option).toBe('4096');
    expect(parseTmpfsSize('v', '4097', HOST).option).toBe('8192');
    expect(parseTmpfsSize('v', '1k', { ...HOST, pageSize: 65536 }).option).toBe('65536');
    expect(parseTmpfsSize('v', '8M', HOST).option).toBe('8388608');
  });

  it('reads N% as the kernel does: (N << PAGE_SHIFT) × pages / 100, then whole pages', () => {
    // 1001 pages: 10% is 100.1 pages of bytes, rounded up to 101 pages.
    const host = { pageSize: 4096, memoryBytes: 1001n * 4096n };
    expect(parseTmpfsSize('v', '10%', host).bytes).toBe(101n * 4096n);
    expect(parseTmpfsSize('v', '100%', host).bytes).toBe(1001n * 4096n);
    expect(parseTmpfsSize('v', '50%', HOST).bytes).toBe(32n * GiB);
    expect(readTmpfsSize('1%', { pageSize: 4096, memoryBytes: 4096n })).toEqual({
      ok: true,
      bytes: 4096n,
    });
  });

  it('takes the last size below 2^64 and refuses the first that wraps, at each step the kernel takes', () => {
    const overflow = { ok: false, reason: 'overflow' };
    const ok = (bytes: bigint) => ({ ok: true, bytes });
    const page = { pageSize: 4096, memoryBytes: 4096n };
    // Rounding up to whole pages adds PAGE_SIZE - 1 in 64 bits.
    expect(readTmpfsSize(String(TWO_64 - 4096n), page)).toEqual(ok(TWO_64 - 4096n));
    expect(readTmpfsSize(String(TWO_64 - 4095n), page)).toEqual(overflow);
    expect(readTmpfsSize(String(TWO_64 - 1n), page)).toEqual(overflow);
    // A suffix's shift.
    expect(readTmpfsSize(`${2n ** 24n - 1n}t`, page)).toEqual(ok(TWO_64 - 2n ** 40n));
    expect(readTmpfsSize(`${2n ** 24n}t`, page)).toEqual(overflow);
    // N%: N << PAGE_SHIFT times 2^40 pages reaches 2^64 at N = 4096.
    const pages = { pageSize: 4096, memoryBytes: 4096n * 2n ** 40n };
    const last = (4095n * 2n ** 52n) / 100n;
    expect(readTmpfsSize('4095%', pages)).toEqual(ok(((last + 4095n) / 4096n) * 4096n));
    expect(readTmpfsSize('4096%', pages)).toEqual(overflow);
    // More digits than 2^64 has: refused before they are read as a number.
    expect(readTmpfsSize('1'.padEnd(21, '0'), page)).toEqual(overflow);
    expect(readTmpfsSize('9'.repeat(10_000), page)).toEqual(overflow);
  });
});

describe('serve --tmpfs-max-size', () => {
  it('caps the maximum and the default, and names itself as the limit', () => {
    const limits = tmpfsSizeLimits(HOST, '1g');
    expect(limits).toEqual({ ...HOST, maxBytes: GiB });
    expect(defaultTmpfsSize(limits)).toBe('1073741824');
    expect(parseTmpfsSize('v', '1g', limits).bytes).toBe(GiB);
    expect(refusal(() => parseTmpfsSize('v', '1025m', limits)).message).toBe(
      'volume "v": option size="1025m" is 1074790400 bytes (1025 MiB), above the limit: the limit is 1073741824 bytes (1 GiB), serve --tmpfs-max-size',
    );
    expect(defaultTmpfsSize(tmpfsSizeLimits(HOST))).toBeUndefined();
    expect(tmpfsSizeLimits(HOST, '25%').maxBytes).toBe(16n * GiB);
  });

  it.each([
    ['0', '--tmpfs-max-size "0" is zero, which the kernel reads as no limit'],
    ['1x', '--tmpfs-max-size "1x" is not a size such as 64m'],
    ['17179869184g', `--tmpfs-max-size "17179869184g" does not fit in the kernel's 64 bits`],
    [
      '65g',
      `--tmpfs-max-size "65g" is 69793218560 bytes (65 GiB), above the host's memory (68719476736 bytes (64 GiB))`,
    ],
  ])('refuses %j', (value, message) => {
    expect(() => tmpfsSizeLimits(HOST, value)).toThrow(message);
  });
});

describe('the host memory', () => {
  it('reads the page size from the auxiliary vector, in either word size and byte order', () => {
    const entries = [
      [33n, 0x7ffdn],
      [6n, 16384n],
      [0n, 0n],
    ];
    for (const [word, le] of [
      [8, true],
      [8, false],
      [4, true],
      [4, false],
    ] as const) {
      const buffer = Buffer.alloc(entries.length * 2 * word);
      entries.flat().forEach((value, i) => {
        if (word === 8) {
          if (le) buffer.writeBigUInt64LE(value, i * 8);
          else buffer.writeBigUInt64BE(value, i * 8);
        } else if (le) buffer.writeUInt32LE(Number(value), i * 4);
        else buffer.writeUInt32BE(Number(value), i * 4);
      });
      expect(pageSizeFromAuxv(buffer, word, le)).toBe(16384);
    }
    expect(pageSizeFromAuxv(Buffer.alloc(32), 8, true)).toBeUndefined();
    // The last pair, with no AT_NULL after it (a cut read), is read too; half a pair is not.
    const last = Buffer.alloc(16);
    last.writeBigUInt64LE(6n, 0);
    last.writeBigUInt64LE(16384n, 8);
    expect(pageSizeFromAuxv(last, 8, true)).toBe(16384);
    expect(pageSizeFromAuxv(last.subarray(0, 12), 8, true)).toBeUndefined();
    // Nothing after AT_NULL is read.
    const ended = Buffer.alloc(32);
    ended.writeBigUInt64LE(6n, 16);
    ended.writeBigUInt64LE(65536n, 24);
    expect(pageSizeFromAuxv(ended, 8, true)).toBeUndefined();
  });

  it('takes no AT_PAGESZ that no kernel gives: not a power of two, below 4 KiB, above 1 MiB', () => {
    const auxv = (pageSize: bigint) => {
      const buffer = Buffer.alloc(32);
      buffer.writeBigUInt64LE(6n, 0);
      buffer.writeBigUInt64LE(pageSize, 8);
      return buffer;
    };
    expect(pageSizeFromAuxv(auxv(65536n), 8, true)).toBe(65536);
    expect(pageSizeFromAuxv(auxv(1n << 20n), 8, true)).toBe(1 << 20);
    for (const odd of [12288n, 2048n, 0n, 1n << 21n, 6000n]) {
      expect(pageSizeFromAuxv(auxv(odd), 8, true)).toBeUndefined();
    }
  });

  it('reads words of 8 bytes on 64-bit architectures, of 4 on the others', () => {
    for (const arch of ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'])
      expect(auxvWord(arch)).toBe(8);
    for (const arch of ['ia32', 'arm', 'mips', 'mipsel', 'ppc', 's390'])
      expect(auxvWord(arch)).toBe(4);
  });

  it("is this machine's page size (getconf PAGESIZE) and MemTotal, in whole pages", async () => {
    const { stdout } = await execa('getconf', ['PAGESIZE']);
    // Read from the kernel's auxiliary vector, not the fallback that happens to match on x86.
    expect(kernelPageSize()).toBe(Number(stdout.trim()));
    const host = hostMemory();
    expect(host.pageSize).toBe(Number(stdout.trim()));
    const { stdout: meminfo } = await execa('grep', ['^MemTotal:', '/proc/meminfo']);
    const kib = BigInt(/(\d+) kB/.exec(meminfo)?.[1] ?? '0');
    expect(host.memoryBytes).toBe(kib * 1024n);
  });

  it('counts whole pages of the size the kernel gives, 4096 bytes where it gives none', () => {
    const total = BigInt(os.totalmem());
    const large = hostMemory(() => 65536);
    expect(large.pageSize).toBe(65536);
    expect(large.memoryBytes).toBe((total / 65536n) * 65536n);
    expect(hostMemory(() => undefined).pageSize).toBe(4096);
  });
});

describe('describeBytes', () => {
  it('adds the largest binary unit that divides the count, when fewer than 100,000 of it', () => {
    expect(describeBytes(0n)).toBe('0 bytes');
    expect(describeBytes(1023n)).toBe('1023 bytes');
    expect(describeBytes(99_999n * 1024n)).toBe('102398976 bytes (99999 KiB)');
    expect(describeBytes(100_000n * 1024n)).toBe('102400000 bytes');
    expect(describeBytes(3n << 30n)).toBe('3221225472 bytes (3 GiB)');
    expect(describeBytes(1n << 60n)).toBe('1152921504606846976 bytes (1 EiB)');
  });
});
