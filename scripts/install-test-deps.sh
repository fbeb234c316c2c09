#!/usr/bin/env bash
# Installs what `make test` needs and the machine lacks (Debian packages), so that `make test`
# works on a fresh machine: docker.io (dockerd, containerd, runc), busybox-static, docker-compose,
# util-linux (unshare, nsenter, flock, umount's translations), gcc and libc6-dev (the native
# delete helper, linked statically), debootstrap (the newer engines' roots, test/engines),
# docker-registry (the release tests' registry), podman (the Podman volume plugin tests), systemd
# (systemd-analyze verify of the service unit), strace (the proof that the driver starts no mount(8)
# or umount(8): test/integration/no-mount-processes.test.ts), and a German locale for the reliability
# suite.
set -euo pipefail

if [[ "$(id -u)" != 0 ]]; then
  echo "install-test-deps: make test needs root (real mounts, a private dockerd)" >&2
  exit 1
fi

declare -A package_for=(
  [dockerd]=docker.io [containerd]=docker.io [runc]=docker.io [docker]=docker.io
  [busybox]=busybox-static [docker-compose]=docker-compose
  [unshare]=util-linux [nsenter]=util-linux [flock]=util-linux [mount]=mount [ip]=iproute2 [make]=make
  [curl]=curl [strip]=binutils [cc]=gcc [locale-gen]=locales [debootstrap]=debootstrap
  [docker-registry]=docker-registry [podman]=podman [systemd-analyze]=systemd [strace]=strace
)
missing=()
for tool in "${!package_for[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_for[$tool]}")
done
# busybox from Debian's `busybox` package is dynamically linked; the image build needs the static one.
if command -v busybox >/dev/null 2>&1 && ldd "$(command -v busybox)" >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
# The native delete helper links statically; the locale test needs umount's German messages.
[[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || missing+=(libc6-dev)
[[ -f /usr/share/locale/de/LC_MESSAGES/util-linux.mo ]] || missing+=(util-linux-locales)
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A non-English locale for the reliability suite (decisions never depend on translated messages).
if ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$'; then
  sed -i 's/^# *de_DE.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' /etc/locale.gen
  grep -q '^de_DE.UTF-8 UTF-8' /etc/locale.gen || echo 'de_DE.UTF-8 UTF-8' >>/etc/locale.gen
  locale-gen >/dev/null
fi

command -v node >/dev/null || {
  echo "Node.js (>= 20.19) is required" >&2
  exit 1
}
