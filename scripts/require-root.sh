#!/usr/bin/env bash
# Fails (never skips) when a root-only test tier cannot run here, and says how to run it.
set -euo pipefail
tier="${1:-integration}"
if [[ "$(id -u)" != 0 ]]; then
  echo "The $tier tests make real mounts and need root. Run: sudo make test" >&2
  exit 1
fi
for tool in mount umount unshare nsenter; do
  command -v "$tool" >/dev/null || { echo "$tier tests need '$tool' (util-linux)" >&2; exit 1; }
done
if [[ "$tier" == e2e ]]; then
  for tool in dockerd containerd runc docker busybox docker-compose; do
    command -v "$tool" >/dev/null || {
      echo "The e2e tests need '$tool'. Install it: apt-get install -y docker.io busybox-static docker-compose (or run .ci/run, which installs them)" >&2
      exit 1
    }
  done
fi
