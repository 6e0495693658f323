#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine, then run it all.
#   bash scripts/test.sh [pytest args...]
# System packages: adb (the real adb server), mksh/toybox/busybox-static (the emulated phone's
# shells), qemu and friends (the real-kernel testbed), chromium (the HTML reports' browser
# tests, driven by Playwright with this system browser: no browser download). Python
# packages go into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(adb mksh toybox busybox-static qemu-system-x86 cpio kmod xz-utils zstd gcc libc6-dev
              debootstrap strace python3-venv openssh-server openssh-client shellcheck chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing system packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[parquet,html,perfetto]" --group test 2>/dev/null \
  || .venv/bin/python -m pip install -q -e ".[parquet,html,perfetto]" pytest hypothesis ruff mypy \
       pandas-stubs duckdb matplotlib plotly playwright perfetto protobuf

.venv/bin/python -m ruff check dmaprof tests scripts
.venv/bin/python -m ruff format --check dmaprof tests scripts
shellcheck dmaprof/collect/collect.sh
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -q "$@"
