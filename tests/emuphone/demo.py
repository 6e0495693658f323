"""The demo phone (``scripts/demo-phone``): a phone-sized scene with a leaking app, served by
the emulated adb daemon, for trying dmaprof live without a phone.

:func:`demo_scene` is a scene (``scene.py`` schema) shaped like a real phone's process list:
kernel threads, init's native daemons, the HALs, system_server and zygote apps, several of them
with more than one process (``com.google.android.gms`` and ``.persistent``, Chrome's sandboxed
renderers, ``:remote`` services), and a few hundred buffers from the system, system-uncached
and camera heaps plus GPU (``drm``) exports, held the way gralloc buffers are held: by the app
(fd and mapping), SurfaceFlinger and the composer HAL (fd).

:class:`Leaker` makes one app, ``com.example.leaky``, leak: every few seconds it gets one more
4 MiB buffer named ``leaky-thumbnail``, held by an fd only, written into the built tree (a sysfs
stats entry, an fdinfo file, an fd link) so that the next snapshot sees it, as it would on a
phone whose app forgets to close its thumbnails.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.emuphone.scene import SCENE_SCHEMA, VARIANTS, Scene, _fdinfo, _w, validate_scene

LEAKY_PACKAGE = "com.example.leaky"
LEAK_NAME = "leaky-thumbnail"
LEAK_SIZE = 4 * 1024 * 1024
LEAK_EXPORTER = "system"
PAGE = 4096
FB = 10371072  # 1080 x 2400 x 4 bytes, page-rounded
APP_BUFFER = 2 * 1024 * 1024 + 7 * PAGE

KERNEL_THREADS = [
    "rcu_gp", "rcu_par_gp", "slub_flushwq", "netns", "mm_percpu_wq", "rcu_tasks_kthre",
    "rcu_preempt", "rcu_exp_gp_kthr", "kworker/u16:0", "oom_reaper", "writeback", "kcompactd0",
    "ksmd", "kintegrityd", "kblockd", "blkcg_punt_bio", "edac-poller", "watchdogd", "kswapd0",
    "ecryptfs-kthrea", "kthrotld", "irq/182-pmic", "irq/203-ufshcd", "irq/301-dpu", "ion_system_h",
    "system_heap", "kgsl-workqueue", "kgsl_worker_thr", "f2fs_discard-25", "f2fs_gc-259:32",
    "jbd2/sda5-8", "ext4-rsv-conver", "binder", "hwrng", "psimon", "dmabuf-deferred",
    "ipa_power_mgmt", "cfg80211", "wlan_logging_th", "spi0", "i2c-10", "mmc_complete",
    "card0-crtc0", "card0-crtc1", "vsync_retire_wo", "disp_thread", "crtc_commit:120",
    "crtc_event:120", "pp_event", "qrtr_rx", "kdmflush", "loop0", "loop1", "loop2", "loop3",
    "loop4", "loop5", "loop6", "loop7", "zram_wb", "kworker/u17:1", "kworker/u17:2",
]  # fmt: skip
NATIVE = [
    ("/system/bin/ueventd", 0), ("/system/bin/logd", 1036), ("/system/bin/lmkd", 1069),
    ("/system/bin/servicemanager", 1000), ("/system/bin/hwservicemanager", 1000),
    ("/vendor/bin/vndservicemanager", 1000), ("/system/bin/keystore2", 1017),
    ("/system/bin/vold", 0), ("/system/bin/tombstoned", 1058), ("/system/bin/netd", 0),
    ("/system/bin/installd", 0), ("/system/bin/storaged", 1000), ("/system/bin/statsd", 1066),
    ("/system/bin/incidentd", 1067), ("/system/bin/gpuservice", 1000),
    ("/system/bin/audioserver", 1041), ("/system/bin/cameraserver", 1047),
    ("/system/bin/mediaserver", 1013), ("/system/bin/mediaextractor", 1040),
    ("/system/bin/mediametrics", 1013), ("/apex/com.android.media.swcodec/bin/mediaswcodec", 1046),
    ("/system/bin/drmserver", 1019), ("/system/bin/credstore", 1076),
    ("/system/bin/gatekeeperd", 1000), ("/system/bin/wificond", 1010),
    ("/system/bin/traced", 9999), ("/system/bin/traced_probes", 9999),
    ("/apex/com.android.adbd/bin/adbd", 2000),
    ("/system/bin/llkd", 0), ("/system/bin/apexd", 0), ("/system/bin/prng_seeder", 1092),
    ("/system/bin/update_engine", 0), ("/system/bin/thermal-engine", 1000),
    ("/system/bin/cnss-daemon", 1000), ("/system/bin/qseecomd", 1000),
    ("/system/bin/logcat", 1007), ("/system/bin/cmd", 1000), ("/system/bin/iorapd", 1000),
    ("/system/bin/gpuservice_worker", 1000), ("/system/bin/idmap2d", 1000),
    ("/system/bin/mdnsd", 1020), ("/system/bin/usbd", 0), ("/system/bin/bootstat", 1000),
]  # fmt: skip
HALS = [
    "android.hardware.graphics.allocator-V2-service", "android.hardware.graphics.composer3-service",
    "android.hardware.camera.provider@2.7-service_64",
    "android.hardware.media.c2@1.2-default-service",
    "android.hardware.audio.service", "android.hardware.bluetooth@1.1-service",
    "android.hardware.power-service", "android.hardware.health-service",
    "android.hardware.sensors-service.multihal", "android.hardware.gnss-service",
    "android.hardware.wifi@1.0-service", "android.hardware.vibrator-service",
    "android.hardware.thermal-service", "android.hardware.security.keymint-service",
    "android.hardware.gatekeeper@1.0-service", "android.hardware.boot-service",
    "android.hardware.usb-service", "android.hardware.memtrack-service",
    "android.hardware.light-service", "android.hardware.drm-service.clearkey",
    "android.hardware.nfc@1.2-service", "android.hardware.radio-service",
    "android.hardware.biometrics.fingerprint-service", "android.hardware.contexthub-service",
    "android.hardware.dumpstate-service", "android.hardware.neuralnetworks-service",
    "android.hardware.identity-service", "android.hardware.authsecret-service",
    "android.hardware.oemlock-service", "android.hardware.weaver-service",
    "vendor.qti.hardware.perf@2.2-service", "vendor.qti.hardware.display.config-service",
    "vendor.qti.media.c2@1.0-service", "vendor.qti.hardware.servicetracker@1.2-service",
    "vendor.google.wifi_ext-service",
]  # fmt: skip
# package, uid, processes (suffix "" = the main one), visible layers
APPS: list[tuple[str, int, list[str], int]] = [
    ("com.android.systemui", 10150, ["", ":screenshot"], 3),
    ("com.google.android.apps.nexuslauncher", 10160, [""], 2),
    ("com.android.phone", 1001, [""], 0),
    ("com.google.android.gms", 10120, ["", ".persistent", ":snet", ".unstable", ":ui"], 0),
    ("com.google.android.gms.ui", 10120, [""], 0),
    ("com.google.process.gapps", 10120, [""], 0),
    ("com.android.chrome", 10180, ["", ":privileged_process0", ":sandboxed_process0",
                                   ":sandboxed_process1", ":sandboxed_process2"], 1),
    ("com.google.android.youtube", 10190, ["", ":remote"], 1),
    ("com.google.android.apps.photos", 10195, ["", ":remote"], 0),
    ("com.google.android.apps.maps", 10200, [""], 0),
    ("com.whatsapp", 10210, ["", ":pushservice"], 0),
    ("com.instagram.android", 10215, ["", ":mqtt", ":videoplayer"], 0),
    ("com.spotify.music", 10220, ["", ":service"], 0),
    ("com.google.android.gm", 10225, [""], 0),
    ("com.google.android.apps.messaging", 10230, ["", ":rcs"], 0),
    ("com.google.android.dialer", 10232, [""], 0),
    ("com.google.android.contacts", 10234, [""], 0),
    ("com.google.android.calendar", 10236, [""], 0),
    ("com.google.android.deskclock", 10238, [""], 0),
    ("com.google.android.keep", 10240, [""], 0),
    ("com.google.android.inputmethod.latin", 10242, [""], 1),
    ("com.google.android.apps.wellbeing", 10244, [""], 0),
    ("com.google.android.as", 10246, ["", ":oemservice"], 0),
    ("com.google.android.apps.turbo", 10248, [""], 0),
    (LEAKY_PACKAGE, 10250, ["", ":sync"], 1),
    ("com.google.android.googlequicksearchbox", 10252, ["", ":search", ":interactor"], 0),
    ("com.google.android.apps.docs", 10254, [""], 0),
    ("com.google.android.apps.tachyon", 10256, [""], 0),
    ("com.google.android.apps.walletnfcrel", 10258, [""], 0),
    ("com.google.android.apps.camera", 10260, [""], 0),
    ("com.google.android.settings.intelligence", 10262, [""], 0),
    ("com.google.android.permissioncontroller", 10264, [""], 0),
    ("com.google.android.providers.media.module", 10266, [""], 0),
    ("com.google.android.networkstack", 1073, ["", ".process"], 0),
    ("com.google.android.cellbroadcastreceiver", 10268, [""], 0),
    ("com.google.android.ext.services", 10270, [""], 0),
    ("com.android.bluetooth", 1002, [""], 0),
    ("com.android.nfc", 1027, [""], 0),
    ("com.android.se", 1068, [""], 0),
    ("com.android.providers.calendar", 10272, [""], 0),
    ("com.android.externalstorage", 10274, [""], 0),
    ("com.android.keychain", 1000, [""], 0),
    ("com.android.vending", 10276, ["", ":background", ":instant_app_installer"], 0),
    ("com.netflix.mediaclient", 10278, [""], 0),
    ("com.facebook.katana", 10280, ["", ":videoplayer", ":notification"], 0),
    ("com.facebook.orca", 10282, ["", ":mqtt"], 0),
    ("com.twitter.android", 10284, [""], 0),
    ("com.amazon.mShop.android.shopping", 10286, [""], 0),
    ("com.ubercab", 10288, [""], 0),
    ("com.duolingo", 10290, [""], 0),
    ("org.telegram.messenger", 10292, ["", ":push"], 0),
    ("com.snapchat.android", 10294, [""], 0),
    ("com.microsoft.teams", 10296, [""], 0),
    ("com.slack", 10298, [""], 0),
    ("com.zhiliaoapp.musically", 10300, ["", ":push"], 0),
    ("com.google.android.apps.fitness", 10302, [""], 0),
    ("com.google.android.apps.nbu.files", 10304, [""], 0),
    ("com.google.android.apps.recorder", 10306, [""], 0),
    ("com.google.android.apps.weather", 10308, [""], 0),
    ("com.google.android.projection.gearhead", 10310, ["", ":car"], 0),
    ("com.google.android.apps.safetyhub", 10312, [""], 0),
    ("com.google.android.apps.pixel.support", 10314, [""], 0),
    ("com.google.android.apps.subscriptions.red", 10316, [""], 0),
    ("com.google.android.apps.magazines", 10318, [""], 0),
    ("com.google.android.videos", 10320, [""], 0),
    ("com.google.android.music", 10322, [""], 0),
    ("com.google.android.apps.podcasts", 10324, [""], 0),
    ("com.google.android.apps.translate", 10326, [""], 0),
    ("com.google.android.apps.authenticator2", 10328, [""], 0),
    ("com.google.android.apps.googleassistant", 10330, [""], 0),
    ("com.google.android.partnersetup", 10332, [""], 0),
    ("com.google.android.configupdater", 10334, [""], 0),
    ("com.google.android.syncadapters.contacts", 10336, [""], 0),
    ("com.google.android.backuptransport", 10338, [""], 0),
    ("com.google.android.onetimeinitializer", 10340, [""], 0),
    ("com.google.android.tts", 10342, [""], 0),
    ("com.google.android.marvin.talkback", 10344, [""], 0),
    ("com.google.android.apps.restore", 10346, [""], 0),
    ("com.google.android.hardware.biometrics.face", 10348, [""], 0),
    ("com.google.android.euicc", 10350, [""], 0),
    ("com.google.android.apps.work.clouddpc", 10352, [""], 0),
    ("com.google.android.apps.carrier.carrierwifi", 10354, [""], 0),
    ("com.google.android.apps.scone", 10356, [""], 0),
    ("com.google.android.apps.diagnosticstool", 10358, [""], 0),
    ("com.google.android.apps.youtube.music", 10360, ["", ":remote"], 0),
    ("com.google.android.apps.kids.familylink", 10362, [""], 0),
    ("com.google.android.apps.bard", 10364, [""], 0),
    ("com.google.android.apps.chromecast.app", 10366, [""], 0),
    ("com.google.android.apps.dynamite", 10368, [""], 0),
    ("com.google.android.apps.meetings", 10370, [""], 0),
    ("com.google.android.apps.adm", 10372, [""], 0),
    ("com.google.android.apps.santatracker", 10374, [""], 0),
    ("com.google.android.apps.classroom", 10376, [""], 0),
    ("com.google.android.apps.paidtasks", 10378, [""], 0),
    ("com.google.android.apps.books", 10380, [""], 0),
]  # fmt: skip
OTHER_FDS = [
    "/dev/binderfs/binder", "/dev/binderfs/hwbinder", "anon_inode:[eventpoll]",
    "anon_inode:[eventfd]", "anon_inode:sync_file", "/system/framework/framework.jar",
    "/dev/ashmem", "/dev/kgsl-3d0",
]  # fmt: skip


class _SceneBuilder:
    """Hands out pids, tids, inodes and fd numbers while the scene grows."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.next_pid = 3
        self.next_tid = 20000
        self.next_inode = 1
        self.buffers: list[dict[str, Any]] = []
        self.processes: list[dict[str, Any]] = []
        self.by_name: dict[str, dict[str, Any]] = {}

    def pid(self) -> int:
        pid = self.next_pid
        self.next_pid += self.rnd.choice([1, 1, 2, 3, 7])
        return pid

    def process(
        self,
        name: str,
        uid: int,
        *,
        ppid: int = 1,
        cmdline: list[str] | None = None,
        zygote: bool = False,
        kernel: bool = False,
        threads: int = 2,
        cgroup: str | None = None,
    ) -> dict[str, Any]:
        pid = self.pid()
        proc: dict[str, Any] = {
            "pid": pid,
            "ppid": 2 if kernel else ppid,
            "uid": uid,
            "gid": uid,
            "name": name,
            "cmdline": [] if kernel else (cmdline or [name]),
            "cgroup": [cgroup or (f"0::/uid_{uid}/pid_{pid}" if zygote else "0::/system")],
            "fds": [],
            "maps": [],
        }
        if kernel:
            proc["kernel_thread"] = True
        else:
            n = 3 + self.rnd.randrange(4 if not zygote else 12)
            proc["fds"] = [{"fd": fd, "target": "/dev/null"} for fd in range(3)] + [
                {"fd": 3 + k, "target": OTHER_FDS[(pid + k) % len(OTHER_FDS)]} for k in range(n)
            ]
            tnames = ["RenderThread", "HeapTaskDaemon", "binder:%d_1", "binder:%d_2", "Jit thread"]
            proc["threads"] = []
            for k in range(threads):
                self.next_tid += 1
                tname = tnames[k % len(tnames)]
                proc["threads"].append(
                    {"tid": self.next_tid, "name": tname % pid if "%d" in tname else tname}
                )
        if zygote:
            proc["zygote"] = True
        self.processes.append(proc)
        self.by_name[name] = proc
        return proc

    def buffer(self, size: int, exporter: str, name: str, **extra: Any) -> int:
        inode = self.next_inode
        self.next_inode += 1
        self.buffers.append(
            {"inode": inode, "size": size, "exporter": exporter, "name": name, **extra}
        )
        return inode

    def hold(self, proc: Mapping[str, Any], inode: int, *, mapped: bool = False) -> None:
        fds = proc["fds"]
        fds.append({"fd": max(int(f["fd"]) for f in fds) + 1, "buffer": inode})
        if mapped:
            size = next(int(b["size"]) for b in self.buffers if b["inode"] == inode)
            start = 0x7A00000000 + len(proc["maps"]) * 0x10000000
            proc["maps"].append(
                {"buffer": inode, "start": f"{start:x}", "end": f"{start + size:x}"}
            )


def demo_scene(seed: int = 15) -> Scene:
    """About 370 processes and 330 buffers, shaped like a phone in daily use."""
    b = _SceneBuilder(seed)
    init = {
        "pid": 1, "ppid": 0, "uid": 0, "gid": 0, "name": "init",
        "cmdline": ["/system/bin/init", "second_stage"], "cgroup": ["0::/"],
        "fds": [{"fd": 0, "target": "/dev/null"}],
    }  # fmt: skip
    kthreadd = {
        "pid": 2, "ppid": 0, "uid": 0, "gid": 0, "name": "kthreadd", "cmdline": [],
        "kernel_thread": True, "cgroup": ["0::/"], "fds": [],
    }  # fmt: skip
    b.processes += [init, kthreadd]
    for cpu in range(8):
        for kind in (
            "cpuhp/%d",
            "migration/%d",
            "ksoftirqd/%d",
            "kworker/%d:0H",
            "kworker/%d:1",
            "kworker/%d:2",
        ):
            b.process(kind % cpu, 0, kernel=True, cgroup="0::/")
    for name in KERNEL_THREADS:
        b.process(name, 0, kernel=True, cgroup="0::/")
    for path, uid in NATIVE:
        b.process(Path(path).name, uid, cmdline=[path])
    sf = b.process("surfaceflinger", 1000, cmdline=["/system/bin/surfaceflinger"], threads=4)
    for hal in HALS:
        uid = 1047 if "camera" in hal else 1046 if "media" in hal else 1000
        b.process(hal, uid, cmdline=[f"/vendor/bin/hw/{hal}"])
    allocator = b.by_name["android.hardware.graphics.allocator-V2-service"]
    composer = b.by_name["android.hardware.graphics.composer3-service"]
    camera_hal = b.by_name["android.hardware.camera.provider@2.7-service_64"]
    codec = b.by_name["android.hardware.media.c2@1.2-default-service"]
    cameraserver = b.by_name["cameraserver"]
    zygote64 = b.process("zygote64", 0, cmdline=["zygote64"], threads=3)
    b.process("zygote", 0, cmdline=["zygote"], threads=3)
    b.process(
        "webview_zygote", 99000, ppid=zygote64["pid"], cmdline=["webview_zygote"], zygote=True
    )
    system_server = b.process(
        "system_server", 1000, ppid=zygote64["pid"], zygote=True, threads=5,
        cgroup="0::/system",
    )  # fmt: skip

    # SurfaceFlinger's client targets: held by SurfaceFlinger and the composer, by fd
    for i in range(3):
        ino = b.buffer(FB, "system", f"FramebufferSurface#{i}", attached=["ae00000.qcom,mdss_mdp"])
        b.hold(sf, ino, mapped=True)
        b.hold(composer, ino)
    # system_server's own layers (the boot animation's leftovers, the screen rotation)
    for i in range(2):
        ino = b.buffer(FB // 4, "system", f"RotationLayer#{i}")
        b.hold(system_server, ino, mapped=True)
        b.hold(sf, ino)

    app_procs: dict[str, list[dict[str, Any]]] = {}
    isolated = 99100
    for package, uid, suffixes, layers in APPS:
        procs = []
        for suffix in suffixes:
            sandboxed = "sandboxed_process" in suffix
            puid = isolated if sandboxed else uid
            isolated += 1 if sandboxed else 0
            proc = b.process(
                package + suffix, puid, ppid=zygote64["pid"], zygote=True, threads=3,
                cmdline=[package + suffix],
            )  # fmt: skip
            procs.append(proc)
        app_procs[package] = procs
        main = procs[0]
        # every visible layer: a triple-buffered BufferQueue shared with SF and the composer
        for layer in range(layers):
            for slot in range(3):
                ino = b.buffer(
                    FB if layer == 0 else APP_BUFFER,
                    "system",
                    f"{package}/{package}.MainActivity#{layer}" if layer else f"{package}#{slot}",
                    attached=["ae00000.qcom,mdss_mdp"],
                )
                b.hold(main, ino, mapped=True)
                b.hold(sf, ino)
                b.hold(composer, ino)
        # cached apps keep a texture or two (HWUI), GPU exports held by the app alone
        for k in range(1 + b.rnd.randrange(3)):
            ino = b.buffer(PAGE * b.rnd.choice([64, 256, 512]), "drm", f"hwui-texture-{k}")
            b.hold(main, ino, mapped=True)
        # hardware bitmaps (gralloc buffers HWUI draws from), held and mapped by the app
        for _ in range(b.rnd.randrange(3)):
            ino = b.buffer(PAGE * b.rnd.choice([128, 300, 1024]), "system", "HardwareBitmap")
            b.hold(main, ino, mapped=True)
    # the camera preview: camera HAL, cameraserver and the camera app
    camera_app = app_procs["com.google.android.apps.camera"][0]
    for i in range(8):
        ino = b.buffer(3121152, "camera", f"camera-preview#{i}")
        for holder in (camera_hal, cameraserver, camera_app):
            b.hold(holder, ino)
    # video playback in YouTube: the codec's output buffers on a SurfaceView
    youtube = app_procs["com.google.android.youtube"][0]
    for i in range(12):
        ino = b.buffer(3133440, "system-uncached", f"c2-output#{i}")
        b.hold(codec, ino)
        b.hold(youtube, ino)
        b.hold(sf, ino)
    # the allocator's own pool and the kernel's: no process holds them
    for _ in range(6):
        b.buffer(PAGE * 256, "system", "", kernel_refs=1)
    # the leaky app starts with a few thumbnails it still shows
    leaky = app_procs[LEAKY_PACKAGE][0]
    for _ in range(2):
        b.hold(leaky, b.buffer(LEAK_SIZE, LEAK_EXPORTER, LEAK_NAME))
    del allocator  # allocates everything above but keeps nothing, as gralloc does

    packages = [{"name": "android", "uid": 1000}, {"name": "com.android.shell", "uid": 2000}]
    packages += [{"name": p, "uid": u} for p, u, _s, _l in APPS if u >= 10000]
    for entry in packages:
        if entry["name"] == LEAKY_PACKAGE:
            entry["debuggable"] = True
    scene: Scene = {
        "schema": SCENE_SCHEMA,
        "name": "demo-phone",
        "description": "scripts/demo-phone: a phone-sized scene with a leaking app",
        "uptime": "48211.37 301144.92",
        "boot_id": "d3f1a2b4-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
        "uuid": "7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3928",
        "props": {
            "ro.product.model": "Demo Phone 8",
            "ro.product.device": "demophone",
            "ro.product.manufacturer": "dmaprof",
            "ro.serialno": "DEMO0123456789",
            "ro.build.fingerprint": (
                "dmaprof/demophone/demophone:15/AP3A.241105.008/12485168:userdebug/dev-keys"
            ),
            "ro.build.version.release": "15",
            "ro.build.version.sdk": "35",
            "ro.build.type": "userdebug",
            "ro.debuggable": "1",
            "ro.secure": "1",
            "ro.product.cpu.abi": "arm64-v8a",
        },
        "packages": packages,
        "heaps": ["system", "system-uncached", "camera"],
        "total_pools_kb": 12288,
        "meminfo_kb": {"MemTotal": 7802788, "MemFree": 402480, "MemAvailable": 3441512},
        "buffers": b.buffers,
        "processes": b.processes,
    }
    validate_scene(scene)
    return scene


def leaky_process(scene: Mapping[str, Any]) -> dict[str, Any]:
    proc: dict[str, Any] = next(p for p in scene["processes"] if p["name"] == LEAKY_PACKAGE)
    return proc


class Leaker:
    """Adds one leaked buffer to the built tree of ``scene`` every ``every`` seconds, up to
    ``limit`` buffers, until :meth:`stop` (or :meth:`pause`)."""

    def __init__(
        self, root: Path, scene: Scene, *, every: float = 3.0, limit: int = 600,
        variant: str = "modern",
    ) -> None:  # fmt: skip
        self.root = Path(root)
        self.scene = scene
        self.every = every
        self.limit = limit
        self.kv = VARIANTS[variant]
        self.proc = leaky_process(scene)
        self.leaked = 0
        self.running = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="leaker", daemon=True)

    @property
    def pid(self) -> int:
        return int(self.proc["pid"])

    def start(self) -> Leaker:
        self.running.set()
        self._thread.start()
        return self

    def pause(self) -> None:
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self._stopped.set()
        self.running.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stopped.wait(self.every):
            if self.running.is_set() and not self._stopped.is_set() and self.leaked < self.limit:
                self.leak_one()

    def leak_one(self) -> int:
        """One more buffer held by one more fd of the leaky app; returns its inode."""
        inode = max(int(x["inode"]) for x in self.scene["buffers"]) + 1
        fd = max(int(f["fd"]) for f in self.proc["fds"]) + 1
        buf = {"inode": inode, "size": LEAK_SIZE, "exporter": LEAK_EXPORTER, "name": LEAK_NAME}
        entry = {"fd": fd, "buffer": inode}
        # the buffer exists before any fd refers to it, and an fd's fdinfo before its link
        if self.kv.sysfs_stats:
            stats = self.root / "sys" / "kernel" / "dmabuf" / "buffers"
            tmp = stats / f".new-{inode}"
            tmp.mkdir()
            _w(tmp / "exporter_name", f"{LEAK_EXPORTER}\n")
            _w(tmp / "size", f"{LEAK_SIZE}\n")
            with _writable(stats):
                tmp.rename(stats / str(inode))
        pd = self.root / "proc" / str(self.pid)
        owner = os.lstat(pd / "fd")
        with _writable(pd / "fdinfo"):
            info = pd / "fdinfo" / str(fd)
            _w(info, _fdinfo(entry, {inode: buf}, {inode: 1}, self.kv), 0o400)
            _chown(info, owner)
        with _writable(pd / "fd"):
            link = pd / "fd" / str(fd)
            os.symlink(f"/dmabuf:{LEAK_NAME}", link)
            _chown(link, owner)
        self.scene["buffers"].append(buf)
        self.proc["fds"].append(entry)
        self.leaked += 1
        return inode


def _chown(path: Path, like: os.stat_result) -> None:
    if os.geteuid() == 0:
        os.lchown(path, like.st_uid, like.st_gid)


class _writable:
    """Make a (0500/0555) directory writable by its owner for a moment."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.mode = 0

    def __enter__(self) -> None:
        self.mode = os.lstat(self.d).st_mode & 0o7777
        os.chmod(self.d, self.mode | 0o200)

    def __exit__(self, *exc: object) -> None:
        os.chmod(self.d, self.mode)


DEMO_PHONE = Path(__file__).resolve().parents[2] / "scripts" / "demo-phone"


class DemoPhoneProcess:
    """``scripts/demo-phone`` run as a user runs it, on free ports, until :meth:`stop`
    (SIGINT, as Ctrl-C). ``env`` points adb and dmaprof at its adb server."""

    def __init__(self, *args: str, workdir: Path, timeout: float = 60.0) -> None:
        from tests.emuphone.harness import free_port

        self.port = free_port()
        self.adb_port = free_port()
        while self.adb_port == self.port:
            self.adb_port = free_port()
        self.serial = f"127.0.0.1:{self.port}"
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.argv = [
            "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else "python3",
            str(DEMO_PHONE),
            "--port", str(self.port),
            "--adb-port", str(self.adb_port),
            *args,
        ]  # fmt: skip
        self.proc: Any = None
        self.stdout = ""
        self.stderr = ""
        self.returncode: int | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANDROID_")}
        env.update(
            ANDROID_ADB_SERVER_PORT=str(self.adb_port),
            ANDROID_ADB_SERVER_HOST="127.0.0.1",
            HOME=str(self.workdir),
        )
        return env

    def start(self) -> DemoPhoneProcess:
        import subprocess
        import time

        self.workdir.mkdir(parents=True, exist_ok=True)
        self._out = (self.workdir / "demo-phone.out").open("w+")
        self._err = (self.workdir / "demo-phone.err").open("w+")
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, text=True
        )
        deadline = time.monotonic() + self.timeout
        while f"adb connect {self.serial}" not in self._read(self._out):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"demo-phone did not come up (exit {self.returncode}):\n"
                    f"{self.stdout}\n{self.stderr}"
                )
            time.sleep(0.05)
        return self

    @staticmethod
    def _read(handle: Any) -> str:
        handle.flush()
        handle.seek(0)
        text: str = handle.read()
        return text

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C, then wait for it to end; returns its exit status."""
        import signal
        import subprocess

        if self.proc is None:
            return -1
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = int(self.proc.returncode)
        self.stdout = self._read(self._out)
        self.stderr = self._read(self._err)
        self._out.close()
        self._err.close()
        return self.returncode

    def __enter__(self) -> DemoPhoneProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
