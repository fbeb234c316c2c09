# Helpers shared by scripts/install-plugin.sh and scripts/uninstall-plugin.sh (sourced, not run).
# Every docker call goes to the engine that DOCKER_HOST names.

plugin_exists() {
  docker plugin inspect --format '{{.Name}}' "$1" >/dev/null 2>&1
}

plugin_enabled() {
  [[ "$(docker plugin inspect --format '{{.Enabled}}' "$1" 2>/dev/null)" == true ]]
}

# Names of the volumes whose driver is plugin $1 (dockerd records it as NAME or NAME:latest).
volumes_of() {
  local name="${1%:latest}"
  {
    docker volume ls -q --filter "driver=$name"
    docker volume ls -q --filter "driver=$name:latest"
  } 2>/dev/null | sort -u
}

# Running containers that use a volume of plugin $1, as "container (volume)" words.
containers_using_volumes() {
  local volume container
  for volume in $(volumes_of "$1"); do
    for container in $(docker ps --filter "volume=$volume" --format '{{.Names}}'); do
      printf '%s ' "$container($volume)"
    done
  done
}

# Disables (forcefully: existing volumes hold a reference on the plugin) and removes plugin $1.
# Volume data is in the plugin's data directory on the host, which neither step touches.
remove_plugin() {
  if plugin_enabled "$1"; then
    docker plugin disable -f "$1" >/dev/null
  fi
  docker plugin rm -f "$1" >/dev/null
}

# The host directory that holds the volumes of plugin $1 (its `data` mount's source).
plugin_data_dir() {
  docker plugin inspect \
    --format '{{range .Settings.Mounts}}{{if eq .Name "data"}}{{.Source}}{{end}}{{end}}' "$1"
}
