/*
 * scene.c: an Android-like population of real dma-bufs, with JSON ground truth.
 *
 * Part of dmaprof's qemu testbed (docs/vm-testbed.md, kernel-vm.md §8-9). Built on the host
 * with `gcc -O2 -static -pthread scene.c` (uapi headers from linux-libc-dev only; the few DRM
 * uapi structs are declared below) and run as PID 1's child in the guest:
 *
 *   scene [--dir /run/scene] [--exporter auto|system|vgem|udmabuf]
 *         [--leak-ms 300] [--leak-max 400]
 *
 * The orchestrator (no SCENE_ROLE in the environment) creates the cgroups and the unix
 * socket pairs, then forks each role, which re-executes this binary under an Android-like
 * path (comm and cmdline follow from it) with SCENE_ROLE set:
 *
 *   allocator       /vendor/bin/hw/android.hardware.graphics.allocator-service  /system
 *   surfaceflinger  /system/bin/surfaceflinger                                  /system
 *   camera          com.example.camera (zygote-style, NUL-padded)    /uid_10001/pid_N
 *   camera_remote   com.example.camera:remote                        /uid_10001/pid_M
 *   leaky           com.example.leaky                                /uid_10002/pid_K
 *
 * Each role writes DIR/gt-<role>.json (tmp + rename) whenever its state changes; when all
 * are ready the orchestrator writes DIR/roles ("role pid" lines) and DIR/READY.
 * The leaky role pauses on SIGUSR1 (rewrites its JSON with "paused": true, then creates
 * DIR/leaky.paused) and resumes on SIGUSR2 (removes the file first).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>

/* ---- DRM uapi (include/uapi/drm/drm.h, drm_mode.h): not shipped by linux-libc-dev ---- */
struct sc_drm_version {
	int version_major, version_minor, version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};
struct sc_drm_gem_close {
	uint32_t handle, pad;
};
struct sc_drm_prime_handle {
	uint32_t handle, flags;
	int32_t fd;
};
struct sc_drm_mode_create_dumb {
	uint32_t height, width, bpp, flags, handle, pitch;
	uint64_t size;
};
#define SC_DRM_IOCTL_VERSION _IOWR('d', 0x00, struct sc_drm_version)
#define SC_DRM_IOCTL_GEM_CLOSE _IOW('d', 0x09, struct sc_drm_gem_close)
#define SC_DRM_IOCTL_PRIME_HANDLE_TO_FD _IOWR('d', 0x2d, struct sc_drm_prime_handle)
#define SC_DRM_IOCTL_PRIME_FD_TO_HANDLE _IOWR('d', 0x2e, struct sc_drm_prime_handle)
#define SC_DRM_IOCTL_MODE_CREATE_DUMB _IOWR('d', 0xB2, struct sc_drm_mode_create_dumb)
#define SC_DRM_CLOEXEC O_CLOEXEC
#define SC_DRM_RDWR O_RDWR

#define MAXREC 1024
#define LABEL 48

/* ------------------------------------------------------------------ process state */
static const char *g_dir = "/run/scene";
static const char *g_role = "orchestrator";
static char g_exporter[16] = "auto"; /* resolved: system | vgem | udmabuf */
static int g_has_heap, g_has_udmabuf, g_has_vgem;
static int g_heap_fd = -1, g_udmabuf_fd = -1, g_vgem_fd = -1;
static int g_leak_ms = 300, g_leak_max = 400;
static int g_uid;
static char g_cgroup[128] = "/";
static char g_comm[16];
static char *g_cmdline;
static size_t g_cmdline_len;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

struct fdrec { int fd; unsigned long ino; char label[LABEL]; pid_t tid; };
struct maprec { uintptr_t start, end; unsigned long ino; int fd_open; char label[LABEL]; };
struct inorec { unsigned long ino; char label[LABEL]; };
struct created { char label[LABEL]; unsigned long ino; const char *backend; size_t requested, size; char name[40]; };
struct threadrec { pid_t tid; char comm[16]; };

static struct fdrec g_fds[MAXREC];
static int g_nfds;
static struct maprec g_maps[64];
static int g_nmaps;
static struct inorec g_imports[16], g_inflight[16], g_gem_exports[MAXREC];
static int g_nimports, g_ninflight, g_ngem_exports;
static struct created g_created[MAXREC];
static int g_ncreated;
static struct threadrec g_threads[16];
static int g_nthreads;
static pid_t g_own_table_tids[4];
static int g_nown;
static int g_is_leaky, g_paused, g_leak_count;

static void die(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	fprintf(stderr, "scene[%s/%d]: ", g_role, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d: %s)\n", e, strerror(e));
	exit(1);
}

static void note(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "scene[%s/%d]: ", g_role, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", path);
	if (write(fd, s, strlen(s)) < 0)
		die("write %s to %s", s, path);
	close(fd);
}

/* ------------------------------------------------------------------ JSON */
struct sb { char *p; size_t n, cap; };

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die("realloc");
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void sb_lit(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_printf(struct sb *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_str(struct sb *b, const char *s, size_t n)
{
	sb_add(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			sb_add(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(b, "\\u%04x", c);
		} else {
			sb_add(b, (const char *)&c, 1);
		}
	}
	sb_add(b, "\"", 1);
}

static void sb_key(struct sb *b, const char *k) { sb_str(b, k, strlen(k)); sb_add(b, ": ", 2); }

static void atomic_write(const char *path, const char *data, size_t n)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, gettid_());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s", tmp);
	if (write(fd, data, n) != (ssize_t)n)
		die("write %s", tmp);
	close(fd);
	if (rename(tmp, path))
		die("rename %s", path);
}

static const char *exp_name_of(const char *backend)
{
	if (!strcmp(backend, "dma_heap/system"))
		return "system";
	if (!strcmp(backend, "udmabuf"))
		return "udmabuf";
	return "drm";
}

/* Write DIR/gt-<role>.json. Caller holds g_lock (or is single-threaded). */
static void gt_write(void)
{
	struct sb b = { 0 };
	sb_printf(&b, "{\n  \"role\": \"%s\",\n  \"pid\": %d,\n  \"uid\": %d,\n", g_role,
		  (int)getpid(), g_uid);
	sb_lit(&b, "  "); sb_key(&b, "comm"); sb_str(&b, g_comm, strlen(g_comm));
	sb_lit(&b, ",\n  "); sb_key(&b, "cmdline"); sb_str(&b, g_cmdline, g_cmdline_len);
	sb_lit(&b, ",\n  "); sb_key(&b, "cgroup"); sb_str(&b, g_cgroup, strlen(g_cgroup));
	sb_lit(&b, ",\n  \"threads\": [");
	for (int i = 0; i < g_nthreads; i++) {
		sb_printf(&b, "%s\n    {\"tid\": %d, \"comm\": ", i ? "," : "", (int)g_threads[i].tid);
		sb_str(&b, g_threads[i].comm, strlen(g_threads[i].comm));
		sb_lit(&b, "}");
	}
	sb_lit(&b, "],\n  \"own_fd_table_tids\": [");
	for (int i = 0; i < g_nown; i++)
		sb_printf(&b, "%s%d", i ? ", " : "", (int)g_own_table_tids[i]);
	sb_lit(&b, "],\n  \"dmabuf_fds\": [");
	for (int i = 0; i < g_nfds; i++) {
		struct fdrec *f = &g_fds[i];
		sb_printf(&b, "%s\n    {\"fd\": %d, \"ino\": %lu, \"label\": ", i ? "," : "", f->fd, f->ino);
		sb_str(&b, f->label, strlen(f->label));
		if (f->tid)
			sb_printf(&b, ", \"tid\": %d", (int)f->tid);
		sb_lit(&b, "}");
	}
	sb_lit(&b, "],\n  \"dmabuf_maps\": [");
	for (int i = 0; i < g_nmaps; i++) {
		struct maprec *m = &g_maps[i];
		sb_printf(&b, "%s\n    {\"start\": \"%lx\", \"end\": \"%lx\", \"ino\": %lu, \"fd_open\": %s, \"label\": ",
			  i ? "," : "", (unsigned long)m->start, (unsigned long)m->end, m->ino,
			  m->fd_open ? "true" : "false");
		sb_str(&b, m->label, strlen(m->label));
		sb_lit(&b, "}");
	}
	struct { const char *key; struct inorec *r; int n; } lists[] = {
		{ "gem_imports", g_imports, g_nimports },
		{ "inflight_in_unread_socket", g_inflight, g_ninflight },
		{ "gem_exports", g_gem_exports, g_ngem_exports },
	};
	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
		sb_printf(&b, "],\n  \"%s\": [", lists[l].key);
		for (int i = 0; i < lists[l].n; i++) {
			sb_printf(&b, "%s\n    {\"ino\": %lu, \"label\": ", i ? "," : "", lists[l].r[i].ino);
			sb_str(&b, lists[l].r[i].label, strlen(lists[l].r[i].label));
			sb_lit(&b, "}");
		}
	}
	sb_lit(&b, "],\n  \"created\": [");
	for (int i = 0; i < g_ncreated; i++) {
		struct created *c = &g_created[i];
		sb_printf(&b, "%s\n    {\"label\": ", i ? "," : "");
		sb_str(&b, c->label, strlen(c->label));
		sb_printf(&b, ", \"ino\": %lu, \"backend\": \"%s\", \"exp_name\": \"%s\", \"requested\": %zu, \"size\": %zu, \"name\": ",
			  c->ino, c->backend, exp_name_of(c->backend), c->requested, c->size);
		sb_str(&b, c->name, strlen(c->name));
		sb_lit(&b, "}");
	}
	sb_lit(&b, "]");
	if (g_is_leaky)
		sb_printf(&b, ",\n  \"paused\": %s,\n  \"leak_count\": %d", g_paused ? "true" : "false",
			  g_leak_count);
	sb_lit(&b, "\n}\n");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/gt-%s.json", g_dir, g_role);
	atomic_write(path, b.p, b.n);
	free(b.p);
}

/* ------------------------------------------------------------------ bookkeeping */
static unsigned long ino_of(int fd)
{
	struct stat st;
	if (fstat(fd, &st))
		die("fstat %d", fd);
	return (unsigned long)st.st_ino;
}

static void add_fd(int fd, const char *label, pid_t tid)
{
	if (g_nfds >= MAXREC)
		die("too many fds");
	struct fdrec *f = &g_fds[g_nfds++];
	f->fd = fd;
	f->ino = ino_of(fd);
	f->tid = tid;
	snprintf(f->label, LABEL, "%s", label);
}

static void add_ino(struct inorec *list, int *n, unsigned long ino, const char *label)
{
	list[*n].ino = ino;
	snprintf(list[*n].label, LABEL, "%s", label);
	(*n)++;
}

static void register_thread(const char *name)
{
	if (name)
		prctl(PR_SET_NAME, name, 0, 0, 0);
	char comm[16] = { 0 };
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	pthread_mutex_lock(&g_lock);
	g_threads[g_nthreads].tid = gettid_();
	memcpy(g_threads[g_nthreads].comm, comm, 16);
	g_nthreads++;
	pthread_mutex_unlock(&g_lock);
}

/* Map a buffer shared read/write and touch every page; fd_open says whether the caller
 * keeps the fd open afterwards (recorded as the mapping's fd_open). */
static void *map_fd(int fd, const char *label, int fd_open)
{
	size_t len = (size_t)lseek(fd, 0, SEEK_END);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap %s", label);
	long pg = sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < len; off += (size_t)pg)
		((volatile char *)p)[off] = (char)(off / (size_t)pg);
	struct maprec *m = &g_maps[g_nmaps++];
	m->start = (uintptr_t)p;
	m->end = (uintptr_t)p + ((len + (size_t)pg - 1) & ~((size_t)pg - 1));
	m->ino = ino_of(fd);
	m->fd_open = fd_open;
	snprintf(m->label, LABEL, "%s", label);
	return p;
}

/* ------------------------------------------------------------------ exporters */
static int find_vgem(void)
{
	for (int i = 0; i < 16; i++) {
		char path[64], name[64] = { 0 };
		snprintf(path, sizeof path, "/dev/dri/card%d", i);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct sc_drm_version v = { 0 };
		v.name = name;
		v.name_len = sizeof name - 1;
		if (ioctl(fd, SC_DRM_IOCTL_VERSION, &v) == 0 && !strcmp(name, "vgem"))
			return fd;
		close(fd);
	}
	return -1;
}

/* Open the devices a role needs (before it drops its privileges): "heap", "udmabuf",
 * "vgem" or "exporter" (the device of the resolved exporter of shared buffers). */
static void open_device(const char *what)
{
	if (!strcmp(what, "exporter"))
		what = !strcmp(g_exporter, "system") ? "heap" : g_exporter;
	if (!strcmp(what, "heap") && g_has_heap && g_heap_fd < 0)
		g_heap_fd = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	if (!strcmp(what, "udmabuf") && g_has_udmabuf && g_udmabuf_fd < 0)
		g_udmabuf_fd = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (!strcmp(what, "vgem") && g_has_vgem && g_vgem_fd < 0)
		g_vgem_fd = find_vgem();
}

static const char *backend_of(const char *exporter)
{
	if (!strcmp(exporter, "system"))
		return "dma_heap/system";
	if (!strcmp(exporter, "udmabuf"))
		return "udmabuf";
	return "vgem";
}

/* Allocate len bytes from backend, name it (unless name is empty), record it as created.
 * Returns the dma-buf fd (O_RDWR | O_CLOEXEC). */
static int make_buf(const char *backend, size_t len, const char *label, const char *name)
{
	int fd = -1;
	if (!strcmp(backend, "dma_heap/system")) {
		struct dma_heap_allocation_data d = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
		if (g_heap_fd < 0 || ioctl(g_heap_fd, DMA_HEAP_IOCTL_ALLOC, &d))
			die("DMA_HEAP_IOCTL_ALLOC %s", label);
		fd = (int)d.fd;
	} else if (!strcmp(backend, "udmabuf")) {
		int mfd = memfd_create(label, MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (mfd < 0 || ftruncate(mfd, (off_t)len) || fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK))
			die("memfd for %s", label);
		struct udmabuf_create c = { .memfd = (uint32_t)mfd, .flags = UDMABUF_FLAGS_CLOEXEC,
					    .offset = 0, .size = len };
		if (g_udmabuf_fd < 0 || (fd = ioctl(g_udmabuf_fd, UDMABUF_CREATE, &c)) < 0)
			die("UDMABUF_CREATE %s", label);
		close(mfd); /* the udmabuf keeps the pages */
	} else {
		struct sc_drm_mode_create_dumb c = { .height = 1, .width = (uint32_t)len, .bpp = 8 };
		if (g_vgem_fd < 0 || ioctl(g_vgem_fd, SC_DRM_IOCTL_MODE_CREATE_DUMB, &c))
			die("DRM_IOCTL_MODE_CREATE_DUMB %s", label);
		struct sc_drm_prime_handle p = { .handle = c.handle, .flags = SC_DRM_CLOEXEC | SC_DRM_RDWR };
		if (ioctl(g_vgem_fd, SC_DRM_IOCTL_PRIME_HANDLE_TO_FD, &p))
			die("DRM_IOCTL_PRIME_HANDLE_TO_FD %s", label);
		fd = p.fd; /* the GEM handle stays open, as a gralloc keeps it */
	}
	if (name[0] && ioctl(fd, DMA_BUF_SET_NAME, name))
		die("DMA_BUF_SET_NAME %s", name);
	if (g_ncreated >= MAXREC)
		die("too many buffers");
	struct created *c = &g_created[g_ncreated++];
	snprintf(c->label, LABEL, "%s", label);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->ino = ino_of(fd);
	c->backend = backend;
	c->requested = len;
	c->size = (size_t)lseek(fd, 0, SEEK_END);
	lseek(fd, 0, SEEK_SET);
	if (!strcmp(backend, "vgem"))
		add_ino(g_gem_exports, &g_ngem_exports, c->ino, label);
	return fd;
}

static int gem_import(int fd, const char *label)
{
	if (g_vgem_fd < 0)
		return -1;
	struct sc_drm_prime_handle p = { .fd = fd };
	if (ioctl(g_vgem_fd, SC_DRM_IOCTL_PRIME_FD_TO_HANDLE, &p))
		die("DRM_IOCTL_PRIME_FD_TO_HANDLE %s", label);
	add_ino(g_imports, &g_nimports, ino_of(fd), label);
	return (int)p.handle;
}

/* ------------------------------------------------------------------ fd passing */
static void send_fd(int sock, int fd, const char *label)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = { (void *)label, strlen(label) + 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof cbuf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		die("sendmsg %s", label);
}

static int recv_fd(int sock, char *label, size_t n)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { label, n - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof cbuf };
	ssize_t r;
	while ((r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		die("recvmsg");
	label[r] = 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		die("recvmsg: no fd for %s", label);
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* ------------------------------------------------------------------ threads */
struct tstart { const char *name; void *(*fn)(void *); sem_t started; };

static void *sleeper(void *arg) { (void)arg; for (;;) pause(); return NULL; }

static void *thread_tramp(void *arg)
{
	struct tstart *ts = arg;
	void *(*fn)(void *) = ts->fn;
	register_thread(ts->name);
	sem_post(&ts->started);
	return fn ? fn(NULL) : sleeper(NULL);
}

/* Start a named thread; returns once it has registered its tid and comm. */
static void spawn_thread(const char *name, void *(*fn)(void *))
{
	struct tstart ts = { name, fn, { { 0 } } };
	sem_init(&ts.started, 0, 0);
	pthread_t t;
	if (pthread_create(&t, NULL, thread_tramp, &ts))
		die("pthread_create %s", name);
	while (sem_wait(&ts.started) && errno == EINTR)
		;
	sem_destroy(&ts.started);
	pthread_detach(t);
}

/* ------------------------------------------------------------------ role setup */
static void drop_to(int uid)
{
	g_uid = uid;
	if (!uid)
		return;
	if (setgroups(0, NULL) || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) ||
	    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid))
		die("drop to uid %d", uid);
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* The argv area: what /proc/PID/cmdline shows (mm->arg_start .. arg_end). */
static char *g_arg_start, *g_arg_end;

/* Zygote style: overwrite the whole argv area with the package name, zero-fill the rest. */
static void become_app(const char *pkg)
{
	memset(g_arg_start, 0, (size_t)(g_arg_end - g_arg_start));
	snprintf(g_arg_start, (size_t)(g_arg_end - g_arg_start), "%s", pkg);
	prctl(PR_SET_NAME, pkg, 0, 0, 0);
}

static void capture_identity(void)
{
	char *start = g_arg_start, *end = g_arg_end;
	g_cmdline_len = (size_t)(end - start);
	g_cmdline = malloc(g_cmdline_len);
	memcpy(g_cmdline, start, g_cmdline_len);
	prctl(PR_GET_NAME, g_comm, 0, 0, 0);
	const char *cg = getenv("SCENE_CGROUP");
	snprintf(g_cgroup, sizeof g_cgroup, "%s", cg ? cg : "/");
}

static void signal_ready(int fd)
{
	if (write(fd, "r", 1) != 1)
		die("ready pipe");
	close(fd);
}

/* ------------------------------------------------------------------ roles */
#define MiB (1024 * 1024)
#define FB_SIZE (1920 * 1080 * 4)
#define PREVIEW_SIZE (640 * 480 * 2)

enum { ALLOC_SF = 3, ALLOC_SFOWN = 4, ALLOC_CAM = 5, ALLOC_READY = 6 };

static void role_allocator(void)
{
	const char *be = backend_of(g_exporter);
	register_thread(NULL);
	spawn_thread("HwBinder:alloc", NULL);
	/* kept by fd: a pool the allocator holds itself */
	add_fd(make_buf(be, 1 * MiB, "alloc-pool", "alloc-pool"), "alloc-pool", 0);
	/* gralloc: allocate for the client, send over the "binder" socket, close our copy */
	const char *sf[] = { "sf-fb0", "sf-fb1", "sf-fb2" };
	for (int i = 0; i < 3; i++) {
		int fd = make_buf(be, FB_SIZE, sf[i], sf[i]);
		send_fd(ALLOC_SF, fd, sf[i]);
		close(fd);
	}
	int fd = make_buf(be, 256 * 256 * 4, "sf-cursor", "sf-cursor");
	send_fd(ALLOC_SF, fd, "sf-cursor");
	close(fd);
	fd = make_buf(be, 512 * 1024, "sf-private", "sf-private");
	send_fd(ALLOC_SFOWN, fd, "sf-private");
	close(fd);
	const char *cam[] = { "cam-preview-0", "cam-preview-1" };
	for (int i = 0; i < 2; i++) {
		fd = make_buf(be, PREVIEW_SIZE, cam[i], cam[i]);
		send_fd(ALLOC_CAM, fd, cam[i]);
		close(fd);
	}
	fd = make_buf(be, 256 * 1024, "remote-unnamed", "");
	send_fd(ALLOC_CAM, fd, "remote-unnamed");
	close(fd);
	/* in flight forever: sent on a socket nobody reads (we keep both ends open) */
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		die("socketpair");
	fd = make_buf(be, 128 * 1024, "inflight-orphan", "inflight-orphan");
	send_fd(sp[0], fd, "inflight-orphan");
	add_ino(g_inflight, &g_ninflight, ino_of(fd), "inflight-orphan");
	close(fd);
	pthread_mutex_lock(&g_lock);
	gt_write();
	pthread_mutex_unlock(&g_lock);
	signal_ready(ALLOC_READY);
	for (;;)
		pause();
}

enum { SF_ALLOC = 3, SF_ALLOCOWN = 4, SF_CAM = 5, SF_READY = 6 };
static sem_t g_sf_unshared, g_sf_own_done;

/* A task with its own fd table: unshare(CLONE_FILES), then receive a buffer the leader
 * never has (the leader closes its copy of the socket once we have unshared). */
static void *sf_own_table(void *arg)
{
	(void)arg;
	if (unshare(CLONE_FILES))
		die("unshare(CLONE_FILES)");
	pthread_mutex_lock(&g_lock);
	g_own_table_tids[g_nown++] = gettid_();
	pthread_mutex_unlock(&g_lock);
	sem_post(&g_sf_unshared);
	char label[LABEL];
	int fd = recv_fd(SF_ALLOCOWN, label, sizeof label);
	/* move it to a number the leader's table does not use */
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	if (hi < 0)
		die("F_DUPFD");
	close(fd);
	pthread_mutex_lock(&g_lock);
	add_fd(hi, label, gettid_());
	pthread_mutex_unlock(&g_lock);
	sem_post(&g_sf_own_done);
	for (;;)
		pause();
	return NULL;
}

static void role_surfaceflinger(void)
{
	char name[32], label[LABEL];
	register_thread(NULL);
	sem_init(&g_sf_unshared, 0, 0);
	sem_init(&g_sf_own_done, 0, 0);
	spawn_thread("OwnFdTable", sf_own_table);
	while (sem_wait(&g_sf_unshared) && errno == EINTR)
		;
	close(SF_ALLOCOWN); /* only the own-table task keeps this socket */
	spawn_thread("RenderEngine", NULL);
	snprintf(name, sizeof name, "binder:%d_1", (int)getpid());
	spawn_thread(name, NULL);
	snprintf(name, sizeof name, "binder:%d_2", (int)getpid());
	spawn_thread(name, NULL);
	for (int i = 0; i < 4; i++) {
		int fd = recv_fd(SF_ALLOC, label, sizeof label);
		pthread_mutex_lock(&g_lock);
		if (!strcmp(label, "sf-fb0")) { /* fd + mapping */
			add_fd(fd, label, 0);
			map_fd(fd, label, 1);
		} else if (!strcmp(label, "sf-fb1")) { /* fd + GEM import */
			add_fd(fd, label, 0);
			gem_import(fd, label);
		} else if (!strcmp(label, "sf-fb2")) { /* GEM import only: kernel-only holder */
			if (gem_import(fd, label) >= 0)
				close(fd);
			else
				add_fd(fd, label, 0);
		} else { /* sf-cursor: mapped, fd closed */
			map_fd(fd, label, 0);
			close(fd);
		}
		pthread_mutex_unlock(&g_lock);
	}
	int fd = recv_fd(SF_CAM, label, sizeof label); /* the camera's preview buffer */
	pthread_mutex_lock(&g_lock);
	add_fd(fd, label, 0);
	pthread_mutex_unlock(&g_lock);
	while (sem_wait(&g_sf_own_done) && errno == EINTR)
		;
	pthread_mutex_lock(&g_lock);
	gt_write();
	pthread_mutex_unlock(&g_lock);
	signal_ready(SF_READY);
	for (;;)
		pause();
}

enum { CAM_ALLOC = 3, CAM_SF = 4, CAM_REMOTE = 5, CAM_READY = 6 };

static void role_camera(void)
{
	char label[LABEL];
	register_thread(NULL);
	spawn_thread("CameraThread", NULL);
	for (int i = 0; i < 3; i++) {
		int fd = recv_fd(CAM_ALLOC, label, sizeof label);
		if (!strcmp(label, "cam-preview-0")) { /* two fds (dup) + sent to surfaceflinger */
			add_fd(fd, label, 0);
			int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			if (d < 0)
				die("dup");
			add_fd(d, label, 0);
			send_fd(CAM_SF, fd, label);
		} else if (!strcmp(label, "cam-preview-1")) { /* mapped twice, then fd closed */
			map_fd(fd, label, 0);
			map_fd(fd, label, 0);
			close(fd);
		} else { /* hand the unnamed buffer to our :remote process */
			send_fd(CAM_REMOTE, fd, label);
			close(fd);
		}
	}
	const char *be = g_has_udmabuf ? "udmabuf" : backend_of(g_exporter);
	const char *lbl = g_has_udmabuf ? "cam-udmabuf" : "cam-own";
	int fd = make_buf(be, 512 * 1024, lbl, lbl);
	add_fd(fd, lbl, 0);
	map_fd(fd, lbl, 1);
	gt_write();
	signal_ready(CAM_READY);
	for (;;)
		pause();
}

enum { REMOTE_CAM = 3, REMOTE_READY = 4 };

static void role_camera_remote(void)
{
	char label[LABEL];
	register_thread(NULL);
	int fd = recv_fd(REMOTE_CAM, label, sizeof label);
	add_fd(fd, label, 0);
	map_fd(fd, label, 1);
	gt_write();
	signal_ready(REMOTE_READY);
	for (;;)
		pause();
}

enum { LEAKY_READY = 3 };
static pthread_cond_t g_resume = PTHREAD_COND_INITIALIZER;

/* Caller holds g_lock. Every third buffer is a udmabuf (when available), every fifth
 * is unnamed. */
static void leak_one(void)
{
	int n = g_leak_count++;
	char label[LABEL];
	snprintf(label, sizeof label, "leak-%d", n);
	const char *be = (n % 3 == 2 && g_has_udmabuf) ? "udmabuf" : backend_of(g_exporter);
	int fd = make_buf(be, 64 * 1024, label, n % 5 == 4 ? "" : label);
	add_fd(fd, label, 0);
}

static void *leak_worker(void *arg)
{
	(void)arg;
	for (;;) {
		msleep(g_leak_ms);
		pthread_mutex_lock(&g_lock);
		while (g_paused)
			pthread_cond_wait(&g_resume, &g_lock);
		if (g_leak_count < g_leak_max) {
			leak_one();
			gt_write();
		}
		pthread_mutex_unlock(&g_lock);
	}
	return NULL;
}

static void role_leaky(void)
{
	char ack[PATH_MAX], tmp[PATH_MAX];
	snprintf(ack, sizeof ack, "%s/leaky.paused", g_dir);
	snprintf(tmp, sizeof tmp, "%s/.leaky.paused.tmp", g_dir);
	g_is_leaky = 1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the threads: main waits */
	register_thread(NULL);
	spawn_thread("RenderThread", NULL);
	pthread_mutex_lock(&g_lock);
	leak_one();
	leak_one();
	gt_write();
	pthread_mutex_unlock(&g_lock);
	spawn_thread("LeakWorker", leak_worker);
	pthread_mutex_lock(&g_lock);
	gt_write(); /* with the worker's tid */
	pthread_mutex_unlock(&g_lock);
	signal_ready(LEAKY_READY);
	for (;;) {
		siginfo_t si;
		if (sigwaitinfo(&set, &si) < 0)
			continue;
		pthread_mutex_lock(&g_lock);
		if (si.si_signo == SIGUSR1 && !g_paused) {
			g_paused = 1; /* the worker allocates only under g_lock: it is idle now */
			gt_write();
			int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd >= 0) {
				dprintf(fd, "%d\n", g_leak_count);
				close(fd);
				rename(tmp, ack);
			}
		} else if (si.si_signo == SIGUSR2 && g_paused) {
			unlink(ack);
			g_paused = 0;
			gt_write();
			pthread_cond_broadcast(&g_resume);
		}
		pthread_mutex_unlock(&g_lock);
	}
}

/* ------------------------------------------------------------------ orchestrator */
struct rolespec {
	const char *role, *exe, *pkg, *cgroup_parent; /* pkg: app role (zygote-style) */
	int uid;
	int nfds;
	int fds[4];
	pid_t pid;
};

static const char *g_self;

static void ensure_link(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	for (char *p = dir + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(dir, 0755);
			*p = '/';
		}
	unlink(path);
	if (symlink(g_self, path))
		die("symlink %s", path);
}

static void cg_mkdir(const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/sys/fs/cgroup%s", rel);
	if (mkdir(p, 0755) && errno != EEXIST)
		die("mkdir %s", p);
}

static void cg_enable(const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/sys/fs/cgroup%s/cgroup.subtree_control", rel);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "+memory +pids", 13) < 0)
		note("cannot enable +memory +pids in %s: %s", p, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void cg_join(const char *rel)
{
	char p[PATH_MAX], pid[16];
	snprintf(p, sizeof p, "/sys/fs/cgroup%s/cgroup.procs", rel);
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	write_file(p, pid);
}

static pid_t spawn_role(struct rolespec *r)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid)
		return pid;
	/* child: cgroup, fds 3.. in order, stdio to a log, then exec under the role's path */
	char cg[128];
	if (r->pkg) {
		snprintf(cg, sizeof cg, "%s/pid_%d", r->cgroup_parent, (int)getpid());
		cg_mkdir(cg);
	} else {
		snprintf(cg, sizeof cg, "%s", r->cgroup_parent);
	}
	cg_join(cg);
	int tmp[4];
	for (int i = 0; i < r->nfds; i++)
		if ((tmp[i] = fcntl(r->fds[i], F_DUPFD_CLOEXEC, 200)) < 0)
			die("dupfd");
	for (int i = 0; i < r->nfds; i++)
		if (dup2(tmp[i], 3 + i) < 0) /* dup2 clears FD_CLOEXEC */
			die("dup2");
	char logp[PATH_MAX];
	snprintf(logp, sizeof logp, "%s/%s.log", g_dir, r->role);
	int lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (lfd < 0 || nfd < 0 || dup2(nfd, 0) < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)
		die("stdio");
	setenv("SCENE_ROLE", r->role, 1);
	setenv("SCENE_CGROUP", cg, 1);
	char uid[16];
	snprintf(uid, sizeof uid, "%d", r->uid);
	setenv("SCENE_UID", uid, 1);
	if (r->pkg) {
		setenv("SCENE_PKG", r->pkg, 1);
		/* an argv area like zygote's, overwritten by the child (become_app) */
		char *argv[] = { (char *)r->exe, "-Xzygote", "/system/bin", "--zygote",
				 "--start-system-server", "--socket-name=zygote",
				 "--abi-list=x86_64", "--enable-lazy-preload", "-Xmx512m", NULL };
		execv(r->exe, argv);
	} else {
		char *argv[] = { (char *)r->exe, NULL };
		execv(r->exe, argv);
	}
	die("exec %s", r->exe);
	return -1;
}

static int role_main(int argc, char **argv)
{
	g_arg_start = argv[0];
	g_arg_end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
	const char *pkg = getenv("SCENE_PKG");
	if (pkg)
		become_app(pkg);
	capture_identity();
	/* devices first: apps and system services drop their privileges afterwards */
	if (!strcmp(g_role, "allocator")) {
		open_device("exporter");
	} else if (!strcmp(g_role, "surfaceflinger")) {
		open_device("vgem"); /* importer */
	} else if (!strcmp(g_role, "camera")) {
		open_device(g_has_udmabuf ? "udmabuf" : "exporter");
	} else if (!strcmp(g_role, "leaky")) {
		open_device("exporter");
		open_device("udmabuf");
	}
	const char *uid = getenv("SCENE_UID");
	drop_to(uid ? atoi(uid) : 0);
	if (!strcmp(g_role, "allocator"))
		role_allocator();
	else if (!strcmp(g_role, "surfaceflinger"))
		role_surfaceflinger();
	else if (!strcmp(g_role, "camera"))
		role_camera();
	else if (!strcmp(g_role, "camera_remote"))
		role_camera_remote();
	else if (!strcmp(g_role, "leaky"))
		role_leaky();
	else
		die("unknown role %s", g_role);
	return 0;
}

static void probe_backends(void)
{
	g_has_heap = access("/dev/dma_heap/system", F_OK) == 0;
	g_has_udmabuf = access("/dev/udmabuf", F_OK) == 0;
	int fd = find_vgem();
	g_has_vgem = fd >= 0;
	if (fd >= 0)
		close(fd);
}

static void load_env(void)
{
	const char *s;
	if ((s = getenv("SCENE_DIR")))
		g_dir = s;
	if ((s = getenv("SCENE_EXPORTER")))
		snprintf(g_exporter, sizeof g_exporter, "%s", s);
	if ((s = getenv("SCENE_LEAK_MS")))
		g_leak_ms = atoi(s);
	if ((s = getenv("SCENE_LEAK_MAX")))
		g_leak_max = atoi(s);
	if ((s = getenv("SCENE_HAS")))
		sscanf(s, "%d,%d,%d", &g_has_heap, &g_has_udmabuf, &g_has_vgem);
}

static struct rolespec *g_roles;
static int g_nroles;

static void kill_roles(void)
{
	for (int i = 0; i < g_nroles; i++)
		if (g_roles[i].pid > 0)
			kill(g_roles[i].pid, SIGTERM);
}

static int orchestrate(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--dir") && v)
			g_dir = v, i++;
		else if (!strcmp(a, "--exporter") && v)
			snprintf(g_exporter, sizeof g_exporter, "%s", v), i++;
		else if (!strcmp(a, "--leak-ms") && v)
			g_leak_ms = atoi(v), i++;
		else if (!strcmp(a, "--leak-max") && v)
			g_leak_max = atoi(v), i++;
		else {
			fprintf(stderr, "usage: scene [--dir D] [--exporter auto|system|vgem|udmabuf] "
					"[--leak-ms N] [--leak-max N]\n");
			return 2;
		}
	}
	static char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		die("readlink /proc/self/exe");
	self[n] = 0;
	g_self = self;
	mkdir(g_dir, 01777);
	chmod(g_dir, 01777);
	probe_backends();
	if (!strcmp(g_exporter, "auto") || !g_exporter[0]) {
		snprintf(g_exporter, sizeof g_exporter, "%s",
			 g_has_heap ? "system" : g_has_vgem ? "vgem" : g_has_udmabuf ? "udmabuf" : "");
		if (!g_exporter[0])
			die("no dma-buf exporter: no /dev/dma_heap/system, no vgem, no /dev/udmabuf");
	}
	int ok = (!strcmp(g_exporter, "system") && g_has_heap) ||
		 (!strcmp(g_exporter, "vgem") && g_has_vgem) ||
		 (!strcmp(g_exporter, "udmabuf") && g_has_udmabuf);
	if (!ok) {
		errno = ENODEV;
		die("exporter %s is not available", g_exporter);
	}
	char envbuf[64];
	setenv("SCENE_DIR", g_dir, 1);
	setenv("SCENE_EXPORTER", g_exporter, 1);
	snprintf(envbuf, sizeof envbuf, "%d", g_leak_ms);
	setenv("SCENE_LEAK_MS", envbuf, 1);
	snprintf(envbuf, sizeof envbuf, "%d", g_leak_max);
	setenv("SCENE_LEAK_MAX", envbuf, 1);
	snprintf(envbuf, sizeof envbuf, "%d,%d,%d", g_has_heap, g_has_udmabuf, g_has_vgem);
	setenv("SCENE_HAS", envbuf, 1);

	struct utsname u;
	uname(&u);
	char meta[1024];
	snprintf(meta, sizeof meta,
		 "{\n  \"exporter\": \"%s\",\n  \"backend\": \"%s\",\n  \"available\": "
		 "{\"dma_heap/system\": %s, \"udmabuf\": %s, \"vgem\": %s},\n  \"leak_ms\": %d,\n"
		 "  \"leak_max\": %d,\n  \"release\": \"%s\",\n  \"orchestrator_pid\": %d\n}\n",
		 g_exporter, backend_of(g_exporter), g_has_heap ? "true" : "false",
		 g_has_udmabuf ? "true" : "false", g_has_vgem ? "true" : "false", g_leak_ms,
		 g_leak_max, u.release, (int)getpid());
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/scene.json", g_dir);
	atomic_write(path, meta, strlen(meta));

	cg_mkdir("/system");
	cg_mkdir("/uid_10001");
	cg_mkdir("/uid_10002");
	cg_enable("");
	cg_enable("/uid_10001");
	cg_enable("/uid_10002");

	ensure_link("/vendor/bin/hw/android.hardware.graphics.allocator-service");
	ensure_link("/system/bin/surfaceflinger");
	ensure_link("/system/bin/app_process64");

	int a[2], f[2], b[2], c[2], d[2], rp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, a) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, b) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, d) || pipe2(rp, O_CLOEXEC))
		die("socketpair/pipe");
	struct rolespec roles[] = {
		{ "allocator", "/vendor/bin/hw/android.hardware.graphics.allocator-service", NULL,
		  "/system", 1000, 4, { a[0], f[0], b[0], rp[1] }, 0 },
		{ "surfaceflinger", "/system/bin/surfaceflinger", NULL, "/system", 1000, 4,
		  { a[1], f[1], c[1], rp[1] }, 0 },
		{ "camera", "/system/bin/app_process64", "com.example.camera", "/uid_10001", 10001, 4,
		  { b[1], c[0], d[0], rp[1] }, 0 },
		{ "camera_remote", "/system/bin/app_process64", "com.example.camera:remote",
		  "/uid_10001", 10001, 2, { d[1], rp[1] }, 0 },
		{ "leaky", "/system/bin/app_process64", "com.example.leaky", "/uid_10002", 10002, 1,
		  { rp[1] }, 0 },
	};
	g_roles = roles;
	g_nroles = (int)(sizeof roles / sizeof roles[0]);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < g_nroles; i++)
		roles[i].pid = spawn_role(&roles[i]);
	close(rp[1]);
	close(a[0]), close(a[1]), close(f[0]), close(f[1]), close(b[0]), close(b[1]);
	close(c[0]), close(c[1]), close(d[0]), close(d[1]);

	/* wait for every role's readiness byte; bounded, and a role dying is fatal */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ready = 0;
	while (ready < g_nroles) {
		struct pollfd p = { rp[0], POLLIN, 0 };
		int r = poll(&p, 1, 250);
		char ch[8];
		if (r > 0) {
			ssize_t got = read(rp[0], ch, sizeof ch);
			if (got > 0)
				ready += (int)got;
		}
		int st;
		pid_t dead = waitpid(-1, &st, WNOHANG);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (dead > 0 || now.tv_sec - t0.tv_sec > 120) {
			const char *who = "?";
			for (int i = 0; i < g_nroles; i++)
				if (roles[i].pid == dead)
					who = roles[i].role;
			snprintf(path, sizeof path, "%s/ERROR", g_dir);
			char msg[256];
			if (dead > 0)
				snprintf(msg, sizeof msg, "role %s (pid %d) died before ready, status %d\n",
					 who, (int)dead, st);
			else
				snprintf(msg, sizeof msg, "timeout: %d of %d roles ready after 120 s\n",
					 ready, g_nroles);
			atomic_write(path, msg, strlen(msg));
			note("%s", msg);
			kill_roles();
			return 1;
		}
	}
	struct sb list = { 0 };
	for (int i = 0; i < g_nroles; i++)
		sb_printf(&list, "%s %d\n", roles[i].role, (int)roles[i].pid);
	snprintf(path, sizeof path, "%s/roles", g_dir);
	atomic_write(path, list.p, list.n);
	snprintf(path, sizeof path, "%s/READY", g_dir);
	atomic_write(path, "ready\n", 6);
	for (;;) {
		siginfo_t si;
		if (sigwaitinfo(&set, &si) < 0)
			continue;
		if (si.si_signo == SIGCHLD) {
			int st;
			pid_t dead;
			while ((dead = waitpid(-1, &st, WNOHANG)) > 0)
				note("role pid %d exited, status %d", (int)dead, st);
			continue;
		}
		kill_roles();
		return 0;
	}
}

int main(int argc, char **argv)
{
	const char *role = getenv("SCENE_ROLE");
	load_env();
	if (role && *role) {
		g_role = role;
		return role_main(argc, argv);
	}
	return orchestrate(argc, argv);
}
