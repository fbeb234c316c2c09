#!/usr/bin/env bash
# make release VERSION=x.y.z: everything a release ships, in build/release/VERSION/:
#   plugin/                                  the managed plugin (config.json + rootfs), stamped
#                                            with VERSION; `make push` puts it in a registry
#   sharedprop                               the standalone CLI (no Node needed on the host);
#                                            `sharedprop serve` runs the driver as a host process
#   sharedprop-rmtree                        its delete helper (it looks for it beside itself)
#   sharedprop-runtime, sharedprop-runtime-create   the OCI runtime wrapper
#   sharedprop-VERSION-linux-amd64.tar.gz    the four executables, in sharedprop-VERSION/
#   sharedprop-VERSION-linux-amd64.tar.gz.sha256   its checksum (sha256sum -c)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]]; then
  echo "release: VERSION must be a version like 1.2.3 or 1.2.3-rc.1 (make release VERSION=1.2.3), not '$version'" >&2
  exit 1
fi
out="$repo/build/release/$version"
name="sharedprop-$version"
tarball="$name-linux-amd64.tar.gz"
export SHAREDPROP_VERSION="$version"
mkdir -p "$out"

"$repo/plugin/build.sh" "$out/plugin"
"$repo/scripts/build-runtime.sh" "$out/sharedprop-runtime"
"$repo/scripts/build-cli.sh" "$out/sharedprop"
[[ -x "$repo/dist/native/sharedprop-rmtree" ]] || {
  echo "release: dist/native/sharedprop-rmtree is missing: run 'npm run build' first" >&2
  exit 1
}
install -m 0755 "$repo/dist/native/sharedprop-rmtree" "$out/sharedprop-rmtree"

stage="$(mktemp -d "$out/.stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
for file in sharedprop sharedprop-rmtree sharedprop-runtime sharedprop-runtime-create; do
  cp -p "$out/$file" "$stage/$name/$file"
done
epoch="${SOURCE_DATE_EPOCH:-315532800}"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
  -C "$stage" -cf - "$name" | gzip -n -6 >"$stage/$tarball"
(cd "$stage" && sha256sum "$tarball" >"$tarball.sha256")
mv -f "$stage/$tarball" "$stage/$tarball.sha256" "$out/"

size() { du -sm "$1" | cut -f1; }
echo "release $version in $out:"
echo "  plugin rootfs      $(size "$out/plugin/rootfs") MB"
echo "  sharedprop         $(size "$out/sharedprop") MB"
echo "  runtime wrapper    $(($(stat -c %s "$out/sharedprop-runtime") / 1024)) KB front + $(size "$out/sharedprop-runtime-create") MB"
echo "  $tarball  $(size "$out/$tarball") MB"
