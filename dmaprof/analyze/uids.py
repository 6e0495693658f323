"""Android uids: well-known system uids, app/user arithmetic, and the owner rule.

From AOSP ``android_filesystem_config.h`` and ``android.os.Process``:

* ``uid = user_id * 100000 + app_id`` (``AID_USER_OFFSET``);
* app ids 10000-19999 are apps (``FIRST_APPLICATION_UID`` .. ``LAST_APPLICATION_UID``);
* 20000-29999 are SDK sandbox processes: ``sandbox = app + 10000``
  (``Process.toSdkSandboxUid``), mapped back to their app;
* 90000-98999 are app zygotes and 99000-99999 isolated processes: the uid does not say
  which app started them, so they are mapped by process name (see :func:`owner_uid`).
"""

from __future__ import annotations

USER_OFFSET = 100_000
FIRST_APP = 10_000
LAST_APP = 19_999
FIRST_SDK_SANDBOX = 20_000
LAST_SDK_SANDBOX = 29_999
FIRST_APP_ZYGOTE = 90_000
LAST_APP_ZYGOTE = 98_999
FIRST_ISOLATED = 99_000
LAST_ISOLATED = 99_999

WELL_KNOWN_UIDS: dict[int, str] = {
    0: "root",
    1: "daemon",
    2: "bin",
    3: "sys",
    1000: "system",
    1001: "radio",
    1002: "bluetooth",
    1003: "graphics",
    1004: "input",
    1005: "audio",
    1006: "camera",
    1007: "log",
    1008: "compass",
    1009: "mount",
    1010: "wifi",
    1011: "adb",
    1012: "install",
    1013: "media",
    1014: "dhcp",
    1015: "sdcard_rw",
    1016: "vpn",
    1017: "keystore",
    1018: "usb",
    1019: "drm",
    1020: "mdnsr",
    1021: "gps",
    1023: "media_rw",
    1024: "mtp",
    1026: "drmrpc",
    1027: "nfc",
    1028: "sdcard_r",
    1029: "clat",
    1030: "loop_radio",
    1031: "mediadrm",
    1032: "package_info",
    1033: "sdcard_pics",
    1034: "sdcard_av",
    1035: "sdcard_all",
    1036: "logd",
    1037: "shared_relro",
    1038: "dbus",
    1039: "tlsdate",
    1040: "mediaex",
    1041: "audioserver",
    1042: "metrics_coll",
    1043: "metricsd",
    1044: "webserv",
    1045: "debuggerd",
    1046: "mediacodec",
    1047: "cameraserver",
    1048: "firewall",
    1049: "trunks",
    1050: "nvram",
    1051: "dns",
    1052: "dns_tether",
    1053: "webview_zygote",
    1054: "vehicle_network",
    1055: "media_audio",
    1056: "media_video",
    1057: "media_image",
    1058: "tombstoned",
    1059: "media_obb",
    1060: "ese",
    1061: "ota_update",
    1062: "automotive_evs",
    1063: "lowpan",
    1064: "hsm",
    1065: "reserved_disk",
    1066: "statsd",
    1067: "incidentd",
    1068: "secure_element",
    1069: "lmkd",
    1070: "llkd",
    1071: "iorapd",
    1072: "gpu_service",
    1073: "network_stack",
    1074: "gsid",
    1075: "fsverity_cert",
    1076: "credstore",
    1077: "external_storage",
    1078: "ext_data_rw",
    1079: "ext_obb_rw",
    1080: "context_hub",
    1081: "virtualizationservice",
    1082: "artd",
    1083: "uwb",
    1084: "thread_network",
    1085: "diced",
    1086: "dmesgd",
    1087: "jc_weaver",
    1088: "jc_strongbox",
    1089: "jc_identitycred",
    1090: "sdk_sandbox",
    1091: "security_log_writer",
    1092: "prng_seeder",
    2000: "shell",
    2001: "cache",
    2002: "diag",
    3001: "net_bt_admin",
    3002: "net_bt",
    3003: "inet",
    3004: "net_raw",
    3005: "net_admin",
    3006: "net_bw_stats",
    3007: "net_bw_acct",
    3009: "readproc",
    3010: "wakelock",
    3011: "uhid",
    3012: "readtracefs",
    9997: "everybody",
    9998: "misc",
    9999: "nobody",
}


def app_id(uid: int) -> int:
    return uid % USER_OFFSET


def user_id(uid: int) -> int:
    return uid // USER_OFFSET


def is_app_uid(uid: int) -> bool:
    """An app (or a process started on an app's behalf: SDK sandbox, app zygote, isolated)."""
    a = app_id(uid)
    return FIRST_APP <= a <= LAST_SDK_SANDBOX or FIRST_APP_ZYGOTE <= a <= LAST_ISOLATED


def uid_kind(uid: int) -> str:
    a = app_id(uid)
    if FIRST_APP <= a <= LAST_APP:
        return "app"
    if FIRST_SDK_SANDBOX <= a <= LAST_SDK_SANDBOX:
        return "sdk_sandbox"
    if FIRST_APP_ZYGOTE <= a <= LAST_ISOLATED:
        return "isolated"
    if a < FIRST_APP:
        return "system"
    return "other"


def uid_name(uid: int) -> str | None:
    """``system``, ``u10_system`` for a system uid of user 10, ``None`` for unknown ones."""
    name = WELL_KNOWN_UIDS.get(app_id(uid))
    if name is None:
        return None
    u = user_id(uid)
    return name if u == 0 else f"u{u}_{name}"


def package_prefix(cmdline0: str | None, name: str | None) -> str | None:
    """The package a process name points at: ``com.foo`` for ``com.foo:remote``,
    ``com.foo:sandboxed_process0`` or ``com.foo_zygote``."""
    for text in (cmdline0, name):
        if not text:
            continue
        base = text.rsplit("/", 1)[-1]
        pkg = base.split(":", 1)[0]
        if pkg.endswith("_zygote"):
            pkg = pkg[: -len("_zygote")]
        if "." in pkg:
            return pkg
    return None


def owner_uid(
    uid: int,
    cmdline0: str | None,
    name: str | None,
    package_uids: dict[str, list[int]],
) -> int:
    """The uid a process is rolled up under (docs/attribution.md, "Apps").

    * SDK sandbox (app id 20000-29999): the app uid ``uid - 10000``.
    * app zygote / isolated (app id 90000-99999): the uid of the package named by the
      process (``com.foo:sandboxed_process0`` -> ``com.foo``, ``com.foo_zygote`` ->
      ``com.foo``) in the same user, when the package list knows it; else the uid itself.
    * anything else: the uid itself.
    """
    a = app_id(uid)
    if FIRST_SDK_SANDBOX <= a <= LAST_SDK_SANDBOX:
        return uid - (FIRST_SDK_SANDBOX - FIRST_APP)
    if FIRST_APP_ZYGOTE <= a <= LAST_ISOLATED:
        pkg = package_prefix(cmdline0, name)
        if pkg is not None and pkg in package_uids:
            u = user_id(uid)
            cands = package_uids[pkg]
            for c in cands:
                if user_id(c) == u:
                    return c
            return u * USER_OFFSET + app_id(cands[0])
    return uid
