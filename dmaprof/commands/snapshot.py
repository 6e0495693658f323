"""`dmaprof snapshot`: one device (adb, this machine, ssh) or several into capture files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dmaprof.commands.common import EPILOG, app_state
from dmaprof.commands.options import root_option, timeout_option
from dmaprof.errors import DmaprofError, ExitCode
from dmaprof.files import refuse_to_overwrite
from dmaprof.timing import stage

if TYPE_CHECKING:
    from dmaprof.capture.container import Capture
    from dmaprof.choices import RootMode
    from dmaprof.collect.snapshot import SnapshotResult
    from dmaprof.render.console import AppState


def _default_capture_name(serial: str) -> Path:
    from dmaprof.collect.multi import capture_name

    return Path(capture_name(serial, time.time()))


@click.command(epilog=EPILOG)
@click.option(
    "-s",
    "--serial",
    "serials",
    multiple=True,
    envvar="ANDROID_SERIAL",
    show_envvar=True,
    help="Device serial, as in `adb -s` (default: the only connected device). Repeat it "
    "to snapshot several devices at once.",
)
@click.option(
    "--all", "all_devices", is_flag=True, help="Snapshot every connected device, concurrently."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Capture file to write (default: SERIAL-YYYYmmdd-HHMMSS.dmaprof).",
)
@root_option()
@click.option("--force", is_flag=True, help="Overwrite an existing capture file.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the capture's path.")
@click.option("--local", is_flag=True, help="Collect on this machine instead (no adb).")
@click.option(
    "--ssh",
    "ssh_target",
    metavar="[USER@]HOST[:PORT]",
    help="Collect on a Linux machine over ssh instead (one connection, nothing left there).",
)
@click.option(
    "--ssh-option",
    "ssh_options",
    multiple=True,
    metavar="OPTION",
    help="Extra `ssh -o OPTION` (repeatable), e.g. IdentityFile=~/.ssh/board.",
)
@click.option("--sudo", is_flag=True, help="With --local/--ssh: run the collector with sudo -n.")
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="PACKAGE",
    help="Without root: also read this debuggable app's own processes through run-as "
    "(repeatable). See docs/user-build.md.",
)
@timeout_option
def snapshot(
    serials: tuple[str, ...],
    all_devices: bool,
    output: Path | None,
    root_mode: RootMode,
    force: bool,
    quiet: bool,
    local: bool,
    ssh_target: str | None,
    ssh_options: tuple[str, ...],
    sudo: bool,
    apps: tuple[str, ...],
    timeout: float,
) -> None:
    """Snapshot a device's DMA-BUF state into a capture file.

    Pushes the collector into a private directory under /data/local/tmp, runs it once,
    pulls its dump and removes the directory, then prints the attribution view.

    Without root (a user build) it still records what the shell user can read, labelled as
    such: system totals from dumpsys meminfo, graphic buffers from SurfaceFlinger, and with
    --app the exact figures of a debuggable app.
    """
    from dmaprof.capture.container import write_capture

    state = app_state()
    _check_targets(serials, all_devices, local, ssh_target, sudo, apps)
    if all_devices or len(serials) > 1:
        _multi_snapshot(state, serials, all_devices, output, root_mode, timeout, force)
        return
    if local or ssh_target:
        result, name = _direct_snapshot(
            local, ssh_target, ssh_options, sudo, timeout, output, force
        )
        target = output or _default_capture_name(name)
    else:
        result, target = _adb_snapshot(serials, output, root_mode, timeout, force, apps, state)
    with stage("write the capture"):
        write_capture(result.capture, target, overwrite=force)
    for note in result.notes:
        state.note(f"warning: {note}")
    if quiet:
        click.echo(str(target))
        return
    _print_default_view(state, result.capture)
    state.note(
        f"wrote {target} ({len(result.capture.dump):,} bytes of dump, "
        f"{result.elapsed_s:.1f} s, collected as {result.root_method})"
    )


def _check_targets(
    serials: tuple[str, ...],
    all_devices: bool,
    local: bool,
    ssh_target: str | None,
    sudo: bool,
    apps: tuple[str, ...],
) -> None:
    """Usage errors of the target options (which go together, which do not)."""
    several = all_devices or len(serials) > 1
    if local and ssh_target:
        raise click.UsageError("use --local or --ssh, not both")
    if sudo and not (local or ssh_target):
        raise click.UsageError("--sudo goes with --local or --ssh (on adb, use --root)")
    if apps and (local or ssh_target or several):
        raise click.UsageError("--app goes with one adb device")
    if several and (local or ssh_target):
        raise click.UsageError("--all and several -s go with adb devices only")


def _adb_snapshot(
    serials: tuple[str, ...],
    output: Path | None,
    root_mode: RootMode,
    timeout: float,
    force: bool,
    apps: tuple[str, ...],
    state: AppState,
) -> tuple[SnapshotResult, Path]:
    from dmaprof.collect.adb import AdbServer, ServerAddress
    from dmaprof.collect.snapshot import take_snapshot

    with stage("find the device"):
        server = AdbServer(ServerAddress.from_env())
        device = server.select(serials[0] if serials else None)
    device.timeout = timeout
    target = output or _default_capture_name(device.serial)
    refuse_to_overwrite(target, force)
    result = take_snapshot(device, root_mode=root_mode, progress=state.progress, apps=apps)
    return result, target


def _multi_snapshot(
    state: AppState,
    serials: tuple[str, ...],
    all_devices: bool,
    output: Path | None,
    root_mode: RootMode,
    timeout: float,
    force: bool,
) -> None:
    """Several devices at once: one capture each, in DIR; one failure does not stop the rest."""
    from dmaprof.collect.adb import AdbServer, ServerAddress
    from dmaprof.collect.multi import snapshot_devices
    from dmaprof.render.multi import render_multi

    directory = output or Path()
    if directory.exists() and not directory.is_dir():
        raise click.UsageError(f"with several devices, -o names a directory: {directory}")
    server = AdbServer(ServerAddress.from_env())
    with stage("snapshot the devices"):
        outcomes = snapshot_devices(
            server,
            list(serials) if serials and not all_devices else None,
            directory,
            root_mode=root_mode,
            timeout=timeout,
            overwrite=force,
            progress=state.note,
        )
    render_multi(outcomes, state.out)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise DmaprofError(
            f"{len(failed)} of {len(outcomes)} devices failed: "
            + "; ".join(f"{o.serial}: {o.error}" for o in failed),
            exit_code=ExitCode.PARTIAL,
        )


def _direct_snapshot(
    local: bool,
    ssh_target: str | None,
    ssh_options: tuple[str, ...],
    sudo: bool,
    timeout: float,
    output: Path | None,
    force: bool,
) -> tuple[SnapshotResult, str]:
    import socket

    from dmaprof.collect import collector_script
    from dmaprof.collect.direct import SshTarget, run_local, run_ssh
    from dmaprof.collect.snapshot import finish_direct_snapshot

    if output is not None:
        refuse_to_overwrite(output, force)
    started, wallclock = time.monotonic(), time.time()
    if ssh_target:
        target = SshTarget.parse(ssh_target)
        with stage(f"run the collector over ssh on {target.label}"):
            collected = run_ssh(
                target, collector_script(), sudo=sudo, options=ssh_options, timeout=timeout
            )
        transport: dict[str, object] = {
            "kind": "ssh",
            "label": f"ssh {target.label}",
            "serial": target.label,
        }
        name = target.label
    else:
        with stage("run the collector on this machine"):
            collected = run_local(collector_script(), sudo=sudo, timeout=timeout)
        name = socket.gethostname() or "localhost"
        transport = {"kind": "local", "label": "this machine", "serial": name}
    transport["sudo"] = sudo
    result = finish_direct_snapshot(
        collected, transport=transport, started=started, wallclock_host=wallclock
    )
    return result, name


def _print_default_view(state: AppState, capture: Capture) -> None:
    from dmaprof.render.report import render_default_table
    from dmaprof.sources.show import analyze_capture

    _analysis, report = analyze_capture(capture)
    for warning in report.get("warnings") or []:
        state.note(f"warning: {warning}")
    with stage("render the report as table"):
        render_default_table({**report, "warnings": []}, 15, state.out)
