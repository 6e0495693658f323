"""The capture layer: the capture file (container), the collector's dump format, and the
metadata derived from a dump. Imports only the base modules."""
