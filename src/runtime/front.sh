#!/bin/sh
# sharedprop-runtime: the OCI runtime dockerd calls instead of runc (see src/runtime/main.ts).
#
# This POSIX-sh front keeps every container start as fast as runc's own: containerd calls the
# runtime four times per container (create, start, delete, delete --force), and starting the
# compiled wrapper costs ~7 ms each time. Only a `create` whose spec may hold a sharedprop volume
# goes to the wrapper (sharedprop-runtime-create, next to this file); everything else is exec'd
# straight to runc, with the arguments, stdio, file descriptors and pid untouched.
#
# When in doubt (a configuration file, SHAREDPROP_RUNC, no runc found, an unreadable spec, a
# marker it cannot stat) it hands everything to the wrapper, which decides and reports. It reads
# the command line as argv.ts does and recognises a sharedprop mount as sources.ts does (a marker
# file that counts: root-file.ts); one table of cases proves that they agree
# (test/unit/runtime/agreement.test.ts). A subpath mount's source (dockerd's `safe-mount` bind)
# always goes to the wrapper, which decides (subpath.ts).
set -u

# `--version`: this wrapper's version first, then runc's own lines (the normal path below runs
# `runc --version`). dockerd reads the runtime's version from the last line that says "version",
# which stays runc's.
version='@SHAREDPROP_VERSION@'
if [ $# -eq 1 ] && { [ "$1" = --version ] || [ "$1" = -v ]; }; then
  echo "sharedprop-runtime version $version"
fi

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


# find_subcommand ARGS: sets `subcommand` (the first argument that is neither a global flag nor
# a global flag's value) and `skip` (how many arguments come up to and including it).
find_subcommand() {
  subcommand=
  skip=0
  while [ $# -gt 0 ]; do
    arg=$1
    shift
    skip=$((skip + 1))
    case $arg in
    --)
      if [ $# -gt 0 ]; then
        subcommand=$1
        skip=$((skip + 1))
      fi
      return
      ;;
    --root | -root | --log | -log | --log-format | -log-format | --log-level | -log-level | \
      --criu | -criu | --rootless | -rootless)
      if [ $# -gt 0 ]; then
        shift
        skip=$((skip + 1))
      fi
      ;;
    -?*) ;; # any other flag (boolean, or with its value after "=")
    *)
      subcommand=$arg
      return
      ;;
    esac
  done
}

# find_bundle ARGS-AFTER-THE-SUBCOMMAND: sets `bundle` (runc's default: the current directory).
# Flags may follow the container id; `--` ends them; the last --bundle wins.
find_bundle() {
  bundle=
  while [ $# -gt 0 ]; do
    arg=$1
    shift
    case $arg in
    --) break ;;
    --bundle | -bundle | --b | -b)
      bundle=${1-}
      [ $# -gt 0 ] && shift
      ;;
    --bundle=* | -bundle=* | --b=* | -b=*) bundle=${arg#*=} ;;
    --console-socket | -console-socket | --pid-file | -pid-file | --preserve-fds | -preserve-fds)
      [ $# -gt 0 ] && shift
      ;;
    esac
  done
  [ -n "$bundle" ] || bundle=.
}

# find_marker DIR: sets `marker` to whether DIR holds a mount-root marker that counts
# (root-file.ts): a regular file (not a symlink: stat does not follow one) owned by root and not
# writable by group or others, in a directory (DIR/. : its own path may pass through symlinks)
# owned by root and not writable by group or others. `yes`, `no` (none, or one that does not
# count) or `doubt` (stat failed). No process unless there is a file by that name.
find_marker() {
  marker=no
  file=$1/.sharedprop-mountroot
  [ -e "$file" ] || [ -L "$file" ] || return 0
  # `%u %f`: the owner's uid and the raw mode in hex, the same in coreutils and busybox.
  found=$(LC_ALL=C stat -c '%u %f' "$1/." "$file" 2>/dev/null) || {
    marker=doubt
    return 0
  }
  marker=yes
  kind=$((0040000)) # the directory first, then the file
  while read -r uid mode; do
    case $uid:$mode in
    [0-9]*:[0-9a-f]*) case $uid$mode in *[!0-9a-f]*) marker=doubt ;; esac ;;
    *) marker=doubt ;;
    esac
    [ "$marker" = doubt ] && return 0
    mode=$((0x$mode))
    if [ "$uid" != 0 ] || [ $((mode & 0170000)) -ne $kind ] || [ $((mode & 022)) -ne 0 ]; then
      marker=no
    fi
    kind=$((0100000))
  done <<EOF
$found
EOF
}

after_subcommand() {
  shift "$skip"
  find_bundle "$@"
}

find_subcommand "$@"
[ "$subcommand" = create ] || exec "$runc" "$@"
after_subcommand "$@"

# Does the spec name a sharedprop volume? The rule of sources.ts: a mount whose source is a
# direct child of a directory holding the driver's marker file, one that counts. A spec with no
# such source goes to runc unread by the wrapper; one this cannot read plainly (unreadable, a
# source with an escaped character or a path that is not normal, a marker it cannot stat) goes
# to the wrapper, which decides and reports.
spec=$bundle/config.json
[ -r "$spec" ] || delegate "$@"
sources=$(grep -o '"source"[[:space:]]*:[[:space:]]*"[^"\\]*["\\]' "$spec")
case $? in
0) ;;
1) exec "$runc" "$@" ;;
*) delegate "$@" ;;
esac
verdict=runc
while IFS= read -r entry; do
  value=${entry#*:}
  value=${value#"${value%%[!	 ]*}"} # leading blanks
  value=${value#\"}
  case $value in
  *\\) verdict=wrapper ;;                                 # an escaped character
  *//* | */./* | */../* | */. | */..) verdict=wrapper ;; # not a normal path
  /*)
    value=${value%\"}
    value=${value%/}
    find_marker "${value%/*}"
    [ "$marker" = no ] || verdict=wrapper
    # dockerd's temporary bind for a subpath mount: the wrapper reads its peer group (subpath.ts).
    case ${value##*/} in safe-mount*) verdict=wrapper ;; esac
    ;;
  esac
  [ "$verdict" = wrapper ] && break
done <<EOF
$sources
EOF
[ "$verdict" = runc ] && exec "$runc" "$@"
export SHAREDPROP_RUNC="$runc"
delegate "$@"
