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

/**
 * The kernel's PAGE_SIZE from the auxiliary vector it gave this process (Node has no sysconf):
 * pairs of native words, type then value. 4096 when it cannot be read.
 */
export function pageSizeFromAuxv(auxv: Buffer, word: 4 | 8, littleEndian: boolean): number {
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
      return isPageSize(value) ? Number(value) : FALLBACK_PAGE_SIZE;
    }
  }
  return FALLBACK_PAGE_SIZE;
}

export function hostMemory(): HostMemory {
  let pageSize = FALLBACK_PAGE_SIZE;
  try {
    const word = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'].includes(
      process.arch,
    )
      ? 8
      : 4;
    pageSize = pageSizeFromAuxv(readFileSync('/proc/self/auxv'), word, os.endianness() === 'LE');
  } catch {
    // No /proc: the common page size.
  }
  // os.totalmem() is MemTotal from /proc/meminfo: totalram_pages × PAGE_SIZE, in whole pages.
  const page = BigInt(pageSize);
  return { pageSize, memoryBytes: (BigInt(os.totalmem()) / page) * page };
}
