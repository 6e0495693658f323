"""The `dmaprof` command line: a thin click layer over the library.

Errors are mapped to one line on stderr and a documented exit code in exactly one place,
`main()`. Heavy modules (pandas, adbutils, rich tables) are imported inside the commands that
need them, so `dmaprof --help` stays fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from dmaprof import __version__
from dmaprof.commands.common import (
    CONTEXT_SETTINGS,
    EPILOG,
    INPUT_PATH,
    app_state,
    check_input,
    load_captures,
    output_format,
    output_stream,
    timeout_option,
)
from dmaprof.errors import DmaprofError, ExitCode
from dmaprof.render.console import AppState


@click.group(context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="dmaprof")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="More logs on stderr (-vv for debug).")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="No colours in output.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, no_color: bool) -> None:
    """Who holds the DMA-BUF memory on this device, and what is leaking?

    dmaprof snapshots a device over adb (or reads a dump you collected by hand), attributes
    every DMA-BUF to the processes, apps, cgroups and exporters that hold it, and finds leaks
    between captures.
    """
    ctx.obj = AppState.create(no_color=no_color, debug=debug, verbose=verbose)


# --------------------------------------------------------------------------- devices


@cli.command(epilog=EPILOG)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def devices(fmt: str) -> None:
    """List connected devices and what dmaprof can read on each.

    One shell round trip per device: model, Android release and API level, kernel, whether
    root is available (adbd root or su), and which DMA-BUF sources are readable.
    """
    from dmaprof.collect.adb import AdbServer, ServerAddress
    from dmaprof.collect.probe import probe_devices
    from dmaprof.render.devices import render_devices_json, render_devices_table

    state = app_state()
    server = AdbServer(ServerAddress.from_env())
    reports = probe_devices(server)
    if fmt == "json":
        render_devices_json(reports, sys.stdout)
    else:
        render_devices_table(reports, state.out)


# --------------------------------------------------------------------------- collector


@cli.command(epilog=EPILOG)
def collector() -> None:
    """Print the collector script.

    Run it by hand on any Linux device (ssh, serial console) and import its output:

    \b
      dmaprof collector > collect.sh
      sh collect.sh > dump          # on the device, as root for the full picture
      dmaprof import dump -o device.dmaprof
    """
    from dmaprof.collect import collector_script

    sys.stdout.buffer.write(collector_script())
    sys.stdout.buffer.flush()


# --------------------------------------------------------------------------- snapshot


def _default_capture_name(serial: str) -> Path:
    from dmaprof.collect.multi import capture_name

    return Path(capture_name(serial, time.time()))


@cli.command(epilog=EPILOG)
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
@click.option(
    "--root",
    "root_mode",
    type=click.Choice(["auto", "never", "require"]),
    default="auto",
    show_default=True,
    help="auto: use root when adbd is root or `su` works; never: stay the shell user; "
    "require: fail without root.",
)
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
    root_mode: str,
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
    from dmaprof.collect.adb import AdbServer, ServerAddress
    from dmaprof.collect.snapshot import take_snapshot

    state = app_state()
    if local and ssh_target:
        raise click.UsageError("use --local or --ssh, not both")
    if sudo and not (local or ssh_target):
        raise click.UsageError("--sudo goes with --local or --ssh (on adb, use --root)")
    if apps and (local or ssh_target or all_devices or len(serials) > 1):
        raise click.UsageError("--app goes with one adb device")
    if all_devices or len(serials) > 1:
        if local or ssh_target:
            raise click.UsageError("--all and several -s go with adb devices only")
        _multi_snapshot(state, serials, all_devices, output, root_mode, timeout, force)
        return
    serial = serials[0] if serials else None
    if local or ssh_target:
        result, name = _direct_snapshot(
            local, ssh_target, ssh_options, sudo, timeout, output, force
        )
        target = output or _default_capture_name(name)
    else:
        server = AdbServer(ServerAddress.from_env())
        device = server.select(serial)
        device.timeout = timeout
        target = output or _default_capture_name(device.serial)
        if target.exists() and not force:
            raise DmaprofError(f"{target} exists; will not overwrite it without --force")
        result = take_snapshot(
            device,
            root_mode=root_mode,  # type: ignore[arg-type]
            progress=state.progress,
            apps=apps,
        )
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


def _multi_snapshot(
    state: AppState,
    serials: tuple[str, ...],
    all_devices: bool,
    output: Path | None,
    root_mode: str,
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
) -> tuple[Any, str]:
    import socket

    from dmaprof.collect import collector_script
    from dmaprof.collect.direct import SshTarget, run_local, run_ssh
    from dmaprof.collect.snapshot import finish_direct_snapshot

    if output is not None and output.exists() and not force:
        raise DmaprofError(f"{output} exists; will not overwrite it without --force")
    started, wallclock = time.monotonic(), time.time()
    if ssh_target:
        target = SshTarget.parse(ssh_target)
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
        collected = run_local(collector_script(), sudo=sudo, timeout=timeout)
        name = socket.gethostname() or "localhost"
        transport = {"kind": "local", "label": "this machine", "serial": name}
    transport["sudo"] = sudo
    result = finish_direct_snapshot(
        collected, transport=transport, started=started, wallclock_host=wallclock
    )
    return result, name


def _print_default_view(state: AppState, capture: Any) -> None:
    from dmaprof.render.report import render_default_table
    from dmaprof.sources.show import analyze_capture

    _analysis, report = analyze_capture(capture)
    _note_warnings(state, report.get("warnings"))
    render_default_table({**report, "warnings": []}, 15, state.out)


def _note_warnings(state: AppState, warnings: Any) -> None:
    for warning in warnings or []:
        state.note(f"warning: {warning}")


# --------------------------------------------------------------------------- show

FORMATS = ["table", "json", "csv", "markdown", "dmabuf_dump", "html"]


@cli.command(epilog=EPILOG)
@click.argument("capture_path", metavar="CAPTURE", type=INPUT_PATH)
@click.option(
    "--by",
    type=click.Choice(
        ["process", "app", "cgroup", "exporter", "name", "buffer", "device", "binder"]
    ),
    help="One view instead of the default overview.",
)
@click.option(
    "--top", type=click.IntRange(min=1), help="Rows per table (default 15; all in csv/json)."
)
@click.option(
    "--charge",
    type=click.Choice(["shared", "full", "client"]),
    default="shared",
    show_default=True,
    help="shared: pss (size split among holders); full: rss (whole size to every holder); "
    "client: buffers shared by an app and graphics/media services are charged to the app.",
)
@click.option(
    "--service",
    "service_regex",
    metavar="REGEX",
    help="With --charge client: processes (name or cmdline) that count as services.",
)
@click.option("--pid", type=int, help="Only this process and the buffers it holds.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format (default: table, or from the -o extension).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
def show(
    capture_path: Path,
    by: str | None,
    top: int | None,
    charge: str,
    service_regex: str | None,
    pid: int | None,
    fmt: str | None,
    output: Path | None,
) -> None:
    """Attribute every DMA-BUF of a capture to processes, apps, cgroups and exporters.

    The default view: the device, what could be read, totals (all buffers, held by
    processes, kernel-only, heap pools), the top holders and the exporters. Figures that
    unreadable processes could change are marked as lower bounds. JSON and CSV carry raw
    integer bytes; JSON always holds the whole report (schema dmaprof.report/1).
    """
    state = app_state()
    fmt = output_format(fmt, output)
    [capture] = load_captures([capture_path], "dmaprof.sources.show")
    from dmaprof.sources.show import analyze_capture, only_pid

    analysis, report = analyze_capture(capture, charge=charge, service_regex=service_regex)
    if pid is not None:
        report = only_pid(report, pid)
    with output_stream(output) as stream:
        _render_report(report, analysis, fmt, by, top, stream, state)


def _render_report(
    report: dict[str, Any],
    analysis: Any,
    fmt: str,
    by: str | None,
    top: int | None,
    stream: Any,
    state: AppState,
) -> None:
    from dmaprof.render import report as render

    if fmt == "json":
        render.render_json(report, stream)
    elif fmt == "html":
        from dmaprof.render.html import show_html

        stream.write(show_html(report))
    elif fmt == "csv":
        render.render_csv(report, by or "process", top, stream)
        if by == "device" and not report.get("attached_devices"):
            state.note((report.get("attached_devices_summary") or {}).get("note") or "")
    elif fmt == "markdown":
        render.render_markdown(report, by, top or 15, stream)
    elif fmt == "dmabuf_dump":
        from dmaprof.analyze.report import format_dmabuf_dump

        stream.write(format_dmabuf_dump(analysis))
    else:
        console = state.out if stream is sys.stdout else state.file_console(stream)
        if stream is sys.stdout:  # said once, on stderr; a file keeps them
            _note_warnings(state, report.get("warnings"))
            report = {**report, "warnings": []}
        if by:
            render.render_view_table(report, by, top or 15, console)
        else:
            render.render_default_table(report, top or 15, console)


# --------------------------------------------------------------------------- import


@cli.command("import", epilog=EPILOG)
@click.argument("source", type=INPUT_PATH)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Capture file to write.",
)
@click.option("--serial", "serial", default=None, help="Device name to record in the capture.")
@click.option(
    "--kind",
    type=click.Choice(["auto", "collector", "bugreport", "dmabuf_dump"]),
    default="auto",
    show_default=True,
    help="What SOURCE is (auto: detected from its content).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing capture file.")
def import_(source: Path, output: Path, serial: str | None, kind: str, force: bool) -> None:
    """Turn a collector dump, a bugreport or dmabuf_dump output into a capture.

    SOURCE is a collector dump (`sh collect.sh > dump`), an `adb bugreport` zip (only its
    main text is read, never extracted) or its .txt, or the output of `dmabuf_dump` (default
    view, -a, -b, -o csv). The capture keeps SOURCE's text byte for byte.
    """
    from dmaprof.capture.container import write_capture
    from dmaprof.sources.importer import import_file

    state = app_state()
    check_input(source)
    capture = import_file(source, kind=kind, serial=serial)
    write_capture(capture, output, overwrite=force)
    state.note(f"wrote {output}")


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every dmaprof error to one line on stderr and its exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        returned = cli.main(args=argv, prog_name="dmaprof", standalone_mode=False)
    except DmaprofError as exc:
        if debug:
            raise
        click.echo(f"dmaprof: error: {_one_line(exc.message)}", err=True)
        sys.exit(int(exc.exit_code))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # `dmaprof` alone, or a group without its command: the help, as asked
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"dmaprof: error: {_click_message(exc)}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("dmaprof: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head`): not an error worth a traceback
        sys.stderr.close()
        sys.exit(int(ExitCode.OK))
    sys.exit(returned if isinstance(returned, int) else int(ExitCode.OK))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _click_message(exc: click.ClickException) -> str:
    """A usage error as one line, with where to read more (click prints three)."""
    message = _one_line(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message = message.rstrip(".") + f" (see '{ctx.command_path} --help')"
    return message


from dmaprof.commands.leaks import diff, record, top, trend  # noqa: E402

cli.add_command(diff)
cli.add_command(record)
cli.add_command(top)
cli.add_command(trend)

from dmaprof.commands.export import export  # noqa: E402

cli.add_command(export)
