"""The emulated phone's adbd (tests/emuphone/adbd.py) through the real adb server.

Every test goes through Debian's adb (CLI and server) or adbutils' AdbClient on a private
server port; nothing talks to adbd directly. One server and one phone serve the module;
fault tests start their own phones on the same server (several devices on one server).
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emuphone.harness import (
    AdbServer,
    EmulatedPhone,
    adb_path,
    client_env,
    kill_processes_in,
    port_open,
)
from tests.emuphone.minroot import DEFAULT_PROPS, build_base_root

adbutils = pytest.importorskip("adbutils")
AdbError = adbutils.AdbError

IS_ROOT = os.geteuid() == 0
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(adb_path() is None, reason="adb is not installed (apt-get install adb)"),
]
needs_root = pytest.mark.skipif(not IS_ROOT, reason="chroot and uid 2000 need root")

PROPS = {**DEFAULT_PROPS, "ro.product.model": "Dma Phone 7", "ro.product.name": "dmaphone"}
MIB = 1024 * 1024


def make_root(dest: Path, props: dict[str, str] | None = PROPS) -> Path:
    build_base_root(dest, props=props)
    secret = dest / "data" / "secret.txt"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    (dest / "tmp").mkdir(mode=0o777)
    (dest / "tmp").chmod(0o777)
    return dest


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("phone") / "root")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdbServer]:
    srv = AdbServer(tmp_path_factory.mktemp("adb"))
    with srv, client_env(srv.env):
        yield srv
    assert not port_open(srv.port)


@pytest.fixture(scope="module")
def phone(server: AdbServer, root: Path) -> Iterator[EmulatedPhone]:
    p = server.phone(root, shell_uid=2000 if IS_ROOT else None)
    yield p
    p.stop()
    assert not port_open(p.port)


@pytest.fixture
def dev(phone: EmulatedPhone) -> Any:
    return phone.device()


@pytest.fixture
def make_phone(server: AdbServer, root: Path) -> Iterator[Callable[..., EmulatedPhone]]:
    """Start extra (usually faulty) phones on the module's server; stopped after the test."""
    made: list[EmulatedPhone] = []

    def make(**kwargs: Any) -> EmulatedPhone:
        kwargs.setdefault("shell_uid", 2000 if IS_ROOT else None)
        p = EmulatedPhone(kwargs.pop("root", root), server=server, **kwargs).start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()
        assert not port_open(p.port)


def running(pid: int) -> bool:
    """pid exists and is not a zombie (an orphan's zombie may never be reaped in a
    container whose init does not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def devices_l(server: AdbServer) -> dict[str, str]:
    out = server.adb("devices", "-l").stdout
    return {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}


# ------------------------------------------------------------------ connect and banner


def test_devices_l_shows_banner(server: AdbServer, phone: EmulatedPhone) -> None:
    line = devices_l(server)[phone.serial]
    assert " device " in line
    # product/model/device come from the root's build.prop; adb turns spaces into "_".
    assert "product:dmaphone model:Dma_Phone_7 device:emu" in line
    infos = {i.serial: i.state for i in server.client().list()}
    assert infos[phone.serial] == "device"
    assert phone.serial in [d.serial for d in server.client().device_list()]


def test_connect_twice_says_already_connected(phone: EmulatedPhone) -> None:
    out = phone.server.adb("connect", phone.serial).stdout
    assert out.strip() == f"already connected to {phone.serial}"
    assert phone.server.devices()[phone.serial] == "device"


# ------------------------------------------------------------------ shell through the CLI


def test_cli_shell_v2_exit_code_and_stderr(phone: EmulatedPhone) -> None:
    r = phone.adb("shell", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_cli_shell_v1_merges_stderr_and_loses_exit_code(phone: EmulatedPhone) -> None:
    r = phone.adb("shell", "-x", "echo out; echo err >&2; exit 3")
    assert r.returncode == 0
    assert sorted(r.stdout.split()) == ["err", "out"] and r.stderr == ""


def test_cli_shell_stdin(phone: EmulatedPhone) -> None:
    r = phone.adb("shell", "wc -c", input=b"x" * 300_000, text=False)
    assert (r.returncode, r.stdout.strip()) == (0, b"300000")
    # No command: the script comes on stdin (raw shell, empty command).
    r = phone.adb("shell", input="echo $((6 * 7))\nexit 5\n")
    assert (r.returncode, r.stdout) == (5, "42\n")


def test_cli_shell_signal_exit_code(phone: EmulatedPhone) -> None:
    assert phone.adb("shell", "kill -9 $$").returncode == 137
    assert phone.adb("shell", "kill -TERM $$").returncode == 143


@needs_root
def test_shell_environment_is_android_like(phone: EmulatedPhone) -> None:
    r = phone.adb("shell", 'echo "$PATH|$TMPDIR|$ANDROID_DATA|$ANDROID_ROOT|$(id -u)|$(pwd)"')
    path, tmpdir, data, system, uid, cwd = r.stdout.strip().split("|")
    assert path.startswith("/product/bin:") and ":/system/bin:" in path
    assert (tmpdir, data, system, uid, cwd) == ("/data/local/tmp", "/data", "/system", "2000", "/")
    r = phone.adb("shell", "ls /system/bin/sh /dev/null && getprop ro.product.model")
    assert r.stdout.splitlines()[-1] == "Dma Phone 7"


@needs_root
def test_cli_push_pull_byte_for_byte(phone: EmulatedPhone, root: Path, tmp_path: Path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(5 * MIB + 123))
    src.chmod(0o644)
    r = phone.adb("push", str(src), "/data/local/tmp/cli/new/dir/blob.bin")
    assert r.returncode == 0, r.stderr
    on_phone = root / "data/local/tmp/cli/new/dir/blob.bin"
    st = on_phone.stat()
    # adbd copies the owner bits to group and others, creates parents 0775, all as shell.
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o666, 2000, 2000)
    parent = on_phone.parent.stat()
    assert (stat.S_IMODE(parent.st_mode), parent.st_uid) == (0o775, 2000)
    assert int(st.st_mtime) == int(src.stat().st_mtime)
    dst = tmp_path / "back.bin"
    r = phone.adb("pull", "/data/local/tmp/cli/new/dir/blob.bin", str(dst))
    assert r.returncode == 0, r.stderr
    assert dst.read_bytes() == src.read_bytes()


@needs_root
def test_cli_push_pull_directories_and_ls(phone: EmulatedPhone, root: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    for i, rel in enumerate(["x.txt", "a/y.txt", "a/b/z.bin"]):
        (tree / rel).write_bytes(os.urandom(1000 * (i + 1)))
    assert phone.adb("shell", "mkdir -p /data/local/tmp/trees").returncode == 0
    assert phone.adb("push", str(tree), "/data/local/tmp/trees").returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    r = phone.adb("pull", "/data/local/tmp/trees/tree", str(out))
    assert r.returncode == 0, r.stderr
    for rel in ["x.txt", "a/y.txt", "a/b/z.bin"]:
        assert (out / "tree" / rel).read_bytes() == (tree / rel).read_bytes()
    names = {
        line.split()[-1]
        for line in phone.adb("ls", "/data/local/tmp/trees/tree").stdout.split("\n")
        if line
    }
    assert names == {".", "..", "x.txt", "a"}


def test_cli_uses_sync_v2(phone: EmulatedPhone, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("v2\n")
    assert phone.adb("push", str(src), "/data/local/tmp/v2.txt").returncode == 0
    assert phone.adb("pull", "/data/local/tmp/v2.txt", str(tmp_path / "g")).returncode == 0
    assert phone.adb("ls", "/data/local/tmp").returncode == 0
    log = phone.log()
    assert "sync STA2 '/data/local/tmp/v2.txt'" in log
    assert "sync LIS2 '/data/local/tmp'" in log


# ------------------------------------------------------------------ adbutils


def test_adbutils_shell_shell2_and_props(dev: Any) -> None:
    assert dev.shell("echo hi; echo err >&2") == "hi\nerr"
    r = dev.shell2("echo out; echo err >&2; exit 4", v2=True)
    assert (r.returncode, r.stdout, r.stderr) == (4, "out\n", "err\n")
    r = dev.shell2("echo v1 >&2; false")  # v1: appends `; echo X4EXIT:$?`
    assert (r.returncode, r.output, r.stderr) == (1, "v1\n", "")
    assert set(dev.get_features().split(",")) == {
        "shell_v2",
        "cmd",
        "stat_v2",
        "ls_v2",
        "fixed_push_mkdir",
        "apex",
        "fixed_push_symlink_timestamp",
    }
    assert dev.prop.model == "Dma Phone 7"
    assert dev.getprop("ro.build.version.sdk") == "34"
    assert dev.getprop("no.such.prop") == ""
    listing = dev.shell("getprop").splitlines()
    assert "[ro.product.model]: [Dma Phone 7]" in listing and listing == sorted(listing)
    assert dev.shell(["echo", "it's quoted"]) == "it's quoted"


def test_adbutils_sync_roundtrip(dev: Any, tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 7)
    before = time.time()
    assert dev.sync.push(data, "/data/local/tmp/au/blob.bin") == len(data)
    info = dev.sync.stat("/data/local/tmp/au/blob.bin")
    assert info.mode == stat.S_IFREG | 0o777  # adbutils' default 0o755, owner bits copied
    assert info.size == len(data)
    assert info.mtime.timestamp() >= int(before) - 1
    assert dev.sync.exists("/data/local/tmp/au") and not dev.sync.exists("/nope")
    assert dev.sync.stat("/nope").mode == 0
    names = {f.path: f for f in dev.sync.list("/data/local/tmp/au")}
    assert set(names) == {".", "..", "blob.bin"}
    assert names["blob.bin"].size == len(data)
    assert b"".join(dev.sync.iter_content("/data/local/tmp/au/blob.bin")) == data
    assert dev.sync.pull_file("/data/local/tmp/au/blob.bin", tmp_path / "b") == len(data)
    assert (tmp_path / "b").read_bytes() == data
    dev.sync.push(b"text\n", "/data/local/tmp/au/t.txt")
    assert dev.sync.read_text("/data/local/tmp/au/t.txt") == "text\n"
    with pytest.raises(AdbError, match="open failed: No such file or directory"):
        dev.sync.pull_file("/data/local/tmp/au/missing", tmp_path / "m")
    # a directory push target gets the source's basename appended (by adbutils)
    src = tmp_path / "named.txt"
    src.write_text("named\n")
    dev.sync.push(src, "/data/local/tmp/au")
    assert dev.sync.read_text("/data/local/tmp/au/named.txt") == "named\n"


def test_adbutils_stream_and_exec(dev: Any) -> None:
    c = dev.shell("head -c 3000000 /dev/zero", stream=True)
    got = 0
    while chunk := c.conn.recv(MIB):
        got += len(chunk)
    c.close()
    assert got == 3_000_000
    c = dev.open_transport()
    c.send_command("exec:echo exec-ok")
    c.check_okay()
    assert c.read_until_close() == "exec-ok\n"
    c.close()


def test_unknown_service_is_refused(dev: Any) -> None:
    c = dev.open_transport()
    c.send_command("reboot:bootloader")
    with pytest.raises(AdbError, match="closed"):
        c.check_okay()
    c.close()


def test_pty_shell(dev: Any) -> None:
    c = dev.open_transport()
    c.send_command("shell,v2,pty:")  # interactive shell, no command
    c.check_okay()

    def packet(ident: int, data: bytes) -> bytes:
        return struct.pack("<BI", ident, len(data)) + data

    c.conn.sendall(packet(5, b"24x80,0x0") + packet(0, b"echo $((40 + 2)); exit 7\n"))
    out, code = b"", None
    while code is None:
        ident, n = struct.unpack("<BI", c.read_exact(5))
        data = c.read_exact(n)
        if ident == 1:
            out += data
        elif ident == 3:
            code = data[0]
    c.close()
    assert code == 7 and b"42\r\n" in out


@needs_root
def test_host_close_hangs_up_the_command(dev: Any) -> None:
    c = dev.shell("echo $$; exec sleep 30", stream=True)
    pid = int(c.conn.recv(100).split()[0])
    assert running(pid)
    c.close()
    deadline = time.monotonic() + 3
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not running(pid)


# ------------------------------------------------------------------ uid 2000, path safety


@needs_root
def test_uid_2000_gets_permission_denied(phone: EmulatedPhone, dev: Any, tmp_path: Path) -> None:
    r = dev.shell2("id -u; cat /data/secret.txt", v2=True)
    assert r.returncode == 1 and r.stdout == "2000\n" and "Permission denied" in r.stderr
    with pytest.raises(AdbError, match="open failed: Permission denied"):
        dev.sync.pull_file("/data/secret.txt", tmp_path / "s")
    src = tmp_path / "x"
    src.write_text("x")
    r = phone.adb("push", str(src), "/data/x.txt")  # adb 29 prints its errors on stdout
    assert r.returncode == 1 and "remote couldn't create file: Permission denied" in r.stdout
    with pytest.raises(AdbError):
        dev.sync.push(b"x", "/system/x.txt")  # adbutils drops the reason: just "FAIL"
    # ... and the sync service still works afterwards (a new one per call).
    assert dev.sync.read_text("/data/local/tmp/au/t.txt") == "text\n"


def test_sync_paths_cannot_escape_the_root(dev: Any, root: Path) -> None:
    marker = f"escape-{os.getpid()}-{time.monotonic_ns()}.txt"
    dev.sync.push(b"a", f"/../../../../../tmp/{marker}")
    assert (root / "tmp" / marker).read_bytes() == b"a"
    assert not Path("/tmp", marker).exists()
    tmp = root / "data/local/tmp"
    (tmp / "up").symlink_to("../../../../../../../../..")
    (tmp / "abs").symlink_to("/etc")
    (tmp / "tmplink").symlink_to("/../../tmp")
    try:
        passwd = dev.sync.read_text("/data/local/tmp/up/etc/passwd")
        assert passwd == (root / "etc/passwd").read_text()
        assert {f.path for f in dev.sync.list("/data/local/tmp/abs")} == {
            ".",
            "..",
            "passwd",
            "group",
        }
        dev.sync.push(b"b", f"/data/local/tmp/tmplink/2{marker}")
        assert (root / "tmp" / f"2{marker}").read_bytes() == b"b"
        assert not Path("/tmp", f"2{marker}").exists()
        assert dev.sync.stat("/data/local/tmp/up").mode & stat.S_IFLNK == stat.S_IFLNK
    finally:
        for name in ("up", "abs", "tmplink"):
            (tmp / name).unlink()


# ------------------------------------------------------------------ fault switches


def test_auth_accept_connect_delay_bad_checksums(
    make_phone: Callable[..., EmulatedPhone],
) -> None:
    t0 = time.monotonic()
    p = make_phone(auth="accept", connect_delay=0.3, extra_args=["--bad-checksum"])
    assert time.monotonic() - t0 >= 0.3  # adb connect waited for the late CNXN
    assert p.connect_message == f"connected to {p.serial}"
    assert "AUTH type 2" in p.log()  # a signature was sent, and accepted
    r = p.adb("shell", "echo ok; exit 2")  # adb 29 never checks data_check
    assert (r.returncode, r.stdout) == (2, "ok\n")


def test_auth_deny_is_unauthorized(make_phone: Callable[..., EmulatedPhone]) -> None:
    p = make_phone(auth="deny")
    assert p.connect_message == f"failed to authenticate to {p.serial}"
    assert p.server.devices()[p.serial] == "unauthorized"
    r = p.adb("shell", "true")
    assert r.returncode == 1 and "device unauthorized" in r.stderr
    with pytest.raises(AdbError, match="unauthorized"):
        p.device().shell("true")


def test_auth_prompt_turns_device_without_reconnect(
    make_phone: Callable[..., EmulatedPhone],
) -> None:
    t0 = time.monotonic()
    p = make_phone(auth="prompt", prompt_delay=0.4, expect="unauthorized")
    assert p.connect_message == f"failed to authenticate to {p.serial}"
    p.server.wait_state(p.serial, "device", timeout=5)
    assert time.monotonic() - t0 >= 0.4
    assert p.adb("shell", "echo allowed").stdout == "allowed\n"
    assert p.log().count(": connected\n") == 1  # same TCP connection


def test_no_features_old_device(make_phone: Callable[..., EmulatedPhone], tmp_path: Path) -> None:
    p = make_phone(features="")
    r = p.adb("shell", "echo err >&2; exit 3")
    assert r.returncode == 0 and r.stdout == "err\n"  # fell back to shell:
    d = p.device()
    assert d.get_features() == ""
    r = d.shell2("echo hi; false", v2=True)  # warns, then v1 + `; echo X4EXIT:$?`
    assert (r.returncode, r.output) == (1, "hi\n")
    src = tmp_path / "f"
    src.write_bytes(os.urandom(200_000))
    assert p.adb("push", str(src), "/data/local/tmp/nofeat.bin").returncode == 0
    assert p.adb("pull", "/data/local/tmp/nofeat.bin", str(tmp_path / "g")).returncode == 0
    assert (tmp_path / "g").read_bytes() == src.read_bytes()
    log = p.log()
    assert "sync STAT" in log and "sync RECV" in log
    assert "STA2" not in log and "LST2" not in log and "LIS2" not in log


def test_old_protocol_small_maxdata(
    make_phone: Callable[..., EmulatedPhone], tmp_path: Path
) -> None:
    p = make_phone(maxdata=4096, proto_version=0x01000000)
    assert "version 0x1000000 maxdata 4096" in p.log()
    src = tmp_path / "f"
    src.write_bytes(os.urandom(300_001))
    assert p.adb("push", str(src), "/data/local/tmp/old.bin").returncode == 0
    assert p.adb("pull", "/data/local/tmp/old.bin", str(tmp_path / "g")).returncode == 0
    assert (tmp_path / "g").read_bytes() == src.read_bytes()
    assert p.device().shell2("head -c 100000 /dev/zero | wc -c", v2=True).stdout.strip() == "100000"


def test_recovery_state(make_phone: Callable[..., EmulatedPhone]) -> None:
    p = make_phone(state="recovery")
    assert " recovery " in devices_l(p.server)[p.serial]
    assert p.adb("shell", "echo rec").stdout == "rec\n"
    client = p.server.client()
    assert {i.serial: i.state for i in client.list()}[p.serial] == "recovery"
    assert p.serial not in [d.serial for d in client.device_list()]


def test_slow_device(make_phone: Callable[..., EmulatedPhone]) -> None:
    p = make_phone(slow=0.05)
    t0 = time.monotonic()
    r = p.adb("shell", "echo slow")
    # OKAY to OPEN, the stdout WRTE, the exit WRTE, CLSE: 4 x 50 ms at least
    assert r.stdout == "slow\n" and time.monotonic() - t0 >= 0.2


def test_offline_device(make_phone: Callable[..., EmulatedPhone]) -> None:
    p = make_phone(offline="vanish")
    assert p.connect_message == f"connected to {p.serial}"  # then it went away
    assert p.server.devices()[p.serial] == "offline"
    r = p.adb("shell", "true")
    assert r.returncode == 1 and "device offline" in r.stderr
    with pytest.raises(AdbError, match="offline"):
        p.device().shell("true")
    # TCP accepted, CNXN never sent: "offline" at once (`adb connect` would wait 10 s)
    q = make_phone(offline="silent")
    assert q.server.devices()[q.serial] == "offline"
    assert "device offline" in q.adb("shell", "true").stderr


def test_die_during_push(make_phone: Callable[..., EmulatedPhone]) -> None:
    p = make_phone(die_on=["send:victim"], die_after=200_000)
    with pytest.raises((AdbError, OSError)):
        p.device().sync.push(os.urandom(MIB), "/data/local/tmp/victim.bin")
    p.proc.wait(5)  # type: ignore[union-attr]
    assert p.proc.returncode == 137  # type: ignore[union-attr]
    p.server.wait_state(p.serial, "offline")


def test_die_during_pull(make_phone: Callable[..., EmulatedPhone], root: Path) -> None:
    p = make_phone(die_on=["recv:dump"], die_after=300_000)
    d = p.device()
    d.sync.push(os.urandom(MIB), "/data/local/tmp/dump.bin")
    with pytest.raises(AdbError, match="Invalid sync cmd"):
        b"".join(d.sync.iter_content("/data/local/tmp/dump.bin"))
    p.server.wait_state(p.serial, "offline")


def test_die_during_command(make_phone: Callable[..., EmulatedPhone]) -> None:
    p = make_phone(die_on=["shell:collector"], die_after=10)
    d = p.device()
    assert d.shell2("echo fine", v2=True).stdout == "fine\n"
    with pytest.raises(EOFError):  # adbutils' shell2 v2 on a dead stream
        d.shell2("echo collector started; sleep 5", v2=True)
    p.server.wait_state(p.serial, "offline")


def test_die_v1_shell_returns_partial_output(make_phone: Callable[..., EmulatedPhone]) -> None:
    p = make_phone(die_on=["shell:collector"], die_after=10)
    out = p.device().shell("echo collector started; sleep 5")
    assert out == "collector started"  # no error at all: v1 cannot tell


@needs_root
def test_kill_mid_run(make_phone: Callable[..., EmulatedPhone], root: Path) -> None:
    p = make_phone()
    c = p.device().shell("echo $$; exec sleep 30", stream=True)
    pid = int(c.conn.recv(100).split()[0])
    t0 = time.monotonic()
    p.kill()  # waits until the server lists it offline
    assert time.monotonic() - t0 < 2
    assert c.conn.recv(100) == b""
    c.close()
    assert not running(pid)  # the command died with the phone (parent-death signal)
    assert not any(running(p) for p in kill_processes_in(root))


def test_two_phones_one_server(
    make_phone: Callable[..., EmulatedPhone], phone: EmulatedPhone, tmp_path: Path
) -> None:
    # no build.prop: the banner's product values come from the options
    other = make_root(tmp_path / "other", props=None)
    p = make_phone(root=other, extra_args=["--model", "Second", "--product", "optprod"])
    lines = devices_l(p.server)
    assert "product:optprod model:Second device:emu" in lines[p.serial]
    assert "model:Dma_Phone_7" in lines[phone.serial]
    assert p.adb("shell", "echo two").stdout == phone.adb("shell", "echo two").stdout
    assert phone.device().prop.model == "Dma Phone 7"
    env = p.env
    assert env["ANDROID_SERIAL"] == p.serial and env["ADBUTILS_ADB_PATH"] != ""
    assert env["ANDROID_ADB_SERVER_PORT"] == str(p.server.port)


def test_non_chroot_mode(make_phone: Callable[..., EmulatedPhone], root: Path) -> None:
    p = make_phone(chroot=False, shell_uid=None)
    # cwd is the root; "#!/system/bin/sh" scripts cannot run (that path is the host's).
    r = p.adb("shell", "pwd; sh system/bin/getprop ro.product.model; ls system/bin/sh")
    assert r.stdout.splitlines() == [os.path.realpath(root), "Dma Phone 7", "system/bin/sh"]


def test_help_documents_every_switch() -> None:
    from tests.emuphone.harness import ADBD, default_python

    out = subprocess.run(
        [default_python(), str(ADBD), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for switch in (
        "--auth", "--prompt-delay", "--connect-delay", "--features", "--maxdata",
        "--proto-version", "--state", "--slow", "--bad-checksum", "--offline", "--die-on",
        "--die-after", "--shell-uid", "--chroot",
    ):  # fmt: skip
        assert switch in out


def test_ports_are_private(server: AdbServer, phone: EmulatedPhone) -> None:
    assert server.port != 5037 and phone.port not in range(5555, 5586)
    with socket.socket() as s:  # the phone listens on loopback only
        assert s.connect_ex(("127.0.0.1", phone.port)) == 0
