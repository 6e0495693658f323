"""The HTML reports' treemap tiles and embedded data, without a browser: capping the tiles
never loses a byte, and nothing in the data can end its script element."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmaprof.render.htmlpage import Tree, _script_json, page

# leaves of a three-level tree: (root, branch, leaf) -> bytes
LEAVES = st.dictionaries(
    st.tuples(st.integers(0, 30), st.integers(0, 6), st.integers(0, 5)),
    st.integers(1, 2**40),
    min_size=1,
    max_size=400,
)


@given(LEAVES, st.integers(0, 200))
def test_capped_tiles_keep_every_byte(leaves: dict[tuple[int, int, int], int], limit: int) -> None:
    tree = Tree()
    for (r, b, leaf), value in leaves.items():
        tree.add([(f"{r}", f"r{r}"), (f"{r}/{b}", f"b{b}"), (f"{r}/{b}/{leaf}", "x")], value)
    nodes = tree.nodes(limit)
    values = {i: v for i, _, _, v, _, _ in nodes}
    parents = {i: p for i, _, p, _, _, _ in nodes}
    assert len(values) == len(nodes)  # ids are unique
    assert all(p == "" or p in values for p in parents.values())
    assert sum(v for i, v in values.items() if parents[i] == "") == sum(leaves.values())
    children: Counter[str] = Counter()
    for i, p in parents.items():
        if p:
            children[p] += values[i]
    assert all(children[p] == values[p] for p in children)  # every branch its tiles' sum
    drawn = [i for i in values if not i.endswith("~other")]
    if limit:
        assert len(drawn) <= max(limit, 1)
    else:
        assert len(drawn) == len(tree.value)  # no limit: every node, no summed tile


def test_summed_tiles_say_how_many() -> None:
    tree = Tree()
    for leaf, value in enumerate([100, 50, 5, 4, 3]):
        tree.add([("p", "process"), (f"p/{leaf}", f"buffer {leaf}")], value)
    nodes = {i: (label, v) for i, label, _, v, _, _ in tree.nodes(3)}
    assert nodes == {
        "p": ("process", 162),
        "p/0": ("buffer 0", 100),
        "p/1": ("buffer 1", 50),
        "p/~other": ("3 smaller", 12),
    }


def test_data_cannot_end_its_script() -> None:
    text = _script_json({"name": "</script><!-- <script>", "n": [1, None]})
    assert "<" not in text
    assert json.loads(text) == {"name": "</script><!-- <script>", "n": [1, None]}


def test_a_trace_the_bundle_lacks_is_refused() -> None:
    chart = {"type": "chart", "id": "c", "title": "t", "traces": [{"type": "scattergl"}]}
    with pytest.raises(ValueError, match="no 'scattergl' trace"):
        page("t", [], [], [chart])
