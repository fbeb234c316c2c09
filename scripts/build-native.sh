#!/usr/bin/env bash
# Compiles the native helper into OUTDIR (npm run build calls it with dist/native):
#   sharedprop-rmtree  race-free deletion by file descriptor (src/native/rmtree.c)
# Statically linked when the C library allows it, so that it runs in the plugin's rootfs and on
# any host; rebuilt only when its source (or this script) is newer than the binary.
# CC: the compiler (default cc).
set -euo pipefail

[[ $# -eq 1 && -n "$1" ]] || {
  echo "usage: scripts/build-native.sh OUTDIR" >&2
  exit 2
}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$1"
cc="${CC:-cc}"
src="$repo/src/native/rmtree.c"
bin="$out/sharedprop-rmtree"

if [[ -x "$bin" && "$bin" -nt "$src" && "$bin" -nt "${BASH_SOURCE[0]}" ]]; then
  exit 0
fi
command -v "$cc" >/dev/null || {
  echo "build-native: no C compiler ($cc); install one: apt-get install gcc libc6-dev" >&2
  exit 1
}

mkdir -p "$out"
# A private temporary name: a test's beforeAll and `npm run build` may build at the same time.
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
flags=(-O2 -s -Wall -Wextra -Werror -std=c11 -o "$tmp" "$src")
if ! "$cc" -static "${flags[@]}" 2>/dev/null; then
  # No static C library (libc6-dev's libc.a): a dynamic binary works on this host. A real
  # error in the source shows here.
  "$cc" "${flags[@]}" || {
    echo "build-native: $src did not compile (C headers missing? apt-get install gcc libc6-dev)" >&2
    exit 1
  }
fi
# A smoke test: without arguments the helper must refuse (exit 2) and do nothing.
status=0
"$tmp" 2>/dev/null || status=$?
[[ $status -eq 2 ]] || {
  echo "build-native: the built helper does not run (exit $status without arguments, not 2)" >&2
  exit 1
}
mv -f "$tmp" "$bin"
