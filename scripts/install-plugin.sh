#!/usr/bin/env bash
# Installs the sharedprop managed plugin from PLUGINDIR (made by plugin/build.sh) on the engine
# that DOCKER_HOST names, or replaces the one installed: running it again is an upgrade.
#
#   PLUGIN_NAME  name of the plugin and of the volume driver (default: sharedprop)
#   DATA_DIR     host directory that holds every volume's data and state (default:
#                /var/lib/sharedprop); created with mode 0700 when missing. It is never inside
#                the plugin, so replacing or removing the plugin keeps every volume.
#   LOG_LEVEL    the plugin's log level (error, warn, info, debug); unset keeps the default, info
#   FORCE=1      replace the plugin even while running containers use its volumes (they lose
#                their mounts' propagation until restarted)
set -euo pipefail

die() {
  echo "install-plugin: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: scripts/install-plugin.sh PLUGINDIR"
plugin_dir="$1"
name="${PLUGIN_NAME:-sharedprop}"
data_dir="${DATA_DIR:-/var/lib/sharedprop}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

[[ -f "$plugin_dir/config.json" && -d "$plugin_dir/rootfs" ]] ||
  die "$plugin_dir has no config.json and rootfs/: run 'make plugin' first"
[[ "$data_dir" == /* ]] || die "DATA_DIR must be an absolute path, not $data_dir"
command -v docker >/dev/null || die "the docker CLI is required"
docker version --format '{{.Server.Version}}' >/dev/null ||
  die "cannot reach the Docker engine${DOCKER_HOST:+ at $DOCKER_HOST}"

if [[ ! -d "$data_dir" ]]; then
  mkdir -p "$(dirname "$data_dir")"
  mkdir -m 0700 "$data_dir"
  echo "created $data_dir (mode 0700)"
fi

# shellcheck source=plugin/lib.sh
source "$repo/plugin/lib.sh"

if plugin_exists "$name"; then
  busy="$(containers_using_volumes "$name")"
  if [[ -n "$busy" && "${FORCE:-0}" != 1 ]]; then
    die "running containers use volumes of $name: $busy
stop them first, or set FORCE=1 to replace the plugin anyway"
  fi
  echo "replacing the installed $name (volume data stays in its data directory)"
  remove_plugin "$name"
fi

docker plugin create "$name" "$plugin_dir" >/dev/null
docker plugin set "$name" "data.source=$data_dir"
if [[ -n "${LOG_LEVEL:-}" ]]; then
  docker plugin set "$name" "LOG_LEVEL=$LOG_LEVEL"
fi
if ! docker plugin enable "$name" >/dev/null; then
  die "$name was created but does not start; dockerd's log holds the plugin's output"
fi
echo "installed plugin $name (data: $data_dir); volumes: docker volume create -d $name NAME"
