#!/bin/sh
# Install the host packages dmaprof's qemu testbed needs (docs/vm-testbed.md).
#
#   scripts/vm/setup.sh          packages for the scene runs (kernel fetch, initramfs, qemu)
#   scripts/vm/setup.sh --emu    plus debootstrap (the python3 rootfs) and adb (the host side
#                                of the emulator-image tests)
#
# Idempotent: when every package is already installed it does nothing (and needs no root).
# Otherwise it runs apt-get (as root, or through sudo), with `apt-get update` first when the
# package lists are empty or a package is unknown. Every apt step is bounded by a timeout.
set -eu

PKGS="qemu-system-x86 busybox-static cpio kmod xz-utils zstd gcc libc6-dev"
if [ "${1:-}" = "--emu" ]; then
    PKGS="$PKGS debootstrap adb"
fi

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "setup.sh: all host packages present:$(printf ' %s' $PKGS)"
    exit 0
fi
echo "setup.sh: installing:$missing"

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "setup.sh: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Empty lists (a fresh container) or an unknown package: refresh the lists first.
need_update=0
ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || need_update=1
for p in $missing; do
    apt-cache show "$p" >/dev/null 2>&1 || need_update=1
done
if [ "$need_update" = 1 ]; then
    timeout 300 $SUDO apt-get update -q
fi
# shellcheck disable=SC2086
timeout 900 $SUDO apt-get install -y -q --no-install-recommends $missing
echo "setup.sh: done"
