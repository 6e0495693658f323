"""The result table of `snapshot --all`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dmaprof.records import Outcome
from dmaprof.units import safe_text


def render_multi(outcomes: list[Outcome], out: Console) -> None:
    table = Table(title="Snapshots", title_justify="left")
    table.add_column("serial")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    for outcome in outcomes:
        result = str(outcome.path) if outcome.path else f"failed: {outcome.error}"
        table.add_row(
            Text(safe_text(outcome.serial)), Text(safe_text(result)), f"{outcome.elapsed_s:.1f}"
        )
    out.print(table)
