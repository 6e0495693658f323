"""docs/tables.md is generated from the schemas and must stay in sync."""

from __future__ import annotations

from dmaprof.analyze.schema import SCHEMAS, tables_markdown
from tests.analyze.conftest import ROOT


def test_tables_md_is_up_to_date() -> None:
    current = (ROOT / "docs" / "tables.md").read_text(encoding="utf-8")
    assert current == tables_markdown(), (
        "docs/tables.md is stale: regenerate it with\n"
        "  python -c 'from dmaprof.analyze.schema import tables_markdown; "
        'open("docs/tables.md", "w").write(tables_markdown())\''
    )


def test_every_column_is_documented() -> None:
    for schema in SCHEMAS.values():
        assert schema.doc
        for col in schema.columns:
            assert col.doc and col.unit, (schema.name, col.name)


def test_attribution_md_names_the_definitions() -> None:
    text = (ROOT / "docs" / "attribution.md").read_text(encoding="utf-8")
    for needle in (
        "size // n",
        "size % n",
        "ascending pid",
        "kernel_only_bytes",
        "client",
        "isolated",
        "99000",
        "dmabuf_dump",
        "surfaceflinger",
    ):
        assert needle in text, needle
