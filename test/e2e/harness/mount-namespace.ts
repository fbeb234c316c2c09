/**
 * The mount namespace a throwaway dockerd and its containerd run in (see docker-daemon.ts).
 * dockerd 20.10 keeps plugin sockets in /run/docker/plugins whatever its exec root, so a
 * directory of the run is mounted over /run/docker/plugins in there. The run's two directories
 * are shared mounts made before that namespace, so every mount made under them in there
 * (volumes, plugins, containers) shows on the host too; nothing else of the host changes.
 */
import { execa, type ResultPromise } from 'execa';

/** Where dockerd 20.10 looks for plugin sockets and puts managed plugins' (not under --exec-root). */
const PLUGIN_SOCKET_ROOT = '/run/docker/plugins';

/**
 * The process that holds the daemon's mount namespace (run under `unshare --mount
 * --propagation unchanged`): it mounts this run's directory over /run/docker/plugins there,
 * without it propagating to the host, says `ready`, and waits. Its argv names the directory, so
 * the clean-up (and the sweep of aborted runs) finds it.
 */
const NAMESPACE_HOLDER = [
  "const { execFileSync } = require('node:child_process');",
  "const { mkdirSync } = require('node:fs');",
  'const [dir, root] = process.argv.slice(1);',
  'mkdirSync(root, { recursive: true });',
  // The mount that holds the socket root (/ or /run) is made private in here first, so that
  // mounting over the socket root reaches no peer group of the host's.
  "const holder = execFileSync('findmnt', ['-n', '-o', 'TARGET', '-T', root]).toString().trim();",
  "execFileSync('mount', ['--make-private', holder]);",
  "execFileSync('mount', ['--bind', dir, root]);",
  "process.stdout.write('ready\\n');",
  'setInterval(() => undefined, 1 << 30);',
].join('\n');

/**
 * Makes each of `dirs` a shared mount (bound onto itself), so that what is mounted under them in
 * the daemon's namespace shows on the host.
 */
export async function shareDirectories(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    // Private before shared: on a host whose / is shared (systemd's, or an engine root of
    // test/engines), the self-bind joins /'s peer group, and every mount made under it would
    // come back a second time under the bind, hidden in /'s copy of the directory.
    await execa('mount', ['--bind', dir, dir]);
    await execa('mount', ['--make-private', dir]);
    await execa('mount', ['--make-rshared', dir]);
  }
}

/**
 * Starts the process that holds the namespace, with `pluginSocketDir` over /run/docker/plugins;
 * returned at once, so that a caller can end it even when it never gets ready (see holderReady).
 */
export function spawnNamespaceHolder(pluginSocketDir: string): ResultPromise {
  return execa(
    'unshare',
    [
      '--mount',
      '--propagation',
      'unchanged',
      '--',
      process.execPath,
      '-e',
      NAMESPACE_HOLDER,
      pluginSocketDir,
      PLUGIN_SOCKET_ROOT,
    ],
    { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', reject: false },
  );
}

/** Resolves once `holder` says it is ready; rejects when it exits first or takes too long. */
export function holderReady(holder: ResultPromise, readyTimeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the namespace holder was not ready in ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    );
    holder.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void holder.then((result) => {
      clearTimeout(timer);
      reject(new Error(`the namespace holder exited: ${String(result.stderr)}`));
    });
  });
}

/** Ends the holder (the namespace goes with its last process). */
export async function endNamespaceHolder(holder: ResultPromise): Promise<void> {
  if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
  await holder;
}

/** The command prefix that runs a command in the namespace `holder` holds. */
export function nsenterPrefix(holder: ResultPromise | undefined): string[] {
  const pid = holder?.pid;
  if (pid === undefined) throw new Error('the daemon has no mount namespace (not started)');
  return ['nsenter', `--target=${pid}`, '--mount', '--'];
}
