"""Build the base of a fake phone root: the toolbox an Android shell user expects.

``build_base_root(dest)`` installs ``/system/bin/sh`` (a static mksh, Android's own shell),
toybox with its libraries and applet symlinks, busybox for the applets Debian's toybox lacks
(awk, tr, dd, gzip, ...), a ``getprop`` that reads ``build.prop``, ``/dev/null`` and friends,
``/etc/passwd`` + ``/etc/group`` (root, shell:2000) and ``/data/local/tmp`` (shell-owned,
0771). Scenes add their own files (``/proc``, ``/sys``, ...) on top.

Needs the Debian packages mksh, toybox and busybox-static. Works without root too (then no
device nodes and no chown); chroot mode needs root anyway.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

SHELL_UID = 2000
SHELL_GID = 2000

DEFAULT_PROPS: dict[str, str] = {
    "ro.product.name": "emuphone",
    "ro.product.model": "EmuPhone",
    "ro.product.device": "emu",
    "ro.product.manufacturer": "dmaprof",
    "ro.product.brand": "dmaprof",
    "ro.product.cpu.abi": "x86_64",
    "ro.product.cpu.abilist": "x86_64",
    "ro.build.version.sdk": "34",
    "ro.build.version.release": "14",
    "ro.build.type": "userdebug",
    "ro.build.fingerprint": "dmaprof/emuphone/emu:14/UQ1A.240105.004/1:userdebug/test-keys",
    "ro.debuggable": "1",
    "ro.serialno": "EMU0001",
}

# Applets Android has (in toybox, or awk as its own binary) that Debian's toybox 0.8.9 lacks.
BUSYBOX_APPLETS = (
    "awk",
    "bc",
    "bzip2",
    "dd",
    "diff",
    "expr",
    "fold",
    "getopt",
    "gzip",
    "hexdump",
    "more",
    "sort",
    "stty",
    "tr",
    "unxz",
    "unzip",
    "vi",
    "xz",
    "xzcat",
)

# Static mksh builds, best first: the musl one runs in a chroot with no libraries at all.
MKSH_CANDIDATES = (
    "/usr/lib/*-linux-musl*/bin/mksh",
    "/usr/lib/klibc/bin/mksh",
    "/usr/lib/diet/bin/mksh",
    "/bin/mksh-static",
)

GETPROP = r"""#!/system/bin/sh
# getprop of the emulated phone: properties come from the build.prop files, first
# definition wins (as for ro.* properties). No argument: every property as "[key]: [value]".
r=${EMUPHONE_ROOT:-}
tab='	'
files="$r/default.prop $r/system/build.prop $r/vendor/build.prop $r/product/build.prop"
if [ $# -eq 0 ]; then
	for f in $files; do
		[ -r "$f" ] || continue
		while IFS= read -r line || [ -n "$line" ]; do
			case $line in
			'#'*) ;;
			*=*) print -r -- "${line%%=*}$tab${line#*=}" ;;
			esac
		done <"$f"
	done | awk -F "$tab" '!seen[$1]++' | sort |
		awk -F "$tab" '{ printf "[%s]: [%s]\n", $1, substr($0, length($1) + 2) }'
	exit 0
fi
for f in $files; do
	[ -r "$f" ] || continue
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		"$1="*) print -r -- "${line#*=}"; exit 0 ;;
		esac
	done <"$f"
done
print -r -- "${2:-}"
"""


def _find_mksh() -> str:
    for pattern in MKSH_CANDIDATES:
        for path in sorted(glob.glob(pattern)):
            if os.access(path, os.X_OK):
                return os.path.realpath(path)
    raise FileNotFoundError("no static mksh found: apt-get install mksh")


def _which(name: str, *extra: str) -> str:
    for path in (*extra, shutil.which(name)):
        if path and os.access(path, os.X_OK):
            return os.path.realpath(path)
    raise FileNotFoundError(f"{name} not found: apt-get install mksh toybox busybox-static")


@functools.cache
def _toolbox() -> tuple[str, str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(mksh, toybox, busybox, toybox libraries, toybox applets, busybox applets), cached."""
    mksh = _find_mksh()
    toybox = _which("toybox", "/usr/bin/toybox")
    busybox = _which("busybox", "/bin/busybox")
    out = subprocess.run(["ldd", toybox], capture_output=True, text=True, check=False).stdout
    libs = tuple(
        m.group(1) for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out) if os.path.exists(m[1])
    )
    toy_applets = subprocess.run([toybox], capture_output=True, text=True, check=True).stdout
    bb_applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout
    return (
        mksh,
        toybox,
        busybox,
        libs,
        tuple(toy_applets.split()),
        tuple(bb_applets.split()),
    )


def _copy(src: str, dst: Path, mode: int = 0o755) -> None:
    # Copies, never hard links: a root shell in the chroot must not be able to alter the
    # host's binaries.
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    dst.chmod(mode)


def _symlink(target: str, link: Path) -> None:
    with contextlib.suppress(FileExistsError):
        os.symlink(target, link)


def _write_new(path: Path, text: str, mode: int = 0o644) -> None:
    if not os.path.lexists(path):
        path.write_text(text)
        path.chmod(mode)


def write_build_prop(dest: Path, props: Mapping[str, str]) -> None:
    """Write ``/system/build.prop`` (banner and getprop read it)."""
    path = dest / "system" / "build.prop"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    path.chmod(0o644)


def build_base_root(dest: Path, *, props: Mapping[str, str] | None = None) -> None:
    """Install the phone's toolbox into ``dest`` (created if missing).

    ``props`` (e.g. ``DEFAULT_PROPS``) also writes ``/system/build.prop``.
    """
    mksh, toybox, busybox, libs, toy_applets, bb_applets = _toolbox()
    is_root = os.geteuid() == 0
    dest.mkdir(parents=True, exist_ok=True)
    for d in ("proc", "sys", "dev", "etc", "system/etc", "system/xbin", "vendor/bin", "sdcard"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    sbin = dest / "system" / "bin"
    sbin.mkdir(parents=True, exist_ok=True)

    _copy(mksh, sbin / "sh")
    _copy(toybox, sbin / "toybox")
    _copy(busybox, sbin / "busybox")
    for lib in libs:
        _copy(lib, dest / lib.lstrip("/"))
    # Entries a scene already put there (its own stand-ins) are kept, so this may run
    # before or after the scene is built, and twice.
    taken = {"sh", "toybox", "busybox", "getprop"}
    for applet in toy_applets:
        if applet not in taken:
            _symlink("toybox", sbin / applet)
            taken.add(applet)
    have = set(bb_applets)
    for applet in BUSYBOX_APPLETS:
        if applet not in taken and applet in have:
            _symlink("busybox", sbin / applet)
            taken.add(applet)
    _write_new(sbin / "getprop", GETPROP, 0o755)
    _write_new(
        dest / "etc" / "passwd",
        f"root:x:0:0:root:/:/system/bin/sh\nshell:x:{SHELL_UID}:{SHELL_GID}:shell:/:/system/bin/sh\n",
    )
    _write_new(dest / "etc" / "group", f"root:x:0:\nshell:x:{SHELL_GID}:\n")
    if is_root:
        for name, major, minor in (
            ("null", 1, 3),
            ("zero", 1, 5),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ):
            node = dest / "dev" / name
            try:
                os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(major, minor))
            except FileExistsError:
                continue
            node.chmod(0o666)

    # Android: /data 0771 system, /data/local 0751 root, /data/local/tmp 0771 shell.
    tmp = dest / "data" / "local" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    (dest / "data").chmod(0o771)
    (dest / "data" / "local").chmod(0o751)
    if is_root:
        os.chown(tmp, SHELL_UID, SHELL_GID)
        tmp.chmod(0o771)
    else:
        tmp.chmod(0o777)
    if props is not None:
        write_build_prop(dest, props)
