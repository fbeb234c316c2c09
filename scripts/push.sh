#!/usr/bin/env bash
# make push REGISTRY=host:port VERSION=x.y.z: pushes build/release/VERSION/plugin as
# REGISTRY/sharedprop:VERSION, through the engine DOCKER_HOST names (which must trust the registry;
# dockerd trusts 127.0.0.0/8 without TLS). The plugin it creates for the push is removed after.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
registry="${1:-}"
version="${2:-}"
[[ -n "$registry" && -n "$version" ]] || {
  echo "push: usage: make push REGISTRY=host:port VERSION=x.y.z" >&2
  exit 1
}
dir="$repo/build/release/$version/plugin"
[[ -f "$dir/config.json" ]] || {
  echo "push: $dir is missing: run make release VERSION=$version first" >&2
  exit 1
}
ref="$registry/sharedprop:$version"
if docker plugin inspect "$ref" >/dev/null 2>&1; then docker plugin rm -f "$ref" >/dev/null; fi
if ! err="$(docker plugin create "$ref" "$dir" 2>&1 >/dev/null)"; then
  echo "push: docker plugin create $ref failed: $err" >&2
  if [[ "$err" == *"already exists"* ]]; then
    echo "push: Docker 20.10 refuses to create a plugin whose rootfs an installed plugin already has; push from an engine where sharedprop $version is not installed" >&2
  fi
  exit 1
fi
status=0
docker plugin push "$ref" || status=$?
docker plugin rm -f "$ref" >/dev/null || true
((status == 0)) || exit "$status"
echo "pushed $ref"
