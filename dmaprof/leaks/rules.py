"""Budget rules checked against a diff (`dmaprof diff --fail-on RULE --warn-on RULE
--budgets FILE.toml`); :mod:`dmaprof.leaks.rulespec` reads them (docs/ci.md has the
reference).

A glob rule is checked against every matching entity (each process name, app, cgroup,
exporter or buffer name) and breached when any one of them is over the limit. Processes
are matched by name, summed over their pids, so a restarted process is compared with itself.

A rule whose figure a side could not see (kernel-only bytes as the shell user, an unreadable
process: docs/coverage.md) is neither passed nor breached: its status is ``unknown``, with
the reason. A glob rule is breached when a known figure is over the limit, and unknown when
none is over but some matching figure is unknown. What an unknown rule does to the exit code
is the caller's choice (``diff --on-unknown``).
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from dmaprof.choices import ON_UNKNOWN, OnUnknown
from dmaprof.leaks.rulespec import (
    KINDS,
    Check,
    Level,
    RuleError,
    Selector,
    Threshold,
    load_budgets,
    parse_limit,
    parse_rule,
    parse_selector,
)
from dmaprof.units import human_bytes, safe_text

if TYPE_CHECKING:
    from dmaprof.leaks.diffresult import DiffResult

__all__ = [
    "KINDS",
    "ON_UNKNOWN",
    "BudgetReport",
    "Check",
    "CheckResult",
    "Level",
    "Observation",
    "OnUnknown",
    "RuleError",
    "Selector",
    "Status",
    "Threshold",
    "evaluate",
    "evaluate_check",
    "load_budgets",
    "observe",
    "parse_limit",
    "parse_rule",
    "parse_selector",
    "why_unknown",
]

Status = Literal["pass", "warn", "fail", "skip", "unknown"]
#: what an unknown rule does to the verdict: exit 12, a warning (exit 0), or nothing


_NOUN = {
    "process": "process",
    "app": "app",
    "cgroup": "cgroup",
    "exporter": "exporter",
    "name": "buffer name",
}


@dataclass(frozen=True)
class Observation:
    key: str
    before: int | None  # None: that side could not see the figure
    after: int | None

    @property
    def known(self) -> bool:
        return self.before is not None and self.after is not None

    @property
    def delta(self) -> int:
        """The growth; only for a known observation (see ``known``)."""
        assert self.before is not None and self.after is not None
        return self.after - self.before

    @property
    def pct(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        if self.before == 0:
            return 0.0 if self.after == 0 else (math.inf if self.after > 0 else -math.inf)
        return 100.0 * self.delta / self.before


@dataclass
class CheckResult:
    check: Check
    status: Status
    message: str
    observations: list[Observation] = field(default_factory=list)  # biggest growth first
    breaches: list[Observation] = field(default_factory=list)  # at the level of `status`

    @property
    def worst(self) -> Observation | None:
        known = [o for o in self.observations if o.known]
        return self.breaches[0] if self.breaches else (known[0] if known else None)

    @property
    def unknown(self) -> list[Observation]:
        return [o for o in self.observations if not o.known]


@dataclass
class BudgetReport:
    results: list[CheckResult]
    on_unknown: OnUnknown = "error"

    @property
    def status(self) -> Status:
        """fail > unknown (with --on-unknown error) > warn (or unknown as warn) > pass."""
        states = {r.status for r in self.results}
        if "fail" in states:
            return "fail"
        if "unknown" in states and self.on_unknown == "error":
            return "unknown"
        if "warn" in states or ("unknown" in states and self.on_unknown == "warn"):
            return "warn"
        return "pass"

    @property
    def unknown(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "unknown"]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def warned(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "warn"]

    def verdict(self) -> str:
        n = len(self.results)
        unknown = len(self.unknown)
        cannot = f"; {unknown} could not be judged (unknown)" if unknown else ""
        if self.status == "fail":
            return f"budget breached: {len(self.failed)} of {n} rules failed{cannot}"
        if self.status == "unknown":
            return f"budget unknown: {unknown} of {n} rules could not be judged"
        if self.status == "warn":
            over = f"{len(self.warned)} of {n} rules over warn" if self.warned else ""
            return "within budget, with warnings: " + "; ".join(
                x for x in (over, cannot.removeprefix("; ")) if x
            )
        if unknown:
            return f"within budget: {n - unknown} of {n} rules passed{cannot}"
        return f"within budget: {n} rules passed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "verdict": self.verdict(),
            "on_unknown": self.on_unknown,
            "unknown": len(self.unknown),
            "checks": [_result_dict(r) for r in self.results],
        }


def _result_dict(r: CheckResult) -> dict[str, Any]:
    c = r.check
    worst = r.worst

    def obs(o: Observation) -> dict[str, Any]:
        pct = o.pct
        return {
            "key": o.key,
            "before": o.before,
            "after": o.after,
            "delta": o.delta if o.known else None,
            "delta_pct": None if pct is None or not math.isfinite(pct) else round(pct, 3),
        }

    return {
        "name": c.name,
        "select": c.selector.text,
        "metric": c.selector.metric,
        "source": c.source,
        "status": r.status,
        "message": r.message,
        "fail": _limit_dict(c.fail, c.selector),
        "warn": _limit_dict(c.warn, c.selector),
        "min": c.min_delta,
        "worst": obs(worst) if worst else None,
        "breaches": [obs(o) for o in r.breaches],
        "matched": len(r.observations),
        "unknown": [obs(o) for o in r.unknown[:50]],
    }


def _limit_dict(t: Threshold | None, s: Selector) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "value": t.value if t.relative else int(t.value),
        "unit": "percent" if t.relative else ("buffers" if s.is_count else "bytes"),
        "inclusive": t.inclusive,
    }


_TOTALS = {
    ("total", "bytes"): "bytes", ("total", "buffers"): "buffers",
    ("buffers", "buffers"): "buffers", ("userspace", "bytes"): "userspace_bytes",
    ("userspace", "buffers"): "userspace_buffers", ("kernel_only", "bytes"): "kernel_only_bytes",
    ("kernel_only", "buffers"): "kernel_only_buffers",
}  # fmt: skip


_COLUMN = {"rss": "rss_bytes", "pss": "pss_bytes", "buffers": "buffers", "bytes": "bytes"}


def _figures(column: pd.Series) -> list[int | None]:
    """A column's values as ints, None where unknown (``<NA>``)."""
    from dmaprof.leaks.diffresult import nullable_values

    return [None if v is None else int(v) for v in nullable_values(column)]


def why_unknown(d: DiffResult) -> str:
    """Which side could not see what, in a few words (the message of an unknown rule)."""
    parts = []
    for word, c in (("BEFORE", d.coverage_before), ("AFTER", d.coverage_after)):
        if not c.holders_complete:
            parts.append(f"{word} was collected {c.describe}")
        elif c.source != "collector":
            parts.append(f"{word} is a {c.source}")
    return "; ".join(parts) or "a side's source cannot tell it"


def _match(values: pd.Series, pattern: str) -> np.ndarray:
    regex = re.compile(fnmatch.translate(pattern))
    text = values.astype(object).where(values.notna(), "").astype(str)
    return text.map(lambda v: regex.match(v) is not None).to_numpy(dtype=bool)


def observe(check: Check, d: DiffResult) -> tuple[list[Observation], str | None]:
    """Entities the selector matches, with their BEFORE/AFTER figures; or why none can be
    observed (e.g. no global inventory for kernel_only)."""
    s = check.selector
    if (s.kind, s.metric) in _TOTALS:
        key = _TOTALS[s.kind, s.metric]
        b, a = d.totals.get(f"{key}_before"), d.totals.get(f"{key}_after")
        return [
            Observation(s.kind, None if b is None else int(b), None if a is None else int(a))
        ], None
    assert s.pattern is not None
    column = _COLUMN[s.metric]
    if s.kind == "process":
        from dmaprof.leaks.frames import known_sum

        x = d.processes
        mask = _match(x["name"], s.pattern) | _match(x["comm"], s.pattern)
        sub = x[mask]
        grouped = known_sum(sub, "name", [f"{column}_before", f"{column}_after"]).sort_index()
        keys = grouped.index.astype(str).tolist()
        before = _figures(grouped[f"{column}_before"])
        after = _figures(grouped[f"{column}_after"])
    elif s.kind == "app":
        x = d.apps
        packages = x["packages"].map(lambda ps: " ".join(ps) if isinstance(ps, tuple) else "")
        mask = (
            _match(x["label"], s.pattern)
            | _match(x["uid"].astype(str), s.pattern)
            | np.array(
                [
                    any(fnmatch.fnmatchcase(p, s.pattern) for p in ps.split())
                    for ps in packages.tolist()
                ],
                dtype=bool,
            )
        )
        sub = x[mask]
        labels = sub["label"].astype(object).where(sub["label"].astype(object) != "", None)
        keys = [
            lbl if lbl else f"uid {uid}"
            for lbl, uid in zip(labels.tolist(), sub["uid"].tolist(), strict=True)
        ]
        before = _figures(sub[f"{column}_before"])
        after = _figures(sub[f"{column}_after"])
    elif s.kind == "cgroup":
        x = d.cgroups
        sub = x[_match(x["path"], s.pattern)]
        col = f"{column}_with_descendants"
        keys = sub["path"].astype(str).tolist()
        before = _figures(sub[f"{col}_before"])
        after = _figures(sub[f"{col}_after"])
    else:
        x = d.exporters if s.kind == "exporter" else d.names
        sub = x[_match(x["key"], s.pattern)]
        keys = sub["key"].astype(str).tolist()
        before = _figures(sub[f"{column}_before"])
        after = _figures(sub[f"{column}_after"])
    obs = [Observation(k, b, a) for k, b, a in zip(keys, before, after, strict=True)]
    obs.sort(key=lambda o: (not o.known, -o.delta if o.known else 0, o.key))
    if not obs:
        return [], f"no {_NOUN[s.kind]} matches {s.pattern!r} in either capture"
    return obs, None


def _over(o: Observation, t: Threshold, floor: int | None) -> bool:
    if not t.exceeded(o.delta, o.pct):
        return False
    return not (t.relative and floor is not None and o.delta < floor)


def _amount(value: int, count: bool) -> str:
    if count:
        return f"{value:+d} buffers"
    return ("+" if value >= 0 else "") + human_bytes(value)


def _describe(o: Observation, s: Selector, t: Threshold | None) -> str:
    amount = _amount(o.delta, s.is_count)
    pct = o.pct
    if t is not None and t.relative and pct is not None:
        amount = f"{amount} (new)" if math.isinf(pct) else f"{pct:+.1f}% ({amount})"
    return amount


def evaluate_check(check: Check, d: DiffResult) -> CheckResult:
    obs, why = observe(check, d)
    s = check.selector
    label = s.text
    if why is not None:
        status: Status = "pass" if s.is_glob else "skip"
        return CheckResult(check, status, f"{label}: {why}")
    known = [o for o in obs if o.known]
    unknown = [o for o in obs if not o.known]
    levels: tuple[Level, ...] = ("fail", "warn")
    for level in levels:
        limit = check.fail if level == "fail" else check.warn
        if limit is None:
            continue
        if level == "warn" and unknown:
            break  # a known breach of the fail limit is all an unknown figure allows
        over = [o for o in known if _over(o, limit, check.min_delta)]
        if over:
            floor = ""
            if limit.relative and check.min_delta is not None:
                floor = f" and at least {_amount(check.min_delta, s.is_count)}"
            shown = "; ".join(f"{safe_text(o.key)} {_describe(o, s, limit)}" for o in over[:5])
            more = f" (+{len(over) - 5} more)" if len(over) > 5 else ""
            if s.pattern is None or (len(over) == 1 and not s.is_glob):
                text = f"{label} grew by {_describe(over[0], s, limit)}"
            else:
                text = f"{label}: {shown}{more}"
            message = f"{text}; {level} limit {limit.describe(s.is_count)}{floor}"
            return CheckResult(check, level, message, obs, over)
    if unknown:
        keys = ", ".join(safe_text(o.key) for o in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        what = (
            f"{keys}{more} could not be measured on both sides"
            if s.pattern
            else ("not measured on both sides")
        )
        return CheckResult(
            check,
            "unknown",
            (f"{label}: unknown: {what} ({why_unknown(d)}); neither passed nor breached"),
            obs,
        )
    worst = obs[0]
    limit = check.fail or check.warn
    growth = _describe(worst, s, limit)
    who = f" (largest: {safe_text(worst.key)})" if s.is_glob and len(obs) > 1 else ""
    shown_limit = limit.describe(s.is_count) if limit else ""
    verb = "grew by" if worst.delta >= 0 else "changed by"
    return CheckResult(check, "pass", f"{label} {verb} {growth}{who}; limit {shown_limit}", obs)


def evaluate(checks: list[Check], d: DiffResult, on_unknown: OnUnknown = "error") -> BudgetReport:
    return BudgetReport([evaluate_check(c, d) for c in checks], on_unknown)
