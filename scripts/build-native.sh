#!/usr/bin/env bash
# Compiles the native helper(s) into OUTDIR (npm run build calls it with dist/native):
#   sharedprop-rmtree  race-free deletion by file descriptor (src/native/rmtree.c)
# Statically linked when the C library allows it, so that it runs in the plugin's rootfs and on
# any host; rebuilt only when its source is newer than the binary.
set -euo pipefail

[[ $# -eq 1 && -n "$1" ]] || {
  echo "usage: scripts/build-native.sh OUTDIR" >&2
  exit 2
}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$1"
cc="${CC:-cc}"
command -v "$cc" >/dev/null || {
  echo "build-native: no C compiler ($cc): apt-get install gcc libc6-dev" >&2
  exit 1
}
mkdir -p "$out"
src="$repo/src/native/rmtree.c"
bin="$out/sharedprop-rmtree"
if [[ -x "$bin" && "$bin" -nt "$src" && "$bin" -nt "${BASH_SOURCE[0]}" ]]; then
  exit 0
fi
flags=(-O2 -s -Wall -Wextra -Werror -std=c11 -o "$bin.tmp" "$src")
if ! "$cc" -static "${flags[@]}" 2>/dev/null; then
  # No static C library (libc6-dev's libc.a): a dynamic binary works on this host.
  "$cc" "${flags[@]}"
fi
mv "$bin.tmp" "$bin"
