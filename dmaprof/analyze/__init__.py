"""Pure analysis: from a collector dump to pandas tables, attribution and reports.

Never imports adbutils or click. Public entry points::

    analyze(dump, *, charge="shared", service_regex=None) -> Analysis
    build_report(analysis, device, capture) -> Report  # dmaprof show --format json (docs/json.md)
    format_dmabuf_dump(analysis) -> str             # dmaprof show --format dmabuf_dump
"""

from dmaprof.analyze.analysis import Analysis, Coverage, Totals, analyze
from dmaprof.analyze.attribution import (
    CHARGE_POLICIES,
    DEFAULT_SERVICE_PATTERNS,
    DEFAULT_SERVICE_REGEX,
    exact_split,
)
from dmaprof.analyze.report import REPORT_SCHEMA, build_report, format_dmabuf_dump
from dmaprof.analyze.schema import SCHEMAS, Schema, tables_markdown

__all__ = [
    "CHARGE_POLICIES",
    "DEFAULT_SERVICE_PATTERNS",
    "DEFAULT_SERVICE_REGEX",
    "REPORT_SCHEMA",
    "SCHEMAS",
    "Analysis",
    "Coverage",
    "Schema",
    "Totals",
    "analyze",
    "build_report",
    "exact_split",
    "format_dmabuf_dump",
    "tables_markdown",
]
