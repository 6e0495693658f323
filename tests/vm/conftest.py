"""The VM tests import their helpers (vm_truth, vm_dump) from this directory."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
