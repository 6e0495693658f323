#!/system/bin/sh
# shellcheck shell=sh
# Word splitting of unquoted lists and globs is what this script relies on (lists of paths,
# patterns expanded on purpose; `set -f` where they must not glob): SC2086 is off. Functions
# run from traps and through variables look unreachable to shellcheck: SC2317 is off.
# shellcheck disable=SC2086,SC2317
# dmaprof collector: reads every DMA-BUF related procfs/sysfs/debugfs file in one pass and
# writes the framed dump `dmaprof.dump/1` (docs/dump-format.md) to stdout.
#
# usage: sh collect.sh [-w WORKDIR] [-a PACKAGE]...
#
# -w WORKDIR: the directory for scratch files (it must be writable). Without -w the collector
# makes a private directory in the first writable one of $TMPDIR, /data/local/tmp, /tmp and
# the current directory, and removes it on exit; where none is writable (a serial console, a
# read-only root) it runs without scratch files: serially, and without -a's run-as step.
#
# -a PACKAGE (repeatable): when the collector may not read other processes' fds (the shell
# user of a user build), also read PACKAGE's own processes through `run-as PACKAGE` (a
# debuggable app) and its graphic buffers from `dumpsys gfxinfo` (docs/user-build.md).
#
# Runs under Android's mksh + toybox, busybox sh + busybox applets, and dash/bash + GNU tools.
# It only reads on the device and writes only inside its scratch directory.
#
# Cost: the fd tables (every fd link, the fdinfo of the dma-buf fds) are most of what it
# reads. With a scratch directory two background workers read them, the processes split by
# pid parity, while the shell reads the per-process files; their outputs are concatenated in
# order. Spawns do not depend on the number of processes or fds: per-process and per-fd work
# uses shell builtins only (globs, cd, [ -r ], read, case, print/printf); files are read by a
# few multi-file commands (grep -a -H -F '': an empty fixed string, no regex per line; grep -r;
# stat -c; one sed per batch of fd paths).
# Exit status: 0 when the dump is complete (read errors are data, kept in `NAME.err`
# sections), 2 on a usage error or an unusable -w WORKDIR.

COLLECTOR_VERSION=1
LC_ALL=C
export LC_ALL
IFS=" 	
"
NL="
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

USAGE="usage: sh collect.sh [-w WORKDIR] [-a PACKAGE]..."
die() {
	out "collect.sh: $*" >&2
	exit 2
}
usage() {
	out "$USAGE" >&2
	exit 2
}
# a package name: letters, digits, `_` and `.` only (it goes into section names and argv)
pkgname() {
	case $1 in '' | .* | *[!A-Za-z0-9_.]*) usage ;; esac
}

WORKDIR_ARG= # -w
APPS=        # -a PACKAGE...
APP_SIDE=    # -A PACKAGE (internal): this script run again by `run-as PACKAGE`
while [ $# -gt 0 ]; do
	case $1 in
	-w) [ $# -ge 2 ] || usage; WORKDIR_ARG=$2; shift 2 ;;
	-w*) WORKDIR_ARG=${1#-w}; shift ;;
	-a) [ $# -ge 2 ] || usage; pkgname "$2"; APPS="$APPS $2"; shift 2 ;;
	# the app side's scratch files go to the app's home (it may not enter the shell user's)
	-A) [ $# -ge 2 ] || usage; pkgname "$2"; APP_SIDE=$2; TMPDIR=${HOME:-$PWD}; shift 2 ;;
	-h | --help) out "$USAGE"; exit 0 ;;
	*) usage ;;
	esac
done

# ---- the shell. The spawn tally is exact where every external command is one fork+exec
# (mksh, bash); busybox ash runs some applets in-process (NOFORK), so there it is not reported.
EXACT_SPAWNS=0
SHELL_NAME="sh"
# shellcheck disable=SC3028 # only ash, bash and mksh have RANDOM: its absence tells dash
if [ -n "${KSH_VERSION:-}" ]; then
	SHELL_NAME="mksh $KSH_VERSION"
	EXACT_SPAWNS=1
elif [ -n "${BASH_VERSION:-}" ]; then
	SHELL_NAME="bash $BASH_VERSION"
	EXACT_SPAWNS=1
elif [ -n "${RANDOM:-}" ]; then
	SHELL_NAME=ash
fi

# ---- nonce: the kernel's random uuid without dashes; fallback $$ + uptime + $RANDOM
NONCE=
if [ -r /proc/sys/kernel/random/uuid ]; then
	IFS= read -r NONCE </proc/sys/kernel/random/uuid 2>/dev/null
	while :; do
		case $NONCE in
		*-*) NONCE=${NONCE%%-*}${NONCE#*-} ;;
		*) break ;;
		esac
	done
	case $NONCE in '' | *[!0-9a-fA-F]*) NONCE= ;; esac
fi
UPTIME_START=
{ read -r UPTIME_START _ </proc/uptime; } 2>/dev/null
if [ -z "$NONCE" ]; then
	u=${UPTIME_START%%.*}${UPTIME_START#*.}
	case $u in *[!0-9]*) u=0 ;; esac
	# shellcheck disable=SC3028 # 0 where the shell has no RANDOM
	NONCE="p$$u${u}r${RANDOM:-0}"
fi
case $UPTIME_START in '' | *[!0-9.]*) UPTIME_START= ;; esac

# ---- running commands. Every external command runs through `ext` (one fork+exec: the
# command substitution execs it), every background worker through `start_worker` (one fork,
# plus what the worker reports), so SPAWNS is derived, not kept by hand.
SPAWNS=0
ERRS=    # stderr lines of the current section's commands, and the collector's own messages
RC=0     # exit status of the last command
note() { ERRS=${ERRS:+$ERRS$NL}$*; }
# ext COMMAND ARG...: stdout to this shell's stdout, stderr into ERRS, status into RC (fd 9
# carries stdout past the command substitution; fds 3-8 pass through to COMMAND)
ext() {
	SPAWNS=$((SPAWNS + 1))
	{ ext_err=$(exec "$@" 2>&1 >&9 9>&-); RC=$?; } 9>&1
	[ -z "$ext_err" ] || note "$ext_err"
	return $RC
}
# readlist FILE: RL <- the whitespace-separated words of FILE (mksh reads it in-process)
if [ -n "${KSH_VERSION:-}" ]; then
	# shellcheck disable=SC3034 # mksh only (KSH_VERSION): read in-process, no cat
	readlist() { RL=$(<"$1"); }
else
	readlist() {
		SPAWNS=$((SPAWNS + 1))
		RL=$(exec cat "$1" 2>/dev/null)
	}
fi
# processes `$(A | B)` starts: mksh runs a command substitution's pipeline without a subshell
PIPE_SPAWNS=3
[ -n "${KSH_VERSION:-}" ] && PIPE_SPAWNS=2
# catsmall FILE: copy a small file with builtins only (read loops cost a syscall per byte)
catsmall() {
	while IFS= read -r l || [ -n "$l" ]; do out "$l"; done <"$1"
}

# ---- framing
begin() { # begin NAME KIND
	ERRS=
	RC=0
	out "@$NONCE section $1 $2"
}
finish() { # finish NAME [RC]: the end line, then NAME.err when something went to stderr
	out "@$NONCE end $1 rc=${2:-$RC}"
	[ -n "$ERRS" ] || return 0
	out "@$NONCE section $1.err errors"
	out "$ERRS"
	out "@$NONCE end $1.err rc=0"
}

# Argument bytes per exec (path + NUL + pointer), kept far below Linux's ARG_MAX (2 MiB with
# the usual 8 MiB stack), so a big phone still needs only one or a few execs per section.
ARG_BYTES_LIMIT=786432
SQUOTE="'"

# ---- clean-up on every exit: the workers, then the scratch files (set before any exists)
WORKERS= # pids of background workers not yet waited for
CLEANED=0
cleanup() {
	[ "$CLEANED" = 1 ] && return 0
	CLEANED=1
	for w in $WORKERS; do kill "$w" 2>/dev/null; done
	[ -z "$WORKERS" ] || wait 2>/dev/null
	cd / 2>/dev/null
	[ -n "$WORKDIR" ] || return 0
	if [ "$OWN_WORKDIR" = 1 ]; then
		rm -rf "$WORKDIR" 2>/dev/null
	else
		rm -f "$WORKDIR"/dp.* 2>/dev/null
	fi
}
trap 'cleanup' EXIT
trap 'cleanup; trap - EXIT; exit 129' HUP
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 141' PIPE
trap 'cleanup; trap - EXIT; exit 143' TERM

# ---- scratch directory: -w, else a private one in the first writable candidate, else none
WORKDIR=       # scratch files dp.* live here; empty: none
OWN_WORKDIR=0  # 1: the collector made WORKDIR and removes it whole
TRIED=         # the candidates looked at (meta `workdir_tried` when none worked)
writable() { [ -n "$1" ] && [ -d "$1" ] && [ -w "$1" ] && [ -x "$1" ]; }
# scratch paths go unquoted into argument lists: no blanks or glob characters in them
plain() { case $1 in *[!A-Za-z0-9/._+,:@=-]*) return 1 ;; esac; }
if [ -n "$WORKDIR_ARG" ]; then
	case $WORKDIR_ARG in /*) ;; *) WORKDIR_ARG=$PWD/$WORKDIR_ARG ;; esac
	plain "$WORKDIR_ARG" || die "workdir $WORKDIR_ARG: only letters, digits and /._+,:@=- please"
	writable "$WORKDIR_ARG" || die "workdir $WORKDIR_ARG is not a writable directory"
	{ : >"$WORKDIR_ARG/dp.err"; } 2>/dev/null || die "cannot write in workdir $WORKDIR_ARG"
	WORKDIR=$WORKDIR_ARG
else
	for d in "${TMPDIR:-}" /data/local/tmp /tmp "${PWD:-}"; do
		[ -n "$d" ] || continue
		TRIED="$TRIED $d"
		if ! plain "$d" || ! writable "$d"; then continue; fi
		d=${d%/}
		if ext mkdir "$d/dmaprof.$NONCE"; then
			WORKDIR=$d/dmaprof.$NONCE
			OWN_WORKDIR=1
			break
		fi
	done
	ERRS=
fi

CLEANUP_SPAWNS=0 # the rm of cleanup(), which runs after the `end` section
[ -n "$WORKDIR" ] && CLEANUP_SPAWNS=1

# Not the collector itself: its fd table changes while it is read (the glob's dir fd). Only
# when /proc/self is /proc/$$ (not so in a chroot over a fake /proc or another PID namespace).
SELF=
# shellcheck disable=SC3013 # -ef: in every shell this runs under (mksh, ash, dash, bash)
[ /proc/self -ef "/proc/$$" ] 2>/dev/null && SELF=$$

# ---- the fd tables: written once, used by the main collector and by the app side (-A)
#
# fd_walk PATTERN...: one builtin-only walk over the processes /proc/PID matching the
# PATTERNs (globbed here) and their tasks. Writes `denied=PID` lines to stdout (with
# LISTED=pids: `pid=PID` for every readable process instead); sets READABLE (those pids),
# TASKS (`task=PID/TID` for every thread whose fd names differ from its leader's: its own fd
# table), BATCHES (lines of fd-dir globs, one line per exec of stat) and ERRS.
LISTED=denied
fd_walk() {
	READABLE=
	TASKS=
	BATCHES=
	walk_batch=
	walk_size=0
	# stderr goes to /dev/null once (a redirection per cd costs 4 syscalls per thread)
	# shellcheck disable=SC2048 # the patterns are globbed here
	for pd in $*; do
		p=${pd#/proc/}
		case $p in '' | *[!0-9]*) continue ;; esac
		[ "$p" = "$SELF" ] && continue
		if ! [ -r "$pd/fd" ] || ! cd "$pd/fd"; then
			if [ "$LISTED" = pids ]; then
				continue
			elif [ -e "$pd/fd" ]; then
				out "denied=$p"
			else
				note "test: $pd/fd: No such file or directory"
			fi
			continue
		fi
		[ "$LISTED" = pids ] && out "pid=$p"
		READABLE="$READABLE $p"
		set -- *
		leader_fds=$*
		[ "$leader_fds" = '*' ] || add_glob "$pd/fd/*" $#
		for td in "$pd"/task/*; do
			t=${td##*/}
			[ "$t" = "$p" ] && continue
			case $t in '' | *[!0-9]*) continue ;; esac
			cd "$td/fd" || continue
			set -- *
			[ "$*" = "$leader_fds" ] && continue
			TASKS=${TASKS:+$TASKS$NL}task=$p/$t
			[ "$*" = '*' ] || add_glob "$td/fd/*" $#
		done
	done 2>/dev/null
	cd /
	[ -z "$walk_batch" ] || BATCHES=$BATCHES$walk_batch$NL
}
add_glob() { # add_glob GLOB NFDS: into the current batch of stat arguments
	walk_batch="$walk_batch $1"
	walk_size=$((walk_size + $2 * (${#1} + 13)))
	if [ $walk_size -ge $ARG_BYTES_LIMIT ]; then
		BATCHES=$BATCHES$walk_batch$NL
		walk_batch=
		walk_size=0
	fi
}

# fd_links: `stat -c '@N %n %N'` of every fd in BATCHES (globs expanded again: a process gone
# since the walk is one ENOENT on its fd dir, not one per fd). With scratch files each batch K
# goes to $FD_OUT.links.K and one sed writes the fdinfo paths of its dma-buf fds (target
# `/dmabuf:...` or exactly `anon_inode:dmabuf`) to $FD_OUT.fdi.K; without, the records go to
# stdout and a second stat + sed puts those paths into FDI_K. A record is
# `@N <path> <name> -> '<target>'` where <path> and <name> (<path>, quoted by busybox) hold no
# space, so the ` -> '` after the second space-free word is the first one. No capture
# groups: they make regexec slow. Sets NBATCH and RC (the highest status).
fd_links() {
	NBATCH=0
	links_rc=0
	links_a="\\#^@$NONCE [^ ]* [^ ]* -> $SQUOTE/dmabuf:#b m"
	links_b="\\#^@$NONCE [^ ]* [^ ]* -> ${SQUOTE}anon_inode:dmabuf$SQUOTE\$#b m"
	set -f
	IFS=$NL
	set -- $BATCHES
	IFS=" 	
"
	set +f
	for pats; do
		NBATCH=$((NBATCH + 1))
		set -- $pats
		case " $* " in
		*'/fd/* '*) # a process vanished (or closed all its fds) since the walk: drop it
			kept=
			set -f
			for pat in $pats; do
				set +f
				set -- $pat
				if [ $# -gt 1 ] || [ "$1" != "$pat" ]; then
					kept="$kept $*"
				elif ! [ -e "${pat%/\*}" ]; then
					note "stat: ${pat%/\*}: No such file or directory"
				fi
			done
			set -f
			set -- $kept
			set +f
			;;
		esac
		[ $# -gt 0 ] || continue
		if [ -n "$WORKDIR" ]; then
			ext stat -c "@$NONCE %n %N" "$@" >"$FD_OUT.links.$NBATCH"
			[ $RC -gt $links_rc ] && links_rc=$RC
			ext sed -n -e "$links_a" -e "$links_b" -e d -e ':m' -e "s#^@$NONCE ##" \
				-e 's# .*##' -e 's#/fd/#/fdinfo/#' -e "w $FD_OUT.fdi.$NBATCH" \
				"$FD_OUT.links.$NBATCH"
		else
			ext stat -c "@$NONCE %n %N" "$@"
			[ $RC -gt $links_rc ] && links_rc=$RC
			SPAWNS=$((SPAWNS + PIPE_SPAWNS))
			# shellcheck disable=SC2034 # read through the eval below
			fdi=$(stat -c "@$NONCE %n %N" "$@" 2>/dev/null | exec sed -n -e "$links_a" \
				-e "$links_b" -e d -e ':m' -e "s#^@$NONCE ##" -e 's# .*##' \
				-e 's#/fd/#/fdinfo/#' -e p)
			eval "FDI_$NBATCH=\$fdi"
		fi
	done
	RC=$links_rc
}

# fd_list K: RL <- the fdinfo paths of batch K's dma-buf fds
fd_list() {
	RL=
	if [ -n "$WORKDIR" ]; then
		[ -s "$FD_OUT.fdi.$1" ] && readlist "$FD_OUT.fdi.$1"
	else
		eval "RL=\$FDI_$1"
	fi
}

# fd_info: the fdinfo of the dma-buf fds of every batch, to stdout; RC: the highest status
fd_info() {
	info_rc=0
	k=0
	while [ $k -lt $NBATCH ]; do
		k=$((k + 1))
		fd_list $k
		[ -n "$RL" ] || continue
		set -f
		set -- $RL
		set +f
		ext grep -a -H -F '' "$@"
		[ $RC -gt $info_rc ] && info_rc=$RC
	done
	RC=$info_rc
}

# fd_needs_stat: true when the first readable dma-buf fdinfo has no `ino:` line (kernels
# before 5.14; all fdinfo files come from the same kernel), and there is a dma-buf fd at all
fd_needs_stat() {
	k=0
	while [ $k -lt $NBATCH ]; do
		k=$((k + 1))
		fd_list $k
		set -f
		for f in $RL; do
			[ -r "$f" ] || continue
			seen=
			while IFS= read -r l; do
				seen=1
				case $l in ino:*) set +f; return 1 ;; esac
			done <"$f"
			[ -z "$seen" ] || { set +f; return 0; }
		done 2>/dev/null
		set +f
	done
	return 1
}

# fd_stat: `stat -L -c '@N %n %i %s'` of the dma-buf fds (inode and size without `ino:`)
fd_stat() {
	stat_rc=0
	k=0
	while [ $k -lt $NBATCH ]; do
		k=$((k + 1))
		fd_list $k
		[ -n "$RL" ] || continue
		if [ -n "$WORKDIR" ]; then
			ext sed -e 's#/fdinfo/#/fd/#' "$FD_OUT.fdi.$k" >"$FD_OUT.fdp.$k"
			readlist "$FD_OUT.fdp.$k"
		else
			SPAWNS=$((SPAWNS + PIPE_SPAWNS))
			RL=$(out "$RL" | exec sed -e 's#/fdinfo/#/fd/#g')
		fi
		set -f
		set -- $RL
		set +f
		ext stat -L -c "@$NONCE %n %i %s" "$@"
		[ $RC -gt $stat_rc ] && stat_rc=$RC
	done
	RC=$stat_rc
}

# fd_worker ID PATTERN...: every fd step over the processes matching PATTERN, into scratch
# files $WORKDIR/dp.ID.*: `access` (the walk's lines), `tasks`, `links.K`, `fdinfo`,
# `fdstat`, each step's errors in `STEP.err`, and `status` (shell assignments: batches,
# statuses, whether fdstat was needed, the worker's spawns). Run in the background by
# start_worker (its own SPAWNS), or in the foreground.
fd_worker() {
	FD_OUT=$WORKDIR/dp.$1
	shift
	ERRS=
	fd_walk "$@" >"$FD_OUT.access"
	out "$ERRS" >"$FD_OUT.access.err"
	if [ -n "$TASKS" ]; then out "$TASKS"; fi >"$FD_OUT.tasks"
	ERRS=
	fd_links
	w_links_rc=$RC
	out "$ERRS" >"$FD_OUT.links.err"
	ERRS=
	fd_info >"$FD_OUT.fdinfo"
	w_info_rc=$RC
	out "$ERRS" >"$FD_OUT.fdinfo.err"
	w_stat=0
	w_stat_rc=0
	ERRS=
	if fd_needs_stat; then
		w_stat=1
		fd_stat >"$FD_OUT.fdstat"
		w_stat_rc=$RC
	fi
	out "$ERRS" >"$FD_OUT.fdstat.err"
	out "s_nbatch=$NBATCH s_links_rc=$w_links_rc s_info_rc=$w_info_rc s_need_stat=$w_stat" \
		"s_stat_rc=$w_stat_rc s_readable='$READABLE' s_spawns=$SPAWNS" >"$FD_OUT.status"
}
start_worker() { # start_worker ID PATTERN...: fd_worker in the background
	SPAWNS=$((SPAWNS + 1))
	# shellcheck disable=SC2030 # the worker counts its own spawns and reports them
	(SPAWNS=0 && fd_worker "$@") &
	WORKERS="$WORKERS $!"
	WORKER_IDS="$WORKER_IDS $1"
}
WORKER_IDS=

# fd_sections PREFIX ACCESS PATTERN...: the sections ACCESS (`fdaccess` or `pids`), tasks,
# fdlinks, fdinfo and fdstat (when needed), named PREFIX+NAME. With scratch files from the
# workers started before (none started: one in the foreground now), their pieces
# concatenated in order; without, serially straight to stdout.
fd_sections() {
	fs_prefix=$1
	fs_access=$2
	shift 2
	if [ -z "$WORKDIR" ]; then
		FD_OUT=
		begin "$fs_prefix$fs_access" kv
		fd_walk "$@"
		finish "$fs_prefix$fs_access" 0
		begin "${fs_prefix}tasks" kv
		[ -z "$TASKS" ] || out "$TASKS"
		finish "${fs_prefix}tasks" 0
		begin "${fs_prefix}fdlinks" stat
		fd_links
		finish "${fs_prefix}fdlinks"
		begin "${fs_prefix}fdinfo" files
		fd_info
		finish "${fs_prefix}fdinfo"
		if fd_needs_stat; then
			begin "${fs_prefix}fdstat" stat
			fd_stat
			finish "${fs_prefix}fdstat"
		fi
		return 0
	fi
	if [ -z "$WORKER_IDS" ]; then
		# shellcheck disable=SC2031 # this shell's SPAWNS (a background worker counts its own)
		fg_spawns=$SPAWNS
		SPAWNS=0 # the worker's status reports its own spawns, added below like a worker's
		fd_worker w "$@"
		SPAWNS=$fg_spawns
		WORKER_IDS=w
	fi
	for w in $WORKERS; do wait "$w"; done
	WORKERS=
	links=
	infos=
	stats=
	links_rc=0
	info_rc=0
	stat_rc=0
	need_stat=0
	READABLE=
	access_err=
	for w in $WORKER_IDS; do
		base=$WORKDIR/dp.$w
		if ! [ -s "$base.status" ]; then
			access_err="$access_err collect.sh: fd worker $w did not finish"
			continue
		fi
		s_nbatch=0 s_links_rc=0 s_info_rc=0 s_need_stat=0 s_stat_rc=0 s_readable='' s_spawns=0
		# shellcheck source=/dev/null # written by fd_worker: assignments of numbers and pids
		. "$base.status"
		# shellcheck disable=SC2031 # this shell's SPAWNS, plus what the worker reports
		SPAWNS=$((SPAWNS + s_spawns))
		READABLE="$READABLE $s_readable"
		k=0
		while [ $k -lt "$s_nbatch" ]; do
			k=$((k + 1))
			[ -e "$base.links.$k" ] && links="$links $base.links.$k"
		done
		infos="$infos $base.fdinfo"
		[ "$s_need_stat" = 1 ] && need_stat=1 && stats="$stats $base.fdstat"
		[ "$s_links_rc" -gt $links_rc ] && links_rc=$s_links_rc
		[ "$s_info_rc" -gt $info_rc ] && info_rc=$s_info_rc
		[ "$s_stat_rc" -gt $stat_rc ] && stat_rc=$s_stat_rc
	done
	begin "$fs_prefix$fs_access" kv
	for w in $WORKER_IDS; do
		[ -s "$WORKDIR/dp.$w.access" ] && catsmall "$WORKDIR/dp.$w.access"
	done
	[ -z "$access_err" ] || note "${access_err# }"
	piece_errs access
	finish "$fs_prefix$fs_access" 0
	begin "${fs_prefix}tasks" kv
	for w in $WORKER_IDS; do
		[ -s "$WORKDIR/dp.$w.tasks" ] && catsmall "$WORKDIR/dp.$w.tasks"
	done
	finish "${fs_prefix}tasks" 0
	begin "${fs_prefix}fdlinks" stat
	[ -z "$links" ] || ext cat $links
	piece_errs links
	finish "${fs_prefix}fdlinks" $links_rc
	begin "${fs_prefix}fdinfo" files
	ext cat $infos
	piece_errs fdinfo
	finish "${fs_prefix}fdinfo" $info_rc
	if [ "$need_stat" = 1 ]; then
		begin "${fs_prefix}fdstat" stat
		ext cat $stats
		piece_errs fdstat
		finish "${fs_prefix}fdstat" $stat_rc
	fi
	WORKER_IDS=
}
# piece_errs STEP: the workers' STEP.err files into ERRS (after the cat's own errors)
piece_errs() {
	for w in $WORKER_IDS; do
		[ -s "$WORKDIR/dp.$w.$1.err" ] || continue
		while IFS= read -r l || [ -n "$l" ]; do
			[ -z "$l" ] || note "$l"
		done <"$WORKDIR/dp.$w.$1.err"
	done
}

# maps_of PATH...: only the dma-buf lines of these maps files
maps_of() {
	ext grep -a -H -F -e ' /dmabuf:' -e ' anon_inode:dmabuf' "$@"
}

# ---- app side (-A PACKAGE, internal): this script run again by `run-as PACKAGE` (see
# "run-as" below), as the app's uid, scratch files under the app's home. It reads only the
# processes whose fd table that uid may read (the debuggable app's own: they are dumpable,
# and SELinux lets run-as read their /proc entries) and writes them as `runas/PACKAGE/NAME`
# sections (same content as the sections NAME of the main collector), framed with the main
# collector's nonce, read from fd 3.
if [ -n "$APP_SIDE" ]; then
	NONCE=
	{ IFS= read -r NONCE <&3; } 2>/dev/null
	exec 3<&-
	case $NONCE in '' | *[!0-9A-Za-z]*) die "-A: no nonce on fd 3" ;; esac
	APP_PREFIX=runas/$APP_SIDE
	begin "$APP_PREFIX/meta" kv
	uid=
	if [ -r /proc/self/status ]; then
		while IFS= read -r l; do
			case $l in Uid:*) set -- $l; uid=$3; break ;; esac
		done </proc/self/status 2>/dev/null
	fi
	out "uid=$uid"
	out "pid=$$"
	out "home=${HOME:-}"
	finish "$APP_PREFIX/meta" 0
	LISTED=pids
	fd_sections "$APP_PREFIX/" pids '/proc/[0-9]*'
	begin "$APP_PREFIX/maps" files
	RC=1
	set --
	for p in $READABLE; do set -- "$@" "/proc/$p/maps"; done
	[ $# -eq 0 ] || maps_of "$@"
	finish "$APP_PREFIX/maps"
	begin "$APP_PREFIX/end" kv
	[ "$EXACT_SPAWNS" = 1 ] && out "spawns=$((SPAWNS + CLEANUP_SPAWNS))"
	finish "$APP_PREFIX/end" 0
	exit 0
fi

out "DMAPROF-DUMP 1 $NONCE"

# ---- meta
begin meta kv
out "collector_version=$COLLECTOR_VERSION"
out "pid=$$"
# whether that pid is one of the /proc read here: not in a chroot over another /proc or in
# another PID namespace, where the process of that pid (if any) is someone else
if [ -n "$SELF" ]; then out "pid_in_proc=1"; else out "pid_in_proc=0"; fi
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
	SPAWNS=$((SPAWNS + 1))
	# shellcheck disable=SC2046 # split into words on purpose
	set -- $(exec id 2>/dev/null)
	for a; do
		case $a in
		uid=*) a=${a#uid=}; uid=${a%%"("*} ;;
		gid=*) a=${a#gid=}; gid=${a%%"("*} ;;
		esac
	done
fi
out "uid=$uid"
out "gid=$gid"
out "uptime_start=$UPTIME_START"
if [ -n "${EPOCHREALTIME:-}" ]; then
	out "wallclock_start=${EPOCHREALTIME%%[.,]*}"
elif [ -n "${EPOCHSECONDS:-}" ]; then
	out "wallclock_start=$EPOCHSECONDS"
else
	ext date +wallclock_start=%s
fi
out "shell=$SHELL_NAME"
out "workdir=$WORKDIR"
[ -n "$WORKDIR" ] || out "workdir_tried=${TRIED# }"
finish meta

# ---- the fd workers start now and read while this shell reads the other files
if [ -n "$WORKDIR" ]; then
	start_worker a '/proc/[02468]' '/proc/[0-9]*[02468]'
	start_worker b '/proc/[13579]' '/proc/[0-9]*[13579]'
fi

# ---- props: getprop, only the keys dmaprof uses
begin props text
if command -v getprop >/dev/null 2>&1; then
	if [ -n "$WORKDIR" ]; then
		ext getprop >"$WORKDIR/dp.props"
		PROPS=
		while IFS= read -r l || [ -n "$l" ]; do PROPS=$PROPS$l$NL; done <"$WORKDIR/dp.props"
	else # no scratch file: its stderr with its stdout (property lines start with `[`)
		SPAWNS=$((SPAWNS + 1))
		PROPS=$(exec getprop 2>&1)
		RC=$?
	fi
	IFS=$NL
	set -f
	for l in $PROPS; do
		case $l in
		'[ro.product.model]: '* | '[ro.product.device]: '* | '[ro.product.manufacturer]: '* | \
			'[ro.build.fingerprint]: '* | '[ro.build.version.release]: '* | \
			'[ro.build.version.sdk]: '* | '[ro.build.type]: '* | '[ro.debuggable]: '* | \
			'[ro.kernel.version]: '* | '[ro.runtime.firstboot]: '*)
			out "$l"
			;;
		'['*) ;;
		*) [ -n "$WORKDIR" ] || note "$l" ;;
		esac
	done
	set +f
	IFS=" 	
"
else
	note "sh: getprop: not found"
	RC=127
fi
finish props

# ---- packages: cmd package, falling back to pm
begin packages text
RC=127
if command -v cmd >/dev/null 2>&1; then
	ext cmd package list packages -U
fi
if [ "$RC" != 0 ] && command -v pm >/dev/null 2>&1; then
	ext pm list packages -U
fi
if [ "$RC" = 127 ] && [ -z "$ERRS" ]; then
	note "sh: cmd: not found"
fi
finish packages

# ---- global files
begin global files
ext grep -a -H -F '' /proc/version /proc/uptime /proc/meminfo /proc/sys/kernel/random/boot_id \
	/sys/kernel/debug/dma_buf/bufinfo /sys/kernel/dma_heap/total_pools_kb \
	/sys/kernel/ion/total_heaps_kb /sys/kernel/ion/total_pools_kb \
	/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf
finish global

# ---- dma_heap: names of /dev/dma_heap/* (glob, no spawn)
begin dma_heap kv
if [ -d /dev/dma_heap ]; then
	for h in /dev/dma_heap/*; do
		[ -e "$h" ] || [ -L "$h" ] || continue
		out "heap=${h##*/}"
	done
else
	out "heap_dir=absent"
fi
finish dma_heap 0

# ---- per-buffer sysfs stats and legacy ION debugfs
begin sysfs_buffers files
ext grep -r -a -H -F '' /sys/kernel/dmabuf/buffers
finish sysfs_buffers

begin ion files
ext grep -r -a -H -F '' /sys/kernel/debug/ion/heaps
finish ion

# ---- proc: status, cmdline, cgroup, stat, dmabuf_rss, dmabuf_pss of every process
begin proc files
pats=
for f in status cmdline cgroup stat dmabuf_rss dmabuf_pss; do
	set -- /proc/[0-9]*/$f
	# a pattern that matches nothing stays literal: leave it out instead of passing it on
	if [ $# -gt 1 ] || [ -e "$1" ]; then pats="$pats /proc/[0-9]*/$f"; fi
done
RC=1
if [ -n "$pats" ]; then
	set -- $pats
	a=$*
	if [ $((${#a} + 9 * $#)) -le $ARG_BYTES_LIMIT ]; then
		ext grep -a -H -F '' "$@"
	else
		for p in $pats; do # one exec per file kind on a very big device
			set -- $p
			ext grep -a -H -F '' "$@"
		done
	fi
elif ! [ -d /proc ]; then
	note "test: /proc: No such file or directory"
	RC=2
fi
finish proc

# ---- maps: only the dma-buf lines
begin maps files
set -- /proc/[0-9]*/maps
RC=1
if [ $# -gt 1 ] || [ -e "$1" ]; then
	maps_of "$@"
fi
finish maps

# ---- fdaccess, tasks, fdlinks, fdinfo, fdstat (the workers' pieces, or serially)
fd_sections "" fdaccess '/proc/[0-9]*'

# ---- binder: binder buffer allocations and page counts per process (docs/dump-format.md):
# binderfs's binder_logs when it is mounted, else debugfs. One grep -r over proc/ and stats
# keeps only the lines the host reads, plus the page size from grep's own smaps.
begin binder files
binder_dir=/sys/kernel/debug/binder
[ -d /dev/binderfs/binder_logs/proc ] && binder_dir=/dev/binderfs/binder_logs
# The Rust driver's free space line is "free oneway space:", and its ref lines end without a
# newline, so the first buffer after them is glued to the last ref line.
ext grep -r -a -H -e '^proc ' -e '^context ' -e '^  buffer' -e '^  pages' \
	-e '^  free async space' -e '^  free oneway space' -e '^  ref .*  buffer' \
	-e '^KernelPageSize:' "$binder_dir/proc" "$binder_dir/stats" /proc/self/smaps
finish binder

# ---- user-build sources: what the shell user can still read when it may not read other
# processes' fds (a user build). Collected only then, so root snapshots stay fast (`dumpsys
# meminfo` takes seconds). Each is kept apart from the exact per-process sections above.
RESTRICTED=0
[ -r /proc/1/fd ] || RESTRICTED=1
# dumpsys_read ARG...: `dumpsys ARG...` into dp.dumpsys (dumpsys_rc: its status); false,
# with a note, without a scratch directory
dumpsys_read() {
	if [ -z "$WORKDIR" ]; then
		note "collect.sh: dumpsys $*: not read (no scratch directory; tried ${TRIED# })"
		RC=1
		return 1
	fi
	ext dumpsys "$@" >"$WORKDIR/dp.dumpsys"
	dumpsys_rc=$RC
}
if [ "$RESTRICTED" = 1 ] && command -v dumpsys >/dev/null 2>&1; then
	# the graphic buffer lists libui prints (GraphicBufferAllocator's own allocations, then
	# the buffers the process imported into its gralloc mapper); the imported list also ends
	# at the first line that is not part of it, should its total line be missing
	G1='/^GraphicBufferAllocator buffers:/,/^Total allocated/p'
	G2='/^Allocated buffers:/,/^Total allocated/p'
	G3='/^Imported gralloc buffers/,/^(Total imported by gralloc|[^+*I[:space:]])/p'
	begin dumpsys_meminfo text
	if dumpsys_read meminfo; then
		ext grep -E '^ *(DMA-BUF|ION|GPU)[A-Za-z ]*:' "$WORKDIR/dp.dumpsys"
		RC=$dumpsys_rc
	fi
	finish dumpsys_meminfo
	begin dumpsys_surfaceflinger text
	if dumpsys_read SurfaceFlinger; then
		ext sed -n -E -e "$G1" -e "$G2" -e "$G3" "$WORKDIR/dp.dumpsys"
		RC=$dumpsys_rc
	fi
	finish dumpsys_surfaceflinger
	for a in $APPS; do
		begin "dumpsys_gfxinfo/$a" text
		if dumpsys_read gfxinfo "$a"; then
			ext sed -n -E -e '/^\*\* Graphics info for pid /p' -e '/^No process found for: /p' \
				-e "$G1" -e "$G2" -e "$G3" "$WORKDIR/dp.dumpsys"
			RC=$dumpsys_rc
		fi
		finish "dumpsys_gfxinfo/$a"
	done
fi

# ---- run-as: each -a PACKAGE's own processes, read as its uid by this script run again
# (-A) through `run-as PACKAGE`: one spawn, the script passed as an argument (the app may not
# read the workdir), the nonce on fd 3 (a scratch file: not on a command line). The app side
# writes its sections itself; then `runas/PACKAGE` says how it went, with run-as's messages
# (e.g. "package not debuggable").
if [ -n "$APPS" ]; then
	SRC=
	if [ "$RESTRICTED" = 1 ] && [ -r "$0" ] && [ -n "$WORKDIR" ]; then
		if [ -n "${KSH_VERSION:-}" ]; then
			# shellcheck disable=SC3034 # mksh only (KSH_VERSION)
			SRC=$(<"$0")
		else
			SPAWNS=$((SPAWNS + 1))
			SRC=$(exec cat "$0")
		fi
		out "$NONCE" >"$WORKDIR/dp.nonce"
	fi
	for a in $APPS; do
		ERRS=
		runas_rc=0
		if [ "$RESTRICTED" = 0 ]; then
			run=skipped
		elif [ -z "$WORKDIR" ]; then
			run=failed
			note "collect.sh: run-as needs a scratch directory (none writable: tried ${TRIED# })"
		elif [ -z "$SRC" ]; then
			run=failed
			note "collect.sh: $0: cannot read the script to run it under run-as"
		elif ! command -v run-as >/dev/null 2>&1; then
			run=failed
			runas_rc=127
			note "sh: run-as: not found"
		else
			run=yes
			ext run-as "$a" sh -c "$SRC" collect.sh -A "$a" 3<"$WORKDIR/dp.nonce"
			runas_rc=$RC
		fi
		runas_errs=$ERRS
		begin "runas/$a" kv
		ERRS=$runas_errs
		out "package=$a"
		out "run=$run"
		out "rc=$runas_rc"
		finish "runas/$a" $runas_rc
	done
fi

# ---- end
begin end kv
UPTIME_END=
{ read -r UPTIME_END _ </proc/uptime; } 2>/dev/null
case $UPTIME_END in *[!0-9.]*) UPTIME_END= ;; esac
out "uptime_end=$UPTIME_END"
[ "$EXACT_SPAWNS" = 1 ] && out "spawns=$((SPAWNS + CLEANUP_SPAWNS))"
finish end 0
out "@$NONCE done"
exit 0
