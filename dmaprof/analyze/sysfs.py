"""``sysfs_buffers`` section: ``/sys/kernel/dmabuf/buffers/<inode>/{size,exporter_name}``
(``CONFIG_DMABUF_SYSFS_STATS``, 5.13 / ACK 5.10 .. 6.18) -> inventory rows (source ``sysfs``).

The 5.13 ``attachments/<id>/{device,map_counter}`` subtree is counted per buffer
(``attachments``); the short-lived ACK ``mmap_count`` attribute is ignored. A buffer directory
read while the buffer was freed may lack one of its files: its missing values stay null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import Scan, decode, factorize_ranges, nullable, uniq
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import Dump

ROOT = b"/sys/kernel/dmabuf/buffers/"


@dataclass
class SysfsResult:
    frame: pd.DataFrame  # inventory columns: inode, size_bytes, exporter, attachments
    present: bool  # the directory exists (a device without buffers gives present + empty)


def parse_sysfs(dump: Dump, scan: Scan, unparsed: Unparsed) -> SysfsResult:
    sec = dump.section("sysfs_buffers")
    empty = pd.DataFrame(
        {
            "inode": np.zeros(0, np.int64),
            "size_bytes": nullable(np.zeros(0, np.int64), np.zeros(0, np.bool_)),
            "exporter": pd.array([], dtype="str"),
            "attachments": nullable(np.zeros(0, np.int64), np.zeros(0, np.bool_)),
        }
    )
    if sec is None:
        return SysfsResult(empty, False)
    absent = any(
        err.reason == "absent"
        and (err.path or "").rstrip("/") in ("/sys/kernel/dmabuf/buffers", "/sys/kernel/dmabuf")
        for err in dump.errors_of("sysfs_buffers")
    )
    s, e = scan.lines(sec.begin, sec.end)
    if s.size == 0:
        return SysfsResult(empty, not absent)
    ok = scan.eq(s, ROOT)
    ino, nino = scan.dec(s + len(ROOT), e)
    a = s + len(ROOT) + nino
    ok &= (nino >= 1) & (nino <= 18) & (scan.byte(a) == 0x2F)
    a = a + 1
    is_size = ok & scan.eq(a, b"size:")
    is_exp = ok & scan.eq(a, b"exporter_name:")
    is_att = ok & scan.eq(a, b"attachments/")
    is_known = ok & (scan.eq(a, b"mmap_count:") | scan.eq(a, b"name:"))
    bad = np.flatnonzero(~(is_size | is_exp | is_att | is_known))
    if bad.size:
        unparsed.add_lines(scan, "sysfs_buffers", s[bad], e[bad], "unknown sysfs attribute")

    idx = np.flatnonzero(is_size)
    size_v, size_ok = scan.span_is_dec(a[idx] + 5, e[idx])
    badn = idx[~size_ok]
    if badn.size:
        unparsed.add_lines(scan, "sysfs_buffers", s[badn], e[badn], "size is not a number")
    sizes = pd.Series(size_v[size_ok], index=ino[idx][size_ok], dtype="Int64")
    sizes = sizes[~sizes.index.duplicated(keep="first")]

    idx = np.flatnonzero(is_exp)
    codes, raws = factorize_ranges(scan, a[idx] + 14, e[idx])
    texts = np.array([decode(x) for x in raws], dtype=object)
    exps = pd.Series(texts[codes] if codes.size else [], index=ino[idx], dtype="str")
    exps = exps[~exps.index.duplicated(keep="first")]

    idx = np.flatnonzero(is_att)
    att_id, natt = scan.dec(a[idx] + 12, e[idx])
    good = natt >= 1
    pairs = pd.DataFrame({"inode": ino[idx][good], "id": att_id[good]}).drop_duplicates()
    atts = pairs.groupby("inode").size().astype("Int64")

    inodes = uniq(ino[ok & (is_size | is_exp | is_att)])
    idx_all = pd.Index(inodes)
    size_col = sizes.reindex(idx_all)
    att_col = atts.reindex(idx_all)
    frame = pd.DataFrame(
        {
            "inode": inodes.astype(np.int64),
            "size_bytes": size_col.array,
            "exporter": exps.reindex(idx_all).array,
            "attachments": att_col.array,
        }
    )
    if idx.size == 0:
        n = len(frame)
        frame["attachments"] = pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, np.bool_))
    return SysfsResult(frame, True)
