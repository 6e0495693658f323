"""Print the package's import graph between layers (docs/architecture.md).

    python scripts/import_graph.py            # layer -> layer, with how many module imports
    python scripts/import_graph.py --modules  # every module -> module import, by layer

It reads the same imports as tests/test_layers.py (module level and inside functions).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_layers import graph, layer_of

ORDER = ["commands", "render", "collect", "leaks", "sources", "analyze", "capture", "base"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="list module imports too")
    args = parser.parse_args()
    edges = graph()
    between: Counter[tuple[str, str]] = Counter()
    for module, targets in edges.items():
        for target in targets:
            if layer_of(module) != layer_of(target):
                between[layer_of(module), layer_of(target)] += 1
    members = Counter(layer_of(module) for module in edges)
    for layer in ORDER:
        below = [f"{t} ({between[layer, t]})" for t in ORDER if between[layer, t]]
        print(f"{layer:9} {members[layer]:3} modules -> {', '.join(below) or '-'}")
    if args.modules:
        for module in sorted(edges, key=lambda m: (ORDER.index(layer_of(m)), m)):
            print(f"{module} -> {', '.join(sorted(edges[module])) or '-'}")


if __name__ == "__main__":
    main()
