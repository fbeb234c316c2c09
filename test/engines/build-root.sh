#!/usr/bin/env bash
# Builds (or reuses) a Debian root holding a newer Docker engine, for the end-to-end matrix:
#   test/engines/build-root.sh SUITE DIR
# SUITE is trixie (Docker 26.1, containerd 1.7, runc 1.1, compose 2.26) or sid (Docker 28.5,
# containerd 2.1, runc 1.3, compose 2.40). DIR/.sharedprop-root-ready marks a finished root: a
# root without it (missing, or left half-built by an aborted run) is built again from scratch.
# Needs root, debootstrap, and the Debian mirror that the host's apt sources name.
set -euo pipefail

die() {
  echo "build-root: $*" >&2
  exit 1
}
[[ $# -eq 2 ]] || die "usage: build-root.sh SUITE DIR"
suite="$1"
dir="$(realpath -m "$2")"
readonly READY="$dir/.sharedprop-root-ready"
# What the end-to-end tier runs inside the root: the engine (docker.io, containerd, runc), the
# docker CLI and compose v2, Node for jest, and the tools the tests and the Makefile call.
readonly PACKAGES=(docker-cli docker-compose nodejs busybox-static iproute2 make ca-certificates
  procps psmisc kmod docker-registry)

case "$suite" in trixie | sid) ;; *) die "unknown suite '$suite' (trixie or sid)" ;; esac
case "$dir" in / | /usr | /var | /etc | /tmp) die "refusing to build into $dir" ;; esac
[[ "$(id -u)" == 0 ]] || die "needs root"
# A root made for another package list is built again.
[[ -f "$READY" ]] && grep -qxF "packages=${PACKAGES[*]}" "$READY" && exit 0

# The mirror the host's own apt sources use (deb822 or one-line format).
mirror="$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
  /etc/apt/sources.list.d 2>/dev/null | grep -oE 'https?://[^ ]+' | head -n1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
}

# A half-built root may still have mounts in it from a killed run (debootstrap mounts /proc).
if [[ -d "$dir" ]]; then
  { findmnt -rn -o TARGET | grep -F "$dir/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$dir"
fi
mkdir -p "$(dirname "$dir")"
work="$dir.partial"
rm -rf --one-file-system "$work"
echo "build-root: debootstrap $suite from $mirror into $dir"
debootstrap --variant=minbase --include=docker.io,containerd,runc "$suite" "$work" "$mirror" \
  >"$work.log" 2>&1 || {
  tail -n 30 "$work.log" >&2
  die "debootstrap $suite failed (log: $work.log)"
}
cp /etc/ssl/certs/ca-certificates.crt "$work/etc/ssl/certs/host-ca-certificates.crt" 2>/dev/null || true
# The sid index may be past its Valid-Until date on a snapshot mirror.
echo 'Acquire::Check-Valid-Until "false";' >"$work/etc/apt/apt.conf.d/99sharedprop-no-valid-until"
# Services must not start inside the root while packages install.
printf '#!/bin/sh\nexit 101\n' >"$work/usr/sbin/policy-rc.d"
chmod 0755 "$work/usr/sbin/policy-rc.d"
mount -t proc proc "$work/proc"
trap 'umount -l "$work/proc" 2>/dev/null || true' EXIT
chroot "$work" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$work.log" 2>&1
chroot "$work" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${PACKAGES[@]}" >>"$work.log" 2>&1 || {
  tail -n 30 "$work.log" >&2
  die "apt-get install in the $suite root failed (log: $work.log)"
}
chroot "$work" apt-get clean
umount "$work/proc"
trap - EXIT
rm -f "$work.log"
{
  echo "suite=$suite"
  echo "packages=${PACKAGES[*]}"
  chroot "$work" dpkg-query -W -f='${Package}=${Version}\n' docker.io containerd runc docker-compose nodejs
} >"$work/.sharedprop-root-ready"
mv "$work" "$dir"
echo "build-root: $suite ready in $dir"
