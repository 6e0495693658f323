"""The budget rule syntax, budget files and their evaluation against a diff."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from dmaprof.leaks.diff import diff_sides
from dmaprof.leaks.quantities import QuantityError, format_duration, parse_duration, parse_size
from dmaprof.leaks.rules import (
    RuleError,
    Selector,
    Threshold,
    evaluate,
    load_budgets,
    parse_rule,
)
from dmaprof.leaks.side import side_from_capture
from tests.leaks import phonescene as P
from tests.leaks.conftest import REPO, Captures, capture_of

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("4096", 4096),
        ("512KiB", 524288),
        ("512k", 524288),
        ("10MiB", 10 * MiB),
        ("10 MB", 10 * MiB),
        ("1.5GiB", 3 * 512 * MiB),
        ("2T", 2 * 1024**4),
        (123, 123),
    ],
)
def test_sizes(text: str | int, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["10 parsecs", "MiB", "", "1e3MiB", True])
def test_bad_sizes(text: Any) -> None:
    with pytest.raises(QuantityError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("250ms", 0.25),
        ("10m", 600.0),
        ("1.5h", 5400.0),
        ("3", 3.0),
        (2, 2.0),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0s", "-1s", "5 fortnights", "inf"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.25, 5, 600, 630, 5400)] == [
        "250ms",
        "5s",
        "10m",
        "10m30s",
        "1h30m",
    ]


@pytest.mark.parametrize(
    ("text", "selector", "limit", "floor"),
    [
        ("total>10MiB", Selector("total", "bytes", None), Threshold(10 * MiB), None),
        (
            "total >= 10MiB",
            Selector("total", "bytes", None),
            Threshold(10 * MiB, inclusive=True),
            None,
        ),
        ("total>10%", Selector("total", "bytes", None), Threshold(10.0, relative=True), None),
        (
            "total>10%,min=2MiB",
            Selector("total", "bytes", None),
            Threshold(10.0, relative=True),
            2 * MiB,
        ),
        ("buffers>100", Selector("buffers", "buffers", None), Threshold(100), None),
        ("total.buffers>100", Selector("total", "buffers", None), Threshold(100), None),
        ("kernel_only>0", Selector("kernel_only", "bytes", None), Threshold(0), None),
        (
            "process:surfaceflinger>5MiB",
            Selector("process", "rss", "surfaceflinger"),
            Threshold(5 * MiB),
            None,
        ),
        (
            "process.pss:com.example.camera:remote>1MiB",
            Selector("process", "pss", "com.example.camera:remote"),
            Threshold(MiB),
            None,
        ),
        ("process.bytes:x>1", Selector("process", "rss", "x"), Threshold(1), None),
        ("app:*>20MiB", Selector("app", "rss", "*"), Threshold(20 * MiB), None),
        (
            "app.buffers:10201>=3",
            Selector("app", "buffers", "10201"),
            Threshold(3, inclusive=True),
            None,
        ),
        (
            "cgroup:/uid_10201*>8MiB",
            Selector("cgroup", "rss", "/uid_10201*"),
            Threshold(8 * MiB),
            None,
        ),
        ("exporter:system>0", Selector("exporter", "bytes", "system"), Threshold(0), None),
        (
            "name.buffers:screenshot>2",
            Selector("name", "buffers", "screenshot"),
            Threshold(2),
            None,
        ),
    ],
)
def test_rule_syntax(text: str, selector: Selector, limit: Threshold, floor: int | None) -> None:
    check = parse_rule(text)
    assert (check.selector, check.fail, check.warn, check.min_delta) == (
        selector,
        limit,
        None,
        floor,
    )
    assert check.name == text.replace(" ", "")
    assert parse_rule(text, "warn").warn == limit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("total", "quote the rule in the shell"),
        ("total 10MiB", "quote the rule in the shell"),
        ("memory>1MiB", "unknown kind 'memory'"),
        ("process>1MiB", "process needs a pattern"),
        ("total:foo>1MiB", "total takes no pattern"),
        ("cgroup.buffers:/x>1", "cgroup has no metric 'buffers'"),
        ("buffers>1MiB", "the limit must be a whole number"),
        ("total>ten", "cannot read 'ten' as a size"),
        ("total>10MiB,min=1MiB", "min= only applies to a relative"),
        ("total>10%,max=1", "unknown option 'max=1'"),
        ("total>-5%", "a percentage must be 0 or more"),
        ("total>-5MiB", "a limit is a growth"),
    ],
)
def test_bad_rules(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=None) as info:
        parse_rule(text)
    assert message in info.value.message


def test_budget_file(tmp_path: Path) -> None:
    checks = load_budgets(REPO / "fixtures" / "budgets" / "ci.toml")
    assert [(c.name, c.selector.text, c.fail, c.warn, c.min_delta) for c in checks] == [
        ("buffers>100", "buffers", Threshold(100), None, None),
        ("kernel_only>0", "kernel_only", None, Threshold(0), None),
        ("total", "total", Threshold(10 * MiB), Threshold(5 * MiB), None),
        ("total (relative)", "total", Threshold(10.0, relative=True), None, MiB),
        (
            "process:surfaceflinger",
            "process:surfaceflinger",
            Threshold(5 * MiB),
            Threshold(2 * MiB),
            None,
        ),
        ("app:*", "app:*", Threshold(20 * MiB), None, None),
        ("exporter:system", "exporter:system", Threshold(0), None, None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fail = 3", "unknown key(s) fail"),
        ("[[budget]]\nfail = '1MiB'", 'needs select = "SELECTOR"'),
        ("[[budget]]\nselect = 'total'", "needs a fail or a warn limit"),
        ("[[budget]]\nselect = 'total'\nfail = '1MiB'\nmin = '1MiB'", "min only applies"),
        ("[[budget]]\nselect = 'total'\nfial = '1MiB'", "unknown key(s) fial"),
        ("[[budget]]\nselect = 'total'\nfail = true", "fail must be a size"),
        ("fail_on = 'total>1'", "fail_on must be a list"),
        ("fail_on = ['total']", "no limit"),
        ("budget = 3", "array of tables"),
        ("[[budget]\n", "not valid TOML"),
    ],
)
def test_bad_budget_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.toml"
    path.write_text(text)
    with pytest.raises(RuleError) as info:
        load_budgets(path)
    assert message in info.value.message
    assert str(path) in info.value.message


def test_missing_budget_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such budgets file"):
        load_budgets(tmp_path / "nope.toml")


# --------------------------------------------------------------------------- evaluation


def grow(scene: dict[str, Any]) -> None:
    """camera +4 MiB in 4 buffers, its :remote process +1 MiB, screencap gone."""
    P.leak(scene, 3100, 4, MiB, "SurfaceView", first_inode=22)
    P.leak(scene, 3160, 1, MiB, "SurfaceView", first_inode=26)
    P.free_buffer(scene, 18)


def results(captures: Captures, *rules: str, warn: tuple[str, ...] = ()) -> list[Any]:
    pair = captures.pair("grow", grow)
    d = diff_sides(
        side_from_capture(capture_of(pair.before)), side_from_capture(capture_of(pair.after))
    )
    checks = [parse_rule(r) for r in rules] + [parse_rule(r, "warn") for r in warn]
    return evaluate(checks, d).results


def test_absolute_relative_and_floor(captures: Captures) -> None:
    # total: 76726272 -> 76726272 + 5 MiB - 10371072: -5128192 bytes (it shrank)
    r = results(
        captures,
        "total>0",
        "app:*>4MiB",
        "app:*>5MiB",
        "app.buffers:*>=5",
        "process:com.example.camera*>=4MiB",
        "exporter:system>10%",
        "exporter:system>5%",
        "name:SurfaceView>10%,min=6MiB",
        "name:SurfaceView>10%,min=5MiB",
    )
    assert [x.status for x in r] == [
        "pass",
        "fail",
        "pass",
        "fail",
        "fail",
        "pass",
        "pass",
        "pass",
        "fail",
    ]
    assert r[0].message == "total changed by -4.9 MiB; limit > 0 B"
    assert r[1].message == "app:*: com.example.camera +5.0 MiB; fail limit > 4.0 MiB"
    assert [(o.key, o.delta) for o in r[1].breaches] == [("com.example.camera", 5 * MiB)]
    assert r[3].message == "app.buffers:*: com.example.camera +5 buffers; fail limit >= 5"
    # process rules sum per name; both camera processes match the glob, one breaches
    assert [(o.key, o.delta) for o in r[4].observations] == [
        ("com.example.camera", 4 * MiB),
        ("com.example.camera:remote", MiB),
    ]
    assert r[4].message == (
        "process:com.example.camera*: com.example.camera +4.0 MiB; fail limit >= 4.0 MiB"
    )
    # relative with a floor: SurfaceView is new (an infinite %) and grew by 5 MiB
    assert r[7].observations[0].pct == math.inf
    assert r[8].message == (
        "name:SurfaceView grew by +5.0 MiB (new); fail limit > 10% and at least +5.0 MiB"
    )


def test_skip_and_warn(captures: Captures) -> None:
    r = results(
        captures, "process:nosuch>0", "process:no*>0", warn=("process:screencap>0", "kernel_only>0")
    )
    assert [(x.status, x.message) for x in r] == [
        ("skip", "process:nosuch: no process matches 'nosuch' in either capture"),
        ("pass", "process:no*: no process matches 'no*' in either capture"),
        ("pass", "process:screencap changed by -9.9 MiB; limit > 0 B"),
        ("pass", "kernel_only grew by +0 B; limit > 0 B"),
    ]
