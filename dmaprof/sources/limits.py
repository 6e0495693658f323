"""What a ``dmabuf_dump`` source cannot tell (its limitations and unknown columns), and the
process blocks whose PROCESS TOTAL stands over their rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.reporttypes import Limitation
from dmaprof.analyze.reporttypes import StatedTotal as StatedTotalJson
from dmaprof.analyze.totals import Totals
from dmaprof.sources.dmabuf_dump import DmabufDump
from dmaprof.sources.sourcetables import COMM_LEN

SPLIT_COLUMNS = ["fds", "maps", "fd_only", "map_only", "both"]
ANON_TOTALS = ["anon_fds", "anon_fd_bytes", "anon_maps", "anon_mapped_bytes"]


def limitation(key: str, view: str, message: str) -> Limitation:
    return {"key": key, "view": view, "message": message}


@dataclass(frozen=True)
class StatedTotal:
    """A process block whose ``PROCESS TOTAL`` is not the sum of its rows."""

    pid: int
    name: str
    rows_rss_kb: int
    total_rss_kb: int
    rows_pss_kb: int
    total_pss_kb: int | None

    def as_dict(self) -> StatedTotalJson:
        return {
            "pid": self.pid,
            "name": self.name,
            "rows_rss_kb": self.rows_rss_kb,
            "total_rss_kb": self.total_rss_kb,
            "rows_pss_kb": self.rows_pss_kb,
            "total_pss_kb": self.total_pss_kb,
        }

    def text(self) -> str:
        pss = (
            f"; Pss rows {self.rows_pss_kb} kB, PROCESS TOTAL {self.total_pss_kb} kB"
            if self.total_pss_kb is not None
            else ""
        )
        return (
            f"{self.name} ({self.pid}): Rss rows {self.rows_rss_kb} kB, "
            f"PROCESS TOTAL {self.total_rss_kb} kB{pss}"
        )


def stated_totals(
    tool: dict[int, tuple[int | None, int | None, int, int]],
    pids: list[int],
    display: list[Any],
    rss: np.ndarray,
    estimated: np.ndarray,
) -> list[StatedTotal]:
    """Blocks whose PROCESS TOTAL Rss differs from the sum of their rows. dmabuf_dump sums the
    buffers' bytes and divides once (``rss / 1024``) but prints each row as ``size / 1024``,
    and an excerpt may cut rows: the stated total is what the tool measured, so it stands.
    Where every row has an exact size (``-b``) that rounds to the stated total, the rows
    explain it and the exact bytes are kept."""
    index = {pid: k for k, pid in enumerate(pids)}
    out: list[StatedTotal] = []
    for pid, (t_rss, t_pss, rows_rss, rows_pss) in sorted(tool.items()):
        if t_rss is None or t_rss == rows_rss or pid not in index:
            continue
        j = index[pid]
        if not estimated[j] and int(rss[j]) // 1024 == t_rss:
            continue
        name = display[j] if isinstance(display[j], str) else "?"
        out.append(StatedTotal(pid, name, rows_rss, t_rss, rows_pss, t_pss))
    return out


def stated_limitation(stated: list[StatedTotal]) -> Limitation:
    return limitation(
        "process_totals",
        "processes",
        "the PROCESS TOTAL stands where a process block's rows do not add up to it "
        "(dmabuf_dump sums bytes before rounding each row down to kB; an excerpt may cut "
        "rows): the process's rss and pss are its stated total in kB x 1024, its buffer rows "
        "are only those listed: " + "; ".join(st.text() for st in stated),
    )


def check_tool_totals(
    tool: dict[int, tuple[int | None, int | None, int, int]],
    usage: pd.DataFrame,
    display: list[Any],
    warnings: list[str],
    partial: bool,
    stated: set[int],
) -> None:
    """Each block's PROCESS TOTAL against its rows: an excerpt (rows cut) or a Pss column of
    another era (mapped-only pss, 2020-2022) shows up here."""
    cut: list[str] = []
    pss_other = 0
    pids = usage["pid"].astype(int).tolist()
    names = dict(zip(pids, display, strict=True))
    nbuf = dict(zip(pids, usage["buffers"].astype(int).tolist(), strict=True))
    pss = dict(zip(pids, usage["shared_pss_bytes"].astype(int).tolist(), strict=True))
    for pid, (t_rss, t_pss, rows_rss, _rows_pss) in sorted(tool.items()):
        name = names.get(pid) or "?"
        nrows = nbuf.get(pid, 0)
        if t_rss is not None and not rows_rss <= t_rss <= rows_rss + nrows:
            cut.append(f"{name}({pid}): rows {rows_rss} kB, PROCESS TOTAL {t_rss} kB")
        elif (
            t_pss is not None
            and pid in pss
            and pid not in stated
            and not partial
            and abs(pss[pid] // 1024 - t_pss) > nrows + 1
        ):
            # exact split vs size // n per buffer: at most 1 kB apart unless another definition
            pss_other += 1
    if cut:
        more = f" and {len(cut) - 3} more" if len(cut) > 3 else ""
        warnings.append(
            "the listing is cut: some processes' rows do not add up to their PROCESS TOTAL ("
            + "; ".join(cut[:3])
            + more
            + "); their rss and pss are the stated totals, the buffer tables hold the rows "
            "shown only"
        )
    if pss_other:
        warnings.append(
            f"for {pss_other} processes dmabuf_dump's Pss column differs from size / holders: "
            "this dmabuf_dump counted pss from mappings only (its 2020-2022 definition); "
            "dmaprof's pss splits each buffer among every holder"
        )


def source_limitations(
    src_kind: str,
    d: DmabufDump,
    split_known: bool,
    holder_view: bool,
    totals: Totals,
    out: list[Limitation],
    procs: pd.DataFrame,
) -> dict[str, list[str]]:
    """Append what the source cannot tell to ``out``; return table -> unknown columns."""
    unknown: dict[str, list[str]] = {
        "processes": ["start_time_ticks", "cgroup", "cmdline"]
        + ([] if procs["argv0"].notna().any() else ["argv0"]),
        "holdings": ["mapped_bytes"],
        "totals": list(ANON_TOTALS),
    }
    what = "this bugreport" if src_kind == "bugreport" else "dmabuf_dump's output"
    _view_limitations(d, what, holder_view, out)
    if not split_known:
        unknown["usage"] = list(SPLIT_COLUMNS)
        unknown["holdings"] += ["fds", "maps"]
        out.append(
            limitation(
                "fd_map_split",
                "processes",
                "fds, maps, fd_only, map_only, both: dmabuf_dump's per-process view lists the "
                "buffers a process holds, not whether by fd or by mapping (only dmabuf_dump -a "
                "tells that)",
            )
        )
    unknown["usage"] = [*unknown.get("usage", []), "cgroup"]
    out.append(
        limitation(
            "cgroups",
            "cgroup",
            f"no cgroups: {what} does not record a process's cgroup",
        )
    )
    if procs["uid"].isna().all():
        unknown["usage"] = [*unknown.get("usage", []), "uid", "owner_uid"]
    _process_limitations(procs, what, out)
    _figure_limitations(d, totals, out)
    return unknown


def _view_limitations(d: DmabufDump, what: str, holder_view: bool, out: list[Limitation]) -> None:
    if not holder_view:
        out.append(
            limitation(
                "no_holders",
                "processes",
                f"{what} has no per-process view (only dmabuf_dump -b): nothing says which "
                "process holds which buffer",
            )
        )
    if d.table is not None and d.table.rows and not d.table.split:
        out.append(
            limitation(
                "legacy_table",
                "processes",
                "this dmabuf_dump -a predates 2021: its cells sum fd and map references and "
                "show only processes with an fd, so a buffer only mapped has no holder here",
            )
        )


def _process_limitations(procs: pd.DataFrame, what: str, out: list[Limitation]) -> None:
    if procs["uid"].isna().all():
        out.append(
            limitation(
                "uids",
                "app",
                f"no uids: {what} has no process list, so processes cannot be rolled up to apps "
                "(a bugreport's `ps` section gives them)",
            )
        )
    elif procs["uid"].isna().any():
        out.append(
            limitation(
                "some_uids",
                "app",
                f"{int(procs['uid'].isna().sum())} processes have no uid in the process list "
                "(gone before ps ran, or a user name dmaprof does not know): left out of apps",
            )
        )
    comms = procs["name"].astype(object).tolist()
    argv0 = procs["argv0"].astype(object).tolist()
    cut_names = [
        n
        for n, a in zip(comms, argv0, strict=True)
        if isinstance(n, str) and len(n) == COMM_LEN and not isinstance(a, str)
    ]
    if cut_names:
        more = ", ..." if len(cut_names) > 3 else ""
        out.append(
            limitation(
                "comm_names",
                "processes",
                f"{len(cut_names)} processes are named by their 15-character comm "
                f"({', '.join(cut_names[:3])}{more}), which may be cut: {what} has no process "
                "list with their full names (a bugreport's CPU INFO `top` NAME column, a `ps` "
                "NAME column or dumpsys meminfo's per-process lines)",
            )
        )
    out.append(
        limitation(
            "start_times",
            "diff",
            "no process start times: diff identifies a process by pid and name only (a reused "
            "pid with the same name looks like the same process)",
        )
    )


def _figure_limitations(d: DmabufDump, totals: Totals, out: list[Limitation]) -> None:
    out.append(
        limitation(
            "anon_references",
            "totals",
            "fds and mappings without per-buffer identity (kernels before 5.3) are invisible to "
            "dmabuf_dump: anon_* totals are unknown",
        )
    )
    if totals.estimated_buffers:
        out.append(
            limitation(
                "sizes_estimated",
                "buffer",
                f"{totals.estimated_buffers} buffers have no exact size (no dmabuf_dump -b line "
                "for them): their size is the listed kB x 1024, up to 1023 bytes low each",
            )
        )
    if totals.kernel_only_buffers is None:
        out.append(
            limitation(
                "kernel_only_list",
                "buffer",
                "kernel-only buffers cannot be listed without dmabuf_dump -b"
                + (
                    " (their total is the summary's kernel_rss, in kB)"
                    if totals.kernel_only_bytes is not None
                    else ", nor their total"
                ),
            )
        )
    if not any(r.exporter for b in d.processes for r in b.rows) and not d.per_buffer:
        out.append(
            limitation(
                "exporters",
                "exporter",
                "no exporters: this dmabuf_dump prints no Exporter column and there is no -b",
            )
        )
