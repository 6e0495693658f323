"""`dmaprof snapshot`: push the collector, run it once, pull its dump, clean up.

Four adb round trips beyond device selection: push the script, run it (shell v2, so the
real exit status comes back, with the collector's stderr), pull the dump with sync, remove
the directory. The directory is
removed on every path out, including failures and Ctrl-C; if the device is gone by then, the
user is told which directory may be left behind.

``apps`` (``--app``) are passed to the collector (``-a PACKAGE``): on a user build it reads
each one's own processes through ``run-as`` within the same run (docs/user-build.md).
"""

from __future__ import annotations

import logging
import re
import shlex
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dmaprof.capture.container import Capture
from dmaprof.capture.metadata import capture_meta
from dmaprof.choices import RootMode
from dmaprof.collect import collector_script
from dmaprof.collect.adb import Device
from dmaprof.collect.direct import CollectorOutput
from dmaprof.errors import DeviceCommandError, DmaprofError, InterruptedByUser
from dmaprof.timing import stage
from dmaprof.units import last_line

log = logging.getLogger(__name__)

DEVICE_TMP = "/data/local/tmp"
#: An Android package name (what `-a` of the collector accepts, and more strictly).
PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")

# Exit statuses of the run command itself (the collector's own are below 64).
_RC_NO_WORKDIR = 97
_RC_ROOT_REQUIRED = 98

# Runs on the device. It decides how to get root (adbd already root, `su -c`, or AOSP's
# `su 0`), runs the collector once into the private directory, and reports how it ran on the
# last stdout line. Every value it receives is quoted by shlex.quote. It runs in a subshell so
# that adbutils' shell-v1 fallback (no shell_v2: `; echo X4EXIT:$?` appended) still sees the
# exit status.
_RUN_TEMPLATE = """\
(
W={workdir}; M={root_mode}
cd "$W" || exit {rc_no_workdir}
chmod 700 "$W" 2>/dev/null
# if the host goes away (adbd sends SIGHUP) or we are stopped, leave nothing behind
trap 'cd /; rm -rf "$W"; exit 129' HUP
trap 'cd /; rm -rf "$W"; exit 143' TERM
trap 'cd /; rm -rf "$W"; exit 130' INT
echo $$ >"$W/pid"
# Sweep directories of earlier snapshots that died with their device: their collector's
# shell is gone, or they never got to run and are over a minute old.
for d in {device_tmp}/dmaprof-*; do
  [ -d "$d" ] && [ "$d" != "$W" ] || continue
  if [ -f "$d/pid" ]; then
    read -r p <"$d/pid"; [ -n "$p" ] && [ -d "/proc/$p" ] && continue
  elif [ -z "$(find "$d" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then
    continue
  fi
  rm -rf "$d"
done
how=shell
if [ "$(id -u 2>/dev/null)" = 0 ]; then
  how=adbd-root
elif [ "$M" != never ] && command -v su >/dev/null 2>&1; then
  if su -c true </dev/null >/dev/null 2>&1; then how=su-c
  elif su 0 true </dev/null >/dev/null 2>&1; then how=su-0
  fi
fi
if [ "$M" = require ] && [ "$how" = shell ]; then
  echo "root required, but adbd is not root and su is not available" >&2
  exit {rc_root_required}
fi
case $how in
  su-c) su -c "sh $W/collect.sh -w $W{app_args}" </dev/null >"$W/dump" 2>"$W/stderr" ;;
  su-0) su 0 sh "$W/collect.sh" -w "$W"{app_args} </dev/null >"$W/dump" 2>"$W/stderr" ;;
  *) sh "$W/collect.sh" -w "$W"{app_args} </dev/null >"$W/dump" 2>"$W/stderr" ;;
esac
rc=$?
cat "$W/stderr" >&2 2>/dev/null
echo "dmaprof-run how=$how rc=$rc"
exit $rc
)"""


@dataclass
class SnapshotResult:
    capture: Capture
    root_method: str
    elapsed_s: float
    notes: list[str] = field(default_factory=list)  # e.g. an --app run-as refused


def check_packages(apps: Sequence[str]) -> list[str]:
    """The --app names, validated (they reach a shell command line unquoted by `su -c`)."""
    bad = [a for a in apps if not PACKAGE_RE.match(a)]
    if bad:
        raise DmaprofError(f"not a package name: {', '.join(repr(a) for a in bad)}")
    return list(dict.fromkeys(apps))


Progress = Callable[[str], None]


def take_snapshot(
    device: Device,
    *,
    root_mode: RootMode = "auto",
    progress: Progress | None = None,
    apps: Sequence[str] = (),
) -> SnapshotResult:
    """Collect one capture from `device`. Raises DmaprofError subclasses on failure.

    ``apps``: packages whose own processes the collector reads through ``run-as`` when it
    cannot read other processes (user builds); see ``SnapshotResult.notes`` for the ones
    it could not."""
    say = progress or (lambda _msg: None)
    apps = check_packages(apps)
    app_args = "".join(f" -a {shlex.quote(a)}" for a in apps)
    workdir = f"{DEVICE_TMP}/dmaprof-{uuid.uuid4().hex[:16]}"
    started = time.monotonic()
    wallclock_host = time.time()
    cleaned = False
    try:
        say("pushing the collector")
        with stage("push the collector"):
            device.push(collector_script(), f"{workdir}/collect.sh", mode=0o700)
        say("running the collector")
        with stage("run the collector"):
            run = device.shell(
                _RUN_TEMPLATE.format(
                    workdir=shlex.quote(workdir),
                    root_mode=shlex.quote(root_mode),
                    device_tmp=shlex.quote(DEVICE_TMP),
                    rc_no_workdir=_RC_NO_WORKDIR,
                    rc_root_required=_RC_ROOT_REQUIRED,
                    app_args=app_args,
                )
            )
        how, collector_rc = _parse_run_report(run.stdout)
        if run.returncode == _RC_ROOT_REQUIRED:
            raise DeviceCommandError(
                f"device {device.serial}: --root require, but adbd is not root and su is "
                "not available (try `adb root` on a userdebug build)"
            )
        if run.returncode != 0:
            detail = last_line(run.stderr) or f"exit status {run.returncode}"
            raise DeviceCommandError(
                f"device {device.serial}: the collector failed ({detail}); no capture written"
            )
        say("pulling the dump")
        with stage("pull the dump"):
            dump = device.pull(f"{workdir}/dump")
        say("cleaning up")
        with stage("clean up on the device"):
            _remove_workdir(device, workdir, how)
        cleaned = True
    except KeyboardInterrupt:
        raise InterruptedByUser(
            f"interrupted; {_cleanup_after_failure(device, workdir)}; no capture written"
        ) from None
    except DmaprofError as exc:
        if not cleaned:
            exc.args = (f"{exc.message}; {_cleanup_after_failure(device, workdir)}",)
        raise
    elapsed = time.monotonic() - started
    transport: dict[str, object] = {"kind": "adb", "serial": device.serial, "root_method": how}
    if apps:
        transport["apps"] = apps
    meta = capture_meta(
        dump,
        transport=transport,
        host_wallclock=wallclock_host,
        host_elapsed_s=elapsed,
        collector_rc=collector_rc,
        device_tags=device.entry.tags,
    )
    return SnapshotResult(Capture(meta, dump, run.stderr), how, elapsed, _app_notes(dump, apps))


def _app_notes(dump: bytes, apps: Sequence[str]) -> list[str]:
    """One line per --app that run-as could not read (not debuggable, unknown, ...)."""
    if not apps:
        return []
    from dmaprof.analyze.userbuild import run_as_results
    from dmaprof.capture.dump import DumpFormatError, parse_dump

    try:
        results = run_as_results(parse_dump(dump))
    except DumpFormatError:
        return []
    notes = [r.describe() for r in results if r.status not in ("ok", "skipped")]
    missing = set(apps) - {r.package for r in results}
    notes += [f"--app {a}: the collector did not report it" for a in sorted(missing)]
    return notes


def _parse_run_report(stdout: bytes) -> tuple[str, int]:
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith("dmaprof-run "):
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            return fields.get("how", "shell"), int(fields.get("rc", "0") or 0)
    return "shell", -1


def _remove_workdir(device: Device, workdir: str, how: str = "shell") -> None:
    # Files the collector wrote as root sit in a directory owned by shell: shell can unlink
    # them. `su` is tried second in case a vendor su made something shell cannot remove.
    quoted = shlex.quote(workdir)
    command = f"rm -rf {quoted} 2>/dev/null; [ ! -e {quoted} ]"
    if how.startswith("su"):
        command += f" || su -c 'rm -rf {quoted}' || su 0 rm -rf {quoted}"
    result = device.shell(command)
    if result.returncode != 0:
        raise DeviceCommandError(f"device {device.serial}: could not remove {workdir}")


def _cleanup_after_failure(device: Device, workdir: str) -> str:
    try:
        _remove_workdir(device, workdir, "su")
    except (DmaprofError, KeyboardInterrupt):
        log.debug("cleanup of %s failed", workdir, exc_info=True)
        return f"{workdir} may be left on the device (remove it with `adb shell rm -rf {workdir}`)"
    return f"removed {workdir} from the device"


def finish_direct_snapshot(
    output: CollectorOutput,
    *,
    transport: dict[str, object],
    started: float,
    wallclock_host: float,
) -> SnapshotResult:
    """A capture from a collector run without adb (`--local`, `--ssh`)."""
    if output.returncode != 0:
        detail = last_line(output.stderr) or f"exit status {output.returncode}"
        raise DeviceCommandError(
            f"{transport.get('label')}: the collector failed ({detail}); no capture written"
        )
    elapsed = time.monotonic() - started
    meta = capture_meta(
        output.dump,
        transport=dict(transport),
        host_wallclock=wallclock_host,
        host_elapsed_s=elapsed,
        collector_rc=output.returncode,
    )
    method = "root" if meta["collection"].get("uid") == 0 else "user"
    return SnapshotResult(Capture(meta, output.dump, output.stderr), method, elapsed)
