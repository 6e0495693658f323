"""BPF dmabuf iterator (``/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf``, 6.16+ / Android
16) -> inventory rows (source ``bpf``).

Android's ``dmabufIter.c`` prints 4 lines per buffer: inode, size (bytes), name (newlines
replaced by spaces; **an empty line when unnamed**), exporter. Records are therefore counted
in lines, never split on blank lines. When the line count is not a multiple of 4 or a record
does not start with two numbers, the parser resynchronises on the next (number, number) pair
and reports what it skipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import Scan, decode, nullable
from dmaprof.analyze.globalfiles import BPF_ITER, GlobalFiles
from dmaprof.analyze.unparsed import Unparsed


def _empty() -> pd.DataFrame:
    z = np.zeros(0, np.int64)
    return pd.DataFrame(
        {
            "inode": z,
            "size_bytes": nullable(z, np.zeros(0, np.bool_)),
            "exporter": pd.array([], dtype="str"),
            "name": pd.array([], dtype="str"),
        }
    )


def parse_bpf(files: GlobalFiles, scan: Scan, unparsed: Unparsed) -> tuple[pd.DataFrame, bool]:
    """Inventory rows of the BPF iterator and whether the iterator was read."""
    r = files.ranges.get(BPF_ITER)
    if r is None:
        return _empty(), files.state(BPF_ITER) == "empty"
    b, e = r
    n = b.size
    ino, ino_ok = scan.span_is_dec(b, e)
    fast = n % 4 == 0 and bool(ino_ok[0::4].all())
    if fast:
        size, size_ok = scan.span_is_dec(b[1::4], e[1::4])
        fast = bool(size_ok.all())
    if fast:
        rec_ino = ino[0::4]
        rec_size = size
        name_b, name_e = b[2::4], e[2::4]
        exp_b, exp_e = b[3::4], e[3::4]
    else:
        size_all, size_all_ok = scan.span_is_dec(b, e)
        starts: list[int] = []
        i = 0
        ok_i = ino_ok.tolist()
        ok_s = size_all_ok.tolist()
        while i < n:
            if i + 3 < n and ok_i[i] and ok_s[i + 1]:
                starts.append(i)
                i += 4
            else:
                unparsed.add(
                    "global",
                    BPF_ITER,
                    i + 1,
                    scan.buf[b[i] : e[i]],
                    "BPF iterator line out of the 4-line record layout",
                )
                i += 1
        st = np.array(starts, dtype=np.int64)
        rec_ino = ino[st]
        rec_size = size_all[st + 1] if st.size else np.zeros(0, np.int64)
        name_b, name_e = b[st + 2], e[st + 2]
        exp_b, exp_e = b[st + 3], e[st + 3]
    names = [decode(x) or None for x in scan.slices(name_b, name_e)]
    exps = [decode(x) or None for x in scan.slices(exp_b, exp_e)]
    frame = pd.DataFrame(
        {
            "inode": rec_ino.astype(np.int64),
            "size_bytes": nullable(rec_size, np.zeros(rec_size.size, np.bool_)),
            "exporter": pd.array(exps, dtype="str"),
            "name": pd.array(names, dtype="str"),
        }
    )
    return frame, True
