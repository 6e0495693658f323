#!/bin/sh
# Stand-in for dmaprof's collector (dmaprof/device/collect.sh), used by the VM tests only
# while the real one does not exist yet. It writes a subset of the `dmaprof.dump/1` framed
# stream (docs/dump-format.md): meta, global, dma_heap, sysfs_buffers, proc, maps, fdaccess,
# tasks, fdlinks, fdinfo, end, done. POSIX sh + busybox; not tuned for speed (it forks a
# subshell per command substitution, but spawns no program per process or per fd).
# It is NOT the product: it exists so the testbed and the dump checker can be exercised.

N=$(tr -d '-' < /proc/sys/kernel/random/uuid)
T=${TMPDIR:-/data/local/tmp}/.standin.$$
read -r UP0 _ < /proc/uptime
while read -r k v _; do [ "$k" = processes ] && SP0=$v; done < /proc/stat

echo "DMAPROF-DUMP 1 $N"

# section NAME KIND COMMAND...: frame the command's stdout; its stderr becomes NAME.err
section() {
    _name=$1 _kind=$2
    shift 2
    echo "@$N section $_name $_kind"
    "$@" 2> "$T.err"
    _rc=$?
    echo "@$N end $_name rc=$_rc"
    if [ -s "$T.err" ]; then
        echo "@$N section $_name.err errors"
        cat "$T.err"
        echo "@$N end $_name.err rc=0"
    fi
}

meta() {
    uid="" gid=""
    while read -r k a _; do
        case $k in
        Uid:) uid=$a ;;
        Gid:) gid=$a ;;
        esac
    done < /proc/$$/status
    echo "collector_version=standin-1"
    echo "pid=$$"
    echo "uid=$uid"
    echo "gid=$gid"
    echo "uptime_start=$UP0"
    echo "wallclock_start=$(date +%s)"
    echo "shell=$(readlink /proc/$$/exe)"
    echo "workdir=$(pwd)"
}

dma_heap() {
    if [ -d /dev/dma_heap ]; then
        for h in /dev/dma_heap/*; do [ -e "$h" ] && echo "heap=${h##*/}"; done
    else
        echo "heap_dir=absent"
    fi
}

fdaccess() {
    for d in /proc/[0-9]*/fd; do [ -r "$d" ] || echo "denied=${d%/fd}"; done
}

# A thread has its own fd table when its list of fd numbers differs from its leader's.
tasks() {
    TASKFDS=""
    for t in /proc/[0-9]*/task/[0-9]*; do
        p=${t#/proc/}
        p=${p%%/*}
        tid=${t##*/}
        [ "$tid" = "$p" ] && continue
        a="" b=""
        for f in "$t"/fd/*; do a="$a ${f##*/}"; done
        for f in /proc/"$p"/fd/*; do b="$b ${f##*/}"; done
        if [ "$a" != "$b" ]; then
            echo "task=$p/$tid"
            TASKFDS="$TASKFDS /proc/$p/task/$tid/fd/*"
        fi
    done
    echo "$TASKFDS" > "$T.tasks"
}

fdlinks() {
    # shellcheck disable=SC2046
    stat -c "@$N %n %N" /proc/[0-9]*/fd/* $(cat "$T.tasks") > "$T.links"
    _rc=$?
    cat "$T.links"
    return $_rc
}

fdinfo() {
    grep -e " -> '/dmabuf:" -e " -> 'anon_inode:dmabuf'" "$T.links" | cut -d' ' -f2 |
        sed 's|/fd/\([0-9]*\)$|/fdinfo/\1|' | xargs -r grep -a -H ''
}

end_kv() {
    read -r up1 _ < /proc/uptime
    while read -r k v _; do [ "$k" = processes ] && sp1=$v; done < /proc/stat
    echo "uptime_end=$up1"
    echo "spawns=$((sp1 - SP0))"
}

section meta kv meta
section global files grep -a -H '' /proc/version /proc/uptime /proc/meminfo \
    /proc/sys/kernel/random/boot_id /sys/kernel/debug/dma_buf/bufinfo \
    /sys/kernel/dma_heap/total_pools_kb
section dma_heap kv dma_heap
section sysfs_buffers files grep -r -a -H '' /sys/kernel/dmabuf/buffers
section proc files grep -a -H '' /proc/[0-9]*/status /proc/[0-9]*/cmdline \
    /proc/[0-9]*/cgroup /proc/[0-9]*/stat
section maps files grep -a -H -F -e /dmabuf -e anon_inode:dmabuf /proc/[0-9]*/maps
section fdaccess kv fdaccess
: > "$T.tasks"
section tasks kv tasks
section fdlinks stat fdlinks
section fdinfo files fdinfo
section end kv end_kv
echo "@$N done"
rm -f "$T.err" "$T.links" "$T.tasks"
