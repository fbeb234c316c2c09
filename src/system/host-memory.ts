/**
 * The host's memory as the kernel counts it for a tmpfs's `size=N%`: its page size and
 * totalram_pages × page size. Read once per call; the tmpfs size parser itself never reads the
 * host (src/model/tmpfs-size.ts takes these as a parameter).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { HostMemory } from '../model/tmpfs-size.js';

/** AT_PAGESZ in the auxiliary vector (include/uapi/linux/auxvec.h). */
const AT_PAGESZ = 6n;
const FALLBACK_PAGE_SIZE = 4096;

const isPageSize = (n: bigint) => n >= 4096n && n <= 1n << 20n && (n & (n - 1n)) === 0n;

/** Architectures whose native word (a C long, the auxiliary vector's unit) is 8 bytes. */
const WORD_64 = new Set(['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el']);

/** The size of the auxiliary vector's words on `arch` (Node's process.arch names). */
export function auxvWord(arch: string): 4 | 8 {
  return WORD_64.has(arch) ? 8 : 4;
}

/**
 * The kernel's PAGE_SIZE from an auxiliary vector (Node has no sysconf): pairs of native words,
 * type then value, up to AT_NULL. Undefined when it has no AT_PAGESZ a kernel could give.
 */
export function pageSizeFromAuxv(
  auxv: Buffer,
  word: 4 | 8,
  littleEndian: boolean,
): number | undefined {
  for (let at = 0; at + 2 * word <= auxv.length; at += 2 * word) {
    const read = (offset: number) =>
      word === 8
        ? littleEndian
          ? auxv.readBigUInt64LE(offset)
          : auxv.readBigUInt64BE(offset)
        : BigInt(littleEndian ? auxv.readUInt32LE(offset) : auxv.readUInt32BE(offset));
    const type = read(at);
    if (type === 0n) break;
    if (type === AT_PAGESZ) {
      const value = read(at + word);
      return isPageSize(value) ? Number(value) : undefined;
    }
  }
  return undefined;
}

/** This process's page size, from the auxiliary vector the kernel gave it; undefined without /proc. */
export function kernelPageSize(): number | undefined {
  let auxv: Buffer;
  try {
    auxv = readFileSync('/proc/self/auxv');
  } catch {
    return undefined;
  }
  return pageSizeFromAuxv(auxv, auxvWord(process.arch), os.endianness() === 'LE');
}

/** `readPageSize` is for tests (a host whose pages are not 4 KiB, one without /proc). */
export function hostMemory(readPageSize = kernelPageSize): HostMemory {
  // Where the kernel's cannot be read: the common page size.
  const pageSize = readPageSize() ?? FALLBACK_PAGE_SIZE;
  // os.totalmem() is MemTotal from /proc/meminfo: totalram_pages × PAGE_SIZE, in whole pages.
  const page = BigInt(pageSize);
  return { pageSize, memoryBytes: (BigInt(os.totalmem()) / page) * page };
}
