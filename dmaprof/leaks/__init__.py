"""Finding leaks: compare captures (`diff`), gate CI on budgets, record series (`record`),
estimate growth over time (`trend`) and watch a device live (`top`).

Layout, one module per concept:

* ``quantities``: parsing ``10MiB``, ``5s``, ``10%`` (command line and budget files);
* ``side``: the part of one analysed capture a comparison needs (``Side``);
* ``diff``: the diff engine (``diff_sides``) and its ``dmaprof.diff/2`` JSON;
* ``suspects``: ranked leak suspects, each with its reason in words;
* ``rules``: the budget rule syntax, budget files (TOML) and their evaluation;
* ``ci``: JUnit XML, the GitHub step summary and workflow-command annotations;
* ``series``: ``dmaprof record``'s sampling loop and the series directory;
* ``trend``: time series per process/app/exporter/name, Theil–Sen growth rates and the
  Mann–Kendall confidence of a monotonic trend;
* ``plot``: a self-contained HTML page with inline SVG charts (PNG with matplotlib);
* ``live``: ``dmaprof top``.

Nothing here imports click; ``live`` and ``series`` are the only modules that talk to a
device (through ``dmaprof.collect.snapshot``).
"""
