"""The command line's one home (docs/architecture.md): every command a module of
``dmaprof/commands`` registered from one list; shared options declared once, whose choices
are the library's own constants (defined once in ``dmaprof/choices.py``);
one renderer registry per document; the exit-code help generated from :class:`ExitCode`;
a fast ``--help``; and ``-v`` stage timings on stderr."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import click
import pytest

from dmaprof.cli import cli
from dmaprof.commands import COMMANDS
from dmaprof.errors import EXIT_CODE_MEANINGS, ExitCode
from dmaprof.render import formats

REPO = Path(__file__).resolve().parent.parent
COMMANDS_DIR = REPO / "dmaprof" / "commands"
CAPTURES = REPO / "fixtures" / "captures"


def _option(command: str, name: str) -> click.Option:
    [option] = [
        p for p in cli.commands[command].params if isinstance(p, click.Option) and name in p.opts
    ]
    return option


def _choices(command: str, name: str) -> list[str]:
    kind = _option(command, name).type
    assert isinstance(kind, click.Choice)
    return list(kind.choices)


def test_every_command_is_registered_from_the_list_and_has_its_own_module() -> None:
    assert sorted(cli.commands) == sorted(c.name for c in COMMANDS if c.name)
    modules = {c.callback.__module__ for c in COMMANDS if c.callback}
    assert len(modules) == len(COMMANDS)  # one module each
    for command in COMMANDS:
        assert command.callback is not None
        module = command.callback.__module__
        assert module.startswith("dmaprof.commands."), module
        assert module.rsplit(".", 1)[1].rstrip("_") == command.name


def test_shared_options_take_their_choices_from_the_library() -> None:
    from dmaprof.analyze.attribution import CHARGE_POLICIES
    from dmaprof.choices import TREND_KINDS
    from dmaprof.collect.snapshot import RootMode
    from dmaprof.leaks.rules import ON_UNKNOWN
    from dmaprof.leaks.trend import KIND_ORDER
    from dmaprof.render import diff, report
    from dmaprof.sources.importer import IMPORT_KINDS

    for command in ("show", "diff", "top", "export"):
        assert _choices(command, "--charge") == list(CHARGE_POLICIES), command
    for command in ("snapshot", "record", "top"):
        assert _choices(command, "--root") == list(get_args(RootMode)), command
    assert _choices("diff", "--on-unknown") == list(ON_UNKNOWN)
    assert sorted(_choices("show", "--by")) == sorted(report.VIEWS)
    assert _choices("diff", "--by") == list(diff.VIEWS)
    assert _choices("trend", "--by") == list(TREND_KINDS)
    assert set(TREND_KINDS) == set(KIND_ORDER)  # the kinds the trend emits
    assert _choices("import", "--kind") == list(IMPORT_KINDS)


def test_the_library_acts_on_the_same_constants() -> None:
    from dmaprof import choices
    from dmaprof.analyze.attribution import CHARGE_POLICIES
    from dmaprof.collect.snapshot import RootMode
    from dmaprof.leaks.rules import ON_UNKNOWN
    from dmaprof.leaks.trend import KIND_ORDER
    from dmaprof.render import diff, report
    from dmaprof.sources.importer import IMPORT_KINDS

    assert CHARGE_POLICIES is choices.CHARGE_POLICIES
    assert ON_UNKNOWN is choices.ON_UNKNOWN and set(KIND_ORDER) == set(choices.TREND_KINDS)
    assert IMPORT_KINDS is choices.IMPORT_KINDS
    assert get_args(RootMode) == choices.ROOT_MODES
    assert sorted(report.VIEWS) == sorted(choices.SHOW_VIEWS)
    assert tuple(diff.VIEWS) == choices.DIFF_VIEWS


def test_format_choices_are_the_registries() -> None:
    from dmaprof.render.export import EXPORT_FORMATS

    assert _choices("show", "--format") == formats.SHOW.names
    assert _choices("diff", "--format") == formats.DIFF.names
    assert _choices("trend", "--format") == formats.TREND.names
    assert _choices("devices", "--format") == formats.DEVICES.names
    # the dataset formats, then the Perfetto trace (one file of one series)
    export = [*EXPORT_FORMATS, "perfetto"]
    assert _choices("export", "--format") == formats.EXPORT.names == export
    # what the commands always offered, in the order --help lists them
    assert formats.SHOW.names == ["table", "json", "csv", "markdown", "dmabuf_dump", "html"]
    assert formats.DIFF.names == formats.TREND.names == ["table", "json", "csv", "markdown", "html"]


@pytest.mark.parametrize(
    ("output", "chosen"),
    [
        (None, "table"),
        ("x.json", "json"),
        ("x.CSV", "csv"),
        ("x.md", "markdown"),
        ("x.txt", "table"),
        ("x.unknown", "table"),
    ],
)
def test_the_output_suffix_picks_the_format(output: str | None, chosen: str) -> None:
    for registry in (formats.SHOW, formats.DIFF, formats.TREND):
        assert registry.choose(None, Path(output) if output else None) == chosen
    assert formats.SHOW.choose("dmabuf_dump", Path("x.json")) == "dmabuf_dump"  # --format wins


def test_exit_code_help_is_generated_from_the_enum() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dmaprof", "--help"], capture_output=True, check=True
    )
    text = result.stdout.decode()
    lines = text[text.index("Exit codes:") :].splitlines()[1:]
    listed = [tuple(line.split(maxsplit=1)) for line in lines if line.strip()]
    assert listed == [(str(code.value), EXIT_CODE_MEANINGS[code]) for code in ExitCode]
    # and README's table has the same codes
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Exit codes") :].split("\n\n")[1]
    codes = [int(m) for m in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    assert codes == [code.value for code in ExitCode]


def test_help_imports_nothing_heavy() -> None:
    """`dmaprof --help` (and a command's option parsing set-up) loads no pandas, numpy or
    adbutils: the command line is built from light modules only."""
    probe = (
        "import sys, io, contextlib\n"
        "from dmaprof.cli import main\n"
        "try:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'numpy', 'adbutils', 'plotly', 'pyarrow')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert result.stdout.decode().strip() == "[]"


def _long_functions(path: Path, limit: int) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_the_cli_layer_has_small_modules_and_functions() -> None:
    paths = [*COMMANDS_DIR.glob("*.py"), REPO / "dmaprof" / "cli.py"]
    paths.append(REPO / "dmaprof" / "render" / "formats.py")
    assert [p.name for p in paths if len(p.read_text().splitlines()) > 600] == []
    assert [f for p in paths for f in _long_functions(p, 100)] == []


def _stage_lines(stderr: str) -> dict[str, int]:
    """``dmaprof: NAME: N ms`` lines -> {NAME: N}."""
    found: dict[str, int] = {}
    for line in stderr.splitlines():
        match = re.fullmatch(r"dmaprof: (.+): (\d+) ms", line)
        if match:
            found[match[1]] = int(match[2])
    return found


def test_verbose_show_logs_load_analyse_and_render_on_stderr(tmp_path: Path) -> None:
    capture = CAPTURES / "pixel-like.dmaprof"
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, "-m", "dmaprof", "-v", "show", str(capture), "-o", str(out)],
        capture_output=True,
        env={**os.environ, "COLUMNS": "300"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""  # the report went to its file; stdout stays data only
    stages = _stage_lines(result.stderr.decode())
    assert "load the captures (and import the analysis)" in stages, stages
    assert f"analyse {capture} (39,330 bytes of dump)" in stages, stages
    assert "render the report as markdown" in stages, stages
    assert "dmaprof show, in all" in stages, stages
    # the whole command took at least as long as its stages
    total = stages.pop("dmaprof show, in all")
    assert total >= max(stages.values())
    assert out.read_text().startswith("#")
