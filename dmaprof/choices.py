"""The closed sets of choices the library and the CLI share, in one import-light module.

Each is defined here once and imported by the module that acts on it and by the click
options (``dmaprof.commands.options``), so ``--help`` never has to import pandas to list
them. The views' render functions live in ``dmaprof.render``; their names are fixed here.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "CHARGE_POLICIES",
    "DIFF_VIEWS",
    "IMPORT_KINDS",
    "ON_UNKNOWN",
    "ROOT_MODES",
    "SHOW_VIEWS",
    "TREND_KINDS",
    "ChargePolicy",
    "OnUnknown",
    "RootMode",
]

ChargePolicy = Literal["shared", "full", "client"]
#: How a buffer held by several processes is charged (docs/tables.md "charge policies").
CHARGE_POLICIES: tuple[ChargePolicy, ...] = ("shared", "full", "client")

RootMode = Literal["auto", "never", "require"]
#: Whether a snapshot uses root (adbd root or `su`).
ROOT_MODES: tuple[RootMode, ...] = ("auto", "never", "require")

OnUnknown = Literal["error", "warn", "pass"]
#: What a budget check does when its figure is unknown on either side.
ON_UNKNOWN: tuple[OnUnknown, ...] = ("error", "warn", "pass")

#: `dmaprof show --by`, in the order `show --help` has always listed them.
SHOW_VIEWS = ("process", "app", "cgroup", "exporter", "name", "buffer", "device", "binder")
#: `dmaprof diff --by`.
DIFF_VIEWS = ("process", "app", "cgroup", "exporter", "name", "buffer")
#: The quantities `dmaprof trend` follows.
TREND_KINDS = ("total", "kernel_only", "process", "app", "exporter", "name")
#: The inputs `dmaprof import --kind` knows.
IMPORT_KINDS = ("auto", "collector", "bugreport", "dmabuf_dump")
