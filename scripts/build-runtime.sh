#!/usr/bin/env bash
# Builds the OCI runtime wrapper: OUT is the POSIX-sh front (src/runtime/front.sh), and OUT-create
# the wrapper (src/runtime) compiled into one self-contained executable with Bun: no Node and no
# node_modules needed where they run. Usage: scripts/build-runtime.sh [OUT]
# Does nothing when both are newer than every file in src/runtime and carry the version.
# SHAREDPROP_VERSION: the version `--version` prints (default: package.json's; make release sets it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-build/sharedprop-runtime}"
bun="${BUN:-$repo/node_modules/@oven/bun-linux-x64-baseline/bin/bun}"
sources="$repo/src/runtime"

version="${SHAREDPROP_VERSION:-$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$repo/package.json")}"
[[ "$version" =~ ^[0-9A-Za-z.+-]+$ ]] || {
  echo "build-runtime: bad version '$version'" >&2
  exit 1
}

compiled="$out-create"
if [[ -e "$out" && -e "$compiled" ]] && grep -qxF "version='$version'" "$out" &&
  [[ -z "$(find "$sources" -type f \( -newer "$out" -o -newer "$compiled" \) -print -quit)" ]]; then
  exit 0
fi
if [[ ! -x "$bun" ]]; then
  echo "build-runtime: Bun not found at $bun (run npm ci, or set BUN)" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
# Build next to OUT and rename, so an interrupted build never leaves a newer, broken OUT.
tmp="$(mktemp "$(dirname "$out")/.sharedprop-runtime.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# --bytecode (which needs --format=cjs) saves ~1.5 ms of start-up on every runc call. The
# executable must not read .env or bunfig.toml from the current directory (the bundle): that
# would change the environment runc gets, or even which runc runs.
"$bun" build --compile --minify --bytecode --format=cjs \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --no-compile-autoload-tsconfig --no-compile-autoload-package-json \
  "$sources/main.ts" --outfile "$tmp" >/dev/null
chmod 0755 "$tmp"
mv -f "$tmp" "$compiled"
sed "s/@SHAREDPROP_VERSION@/$version/" "$sources/front.sh" >"$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "build-runtime: built $out and $compiled" >&2
