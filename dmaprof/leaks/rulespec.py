"""Reading budget rules for `dmaprof diff --fail-on RULE --warn-on RULE --budgets FILE.toml`.

A rule is ``SELECTOR OP LIMIT[,min=SIZE]`` (docs/ci.md has the reference)::

    total>10MiB                    all DMA-BUF memory grew by more than 10 MiB
    total>10%,min=2MiB             ... by more than 10 %, and by at least 2 MiB
    buffers>100                    the number of buffers grew by more than 100
    kernel_only>0                  buffers held by no process grew at all
    process:surfaceflinger>5MiB    the processes named surfaceflinger (rss, summed)
    process.pss:com.example.*>2MiB pss (charged) of every matching process name
    app:*>20MiB                    any one app (by uid; matched on package, label or uid)
    cgroup:/uid_10201*>8MiB        a cgroup subtree (with its descendants)
    exporter:system>0              an exporter grew at all
    name.buffers:screenshot>=3     at least 3 more buffers named screenshot

SELECTOR is ``KIND[.METRIC][:PATTERN]``. Kinds without a pattern: ``total``, ``buffers``,
``userspace``, ``kernel_only``; kinds with one (a shell-style glob, case-sensitive):
``process``, ``app``, ``cgroup``, ``exporter``, ``name``. Metrics: ``bytes`` (default; the rss
of processes, apps and cgroups), ``rss``, ``pss`` (charged under ``--charge``) and
``buffers`` (a count). OP is ``>`` or ``>=``. LIMIT is a size (``0``, ``512KiB``, ``10MiB``;
binary units), a count for the ``buffers`` metric, or a percentage of the BEFORE value.
``min=`` sets the floor a relative rule needs besides its percentage.

Rules are checked against a diff by :mod:`dmaprof.leaks.rules`.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dmaprof.errors import DmaprofError
from dmaprof.leaks.quantities import QuantityError, parse_size
from dmaprof.units import human_bytes

Level = Literal["fail", "warn"]


# kind -> (metrics it has, whether it takes a pattern)
KINDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "total": (("bytes", "buffers"), False),
    "buffers": (("buffers",), False),
    "userspace": (("bytes", "buffers"), False),
    "kernel_only": (("bytes", "buffers"), False),
    "process": (("rss", "pss", "buffers"), True),
    "app": (("rss", "pss", "buffers"), True),
    "cgroup": (("rss", "pss"), True),
    "exporter": (("bytes", "buffers"), True),
    "name": (("bytes", "buffers"), True),
}


_RULE = re.compile(
    r"^\s*(?P<sel>[^<>=]+?)\s*(?P<op>>=|>)\s*(?P<val>[^,]+?)\s*"
    r"(?:,\s*(?P<opts>.*?))?\s*$"
)


_SELECTOR = re.compile(r"^(?P<kind>[a-z_]+)(?:\.(?P<metric>[a-z_]+))?(?::(?P<pattern>.+))?$")


class RuleError(DmaprofError):
    """A rule or a budget file that cannot be read (exit 1; a bad --fail-on is exit 2)."""


def _size(value: str | int, where: str) -> int:
    try:
        return parse_size(value, what=where)
    except QuantityError as exc:
        raise RuleError(exc.message) from None


@dataclass(frozen=True)
class Selector:
    kind: str
    metric: str  # bytes | rss | pss | buffers
    pattern: str | None

    @property
    def text(self) -> str:
        kind = "total" if self.kind == "buffers" else self.kind
        default = KINDS[kind][0][0]
        metric = f".{self.metric}" if self.metric != default else ""
        if self.kind == "buffers":
            return "buffers"
        return f"{kind}{metric}" + (f":{self.pattern}" if self.pattern is not None else "")

    @property
    def is_count(self) -> bool:
        return self.metric == "buffers"

    @property
    def is_glob(self) -> bool:
        return self.pattern is not None and any(ch in self.pattern for ch in "*?[")


@dataclass(frozen=True)
class Threshold:
    value: float
    relative: bool = False
    inclusive: bool = False  # >= rather than >

    def exceeded(self, delta: int, pct: float | None) -> bool:
        observed = pct if self.relative else float(delta)
        if observed is None:
            return False
        return observed >= self.value if self.inclusive else observed > self.value

    def describe(self, count: bool) -> str:
        op = ">=" if self.inclusive else ">"
        if self.relative:
            return f"{op} {self.value:g}%"
        return f"{op} {int(self.value)}" if count else f"{op} {human_bytes(int(self.value))}"


@dataclass(frozen=True)
class Check:
    """One rule (a testcase in JUnit): a selector with a fail and/or a warn limit."""

    name: str
    selector: Selector
    fail: Threshold | None = None
    warn: Threshold | None = None
    min_delta: int | None = None  # floor for relative limits (bytes, or buffers for counts)
    source: str = "--fail-on"


def parse_selector(text: str, *, where: str = "rule") -> Selector:
    match = _SELECTOR.match(text.strip())
    if not match:
        raise RuleError(
            f"{where}: cannot read the selector {text.strip()!r} (examples: total, "
            "buffers, process:surfaceflinger, app.pss:*, exporter:system)"
        )
    kind, metric, pattern = match.group("kind"), match.group("metric"), match.group("pattern")
    if kind not in KINDS:
        raise RuleError(f"{where}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    metrics, takes_pattern = KINDS[kind]
    if metric is None or (metric == "bytes" and "bytes" not in metrics):
        metric = metrics[0]
    if metric not in metrics:
        raise RuleError(f"{where}: {kind} has no metric {metric!r} (one of {', '.join(metrics)})")
    if takes_pattern and not pattern:
        raise RuleError(f"{where}: {kind} needs a pattern, e.g. {kind}:NAME or {kind}:*")
    if not takes_pattern and pattern is not None:
        raise RuleError(f"{where}: {kind} takes no pattern (got {kind}:{pattern})")
    return Selector(kind, metric, pattern)


def parse_limit(text: str | int, selector: Selector, *, where: str = "rule") -> Threshold:
    if isinstance(text, bool):
        raise RuleError(f"{where}: a limit must be a size, a count or a percentage")
    if isinstance(text, int):
        return Threshold(float(text))
    value = text.strip()
    if value.endswith("%"):
        try:
            pct = float(value[:-1])
        except ValueError:
            raise RuleError(f"{where}: cannot read the percentage {value!r}") from None
        if not math.isfinite(pct) or pct < 0:
            raise RuleError(f"{where}: a percentage must be 0 or more, got {value!r}")
        return Threshold(pct, relative=True)
    if selector.is_count:
        if not re.fullmatch(r"\d+", value):
            raise RuleError(
                f"{where}: {selector.text} counts buffers: the limit must be a whole "
                f"number or a percentage, got {value!r}"
            )
        return Threshold(float(int(value)))
    size = _size(value, where)
    if size < 0:
        raise RuleError(f"{where}: a limit is a growth: 0 or more, got {value!r}")
    return Threshold(float(size))


def parse_rule(
    text: str, level: Level = "fail", *, source: str = "--fail-on", default_min: int | None = None
) -> Check:
    """``total>10MiB`` -> a Check with a ``fail`` (or ``warn``) limit."""
    where = f"{source} {text!r}"
    match = _RULE.match(text)
    if not match:
        if ">" not in text:
            raise RuleError(
                f"{where}: no limit: write SELECTOR>LIMIT (e.g. total>10MiB); quote the rule in "
                "the shell, --fail-on 'total>10MiB', since an unquoted > redirects output"
            )
        raise RuleError(f"{where}: cannot read the rule (write SELECTOR>LIMIT, e.g. total>10MiB)")
    selector = parse_selector(match.group("sel"), where=where)
    limit = parse_limit(match.group("val"), selector, where=where)
    limit = Threshold(limit.value, limit.relative, match.group("op") == ">=")
    floor = default_min if limit.relative else None
    for option in filter(None, (o.strip() for o in (match.group("opts") or "").split(","))):
        key, sep, value = option.partition("=")
        if key.strip() != "min" or not sep:
            raise RuleError(f"{where}: unknown option {option!r} (only min=SIZE)")
        floor = _floor(value.strip(), selector, where)
        if not limit.relative:
            raise RuleError(f"{where}: min= only applies to a relative (%) limit")
    return Check(
        name=re.sub(r"\s+", "", text),
        selector=selector,
        fail=limit if level == "fail" else None,
        warn=limit if level == "warn" else None,
        min_delta=floor,
        source=source,
    )


def _floor(value: str | int, selector: Selector, where: str) -> int:
    if selector.is_count:
        if isinstance(value, int) or re.fullmatch(r"\d+", str(value)):
            return int(value)
        raise RuleError(f"{where}: min= of a buffer count must be a whole number")
    return _size(value, where)


_TOP_KEYS = {"min", "fail_on", "warn_on", "budget"}


_BUDGET_KEYS = {"select", "name", "warn", "fail", "min", "inclusive"}


def load_budgets(path: Path) -> list[Check]:
    """Read a budgets file (TOML, documented in docs/ci.md)."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise RuleError(f"{path}: no such budgets file") from None
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise RuleError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))} (known: "
            f"{', '.join(sorted(_TOP_KEYS))})"
        )
    default_min: int | None = None
    if "min" in data:
        default_min = _size(data["min"], f"{path}: min")
    checks: list[Check] = []
    levels: tuple[Level, ...] = ("fail", "warn")
    for level in levels:
        rules = data.get(f"{level}_on", [])
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise RuleError(f"{path}: {level}_on must be a list of rules (strings)")
        checks += [
            parse_rule(r, level, source=f"{path} {level}_on", default_min=default_min)
            for r in rules
        ]
    budgets = data.get("budget", [])
    if not isinstance(budgets, list):
        raise RuleError(f"{path}: budget must be an array of tables ([[budget]])")
    for index, entry in enumerate(budgets, start=1):
        checks.append(_budget(entry, f"{path} [[budget]] #{index}", default_min))
    return checks


def _budget(entry: Any, where: str, default_min: int | None) -> Check:
    if not isinstance(entry, dict):
        raise RuleError(f"{where}: must be a table")
    unknown = set(entry) - _BUDGET_KEYS
    if unknown:
        raise RuleError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: "
            f"{', '.join(sorted(_BUDGET_KEYS))})"
        )
    if not isinstance(entry.get("select"), str):
        raise RuleError(f'{where}: needs select = "SELECTOR" (e.g. select = "total")')
    selector = parse_selector(entry["select"], where=where)
    if "fail" not in entry and "warn" not in entry:
        raise RuleError(f"{where}: needs a fail or a warn limit")
    inclusive = bool(entry.get("inclusive", False))
    limits: dict[str, Threshold | None] = {}
    for level in ("fail", "warn"):
        if level in entry:
            raw = entry[level]
            if not isinstance(raw, str | int) or isinstance(raw, bool):
                raise RuleError(f"{where}: {level} must be a size, a count or a percentage")
            t = parse_limit(raw, selector, where=f"{where} {level}")
            limits[level] = Threshold(t.value, t.relative, inclusive)
        else:
            limits[level] = None
    relative = any(t is not None and t.relative for t in limits.values())
    floor = default_min if relative else None
    if "min" in entry:
        if not relative:
            raise RuleError(f"{where}: min only applies to a relative (%) limit")
        floor = _floor(entry["min"], selector, where)
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        raise RuleError(f"{where}: name must be a string")
    return Check(
        name=name or selector.text,
        selector=selector,
        fail=limits["fail"],
        warn=limits["warn"],
        min_delta=floor,
        source=where,
    )
