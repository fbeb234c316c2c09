/**
 * The end-to-end tier only ever talks to the dockerd it started itself. These checks stop it from
 * reaching the machine's own daemon through a mistake in a path or an inherited DOCKER_HOST.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';

/** Where the machine's own dockerd listens: the tier never connects to these. */
export const DEFAULT_DAEMON_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock'];

function resolved(socketPath: string): string {
  try {
    return realpathSync(socketPath);
  } catch {
    // Not there (yet): compare the directory's real path with the name.
    try {
      return path.join(realpathSync(path.dirname(socketPath)), path.basename(socketPath));
    } catch {
      return path.resolve(socketPath);
    }
  }
}

/** Throws unless `dockerHost` is a unix:// address away from the machine's default daemon. */
export function assertPrivateDockerHost(dockerHost: string): string {
  if (!dockerHost.startsWith('unix://')) {
    throw new Error(
      `e2e: refusing DOCKER_HOST ${dockerHost}: only a private unix:// socket is used`,
    );
  }
  const socketPath = dockerHost.slice('unix://'.length);
  const defaults = new Set(DEFAULT_DAEMON_SOCKETS.flatMap((s) => [s, resolved(s)]));
  if (defaults.has(path.resolve(socketPath)) || defaults.has(resolved(socketPath))) {
    throw new Error(
      `e2e: refusing DOCKER_HOST ${dockerHost}: it is the machine's default daemon; the tests start their own`,
    );
  }
  return socketPath;
}

export function assertRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('e2e: the end-to-end tier runs dockerd and makes mounts: run it as root');
  }
}
