#!/usr/bin/env bash
# The end-to-end tier on newer engines: for each SUITE (trixie: Docker 26.1; sid: Docker 28.5,
# containerd 2, runc 1.3), builds or reuses its root (build-root.sh), then runs the whole e2e
# tier inside it (run-in-root.sh) against the plugin and runtime built on this host.
#   test/engines/e2e.sh SUITE... [-- JEST-ARGS...]
# Every suite runs even when an earlier one fails; the exit status says whether all passed.
# Podman's test runs on the host only (Debian bookworm's podman): the roots carry Docker engines.
# Environment: SHAREDPROP_ENGINE_ROOTS (default /var/cache/sharedprop/engines).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
roots="${SHAREDPROP_ENGINE_ROOTS:-/var/cache/sharedprop/engines}"
suites=()
while [[ $# -gt 0 && "$1" != -- ]]; do
  suites+=("$1")
  shift
done
[[ "${1:-}" == -- ]] && shift
((${#suites[@]})) || {
  echo "usage: test/engines/e2e.sh SUITE... [-- JEST-ARGS...]" >&2
  exit 2
}
for built in dist/cli.js build/plugin/config.json build/sharedprop-runtime; do
  [[ -e "$repo/$built" ]] || {
    echo "e2e-engines: $built is missing: run make build plugin runtime first" >&2
    exit 1
  }
done

failed=()
for suite in "${suites[@]}"; do
  start=$SECONDS
  echo "=== e2e on $suite"
  if "$here/build-root.sh" "$suite" "$roots/$suite" &&
    "$here/run-in-root.sh" "$roots/$suite" "$repo" \
      SHAREDPROP_E2E_ENGINE="$suite" SHAREDPROP_E2E_PREBUILT=1 -- \
      node --experimental-vm-modules node_modules/jest/bin/jest.js \
      --selectProjects e2e --runInBand --testPathIgnorePatterns '/podman\.test\.ts$' "$@"; then
    echo "=== e2e on $suite passed in $((SECONDS - start)) s"
  else
    echo "=== e2e on $suite FAILED after $((SECONDS - start)) s"
    failed+=("$suite")
  fi
done
if ((${#failed[@]})); then
  echo "e2e-engines: failed on ${failed[*]}" >&2
  exit 1
fi
