/**
 * What the wrapper asks of its host through Bun's own API: `which` (node has no equivalent),
 * reading the configuration (only root's: root-file.ts) and comparing files. The logic that uses
 * them (config.ts, runc.ts) takes them as parameters, so unit tests run it under Node. Bun only.
 */
import { closeSync, readFileSync } from 'node:fs';
import { UntrustedFileError, type ReadText } from './config.js';
import { openRootFile } from './root-file.js';
import type { RuncLookupOps } from './runc.js';

interface BunFile {
  stat(): Promise<{ dev: number; ino: number }>;
}

export interface BunSubprocess {
  readonly exited: Promise<number>;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): void;
}

/** The part of Bun's global `Bun` the wrapper uses. */
export interface BunApi {
  file(path: string): BunFile;
  which(command: string, options: { PATH: string }): string | null;
  spawn(
    cmd: string[],
    options: {
      stdio: ['inherit', 'inherit', 'inherit'];
      env: Readonly<Record<string, string | undefined>>;
    },
  ): BunSubprocess;
}

export function bun(): BunApi {
  const api = (globalThis as { Bun?: BunApi }).Bun;
  if (!api) throw new Error('sharedprop-runtime must run under Bun (it is compiled with it)');
  return api;
}

/** The configuration's text, read through the descriptor its owner and mode were checked on. */
export const readText: ReadText = async (file) => {
  const found = openRootFile(file);
  if (found.kind === 'absent') {
    throw Object.assign(new Error(`${file}: no such file`), { code: 'ENOENT' });
  }
  if (found.kind === 'untrusted') throw new UntrustedFileError(found.reason);
  try {
    return readFileSync(found.fd, 'utf8');
  } finally {
    closeSync(found.fd);
  }
};

export const runcOps: RuncLookupOps = {
  which: (command, searchPath) => bun().which(command, { PATH: searchPath }),
  async sameFile(a, b) {
    try {
      const [x, y] = await Promise.all([bun().file(a).stat(), bun().file(b).stat()]);
      return x.dev === y.dev && x.ino === y.ino;
    } catch {
      return false;
    }
  },
};
