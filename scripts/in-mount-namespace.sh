#!/usr/bin/env bash
# Runs a command in a mount namespace of its own, with every mount private: real bind, tmpfs and
# propagation changes, gone with the namespace. Run by root (make test, CI), a mount namespace
# alone: the tests that need other users' files (chown to uid 65534, setpriv) run as well. Run
# by anyone else, a user namespace too, as root there (uid 0 mapped to the caller), so that a
# developer without root tests src/system/ against the real kernel; the tests that need real root
# say so. The unit tier runs in one (npm run test:unit, make mutate).
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 command [args...]" >&2
	exit 2
fi

if [ "${SHAREDPROP_IN_MOUNT_NAMESPACE:-}" = 1 ]; then
	exec "$@" # already inside one (a nested call)
fi

if ! command -v unshare >/dev/null 2>&1; then
	echo "$0: unshare(1) is missing (util-linux); the unit tier needs it for real mounts without root" >&2
	exit 1
fi

# The host's mount namespace, so that the tests can tell that they are not in it.
SHAREDPROP_HOST_MOUNT_NS="$(readlink /proc/self/ns/mnt)"
export SHAREDPROP_HOST_MOUNT_NS
export SHAREDPROP_IN_MOUNT_NAMESPACE=1
# Who really runs it (inside, everyone is uid 0): jest.config.js keeps its cache per user.
export SHAREDPROP_HOST_UID="${SHAREDPROP_HOST_UID:-$(id -u)}"

if [ "$(id -u)" = 0 ]; then
	exec unshare --mount --propagation private -- "$@"
fi

# Probe first, so that the failure says what is missing instead of unshare's translated text.
if ! unshare --user --map-root-user --mount --propagation private true 2>/dev/null; then
	cat >&2 <<'MSG'
in-mount-namespace.sh: cannot create an unprivileged user and mount namespace.
The unit tier mounts (bind, tmpfs) in a namespace of its own, and needs one of:
  - sysctl kernel.unprivileged_userns_clone=1 (Debian before 11, some hardened kernels)
  - sysctl user.max_user_namespaces > 0
  - on Ubuntu 24.04+: sysctl kernel.apparmor_restrict_unprivileged_userns=0
  - inside a container: a seccomp profile that allows unshare(CLONE_NEWUSER)
MSG
	exit 1
fi

exec unshare --user --map-root-user --mount --propagation private -- "$@"
