#!/system/bin/sh
# dmaprof collector: reads every DMA-BUF related procfs/sysfs/debugfs file in one pass and
# writes the framed dump `dmaprof.dump/1` (docs/dump-format.md) to stdout.
#
# usage: sh collect.sh [-w WORKDIR] [-a PACKAGE]...
#
# -a PACKAGE (repeatable): when the collector may not read other processes' fds (the shell
# user of a user build), also read PACKAGE's own processes through `run-as PACKAGE` (a
# debuggable app) and its graphic buffers from `dumpsys gfxinfo` (docs/user-build.md).
#
# Runs under Android's mksh + toybox, busybox sh + busybox applets, and dash/bash + GNU tools.
# It only reads on the device and writes only scratch files inside WORKDIR (without -w, a
# private directory made with mktemp -d in ${TMPDIR:-/tmp}, removed on exit).
#
# Process spawns do not depend on the number of processes or fds: per-process and per-fd work
# uses shell builtins only (globs, cd, [ -r ], read, case, print/printf); files are read by a
# few multi-file commands (grep -a -H '', grep -r, stat -c, one sed per batch of fd paths).
# Exit status: 0 when the dump is complete (read errors are data, kept in `NAME.err`
# sections), 2 on a usage error or an unusable workdir.

COLLECTOR_VERSION=1
LC_ALL=C
export LC_ALL
IFS=" 	
"
unset CDPATH
umask 077
exec </dev/null

# ---- output: `print -r` is mksh's builtin (its printf is not); ash/dash/bash have printf
if [ -n "${KSH_VERSION:-}" ]; then
	out() { print -r -- "$*"; }
else
	out() { printf '%s\n' "$*"; }
fi

die() {
	out "collect.sh: $*" >&2
	exit 2
}

usage() {
	out "usage: sh collect.sh [-w WORKDIR] [-a PACKAGE]..." >&2
	exit 2
}
# a package name: letters, digits, `_` and `.` only (it goes into section names and argv)
pkgname() {
	case $1 in '' | .* | *[!A-Za-z0-9_.]*) usage ;; esac
}

W=
APPS=
AS=
while [ $# -gt 0 ]; do
	case $1 in
	-w) [ $# -ge 2 ] || usage; W=$2; shift 2 ;;
	-w*) W=${1#-w}; shift ;;
	-a) [ $# -ge 2 ] || usage; pkgname "$2"; APPS="$APPS $2"; shift 2 ;;
	# internal: the app side, run by `run-as PACKAGE` (below); scratch files in the app's home
	-A) [ $# -ge 2 ] || usage; pkgname "$2"; AS=$2; TMPDIR=${HOME:-$PWD}; shift 2 ;;
	-h | --help) out "usage: sh collect.sh [-w WORKDIR] [-a PACKAGE]..."; exit 0 ;;
	*) usage ;;
	esac
done

# ---- spawn tally: exact where every external command is one fork+exec (mksh, bash, dash);
# busybox ash runs some applets in-process (NOFORK), so there the tally is not reported.
S=0
EXACT=0
SHELLNAME=sh
if [ -n "${KSH_VERSION:-}" ]; then
	SHELLNAME="mksh $KSH_VERSION"
	EXACT=1
elif [ -n "${BASH_VERSION:-}" ]; then
	SHELLNAME="bash $BASH_VERSION"
	EXACT=1
elif [ -n "${RANDOM:-}" ]; then
	SHELLNAME=ash
fi

# ---- nonce: the kernel's random uuid without dashes; fallback $$ + uptime + $RANDOM
N=
if [ -r /proc/sys/kernel/random/uuid ]; then
	IFS= read -r N </proc/sys/kernel/random/uuid 2>/dev/null
	while :; do
		case $N in
		*-*) N=${N%%-*}${N#*-} ;;
		*) break ;;
		esac
	done
	case $N in '' | *[!0-9a-fA-F]*) N= ;; esac
fi
UP=
{ read -r UP _ </proc/uptime; } 2>/dev/null
if [ -z "$N" ]; then
	u=${UP%%.*}${UP#*.}
	case $u in *[!0-9]*) u=0 ;; esac
	N="p$$u${u}r${RANDOM:-0}"
fi
case $UP in '' | *[!0-9.]*) UP= ;; esac

# ---- workdir
OWN=0
if [ -z "$W" ]; then
	S=$((S + 1))
	W=$(mktemp -d "${TMPDIR:-/tmp}/dmaprof.XXXXXX") || die "cannot create a temp dir in ${TMPDIR:-/tmp}"
	[ -n "$W" ] || die "cannot create a temp dir in ${TMPDIR:-/tmp}"
	OWN=1
fi
case $W in /*) ;; *) W=$PWD/$W ;; esac

CLEANED=0
cleanup() {
	[ "$CLEANED" = 1 ] && return 0
	CLEANED=1
	cd / 2>/dev/null
	if [ "$OWN" = 1 ]; then
		rm -rf "$W" 2>/dev/null
	else
		rm -f "$W"/dp.* 2>/dev/null
	fi
}
trap 'cleanup' EXIT
trap 'cleanup; trap - EXIT; exit 129' HUP
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 141' PIPE
trap 'cleanup; trap - EXIT; exit 143' TERM

[ -d "$W" ] && [ -w "$W" ] && [ -x "$W" ] || { OWN=0; CLEANED=1; die "workdir $W is not a writable directory"; }
{ : >"$W/dp.err"; } 2>/dev/null || { OWN=0; CLEANED=1; die "cannot write in workdir $W"; }
S=$((S + 1)) # the rm of cleanup()
E=$W/dp.err

# ---- framing
sec() {
	: >"$E"
	out "@$N section $1 $2"
}
endsec() {
	out "@$N end $1 rc=$2"
	if [ -s "$E" ]; then
		out "@$N section $1.err errors"
		while IFS= read -r l || [ -n "$l" ]; do out "$l"; done <"$E"
		out "@$N end $1.err rc=0"
	fi
}
# cat a small file with builtins only (read loops cost one syscall per byte)
catsmall() {
	while IFS= read -r l || [ -n "$l" ]; do out "$l"; done <"$1"
}
# readlist FILE: positional parameters <- whitespace-separated words of FILE (no globbing)
if [ -n "${KSH_VERSION:-}" ]; then
	readlist() { set -f; RL=$(<"$1"); set +f; }
else
	readlist() { set -f; S=$((S + 1)); RL=$(cat "$1"); set +f; }
fi

# Run COMMAND with the paths listed in file $1 appended (one exec, counted); its stderr goes
# to the section's error file and its status is returned.
over_list() {
	_list=$1
	shift
	readlist "$_list"
	set -f
	set -- "$@" $RL
	set +f
	S=$((S + 1))
	"$@" 2>>"$E"
}

# Argument bytes per exec (path + NUL + pointer), kept far below Linux's ARG_MAX (2 MiB with
# the usual 8 MiB stack), so a big phone still needs only one or a few execs per section.
LIMIT=786432
q="'"

# ---- app side (-A PACKAGE, internal): this script run again by `run-as PACKAGE` (see
# "run-as" below), as the app's uid, in a scratch dir under the app's home (it may not enter
# the shell user's workdir). It reads only the processes whose fd table that uid may read
# (the debuggable app's own: they are dumpable, and SELinux lets run-as read their /proc
# entries) and writes them as `runas/PACKAGE/NAME` sections (same content as the sections
# NAME of the main collector), framed with the main collector's nonce, read from fd 3.
if [ -n "$AS" ]; then
	N=
	{ IFS= read -r N <&3; } 2>/dev/null
	case $N in '' | *[!0-9A-Za-z]*) die "-A: no nonce on fd 3" ;; esac
	P=runas/$AS
	sec "$P/meta" kv
	uid=
	if [ -r /proc/self/status ]; then
		while IFS= read -r l; do
			case $l in Uid:*) set -- $l; uid=$3; break ;; esac
		done </proc/self/status 2>/dev/null
	fi
	out "uid=$uid"
	out "pid=$$"
	out "home=${HOME:-}"
	endsec "$P/meta" 0
	SELF=
	[ /proc/self -ef "/proc/$$" ] 2>/dev/null && SELF=$$
	sec "$P/pids" kv
	G=
	pids=
	: >"$W/dp.tasks"
	{
		for pd in /proc/[0-9]*; do
			p=${pd#/proc/}
			case $p in '' | *[!0-9]*) continue ;; esac
			[ "$p" = "$SELF" ] && continue
			[ -r "$pd/fd" ] && cd "$pd/fd" || continue
			out "pid=$p"
			pids="$pids $p"
			set -- *
			L=$*
			[ "$L" = '*' ] || G="$G $pd/fd/*"
			for td in "$pd"/task/*; do
				t=${td##*/}
				[ "$t" = "$p" ] && continue
				case $t in '' | *[!0-9]*) continue ;; esac
				cd "$td/fd" || continue
				set -- *
				[ "$*" = "$L" ] && continue
				out "task=$p/$t" >>"$W/dp.tasks"
				[ "$*" = '*' ] || G="$G $td/fd/*"
			done
		done
		cd /
	} 2>/dev/null
	endsec "$P/pids" 0
	sec "$P/tasks" kv
	catsmall "$W/dp.tasks"
	endsec "$P/tasks" 0
	# the dma-buf fds, as in fdlinks below
	B1="\\#^@$N [^ ]* [^ ]* -> $q/dmabuf:#b m"
	B2="\\#^@$N [^ ]* [^ ]* -> ${q}anon_inode:dmabuf$q\$#b m"
	: >"$W/dp.fdp"
	: >"$W/dp.fdi"
	sec "$P/fdlinks" stat
	rc=0
	if [ -n "$G" ]; then
		set -- $G
		S=$((S + 2))
		stat -c "@$N %n %N" "$@" >"$W/dp.links" 2>>"$E"
		rc=$?
		sed -n -e p -e "$B1" -e "$B2" -e d -e ':m' -e "s#^@$N ##" -e 's# .*##' \
			-e "w $W/dp.fdp" -e 's#/fd/#/fdinfo/#' -e "w $W/dp.fdi" "$W/dp.links" 2>>"$E"
	fi
	endsec "$P/fdlinks" $rc
	sec "$P/fdinfo" files
	rc=0
	if [ -s "$W/dp.fdi" ]; then
		over_list "$W/dp.fdi" grep -a -H ''
		rc=$?
	fi
	endsec "$P/fdinfo" $rc
	ino=no
	while IFS= read -r f; do
		[ -r "$f" ] || continue
		while IFS= read -r l; do
			case $l in ino:*) ino=yes; break ;; esac
		done <"$f"
		break
	done <"$W/dp.fdi" 2>/dev/null
	if [ $ino = no ] && [ -s "$W/dp.fdp" ]; then
		sec "$P/fdstat" stat
		over_list "$W/dp.fdp" stat -L -c "@$N %n %i %s"
		endsec "$P/fdstat" $?
	fi
	sec "$P/maps" files
	rc=1
	if [ -n "$pids" ]; then
		set --
		for p in $pids; do set -- "$@" "/proc/$p/maps"; done
		S=$((S + 1))
		grep -a -H -F -e ' /dmabuf:' -e ' anon_inode:dmabuf' "$@" 2>>"$E"
		rc=$?
	fi
	endsec "$P/maps" $rc
	sec "$P/end" kv
	[ "$EXACT" = 1 ] && out "spawns=$S"
	endsec "$P/end" 0
	exit 0
fi

out "DMAPROF-DUMP 1 $N"

# ---- meta
sec meta kv
out "collector_version=$COLLECTOR_VERSION"
out "pid=$$"
uid=
gid=
if [ -r /proc/self/status ]; then
	while IFS= read -r l; do
		case $l in
		Uid:*) set -- $l; uid=$3 ;;
		Gid:*) set -- $l; gid=$3; break ;;
		esac
	done </proc/self/status 2>/dev/null
fi
if [ -z "$uid" ] || [ -z "$gid" ]; then
	S=$((S + 1))
	set -- $(id 2>>"$E")
	for a; do
		case $a in
		uid=*) a=${a#uid=}; uid=${a%%"("*} ;;
		gid=*) a=${a#gid=}; gid=${a%%"("*} ;;
		esac
	done
fi
out "uid=$uid"
out "gid=$gid"
out "uptime_start=$UP"
rc=0
if [ -n "${EPOCHREALTIME:-}" ]; then
	out "wallclock_start=${EPOCHREALTIME%%[.,]*}"
elif [ -n "${EPOCHSECONDS:-}" ]; then
	out "wallclock_start=$EPOCHSECONDS"
else
	S=$((S + 1))
	date +wallclock_start=%s 2>>"$E"
	rc=$?
fi
out "shell=$SHELLNAME"
out "workdir=$W"
endsec meta $rc

# ---- props: getprop, only the keys dmaprof uses
sec props text
if command -v getprop >/dev/null 2>&1; then
	S=$((S + 1))
	getprop >"$W/dp.props" 2>>"$E"
	rc=$?
	while IFS= read -r l || [ -n "$l" ]; do
		case $l in
		'[ro.product.model]: '* | '[ro.product.device]: '* | '[ro.product.manufacturer]: '* | \
			'[ro.build.fingerprint]: '* | '[ro.build.version.release]: '* | \
			'[ro.build.version.sdk]: '* | '[ro.build.type]: '* | '[ro.debuggable]: '* | \
			'[ro.kernel.version]: '* | '[ro.runtime.firstboot]: '*)
			out "$l"
			;;
		esac
	done <"$W/dp.props"
else
	out "sh: getprop: not found" >>"$E"
	rc=127
fi
endsec props $rc

# ---- packages: cmd package, falling back to pm
sec packages text
rc=127
if command -v cmd >/dev/null 2>&1; then
	S=$((S + 1))
	cmd package list packages -U 2>>"$E"
	rc=$?
fi
if [ "$rc" != 0 ] && command -v pm >/dev/null 2>&1; then
	S=$((S + 1))
	pm list packages -U 2>>"$E"
	rc=$?
fi
if [ "$rc" = 127 ] && ! [ -s "$E" ]; then
	out "sh: cmd: not found" >>"$E"
fi
endsec packages $rc

# ---- global files
sec global files
S=$((S + 1))
grep -a -H '' /proc/version /proc/uptime /proc/meminfo /proc/sys/kernel/random/boot_id \
	/sys/kernel/debug/dma_buf/bufinfo /sys/kernel/dma_heap/total_pools_kb \
	/sys/kernel/ion/total_heaps_kb /sys/kernel/ion/total_pools_kb \
	/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf 2>>"$E"
endsec global $?

# ---- dma_heap: names of /dev/dma_heap/* (glob, no spawn)
sec dma_heap kv
if [ -d /dev/dma_heap ]; then
	for h in /dev/dma_heap/*; do
		[ -e "$h" ] || [ -L "$h" ] || continue
		out "heap=${h##*/}"
	done
else
	out "heap_dir=absent"
fi
endsec dma_heap 0

# ---- per-buffer sysfs stats and legacy ION debugfs
sec sysfs_buffers files
S=$((S + 1))
grep -r -a -H '' /sys/kernel/dmabuf/buffers 2>>"$E"
endsec sysfs_buffers $?

sec ion files
S=$((S + 1))
grep -r -a -H '' /sys/kernel/debug/ion/heaps 2>>"$E"
endsec ion $?

# ---- proc: status, cmdline, cgroup, stat, dmabuf_rss, dmabuf_pss of every process
sec proc files
pats=
for f in status cmdline cgroup stat dmabuf_rss dmabuf_pss; do
	set -- /proc/[0-9]*/$f
	# a pattern that matches nothing stays literal: leave it out instead of passing it on
	if [ $# -gt 1 ] || [ -e "$1" ]; then pats="$pats /proc/[0-9]*/$f"; fi
done
rc=1
if [ -n "$pats" ]; then
	set -- $pats
	a=$*
	if [ $((${#a} + 9 * $#)) -le $LIMIT ]; then
		S=$((S + 1))
		grep -a -H '' "$@" 2>>"$E"
		rc=$?
	else
		for p in $pats; do # one exec per file kind on a very big device
			set -- $p
			S=$((S + 1))
			grep -a -H '' "$@" 2>>"$E"
			rc=$?
		done
	fi
elif ! [ -d /proc ]; then
	out "test: /proc: No such file or directory" >>"$E"
	rc=2
fi
endsec proc $rc

# ---- maps: only the dma-buf lines
sec maps files
set -- /proc/[0-9]*/maps
if [ $# -gt 1 ] || [ -e "$1" ]; then
	S=$((S + 1))
	grep -a -H -F -e ' /dmabuf:' -e ' anon_inode:dmabuf' "$@" 2>>"$E"
	rc=$?
else
	rc=1
fi
endsec maps $rc

# ---- fdaccess + tasks: one builtin-only walk over /proc/<pid>/fd and /proc/<pid>/task/*/fd.
# It also groups the fd globs into batches (one line of patterns per exec) for fdlinks.
sec fdaccess kv
: >"$W/dp.tasks"
: >"$W/dp.batches"
B=
BSZ=0
addpat() { # addpat PATTERN NFDS
	B="$B $1"
	BSZ=$((BSZ + $2 * (${#1} + 13)))
	if [ $BSZ -ge $LIMIT ]; then
		out "$B" >>"$W/dp.batches"
		B=
		BSZ=0
	fi
}
# Not the collector itself: its fd table changes while it is read (the glob's dir fd). Only
# when /proc/self is /proc/$$ (not so in a chroot over a fake /proc or another PID namespace).
SELF=
[ /proc/self -ef "/proc/$$" ] 2>/dev/null && SELF=$$
# stderr of the walk goes to /dev/null once (a redirection per cd costs 4 syscalls per
# thread); its own error lines go to the errors file explicitly.
{
	for pd in /proc/[0-9]*; do
		p=${pd#/proc/}
		case $p in '' | *[!0-9]*) continue ;; esac
		[ "$p" = "$SELF" ] && continue
		if ! [ -r "$pd/fd" ] || ! cd "$pd/fd"; then
			if [ -e "$pd/fd" ]; then
				out "denied=$p"
			else
				out "test: $pd/fd: No such file or directory" >>"$E"
			fi
			continue
		fi
		set -- *
		L=$*
		[ "$L" = '*' ] || addpat "$pd/fd/*" $#
		for td in "$pd"/task/*; do
			t=${td##*/}
			[ "$t" = "$p" ] && continue
			case $t in '' | *[!0-9]*) continue ;; esac
			cd "$td/fd" || continue
			set -- *
			[ "$*" = "$L" ] && continue
			out "task=$p/$t" >>"$W/dp.tasks"
			[ "$*" = '*' ] || addpat "$td/fd/*" $#
		done
	done
	cd /
} 2>/dev/null
[ -n "$B" ] && out "$B" >>"$W/dp.batches"
endsec fdaccess 0

sec tasks kv
catsmall "$W/dp.tasks"
endsec tasks 0

# ---- fdlinks: stat of every fd link; one sed per batch copies the records to stdout and
# writes the fd and fdinfo paths of the dma-buf fds (target `/dmabuf:...` or exactly
# `anon_inode:dmabuf`) to dp.fdp.K / dp.fdi.K. A record is `@N <path> <name> -> '<target>'`
# where <path> and <name> (<path>, quoted by busybox) hold no space, so the ` -> '` after
# the second space-free word is the first one. No capture groups: they make regexec slow.
A1="\\#^@$N [^ ]* [^ ]* -> $q/dmabuf:#b m"
A2="\\#^@$N [^ ]* [^ ]* -> ${q}anon_inode:dmabuf$q\$#b m"
sec fdlinks stat
rc=0
K=0
while IFS= read -r pats; do
	K=$((K + 1))
	set -- $pats
	case " $* " in
	*'/fd/* '*) # a process vanished (or closed all its fds) since the walk: drop its pattern
		acc=
		set -f
		for pat in $pats; do
			set +f
			set -- $pat
			if [ $# -gt 1 ] || [ "$1" != "$pat" ]; then
				acc="$acc $*"
			elif ! [ -e "${pat%/\*}" ]; then
				out "stat: ${pat%/\*}: No such file or directory" >>"$E"
			fi
		done
		set -f
		set -- $acc
		set +f
		;;
	esac
	[ $# -gt 0 ] || continue
	S=$((S + 2))
	stat -c "@$N %n %N" "$@" <&3 >"$W/dp.links" 2>>"$E"
	rc=$?
	sed -n -e p -e "$A1" -e "$A2" -e d -e ':m' -e "s#^@$N ##" -e 's# .*##' \
		-e "w $W/dp.fdp.$K" -e 's#/fd/#/fdinfo/#' -e "w $W/dp.fdi.$K" "$W/dp.links" <&3 2>>"$E"
done 3<&0 <"$W/dp.batches" # fd 3: the script's stdin (/dev/null) for the commands
endsec fdlinks $rc

# ---- fdinfo of the dma-buf fds only
sec fdinfo files
rc=0
k=0
while [ $k -lt $K ]; do
	k=$((k + 1))
	[ -s "$W/dp.fdi.$k" ] || continue
	over_list "$W/dp.fdi.$k" grep -a -H ''
	rc=$?
done
endsec fdinfo $rc

# ---- fdstat: stat -L of the dma-buf fds, only when fdinfo has no `ino:` (kernels < 5.14).
# Decided from the first dma-buf fdinfo that can be read (the kernel is the same for all).
ino=no
k=0
seen=
while [ $k -lt $K ] && [ -z "$seen" ]; do
	k=$((k + 1))
	[ -s "$W/dp.fdi.$k" ] || continue
	while IFS= read -r f; do
		[ -r "$f" ] || continue
		while IFS= read -r l; do
			seen=1
			case $l in ino:*) ino=yes; break ;; esac
		done <"$f"
		[ -n "$seen" ] && break
	done <"$W/dp.fdi.$k" 2>/dev/null
done
if [ $ino = no ]; then
	k=0
	set --
	while [ $k -lt $K ]; do
		k=$((k + 1))
		[ -s "$W/dp.fdp.$k" ] && break
	done
	if [ -s "$W/dp.fdp.$k" ]; then
		sec fdstat stat
		rc=0
		k=0
		while [ $k -lt $K ]; do
			k=$((k + 1))
			[ -s "$W/dp.fdp.$k" ] || continue
			over_list "$W/dp.fdp.$k" stat -L -c "@$N %n %i %s"
			rc=$?
		done
		endsec fdstat $rc
	fi
fi

# ---- binder: binder buffer allocations and page counts per process (docs/dump-format.md):
# binderfs's binder_logs when it is mounted, else debugfs. One grep -r over proc/ and stats
# keeps only the lines the host reads, plus the page size from grep's own smaps.
sec binder files
BD=/sys/kernel/debug/binder
[ -d /dev/binderfs/binder_logs/proc ] && BD=/dev/binderfs/binder_logs
S=$((S + 1))
# The Rust driver's free space line is "free oneway space:", and its ref lines end without a
# newline, so the first buffer after them is glued to the last ref line.
grep -r -a -H -e '^proc ' -e '^context ' -e '^  buffer' -e '^  pages' -e '^  free async space' \
	-e '^  free oneway space' -e '^  ref .*  buffer' \
	-e '^KernelPageSize:' "$BD/proc" "$BD/stats" /proc/self/smaps 2>>"$E"
endsec binder $?

# ---- user-build sources: what the shell user can still read when it may not read other
# processes' fds (a user build). Collected only then, so root snapshots stay fast (`dumpsys
# meminfo` takes seconds). Each is kept apart from the exact per-process sections above.
RESTRICTED=0
[ -r /proc/1/fd ] || RESTRICTED=1
if [ "$RESTRICTED" = 1 ] && command -v dumpsys >/dev/null 2>&1; then
	# the graphic buffer lists libui prints (GraphicBufferAllocator's own allocations, then
	# the buffers the process imported into its gralloc mapper); the imported list also ends
	# at the first line that is not part of it, should its total line be missing
	G1='/^GraphicBufferAllocator buffers:/,/^Total allocated/p'
	G2='/^Allocated buffers:/,/^Total allocated/p'
	G3='/^Imported gralloc buffers/,/^(Total imported by gralloc|[^+*I[:space:]])/p'
	sec dumpsys_meminfo text
	S=$((S + 2))
	dumpsys meminfo >"$W/dp.dumpsys" 2>>"$E"
	rc=$?
	grep -E '^ *(DMA-BUF|ION|GPU)[A-Za-z ]*:' "$W/dp.dumpsys" 2>>"$E"
	endsec dumpsys_meminfo $rc
	sec dumpsys_surfaceflinger text
	S=$((S + 2))
	dumpsys SurfaceFlinger >"$W/dp.dumpsys" 2>>"$E"
	rc=$?
	sed -n -E -e "$G1" -e "$G2" -e "$G3" "$W/dp.dumpsys" 2>>"$E"
	endsec dumpsys_surfaceflinger $rc
	for a in $APPS; do
		sec "dumpsys_gfxinfo/$a" text
		S=$((S + 2))
		dumpsys gfxinfo "$a" >"$W/dp.dumpsys" 2>>"$E"
		rc=$?
		sed -n -E -e '/^\*\* Graphics info for pid /p' -e '/^No process found for: /p' \
			-e "$G1" -e "$G2" -e "$G3" "$W/dp.dumpsys" 2>>"$E"
		endsec "dumpsys_gfxinfo/$a" $rc
	done
fi

# ---- run-as: each -a PACKAGE's own processes, read as its uid by this script run again
# (-A) through `run-as PACKAGE`: one spawn, the script passed as an argument (the app may not
# read the workdir), the nonce on fd 3. The app side writes its sections itself; then
# `runas/PACKAGE` says how it went, with run-as's messages (e.g. "package not debuggable").
if [ -n "$APPS" ]; then
	SRC=
	if [ "$RESTRICTED" = 1 ] && [ -r "$0" ]; then
		if [ -n "${KSH_VERSION:-}" ]; then
			SRC=$(<"$0")
		else
			S=$((S + 1))
			SRC=$(cat "$0")
		fi
	fi
	out "$N" >"$W/dp.nonce"
	for a in $APPS; do
		: >"$W/dp.runas"
		rc=0
		if [ "$RESTRICTED" = 0 ]; then
			run=skipped
		elif [ -z "$SRC" ]; then
			run=failed
			out "collect.sh: $0: cannot read the script to run it under run-as" >"$W/dp.runas"
		elif ! command -v run-as >/dev/null 2>&1; then
			run=failed
			rc=127
			out "sh: run-as: not found" >"$W/dp.runas"
		else
			run=yes
			S=$((S + 1))
			run-as "$a" sh -c "$SRC" collect.sh -A "$a" 3<"$W/dp.nonce" 2>"$W/dp.runas"
			rc=$?
		fi
		sec "runas/$a" kv
		out "package=$a"
		out "run=$run"
		out "rc=$rc"
		catsmall "$W/dp.runas" >>"$E"
		endsec "runas/$a" $rc
	done
fi

# ---- end
sec end kv
UP=
{ read -r UP _ </proc/uptime; } 2>/dev/null
case $UP in *[!0-9.]*) UP= ;; esac
out "uptime_end=$UP"
[ "$EXACT" = 1 ] && out "spawns=$S"
endsec end 0
out "@$N done"
exit 0
