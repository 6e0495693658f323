"""What a pair of captures collected differently can compare: the sentences of a diff on
its unknown figures (``unknown_reasons``) and on what is compared exactly (``comparability``)."""

from __future__ import annotations

from dmaprof.leaks.diffresult import DiffResult
from dmaprof.leaks.processdiff import unknown_rows
from dmaprof.leaks.side import Coverage


def _unknown_processes(d: DiffResult) -> int:
    return int(unknown_rows(d.processes).sum()) if len(d.processes) else 0


def unknown_reasons(d: DiffResult) -> list[str]:
    """Why figures are unknown (null, ``?``): one sentence per cause and side."""
    out: list[str] = []
    for word, c in (("BEFORE", d.coverage_before), ("AFTER", d.coverage_after)):
        if not c.holders_complete:
            out.append(
                f"{word} was collected {c.describe}: their figures, the apps and cgroups they "
                "belong to, pss shared with them, and the kernel-only and held-by-process "
                "totals are unknown there"
                + ("" if c.inventory else ", and so are the buffer totals (no inventory)")
            )
        if (
            c.holders_complete
            and not c.inventory
            and (d.coverage_before.inventory or d.coverage_after.inventory)
        ):
            out.append(
                f"{word} read no buffer inventory (BPF, sysfs or debugfs): its buffer "
                "totals and per-exporter and per-name figures count held buffers only, "
                "so they are unknown against the other side's"
            )
        if not c.cgroups:
            out.append(f"{word} ({c.source}) records no cgroups: cgroup figures are unknown")
        if not c.uids:
            out.append(f"{word} ({c.source}) records no uids: app figures are unknown")
    if d.unknown:
        out.append(f"{', '.join(d.unknown)}: a side's source cannot tell them (docs/sources.md)")
    return out


def comparability(d: DiffResult) -> str | None:
    """One line on what a pair collected differently can compare, or None when both sides
    saw everything the same way."""
    cb, ca = d.coverage_before, d.coverage_after
    if (
        (cb.mode, cb.source) == (ca.mode, ca.source)
        and cb.holders_complete
        and (ca.holders_complete)
        and not d.unknown
    ):
        return None
    exact, unknown = [], []
    if cb.inventory and ca.inventory:
        exact.append("the buffer totals and each exporter's buffers and bytes")
    if not (cb.names_listed and ca.names_listed):
        unknown.append("per-name figures (names come from the fdinfo of unreadable holders)")
    n_unknown = _unknown_processes(d)
    readable = len(d.processes) - n_unknown
    if d.same_boot:
        exact.append(f"{_count(readable, 'process')} seen on both sides (rss, buffers)")
    if not (cb.holders_complete and ca.holders_complete):
        unknown.append("kernel-only and held-by-process figures")
        unknown.append(
            f"{_count(n_unknown, 'process')} unreadable on a side, with their apps "
            "and cgroups, and pss shared with them"
        )
    if d.unknown:
        unknown.append(", ".join(d.unknown))
    if not (cb.cgroups and ca.cgroups):
        unknown.append("cgroups")
    if not (cb.uids and ca.uids):
        unknown.append("apps")
    text = f"BEFORE was {_how(cb)} and AFTER {_how(ca)}: compared exactly: {'; '.join(exact)}"
    if unknown:
        text += f"; unknown (null, ?): {'; '.join(unknown)}"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def _how(c: Coverage) -> str:
    return f"imported from a {c.source}" if c.source != "collector" else f"collected {c.describe}"
