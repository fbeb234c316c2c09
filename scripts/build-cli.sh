#!/usr/bin/env bash
# Builds the standalone `sharedprop` CLI: src/cli.ts compiled into one self-contained executable
# with Bun, its version compiled in. No Node and no node_modules needed where it runs; every
# command but `serve` works (the volume driver runs from the plugin's rootfs, or from the sources).
# Usage: scripts/build-cli.sh OUT   (SHAREDPROP_VERSION: default package.json's)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: scripts/build-cli.sh OUT}"
bun="${BUN:-$repo/node_modules/@oven/bun-linux-x64-baseline/bin/bun}"
version="${SHAREDPROP_VERSION:-$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$repo/package.json")}"
[[ "$version" =~ ^[0-9A-Za-z.+-]+$ ]] || {
  echo "build-cli: bad version '$version'" >&2
  exit 1
}
[[ -x "$bun" ]] || {
  echo "build-cli: Bun not found at $bun (run npm ci, or set BUN)" >&2
  exit 1
}

mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$(dirname "$out")/.sharedprop-cli.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# Like the runtime: the executable must not pick up .env, bunfig.toml, tsconfig.json or
# package.json from the directory it is run in. cpu-features (ssh2's optional native helper, under
# dockerode) stays out of the bundle: npm leaves it unbuilt without an error when its build fails,
# ssh2 works without it (it loads it in a try), and the CLI never speaks SSH.
"$bun" build --compile --minify --define "SHAREDPROP_BUILD_VERSION=\"$version\"" \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --no-compile-autoload-tsconfig --no-compile-autoload-package-json \
  --external cpu-features \
  "$repo/src/cli.ts" --outfile "$tmp" >/dev/null
chmod 0755 "$tmp"
[[ "$("$tmp" --version)" == "$version" ]] || {
  echo "build-cli: the built CLI does not report version $version" >&2
  exit 1
}
mv -f "$tmp" "$out"
trap - EXIT
echo "build-cli: built $out ($version)" >&2
