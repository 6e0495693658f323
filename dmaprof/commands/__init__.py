"""Command modules registered on the `dmaprof` group (dmaprof.cli)."""
