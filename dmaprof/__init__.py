"""dmaprof: who holds the DMA-BUF memory on this device, and what is leaking."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dmaprof")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
