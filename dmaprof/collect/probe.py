"""`dmaprof devices`: what each connected device is, and what dmaprof can read there."""

from __future__ import annotations

from dmaprof.collect.adb import AdbServer, Device, DeviceEntry
from dmaprof.errors import DmaprofError
from dmaprof.records import SOURCES, DeviceReport

# One shell round trip per device. `[ -r ]` answers for the user adb runs as; root is
# reported separately (adbd root, or a working su). The kernel release comes from
# /proc/version, as in captures. run-as is tried on the third-party packages (`run-as PKG
# true`, a few ms each, at most RUNAS_MAX): it works for the debuggable ones only.
PROBE_SCRIPT = r"""
for k in ro.product.model ro.product.manufacturer ro.build.version.release \
         ro.build.version.sdk ro.build.type ro.debuggable; do
  echo "prop.$k=$(getprop $k 2>/dev/null)"
done
read -r _l _v release _rest </proc/version 2>/dev/null; echo "kernel=$release"
echo "uid=$(id -u 2>/dev/null)"
if command -v su >/dev/null 2>&1; then
  if su -c true </dev/null >/dev/null 2>&1 || su 0 true </dev/null >/dev/null 2>&1; then
    echo "su=yes"; else echo "su=denied"; fi
else echo "su=no"; fi
src() { if [ -e "$2" ]; then if [ -r "$2" ]; then echo "src.$1=yes"; else echo "src.$1=denied"; fi
        else echo "src.$1=absent"; fi; }
src fdinfo /proc/1/fdinfo
src maps /proc/1/maps
src sysfs_buffers /sys/kernel/dmabuf/buffers
src bpf_iter /sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf
src debugfs_bufinfo /sys/kernel/debug/dma_buf/bufinfo
src dma_heap /dev/dma_heap
src dma_heap_pools /sys/kernel/dma_heap/total_pools_kb
# ION: /dev/ion on every ION kernel (4.x); /sys/kernel/ion only on ACK android11-5.4
if [ -e /dev/ion ]; then src ion /dev/ion; else src ion /sys/kernel/ion; fi
src dmabuf_rss /proc/self/dmabuf_rss
# run-as: which third-party apps it opens (debuggable ones), at most RUNAS_MAX probes
if command -v run-as >/dev/null 2>&1; then
  pk=$(cmd package list packages -3 2>/dev/null) || pk=$(pm list packages -3 2>/dev/null)
  n=0
  for p in $pk; do
    p=${p#package:}
    case $p in '' | *[!A-Za-z0-9_.]*) continue ;; esac
    if [ $n -ge @RUNAS_MAX@ ]; then echo "runas.truncated=1"; break; fi
    n=$((n + 1))
    run-as "$p" true </dev/null >/dev/null 2>&1 && echo "runas.ok=$p"
  done
  echo "runas.checked=$n"
else
  echo "runas.checked=none"
fi
"""
RUNAS_MAX = 64
PROBE_SCRIPT = PROBE_SCRIPT.replace("@RUNAS_MAX@", str(RUNAS_MAX))


def probe_device(device: Device) -> DeviceReport:
    report = DeviceReport(device.serial, device.entry.state)
    result = device.shell(PROBE_SCRIPT)
    lines = result.text().splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    report.model = values.get("prop.ro.product.model", "") or device.entry.tags.get("model", "")
    report.manufacturer = values.get("prop.ro.product.manufacturer", "")
    report.release = values.get("prop.ro.build.version.release", "")
    report.sdk = values.get("prop.ro.build.version.sdk", "")
    report.build_type = values.get("prop.ro.build.type", "")
    report.kernel = values.get("kernel", "")
    uid_text = values.get("uid", "")
    report.uid = int(uid_text) if uid_text.isdigit() else None
    if report.uid == 0:
        report.root = "adbd"
    elif values.get("su") == "yes":
        report.root = "su"
    else:
        report.root = "no"
    report.sources = {name: values.get(f"src.{name}", "unknown") for name in SOURCES}
    report.run_as = sorted(
        line[len("runas.ok=") :] for line in lines if line.startswith("runas.ok=")
    )
    checked = values.get("runas.checked", "")
    report.run_as_checked = int(checked) if checked.isdigit() else None
    report.run_as_truncated = values.get("runas.truncated") == "1"
    report.modes = device_modes(report)
    return report


def device_modes(report: DeviceReport) -> list[str]:
    """What `dmaprof snapshot` can do there, best first: ``root`` (every process),
    ``run-as`` (the debuggable apps in ``report.run_as``, with ``--app``), ``shell`` (always:
    system totals and what the shell user may read; docs/user-build.md)."""
    modes = []
    if report.root in ("adbd", "su"):
        modes.append("root")
    if report.run_as:
        modes.append("run-as")
    modes.append("shell")
    return modes


def probe_devices(server: AdbServer) -> list[DeviceReport]:
    reports = []
    for entry in server.devices():
        if entry.state != "device":
            reports.append(_unusable(entry))
            continue
        try:
            reports.append(probe_device(server.select(entry.serial)))
        except DmaprofError as exc:
            failed = DeviceReport(entry.serial, entry.state, error=exc.message)
            reports.append(failed)
    return reports


def _unusable(entry: DeviceEntry) -> DeviceReport:
    hint = {
        "unauthorized": "accept the 'Allow USB debugging' prompt on the device",
        "offline": "reconnect the device",
    }.get(entry.state)
    return DeviceReport(entry.serial, entry.state, model=entry.tags.get("model", ""), error=hint)
