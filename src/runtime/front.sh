#!/bin/sh
# sharedprop-runtime: the OCI runtime dockerd calls instead of runc (see src/runtime/main.ts).
#
# This POSIX-sh front keeps every container start as fast as runc's own: containerd calls the
# runtime four times per container (create, start, delete, delete --force), and starting the
# compiled wrapper costs ~7 ms each time. Only a `create` whose spec may hold a sharedprop volume
# goes to the wrapper (sharedprop-runtime-create, next to this file); everything else is exec'd
# straight to runc, with the arguments, stdio, file descriptors and pid untouched.
#
# When in doubt (a configuration file, SHAREDPROP_RUNC, no runc found, an unreadable spec) it
# hands everything to the wrapper, which decides and reports. Keep in step with argv.ts (runc's
# global flags) and sources.ts (what a sharedprop mount source looks like).
set -u

self=$0
wrapper=${0%/*}/sharedprop-runtime-create
config=${SHAREDPROP_RUNTIME_CONFIG:-/etc/sharedprop/runtime.json}

delegate() {
  SHAREDPROP_RUNTIME_FRONT=$self exec "$wrapper" "$@"
}

# A plain runc: an executable file that is neither this front nor the wrapper.
usable() {
  [ -f "$1" ] && [ -x "$1" ] && ! [ "$1" -ef "$self" ] && ! [ "$1" -ef "$wrapper" ]
}

[ -e "$config" ] && delegate "$@"
[ -n "${SHAREDPROP_RUNC:-}" ] && delegate "$@"

runc=
saved_ifs=$IFS
IFS=:
for dir in $PATH /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
  case $dir in /*) ;; *) continue ;; esac # the current directory is the bundle
  if usable "$dir/runc"; then
    runc=$dir/runc
    break
  fi
done
IFS=$saved_ifs
[ -n "$runc" ] || delegate "$@"

# The subcommand: the first argument that is not a global flag or a global flag's value.
subcommand=
expect_value=
for arg in "$@"; do
  if [ -n "$expect_value" ]; then
    expect_value=
    continue
  fi
  case $arg in
  --) break ;;
  --root | -root | --log | -log | --log-format | -log-format | --log-level | -log-level | \
    --criu | -criu | --rootless | -rootless) expect_value=1 ;;
  -*) ;;
  *)
    subcommand=$arg
    break
    ;;
  esac
done
[ "$subcommand" = create ] || exec "$runc" "$@"

# create: the bundle (runc's default is the current directory).
bundle=.
seen_create=
expect_bundle=
for arg in "$@"; do
  if [ -z "$seen_create" ]; then
    [ "$arg" = create ] && seen_create=1
    continue
  fi
  if [ -n "$expect_bundle" ]; then
    bundle=$arg
    expect_bundle=
    continue
  fi
  case $arg in
  --bundle | -bundle | -b | --b) expect_bundle=1 ;;
  --bundle=* | -bundle=* | -b=* | --b=*) bundle=${arg#*=} ;;
  esac
done

# A managed plugin's volumes come from .../plugins/<id>/propagated-mount/<name>, a host-process
# driver's from <data root>/mounts/<name> (by default /var/lib/sharedprop/mounts/; another data
# root is listed under "roots" in the configuration file, which sends every call to the wrapper).
# A spec that names neither holds no sharedprop volume, and runc gets it unread by the wrapper.
grep -q -F -e /propagated-mount/ -e /sharedprop/mounts/ -- "$bundle/config.json" 2>/dev/null
case $? in
1) exec "$runc" "$@" ;;
*)
  export SHAREDPROP_RUNC="$runc"
  delegate "$@"
  ;;
esac
