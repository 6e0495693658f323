"""Whether two captures come from one device and one boot, and the warnings that say what
a comparison of them can mean (``dmaprof diff`` refuses two devices unless ``--force``)."""

from __future__ import annotations

from dmaprof.errors import DmaprofError
from dmaprof.leaks.side import CaptureInfo


class DifferentDevicesError(DmaprofError):
    """The two captures come from different devices (exit 1; ``--force`` compares anyway)."""


def same_device(before: CaptureInfo, after: CaptureInfo) -> bool | None:
    """Serials when both have one, else model + build fingerprint; None when unknowable."""
    if before.serial and after.serial:
        return before.serial == after.serial
    if before.model and after.model and before.fingerprint and after.fingerprint:
        return (before.model, before.fingerprint) == (after.model, after.fingerprint)
    if before.model and after.model and before.model != after.model:
        return False
    return None


def check_devices(
    before: CaptureInfo, after: CaptureInfo, *, force: bool
) -> tuple[bool | None, bool, list[str]]:
    """(same device, same boot, warnings); raises DifferentDevicesError unless ``force``."""
    warnings: list[str] = []
    same = same_device(before, after)
    if same is False:
        message = (
            f"BEFORE ({before.label}) is from {_describe(before)} but AFTER ({after.label}) is "
            f"from {_describe(after)}"
        )
        if not force:
            raise DifferentDevicesError(
                f"{message}: refusing to compare captures of different devices "
                "(use --force to compare them anyway)"
            )
        warnings.append(
            f"{message}; compared anyway (--force): buffer identities mean "
            "nothing across devices, so only aggregate changes are shown"
        )
    elif same is None:
        warnings.append(
            "cannot tell whether both captures come from the same device (no serial, model "
            "or build fingerprint recorded)"
        )
    undecided = False
    if same is False:
        same_boot = False
    elif before.firstboot and after.firstboot and _kind(before) != _kind(after):
        # a bugreport (no kernel boot id) against a snapshot: the boot's firstboot property
        same_boot = before.firstboot == after.firstboot
    elif before.boot_id and after.boot_id and _kind(before) == _kind(after):
        same_boot = before.boot_id == after.boot_id
    elif before.boot_id and after.boot_id:
        same_boot, undecided = False, True
        warnings.append(
            f"cannot tell whether the device rebooted between the captures (boot ids of "
            f"different kinds, {before.boot_id} and {after.boot_id}, and no "
            "ro.runtime.firstboot on both): compared as across a reboot, so only aggregate "
            "changes are shown"
        )
    else:
        same_boot = True
        warnings.append("a capture has no boot id: assuming both come from the same boot")
    if same is not False and not same_boot and not undecided:
        warnings.append(
            f"REBOOT: the device rebooted between the captures (boot id {before.boot_id or '?'} "
            f"-> {after.boot_id or '?'}); buffer identities mean nothing across a reboot, so "
            "only aggregate changes are shown (no new/freed buffers, no buffer-level suspects; "
            "processes are matched by name)"
        )
    elif (
        same_boot
        and before.uptime_s is not None
        and after.uptime_s is not None
        and after.uptime_s < before.uptime_s
    ):
        warnings.append(
            "AFTER was captured before BEFORE (device uptime "
            f"{after.uptime_s:.0f} s < {before.uptime_s:.0f} s): are the arguments swapped?"
        )
    for side, word in ((before, "BEFORE"), (after, "AFTER")):
        if not side.complete:
            warnings.append(f"{word} ({side.label}) is an incomplete capture")
    return same, same_boot, warnings


def _kind(info: CaptureInfo) -> str:
    """Which boot id a capture has: the kernel's, or a bugreport's ``firstboot:`` one."""
    return "firstboot" if info.boot_id.startswith("firstboot:") else "kernel"


def _describe(info: CaptureInfo) -> str:
    parts = [f"serial {info.serial}" if info.serial else ""]
    if info.model:
        parts.append(f"model {info.model}")
    if info.fingerprint and not info.serial:
        parts.append(f"build {info.fingerprint}")
    text = ", ".join(p for p in parts if p)
    return text or "an unknown device"
