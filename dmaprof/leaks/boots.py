"""Which boot, which device and which collection mode each sample of a series belongs to
(`dmaprof trend`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dmaprof.errors import DmaprofError, SeveralDevicesError
from dmaprof.leaks.side import CaptureInfo


def reboot_between(earlier: CaptureInfo, later: CaptureInfo) -> bool | None:
    """Did the device reboot between two samples? Boot ids, else uptime going backwards,
    else ``ro.runtime.firstboot``; None when none of them tells."""
    if earlier.boot_id and later.boot_id:
        return earlier.boot_id != later.boot_id
    if earlier.uptime_s is not None and later.uptime_s is not None:
        return later.uptime_s < earlier.uptime_s
    if earlier.firstboot and later.firstboot:
        return earlier.firstboot != later.firstboot
    return None


def boot_numbers(infos: list[CaptureInfo]) -> tuple[list[int], int]:
    """Each sample's boot (0, 1, ...: a new number after each reboot) and how many samples'
    boot could not be told against any earlier sample (kept in the current boot)."""
    boots: list[int] = []
    unknown = 0
    for i, info in enumerate(infos):
        if i == 0:
            boots.append(0)
            continue
        verdict = None
        for j in range(i - 1, -1, -1):  # the nearest earlier sample that tells
            verdict = reboot_between(infos[j], info)
            if verdict is not None:
                verdict = verdict or boots[j] != boots[-1]  # a reboot since j counts too
                break
        if verdict is None:
            unknown += 1
        boots.append(boots[-1] + 1 if verdict else boots[-1])
    return boots, unknown


def device_key(info: CaptureInfo) -> str:
    """The device a sample came from: its serial, else model + build."""
    if info.serial:
        return info.serial
    if info.model or info.fingerprint:
        return f"{info.model} {info.fingerprint}".strip()
    return ""


def one_device(
    points: pd.DataFrame, infos: list[CaptureInfo], refs_dir: Path, serial: str | None
) -> tuple[pd.DataFrame, list[CaptureInfo]]:
    """The samples of one device; several devices without ``serial`` are an error."""
    keys = [device_key(i) for i in infos]
    devices = list(dict.fromkeys(k for k in keys if k))
    if serial is not None:
        wanted = [n for n, k in enumerate(keys) if k == serial or infos[n].serial == serial]
        if not wanted:
            raise DmaprofError(
                f"{refs_dir}: no sample of device {serial!r} (it holds "
                f"{', '.join(devices) or 'samples of an unknown device'})"
            )
    elif len(devices) <= 1:
        return points, infos
    else:
        counts = ", ".join(f"{d} ({keys.count(d)} samples)" for d in devices)
        raise SeveralDevicesError(
            f"{refs_dir} holds captures of {len(devices)} devices: {counts}; a trend is of one "
            "device: choose one with -s SERIAL (or record each into its own directory)"
        )
    keep = set(wanted)
    renumber = {old: new for new, old in enumerate(wanted)}
    points = points[points["sample"].isin(keep)].copy()
    points["sample"] = points["sample"].map(renumber)
    return points, [infos[n] for n in wanted]


def mode_warning(infos: list[CaptureInfo]) -> str | None:
    """A warning when the collection mode changes within the series."""
    runs: list[tuple[str, int]] = []
    for info in infos:
        mode = info.mode or "unknown"
        if runs and runs[-1][0] == mode:
            runs[-1] = (mode, runs[-1][1] + 1)
        else:
            runs.append((mode, 1))
    if len(runs) < 2:
        return None
    shown = ", then ".join(f"{n} as {m}" for m, n in runs)
    return (
        f"the collection mode changed within the series ({shown}): figures a sample could "
        "not see are left out of its series (unknown points), never counted as zero"
    )
