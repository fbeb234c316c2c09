#!/usr/bin/env bash
# Runs a command with a Debian root (test/engines/build-root.sh) as `/`, the way the end-to-end
# matrix runs newer engines:
#   test/engines/run-in-root.sh ROOT CHECKOUT [VAR=value...] -- COMMAND...
# It makes private mount and PID namespaces, binds ROOT onto itself, mounts a fresh /proc, binds
# /sys, /dev and the checkout (at the same path) into it, gives it a fresh tmpfs /run, and
# pivot_roots into it; `/` is then made rshared, as on a systemd host. A plain chroot is not
# enough: dockerd 26 fails `docker import` when `/` is not a mount point.
# Nothing of it reaches the host's mount table, and when COMMAND ends every process it left is
# killed with the PID namespace, so an aborted run leaves no dockerd, containerd or shim behind.
set -euo pipefail

die() {
  echo "run-in-root: $*" >&2
  exit 1
}

if [[ "${1:-}" != --inside ]]; then
  [[ $# -ge 4 ]] || die "usage: run-in-root.sh ROOT CHECKOUT [VAR=value...] -- COMMAND..."
  root="$(realpath -e "$1")" || die "no root at $1"
  [[ -f "$root/.sharedprop-root-ready" ]] || die "$root is not a finished root (build-root.sh)"
  [[ "$root" != / ]] || die "the root must not be /"
  # Leftovers of an earlier run in the root's /tmp (its mounts died with its namespace).
  find "$root/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null || true
  exec unshare --mount --pid --fork --propagation private -- "$0" --inside "$root" "${@:2}"
fi

shift
root="$1"
checkout="$(realpath -e "$2")"
shift 2
environment=()
while [[ $# -gt 0 && "$1" != -- ]]; do
  environment+=("$1")
  shift
done
[[ "${1:-}" == -- && $# -ge 2 ]] || die "no command after --"
shift

mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root$checkout"
mount --rbind "$checkout" "$root$checkout"
cd "$root"
mkdir -p .old-root
pivot_root . .old-root
cd /
umount -l /.old-root
rmdir /.old-root
mount --make-rshared /

# bash stays PID 1 of the namespace: it reaps the orphans (a daemon's children) that would
# otherwise stay zombies, and its end ends every process left in the namespace.
cd "$checkout"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  LANG=C.UTF-8 TERM="${TERM:-dumb}" ${CI:+CI="$CI"} "${environment[@]}" "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
status=0
wait "$child" || status=$?
# A trapped signal interrupts wait: wait again for the real end.
while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done
exit "$status"
