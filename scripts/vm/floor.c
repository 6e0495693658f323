/*
 * floor.c: the read floor of dmaprof's collector, and a timer (issue #14; docs/vm-testbed.md
 * "Benchmark"). Static (`gcc -O2 -static`), so the same binary runs in the VM guest and in
 * the emulated phone's chroot.
 *
 *   floor read          read, in this one process, exactly what dmaprof/collect/collect.sh
 *                       reads, and write it to stdout (what a dump must hold at least); a
 *                       JSON summary of what was read goes to stderr
 *   floor time OUT CMD...
 *                       run CMD with stdout to OUT (stdin /dev/null, stderr kept) and print
 *                       one JSON line: wall_s (CLOCK_MONOTONIC), user_s and sys_s (wait4's
 *                       rusage: CMD and every descendant it waited for), spawns (the delta
 *                       of /proc/stat's `processes` counter, minus the fork of CMD itself),
 *                       bytes (size of OUT), rc
 *
 * What `read` reads, as the collector does (docs/dump-format.md): the global files, the
 * entries of /dev/dma_heap, /sys/kernel/dmabuf/buffers, /sys/kernel/debug/ion/heaps and the
 * binder debug files (recursively), /proc/self/smaps; for every process: status, cmdline,
 * cgroup, stat, dmabuf_rss, dmabuf_pss, maps (only its dma-buf lines are written), the link
 * of every fd, the fdinfo of the dma-buf fds only, and the fd table of every thread (a
 * thread whose fd names differ from its leader's has its own table: its links and dma-buf
 * fdinfo are read too).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];
static long n_procs, n_fds, n_dma, n_maps, n_own_tables, n_files;

static void put(const char *s, size_t n) { fwrite(s, 1, n, stdout); }
static void puts_(const char *s) { put(s, strlen(s)); }

/* read a whole file; returns its length (-1 on error) */
static ssize_t slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len >= sizeof buf - 1)
			break;
	}
	close(fd);
	buf[len] = 0;
	n_files++;
	return (ssize_t)len;
}

static void copy_file(const char *path)
{
	ssize_t n = slurp(path);
	if (n < 0)
		return;
	puts_(path);
	put("\n", 1);
	put(buf, (size_t)n);
}

static void copy_tree(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		copy_file(path);
		return;
	}
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	char p[4096];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", path, e->d_name);
		copy_tree(p);
	}
	closedir(d);
}

static void maps_dmabuf(const char *path)
{
	ssize_t n = slurp(path);
	if (n < 0)
		return;
	char *s = buf, *end = buf + n;
	while (s < end) {
		char *nl = memchr(s, '\n', (size_t)(end - s));
		char *e = nl ? nl : end;
		n_maps++;
		if (memmem(s, (size_t)(e - s), " /dmabuf:", 9) ||
		    memmem(s, (size_t)(e - s), " anon_inode:dmabuf", 18)) {
			puts_(path);
			put(":", 1);
			put(s, (size_t)(e - s));
			put("\n", 1);
		}
		s = e + 1;
	}
}

struct names { char *v; size_t n, cap; };

/* the entry names of an fd directory, "\n"-joined in readdir order */
static int fd_names(const char *dir, struct names *out)
{
	out->n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		size_t l = strlen(e->d_name);
		if (out->n + l + 2 > out->cap) {
			out->cap = (out->cap + l + 2) * 2;
			out->v = realloc(out->v, out->cap);
			if (!out->v)
				abort();
		}
		memcpy(out->v + out->n, e->d_name, l);
		out->n += l;
		out->v[out->n++] = '\n';
	}
	closedir(d);
	return 0;
}

/* readlink every fd of DIR (= .../fd), and read the fdinfo of the dma-buf ones */
static void fd_table(const char *base, const struct names *nm)
{
	char p[1400], t[4096];
	const char *s = nm->v, *end = nm->v + nm->n;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *name = s;
		int l = (int)(nl - s);
		snprintf(p, sizeof p, "%s/fd/%.*s", base, l, name);
		ssize_t tl = readlink(p, t, sizeof t - 1);
		s = nl + 1;
		if (tl < 0)
			continue;
		t[tl] = 0;
		n_fds++;
		puts_(p);
		put(" ", 1);
		put(t, (size_t)tl);
		put("\n", 1);
		if (!strncmp(t, "/dmabuf:", 8) || !strcmp(t, "anon_inode:dmabuf")) {
			n_dma++;
			snprintf(p, sizeof p, "%s/fdinfo/%.*s", base, l, name);
			copy_file(p);
		}
	}
}

static void one_process(const char *pid, int self)
{
	static const char *files[] = {"status", "cmdline", "cgroup", "stat", "dmabuf_rss",
				      "dmabuf_pss"};
	static struct names leader, task;
	char p[1400], base[640];
	n_procs++;
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(p, sizeof p, "/proc/%s/%s", pid, files[i]);
		copy_file(p);
	}
	snprintf(p, sizeof p, "/proc/%s/maps", pid);
	maps_dmabuf(p);
	if (self)
		return;
	snprintf(base, sizeof base, "/proc/%s", pid);
	snprintf(p, sizeof p, "%s/fd", base);
	if (fd_names(p, &leader) < 0)
		return;
	fd_table(base, &leader);
	snprintf(p, sizeof p, "/proc/%s/task", pid);
	DIR *d = opendir(p);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, pid))
			continue;
		char tb[640];
		snprintf(tb, sizeof tb, "/proc/%s/task/%s", pid, e->d_name);
		snprintf(p, sizeof p, "%s/fd", tb);
		if (fd_names(p, &task) < 0)
			continue;
		if (task.n == leader.n && !memcmp(task.v, leader.v, task.n))
			continue;
		n_own_tables++;
		fd_table(tb, &task);
	}
	closedir(d);
}

static int do_read(void)
{
	static char obuf[1 << 18];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	copy_file("/proc/sys/kernel/random/uuid");
	copy_file("/proc/uptime");
	copy_file("/proc/self/status");
	static const char *global[] = {
		"/proc/version", "/proc/uptime", "/proc/meminfo", "/proc/sys/kernel/random/boot_id",
		"/sys/kernel/debug/dma_buf/bufinfo", "/sys/kernel/dma_heap/total_pools_kb",
		"/sys/kernel/ion/total_heaps_kb", "/sys/kernel/ion/total_pools_kb",
		"/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf"};
	for (size_t i = 0; i < sizeof global / sizeof *global; i++)
		copy_file(global[i]);
	DIR *d = opendir("/dev/dma_heap");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.') {
				puts_(e->d_name);
				put("\n", 1);
			}
		closedir(d);
	}
	copy_tree("/sys/kernel/dmabuf/buffers");
	copy_tree("/sys/kernel/debug/ion/heaps");
	char self[32];
	snprintf(self, sizeof self, "%d", (int)getpid());
	d = opendir("/proc");
	if (!d)
		return 1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		one_process(e->d_name, !strcmp(e->d_name, self));
	}
	closedir(d);
	const char *bd = "/sys/kernel/debug/binder";
	struct stat st;
	if (stat("/dev/binderfs/binder_logs/proc", &st) == 0)
		bd = "/dev/binderfs/binder_logs";
	char p[256];
	snprintf(p, sizeof p, "%s/proc", bd);
	copy_tree(p);
	snprintf(p, sizeof p, "%s/stats", bd);
	copy_file(p);
	copy_file("/proc/self/smaps");
	copy_file("/proc/uptime");
	fflush(stdout);
	fprintf(stderr,
		"{\"procs\": %ld, \"fds\": %ld, \"dmabuf_fds\": %ld, \"own_fd_tables\": %ld, "
		"\"maps_lines\": %ld, \"files\": %ld}\n",
		n_procs, n_fds, n_dma, n_own_tables, n_maps, n_files);
	return 0;
}

static long processes_counter(void)
{
	ssize_t n = slurp("/proc/stat");
	if (n < 0)
		return -1;
	char *s = strstr(buf, "\nprocesses ");
	return s ? atol(s + 11) : -1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int do_time(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: floor time OUT CMD...\n");
		return 2;
	}
	const char *out = argv[0];
	long p0 = processes_counter();
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int in = open("/dev/null", O_RDONLY);
		if (fd < 0 || in < 0 || dup2(fd, 1) < 0 || dup2(in, 0) < 0)
			_exit(126);
		close(fd);
		close(in);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0)
		return 1;
	double t1 = now();
	long p1 = processes_counter();
	struct stat st;
	long long bytes = stat(out, &st) == 0 ? (long long)st.st_size : -1;
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("{\"wall_s\": %.4f, \"user_s\": %.4f, \"sys_s\": %.4f, \"spawns\": %ld, "
	       "\"bytes\": %lld, \"rc\": %d}\n",
	       t1 - t0, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
	       p0 < 0 || p1 < 0 ? -1 : p1 - p0 - 1, bytes, rc);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "read"))
		return do_read();
	if (argc >= 2 && !strcmp(argv[1], "time"))
		return do_time(argc - 2, argv + 2);
	fprintf(stderr, "usage: floor read | floor time OUT CMD...\n");
	return 2;
}
