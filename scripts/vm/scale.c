/*
 * scale.c: the VM testbed's scale scene (docs/vm-testbed.md "Benchmark"; issue #14).
 *
 * Many processes sharing real dma-bufs, as on a big phone, for timing the collector against
 * the read floor (scripts/vm/floor.c). Built like scene.c (`gcc -O2 -static -pthread`):
 *
 *   scale [--dir /run/scale] [--procs 500] [--bufs 200] [--dmafds 40] [--otherfds 30]
 *         [--maps 100]
 *
 * The parent allocates BUFS named buffers from /dev/dma_heap/system, then forks PROCS
 * children. Each keeps DMAFDS of the buffers as fds (a deterministic pick, so every buffer
 * is shared by about PROCS*DMAFDS/BUFS processes), opens OTHERFDS other fds (/dev/null,
 * pipes, eventfds, sockets), maps 2 of its buffers and enough anonymous regions (with
 * alternating protections, so they do not merge) for about MAPS lines in /proc/PID/maps,
 * starts one thread (every 25th process: a thread with its own fd table, unshare(CLONE_FILES))
 * and sleeps. When all are ready the parent writes DIR/READY ("procs dmafds" counts) and
 * sleeps; SIGTERM ends everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXBUF 4096
#define BUF_BASE 1000 /* buffer fds of the parent live at BUF_BASE.. (dup'd low in children) */

static const char *dir = "/run/scale";
static int nprocs = 500, nbufs = 200, ndma = 40, nother = 30, nmaps = 100;

static void die(const char *what)
{
	fprintf(stderr, "scale: %s: %s\n", what, strerror(errno));
	char p[512];
	snprintf(p, sizeof p, "%s/ERROR", dir);
	FILE *f = fopen(p, "w");
	if (f) {
		fprintf(f, "%s: %s\n", what, strerror(errno));
		fclose(f);
	}
	exit(1);
}

static void *sleeper(void *arg)
{
	if (arg && unshare(CLONE_FILES) == 0) /* a task with its own fd table, */
		open("/dev/null", O_RDONLY); /* which differs from its leader's */
	for (;;)
		pause();
	return NULL;
}

static void child(int idx, int ready)
{
	char name[16];
	snprintf(name, sizeof name, "scale-%d", idx % 100000);
	prctl(PR_SET_NAME, name);
	/* the buffers this process keeps: a stride pick, distinct within the process */
	int fd = 3;
	int keep[MAXBUF] = {0};
	for (int k = 0; k < ndma; k++) {
		int b = (idx * 37 + k * 5) % nbufs;
		while (keep[b])
			b = (b + 1) % nbufs;
		keep[b] = 1;
		if (dup2(BUF_BASE + b, fd++) < 0)
			die("dup2");
	}
	for (int b = 0; b < nbufs; b++)
		close(BUF_BASE + b);
	/* other fds, about as a phone app has them */
	for (int k = 0; k < nother;) {
		int sv[2];
		switch (k % 4) {
		case 0:
			if (open("/dev/null", O_RDONLY) >= 0)
				k++;
			break;
		case 1:
			if (eventfd(0, 0) >= 0)
				k++;
			break;
		case 2:
			if (nother - k >= 2 && pipe(sv) == 0)
				k += 2;
			else if (open("/dev/null", O_RDONLY) >= 0)
				k++;
			break;
		default:
			if (nother - k >= 2 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0)
				k += 2;
			else if (open("/dev/null", O_RDONLY) >= 0)
				k++;
			break;
		}
	}
	/* two dma-buf mappings, then anonymous regions up to about nmaps lines in total */
	for (int k = 0; k < 2 && k < ndma; k++) {
		off_t len = lseek(3 + k, 0, SEEK_END);
		if (mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, 3 + k, 0) == MAP_FAILED)
			die("mmap dma-buf");
	}
	/* about 14 lines are the binary, heap, stack, vdso, ...; then one line per page of a
	 * region whose pages alternate between two protections (so they do not merge) */
	size_t pages = (size_t)nmaps - 14;
	char *base = mmap(NULL, pages * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		die("mmap");
	for (size_t k = 1; k < pages; k += 2)
		mprotect(base + k * 4096, 4096, PROT_READ | PROT_WRITE);
	pthread_t t;
	pthread_create(&t, NULL, sleeper, idx % 25 == 0 ? (void *)1 : NULL);
	char c = 1;
	if (write(ready, &c, 1) != 1)
		die("write ready");
	close(ready);
	for (;;)
		pause();
}

static void on_term(int sig)
{
	(void)sig;
	kill(0, SIGKILL);
	_exit(0);
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (!strcmp(a, "--dir"))
			dir = v;
		else if (!strcmp(a, "--procs"))
			nprocs = atoi(v);
		else if (!strcmp(a, "--bufs"))
			nbufs = atoi(v);
		else if (!strcmp(a, "--dmafds"))
			ndma = atoi(v);
		else if (!strcmp(a, "--otherfds"))
			nother = atoi(v);
		else if (!strcmp(a, "--maps"))
			nmaps = atoi(v);
		else {
			fprintf(stderr, "scale: unknown option %s\n", a);
			return 2;
		}
	}
	if (nbufs < 1 || nbufs > MAXBUF || ndma > nbufs || nmaps < 16) {
		fprintf(stderr, "scale: bad sizes\n");
		return 2;
	}
	mkdir(dir, 0755);
	struct rlimit rl = {BUF_BASE + MAXBUF, BUF_BASE + MAXBUF};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit RLIMIT_NOFILE");
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	if (heap < 0)
		die("open /dev/dma_heap/system");
	for (int b = 0; b < nbufs; b++) {
		struct dma_heap_allocation_data d = {
			.len = (size_t)4096 * (1 + b % 4), .fd_flags = O_RDWR | O_CLOEXEC};
		if (ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d) < 0)
			die("DMA_HEAP_IOCTL_ALLOC");
		char nm[32];
		snprintf(nm, sizeof nm, "scale-%d", b);
		ioctl((int)d.fd, DMA_BUF_SET_NAME, nm);
		if (dup3((int)d.fd, BUF_BASE + b, 0) < 0) /* not O_CLOEXEC: the children inherit */
			die("dup3");
		close((int)d.fd);
	}
	close(heap);
	signal(SIGTERM, on_term);
	int rp[2];
	if (pipe(rp) < 0)
		die("pipe");
	/* out of the way of the children's low fds */
	if (dup2(rp[0], BUF_BASE - 2) < 0 || dup2(rp[1], BUF_BASE - 1) < 0)
		die("dup2 pipe");
	close(rp[0]);
	close(rp[1]);
	rp[0] = BUF_BASE - 2;
	rp[1] = BUF_BASE - 1;
	for (int i = 0; i < nprocs; i++) {
		pid_t p = fork();
		if (p < 0)
			die("fork");
		if (p == 0) {
			close(rp[0]);
			child(i, rp[1]);
		}
	}
	close(rp[1]);
	for (int b = 0; b < nbufs; b++)
		close(BUF_BASE + b);
	int got = 0;
	char c;
	while (got < nprocs && read(rp[0], &c, 1) == 1)
		got++;
	if (got < nprocs) {
		errno = ECHILD;
		die("children not ready");
	}
	char p[512];
	snprintf(p, sizeof p, "%s/READY", dir);
	FILE *f = fopen(p, "w");
	if (!f)
		die("READY");
	fprintf(f, "procs=%d bufs=%d dmafds=%d otherfds=%d maps=%d\n", nprocs, nbufs, ndma, nother,
		nmaps);
	fclose(f);
	for (;;)
		pause();
}
