#!/usr/bin/env bash
# Removes the sharedprop managed plugin from the engine that DOCKER_HOST names. Volume data is
# kept: it lives in the plugin's data directory on the host, which this never touches.
#
#   PLUGIN_NAME  name of the plugin (default: sharedprop)
#   FORCE=1      remove it even while running containers use its volumes
#
# dockerd counts every existing volume as a use of its driver, so a plain `docker plugin disable`
# refuses while any sharedprop volume exists; this script disables with -f once no running
# container needs the plugin.
set -euo pipefail

die() {
  echo "uninstall-plugin: $*" >&2
  exit 1
}

name="${PLUGIN_NAME:-sharedprop}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v docker >/dev/null || die "the docker CLI is required"
docker version --format '{{.Server.Version}}' >/dev/null ||
  die "cannot reach the Docker engine${DOCKER_HOST:+ at $DOCKER_HOST}"

# shellcheck source=plugin/lib.sh
source "$repo/plugin/lib.sh"

if ! plugin_exists "$name"; then
  echo "no plugin named $name is installed; nothing to do"
  exit 0
fi
busy="$(containers_using_volumes "$name")"
if [[ -n "$busy" && "${FORCE:-0}" != 1 ]]; then
  die "running containers use volumes of $name: $busy
stop them first, or set FORCE=1 to remove the plugin anyway"
fi
data_dir="$(plugin_data_dir "$name")"
data_dir="${data_dir:-${DATA_DIR:-/var/lib/sharedprop}}"
count="$(volumes_of "$name" | grep -c . || true)"
remove_plugin "$name"
echo "removed plugin $name"
echo "volume data is kept in $data_dir ($count volume(s)): install the plugin again with DATA_DIR=$data_dir to use them, or delete that directory to discard them"
