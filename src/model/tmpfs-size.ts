/**
 * A tmpfs volume's `size`, read exactly as the kernel reads `size=` (lib/cmdline.c `memparse`,
 * then mm/shmem.c), in BigInt so that nothing wraps, and checked against a limit that the caller
 * passes in (nothing here reads the host).
 *
 * What the kernel does with `size=TEXT`: `memparse` reads an unsigned 64-bit number (base 0: a
 * leading `0` means octal, `0x` hex), shifts it left by 10 for each step of an optional suffix
 * `k`, `m`, `g`, `t`, `p`, `e` (either case), all modulo 2^64; a `%` after it means
 * `(n << PAGE_SHIFT) * totalram_pages / 100` bytes; the tmpfs gets `DIV_ROUND_UP(bytes,
 * PAGE_SIZE)` pages, and 0 pages means **no limit**. So `17179869184g` (2^64) wraps to 0 and
 * mounts without a limit.
 *
 * What is accepted here: a decimal number without leading zeros (the kernel's octal and hex
 * readings are refused, so that `010` cannot mean 8), optionally followed by one of the kernel's
 * suffixes `k`, `m`, `g`, `t`, `p`, `e` (any case: `p` and `e` are accepted because the kernel
 * takes them, and are then refused as above the limit on any real host), or `N%` of the host's
 * memory. Refused: zero (the kernel's "no limit"), anything that does not fit in the kernel's 64
 * bits at any step, and anything above the limit: the host's memory, or `serve
 * --tmpfs-max-size` when that is lower.
 */
import { invalid } from './errors.js';

/** The host's memory as the kernel counts it for `%`. */
export interface HostMemory {
  /** PAGE_SIZE in bytes (a power of two). */
  pageSize: number;
  /** totalram_pages × PAGE_SIZE: what os.totalmem() reports on Linux. */
  memoryBytes: bigint;
}

/** What a tmpfs volume may have: at most `maxBytes` (when set) and at most the host's memory. */
export interface TmpfsSizeLimits extends HostMemory {
  /** `serve --tmpfs-max-size`, in whole pages: the maximum and the default size. */
  maxBytes?: bigint;
}

export interface TmpfsSize {
  /** The tmpfs's limit in bytes, in whole pages (what statfs reports as f_blocks × f_bsize). */
  bytes: bigint;
  /** The option text to hand to the kernel: plain decimal bytes, no suffix. */
  option: string;
}

/** Why a text is not a size; `bytes` for a size that reads but may be above a limit. */
export type SizeReading =
  { ok: true; bytes: bigint } | { ok: false; reason: 'syntax' | 'zero' | 'overflow' };

const U64_LIMIT = 1n << 64n;
const SHIFTS: Readonly<Record<string, bigint>> = {
  '': 0n,
  k: 10n,
  m: 20n,
  g: 30n,
  t: 40n,
  p: 50n,
  e: 60n,
};
const SIZE_SYNTAX = /^([1-9][0-9]*)([kmgtpe%]?)$/;
/** Zero, with or without a suffix: the kernel's "no limit". */
const ZERO = /^0+[kmgtpe%]?$/i;
/** More digits than this cannot fit in 64 bits (2^64 has 20): refused before BigInt sees them. */
const MAX_DIGITS = 20;

/**
 * Reads `text` as the kernel would, in whole pages of `host.pageSize`, or says why not. A value
 * the kernel would wrap (anything at or above 2^64 at any step) is `overflow`, never a number.
 */
export function readTmpfsSize(text: string, host: HostMemory): SizeReading {
  const match = SIZE_SYNTAX.exec(text.toLowerCase());
  if (!match) return { ok: false, reason: ZERO.test(text) ? 'zero' : 'syntax' };
  // Both groups always match (the suffix as '' when there is none).
  const [, digits, suffix] = match as unknown as [string, string, string];
  if (digits.length > MAX_DIGITS) return { ok: false, reason: 'overflow' };
  const number = BigInt(digits);
  const page = BigInt(host.pageSize);
  let bytes: bigint;
  if (suffix === '%') {
    // size << PAGE_SHIFT, times totalram_pages: the product is never below its first factor
    // (there is at least one page), so it alone tells whether either step wrapped.
    const product = number * page * (host.memoryBytes / page);
    if (product >= U64_LIMIT) return { ok: false, reason: 'overflow' };
    bytes = product / 100n;
  } else {
    bytes = number << (SHIFTS[suffix] ?? 0n);
  }
  // DIV_ROUND_UP adds PAGE_SIZE - 1 first, in 64 bits too (so any size at or above 2^64 is
  // refused here as well).
  if (bytes + page - 1n >= U64_LIMIT) return { ok: false, reason: 'overflow' };
  // Never 0 pages here: the digits are at least 1, and 1% of even one page is a byte.
  return { ok: true, bytes: ((bytes + page - 1n) / page) * page };
}

/** The largest size a volume may have, and what sets it (for the message). */
export function tmpfsSizeLimit(limits: TmpfsSizeLimits): { bytes: bigint; what: string } {
  return limits.maxBytes !== undefined && limits.maxBytes < limits.memoryBytes
    ? { bytes: limits.maxBytes, what: 'serve --tmpfs-max-size' }
    : { bytes: limits.memoryBytes, what: "the host's memory" };
}

/**
 * Bytes for people: the exact count, and in the largest binary unit that divides it when that
 * reads better (fewer than 100,000 of them).
 */
export function describeBytes(bytes: bigint): string {
  for (const [unit, shift] of [
    ['EiB', 60n],
    ['PiB', 50n],
    ['TiB', 40n],
    ['GiB', 30n],
    ['MiB', 20n],
    ['KiB', 10n],
  ] as const) {
    const count = bytes >> shift;
    if (count > 0n && count < 100_000n && bytes % (1n << shift) === 0n) {
      return `${bytes} bytes (${count} ${unit})`;
    }
  }
  return `${bytes} bytes`;
}

const WHY: Readonly<Record<'syntax' | 'zero' | 'overflow', string>> = {
  syntax:
    'is not a size such as 64m, 1g, 65536 or 10% (decimal, optionally with k, m, g, t, p or e, or 1-100%)',
  zero: 'is zero, which the kernel reads as no limit',
  overflow: "does not fit in the kernel's 64 bits (it would wrap, and could mean no limit)",
};

/**
 * A volume's `size`: its exact bytes and the option text for the kernel, or a 400 naming the
 * volume, the value and the limit.
 */
export function parseTmpfsSize(volume: string, value: string, limits: TmpfsSizeLimits): TmpfsSize {
  const limit = tmpfsSizeLimit(limits);
  const prefix = `volume ${JSON.stringify(volume)}: option size=${JSON.stringify(value.slice(0, 80))}`;
  const limitText = `the limit is ${describeBytes(limit.bytes)}, ${limit.what}`;
  const reading = readTmpfsSize(value, limits);
  if (!reading.ok) throw invalid(`${prefix} ${WHY[reading.reason]}; ${limitText}`);
  if (reading.bytes > limit.bytes) {
    throw invalid(`${prefix} is ${describeBytes(reading.bytes)}, above the limit: ${limitText}`);
  }
  return { bytes: reading.bytes, option: reading.bytes.toString() };
}

/** The size a tmpfs volume gets when Create gives none: the cap, or the kernel's default. */
export function defaultTmpfsSize(limits: TmpfsSizeLimits): string | undefined {
  return limits.maxBytes?.toString();
}

/**
 * The limits for `serve`, from the host and `--tmpfs-max-size` (the same syntax as a volume's
 * size, `%` of the host's memory included). A bad value throws, so that serve does not start.
 */
export function tmpfsSizeLimits(host: HostMemory, maxSize?: string): TmpfsSizeLimits {
  if (maxSize === undefined) return { ...host };
  const shown = JSON.stringify(maxSize.slice(0, 80));
  const reading = readTmpfsSize(maxSize, host);
  if (!reading.ok) throw new Error(`--tmpfs-max-size ${shown} ${WHY[reading.reason]}`);
  if (reading.bytes > host.memoryBytes) {
    throw new Error(
      `--tmpfs-max-size ${shown} is ${describeBytes(reading.bytes)}, above the host's memory (${describeBytes(host.memoryBytes)})`,
    );
  }
  return { ...host, maxBytes: reading.bytes };
}
