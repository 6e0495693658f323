#!/bin/sh
# /init of dmaprof's qemu testbed (scripts/vm/init.sh; docs/vm-testbed.md). busybox sh, PID 1.
#
# Knobs come from the kernel command line (words dmaprof.KEY=VALUE, set by run.py):
#   mode=scene|boot|shell|emu  snaps=N  gap=SECONDS  leak_ms=MS  exporter=system|vgem|udmabuf
#   settle=SECONDS (before the first snapshot)  ctimeout=SECONDS (per collector run)
#   scene=0|1 (shell/emu)  port=N (emu)  emu_chroot=1|0 (emu: python3 in the rootfs chroot, or
#   in the guest's own root through the rootfs's dynamic loader)
#   ro=1 (scene: snapshots in a chroot with no /tmp, no TMPDIR and a read-only root apart
#   from /data/w; odd snapshots run in /data/w, even ones in / where nothing is writable)
#   mode=bench: the scale scene (procs bufs dmafds otherfds maps) and `rounds` interleaved
#   runs of the read floor and the collector (docs/vm-testbed.md "Benchmark")
# Progress markers "@@dmaprof NAME UPTIME [EXTRA]" go to the console (run.py times them).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
umask 022

up() { read -r _u _ < /proc/uptime; echo "$_u"; }
mark() { echo "@@dmaprof $1 $(up)${2:+ $2}"; }
OUT=/mnt/host/out
SHARE=0

finish() {
    if [ "$SHARE" = 1 ]; then
        dmesg > "$OUT/dmesg" 2>&1
        if [ -d /run/scene ]; then
            mkdir -p "$OUT/scene"
            cp /run/scene/*.log /run/scene/scene.json /run/scene/roles "$OUT/scene/" 2>/dev/null
        fi
        sync
        umount /mnt/host 2>/dev/null
    fi
    mark "$1"
    poweroff -f
    sleep 10
}

fail() {
    echo "init: ERROR: $*"
    [ "$SHARE" = 1 ] && echo "$*" > "$OUT/error"
    finish failed
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "+memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
hostname dmaprof-vm
mark shell "$(cat /etc/kver)"

mode=scene snaps=2 gap=3 leak_ms=300 exporter="" settle=0 scene=1 port=7555 ctimeout=60
emu_chroot=1 ro=0 procs=500 bufs=200 dmafds=40 otherfds=30 maps=100 rounds=5
for w in $(cat /proc/cmdline); do
    case "$w" in
    dmaprof.*=*)
        k=${w%%=*}
        k=${k#dmaprof.}
        v=${w#*=}
        case "$k" in
        mode | snaps | gap | leak_ms | exporter | settle | scene | port | ctimeout | emu_chroot | \
            ro | procs | bufs | dmafds | otherfds | maps | rounds)
            eval "$k=\$v"
            ;;
        esac
        ;;
    esac
done

load_modules() {
    while read -r m; do
        [ -n "$m" ] || continue
        insmod "/lib/modules/$m.ko" 2>/tmp/insmod.err || {
            grep -q 'File exists' /tmp/insmod.err || echo "init: insmod $m: $(cat /tmp/insmod.err)"
        }
    done < "/lib/modules/$1.order"
}
load_modules base
mark modules

mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host0 /mnt/host ||
    fail "cannot mount the 9p share host0"
SHARE=1
mkdir -p "$OUT"
mark share

if [ -f /mnt/host/collect.sh ]; then
    # the analogue of adb push + adb shell sh /data/local/tmp/collect.sh
    cp /mnt/host/collect.sh /data/local/tmp/collect.sh && chmod 0755 /data/local/tmp/collect.sh
fi

SCENE_DIR=/run/scene
start_scene() {
    mkdir -p "$SCENE_DIR"
    /bin/scene --dir "$SCENE_DIR" --leak-ms "$leak_ms" ${exporter:+--exporter "$exporter"} \
        > "$SCENE_DIR/orchestrator.log" 2>&1 &
    i=0
    while [ ! -e "$SCENE_DIR/READY" ]; do
        [ -e "$SCENE_DIR/ERROR" ] && fail "scene: $(cat "$SCENE_DIR/ERROR")"
        i=$((i + 1))
        [ $i -gt 1200 ] && fail "scene not ready after 60 s: $(cat "$SCENE_DIR/orchestrator.log")"
        usleep 50000
    done
    leaky=$(awk '$1 == "leaky" { print $2 }' "$SCENE_DIR/roles")
    mark ready "exporter=$(awk -F'"' '/"exporter"/ { print $4 }' "$SCENE_DIR/scene.json")"
}

# SIGUSR1: the leaker's worker stops, it rewrites its ground truth, then creates the ack file.
pause_leaky() {
    kill -USR1 "$leaky" || return 1
    i=0
    while [ ! -e "$SCENE_DIR/leaky.paused" ]; do
        i=$((i + 1))
        [ $i -gt 500 ] && return 1
        usleep 10000
    done
}
resume_leaky() {
    kill -USR2 "$leaky" || return 1
    i=0
    while [ -e "$SCENE_DIR/leaky.paused" ]; do
        i=$((i + 1))
        [ $i -gt 500 ] && return 1
        usleep 10000
    done
}

# emu mode: pause/resume requests from the host over the share (run.py EmuSession.pause_scene).
# The host renames emu/ctl/ID.req into place holding "pause" or "resume"; the answer is
# emu/ctl/ID.ack ("ok" or "error: ..."), written once done. A pause copies the ground truth
# to emu/ctl/ID.gt/ while the leaker is stopped, as the scene mode does after each dump.
emu_control() {
    C=/mnt/host/emu/ctl
    mkdir -p "$C"
    while :; do
        for req in "$C"/*.req; do
            [ -f "$req" ] || continue
            id=${req##*/}
            id=${id%.req}
            what=$(cat "$req")
            rm -f "$req"
            st=ok
            case "$what" in
            pause)
                if pause_leaky; then
                    mkdir -p "$C/$id.gt" && cp "$SCENE_DIR"/gt-*.json "$SCENE_DIR/roles" \
                        "$SCENE_DIR/scene.json" "$C/$id.gt/" ||
                        st="error: cannot copy the ground truth"
                else
                    st="error: the leaker did not acknowledge SIGUSR1"
                fi
                ;;
            resume) resume_leaky || st="error: the leaker did not acknowledge SIGUSR2" ;;
            *) st="error: unknown request '$what'" ;;
            esac
            mark "ctl_$what" "$id $st"
            echo "$st" > "$C/.$id.ack" && mv "$C/.$id.ack" "$C/$id.ack"
        done
        usleep 100000
    done
}

# bench mode: the scale scene, then the floor reader and the collector interleaved; one
# JSON line per run in out/bench.jsonl (floor.c's `time`), the last dump and floor output kept
run_bench() {
    mkdir -p /run/scale /run/bench
    /bin/scale --dir /run/scale --procs "$procs" --bufs "$bufs" --dmafds "$dmafds" \
        --otherfds "$otherfds" --maps "$maps" > /run/scale/log 2>&1 &
    i=0
    while [ ! -e /run/scale/READY ]; do
        [ -e /run/scale/ERROR ] && fail "scale: $(cat /run/scale/ERROR)"
        i=$((i + 1))
        [ $i -gt 2400 ] && fail "scale scene not ready after 120 s: $(cat /run/scale/log)"
        usleep 50000
    done
    mark ready "$(cat /run/scale/READY)"
    B=/run/bench
    r=0
    while [ "$r" -le "$rounds" ]; do # round 0 warms the caches and is not reported
        for what in floor collector; do
            if [ "$what" = floor ]; then
                set -- /bin/floor read
            else
                set -- sh /data/local/tmp/collect.sh
            fi
            line=$(cd / && /bin/floor time "$B/$what.out" "$@" 2> "$B/$what.err") ||
                fail "floor time $what failed"
            echo "{\"round\": $r, \"what\": \"$what\", \"run\": $line}" >> "$OUT/bench.jsonl"
        done
        mark "round$r"
        r=$((r + 1))
    done
    # an experiment of one's own (docs/vm-testbed.md): the scale scene still running
    [ -f /mnt/host/probe.sh ] && (cd / && sh /mnt/host/probe.sh > "$OUT/probe.log" 2>&1)
    cp "$B/collector.out" "$OUT/dump"
    cp "$B/collector.err" "$OUT/dump.stderr"
    cp "$B/floor.err" "$OUT/floor.summary"
    cp "$B/floor.out" "$OUT/floor.out"
}

# ro=1: the collector in a chroot with no /tmp, no TMPDIR and a read-only root apart from
# one tmpfs directory, /data/w (a serial console or recovery: issue #13 item 3)
RO=/mnt/ro
make_ro_root() {
    umount /tmp && rmdir /tmp || fail "cannot remove /tmp"
    mkdir -p /data/w "$RO" || fail "mkdir /data/w $RO"
    mount --bind / "$RO" && mount -o remount,bind,ro "$RO" || fail "read-only bind of /"
    for d in proc sys dev run; do mount -o rbind "/$d" "$RO/$d" || fail "bind /$d"; done
    mount -t tmpfs -o mode=0755 tmpfs "$RO/data/w" || fail "tmpfs on /data/w"
    touch "$RO/ro-probe" 2>/dev/null && fail "the chroot's root is writable"
}

case "$mode" in
boot)
    finish done
    ;;
bench)
    run_bench
    finish done
    ;;
shell)
    [ "$scene" = 1 ] && start_scene
    echo "init: share at /mnt/host, collector at /data/local/tmp/collect.sh; exit to power off"
    setsid cttyhack sh -l
    finish done
    ;;
emu)
    load_modules net
    ip link set lo up
    ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
    R=/mnt/rootfs
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro rootfs "$R" ||
        fail "cannot mount the rootfs share (tag rootfs)"
    # recursive binds: /sys carries debugfs and cgroup2, /dev carries devpts and shm
    for d in proc sys dev run tmp; do mount -o rbind "/$d" "$R/$d" || fail "bind /$d"; done
    mount --bind /mnt/host "$R/mnt/host" || fail "bind /mnt/host"
    mount --bind /data/local/tmp "$R/data/local/tmp" || fail "bind /data/local/tmp"
    mark net
    ctl_pid=""
    if [ "$scene" = 1 ]; then
        start_scene
        emu_control &
        ctl_pid=$!
    fi
    args=""
    [ -f /mnt/host/emu/args ] && args=$(cat /mnt/host/emu/args)
    script=$(cat /mnt/host/emu/script)
    mark emu_start "port=$port chroot=$emu_chroot"
    # one argument per line in emu/args; word splitting: arguments cannot hold blanks
    if [ "$emu_chroot" = 1 ]; then
        # shellcheck disable=SC2086
        chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            DMAPROF_EMU_PORT="$port" /usr/bin/python3 "/mnt/host/emu/$script" $args \
            > "$OUT/emu.log" 2>&1
    else
        # The guest's own root: the rootfs's python3 started by the rootfs's dynamic loader
        # (the rootfs is only a library here), so the script sees the initramfs as "/", with
        # busybox's applets in /system/bin (as toybox's on a phone; run.py links them) and
        # the real /proc, /sys, /dev.
        L=$R/usr/lib/x86_64-linux-gnu
        # shellcheck disable=SC2086
        env -i PATH=/system/bin:/sbin:/bin:/usr/sbin:/usr/bin HOME=/root \
            DMAPROF_EMU_PORT="$port" "$L/ld-linux-x86-64.so.2" --library-path "$L" \
            "$R/usr/bin/python3" "/mnt/host/emu/$script" $args > "$OUT/emu.log" 2>&1
    fi
    mark emu_exit "rc=$?"
    [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null
    finish done
    ;;
scene) ;;
*) fail "unknown mode $mode" ;;
esac

start_scene
[ "$ro" = 1 ] && make_ro_root
[ "$settle" != 0 ] && sleep "$settle"
n=1
while [ "$n" -le "$snaps" ]; do
    [ "$n" -gt 1 ] && sleep "$gap"
    d="$OUT/snap$n"
    mkdir -p "$d/groundtruth"
    pause_leaky || fail "the leaker did not acknowledge SIGUSR1"
    mark "snap${n}_start"
    t0=$(up)
    # killed after ctimeout seconds: the dump then lacks its done line (rc 143)
    if [ "$ro" = 1 ]; then
        wd=/
        [ $((n % 2)) = 1 ] && wd=/data/w
        chroot "$RO" /bin/sh -c "cd $wd && exec env -u TMPDIR timeout $ctimeout sh \
            /data/local/tmp/collect.sh" > "$d/dump" 2> "$d/stderr"
        rc=$?
        echo "$wd" > "$d/cwd"
        ls -A "$RO/data/w" > "$d/w_after" 2>&1
    else
        (cd / && timeout "$ctimeout" sh /data/local/tmp/collect.sh > "$d/dump" 2> "$d/stderr")
        rc=$?
    fi
    t1=$(up)
    mark "snap${n}_end" "rc=$rc"
    echo "$rc" > "$d/rc"
    echo "$t0 $t1" > "$d/time"
    # still paused: the ground truth describes the state the dump saw
    cp "$SCENE_DIR"/gt-*.json "$SCENE_DIR/roles" "$SCENE_DIR/scene.json" "$d/groundtruth/"
    resume_leaky || fail "the leaker did not acknowledge SIGUSR2"
    n=$((n + 1))
done
finish done
