/*
 * run-as for the emulated phone (tests/emuphone): the checks of AOSP's
 * system/core/run-as/run-as.cpp, without SELinux.
 *
 *   run-as <package-name> [--user <uid>] [<command> [<args>]]
 *
 * Installed as /system/bin/run-as, owned root:shell, mode 0750, with the file capabilities
 * CAP_SETUID and CAP_SETGID (what Android's fs_config gives the real one), or setuid root
 * where file capabilities cannot be set. It is the only privileged program of the fake
 * phone: the shell user (uid 2000) becomes an app's uid only through it, and only for a
 * package that /data/system/packages.list marks debuggable. The kernel then enforces the
 * rest (the fake /proc of a debuggable app's processes is owned by the app's uid).
 *
 * Messages and exit statuses are run-as's own: error(1, 0, ...) prints "run-as: <message>"
 * and exits 1. Built with `gcc -O2 -static` (tests/emuphone/scene.py: run_as_helper()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AID_ROOT 0
#define AID_SHELL 2000
#define AID_PACKAGE_INFO 1032
#define AID_APP_START 10000
#define AID_USER_OFFSET 100000
#define PACKAGES_LIST "/data/system/packages.list"
#define DEFPATH \
	"/product/bin:/apex/com.android.runtime/bin:/apex/com.android.art/bin:/system_ext/bin" \
	":/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin"

static void die(int err, const char *fmt, ...)
{
	va_list ap;
	fputs("run-as: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	exit(1);
}

struct pkg {
	unsigned long uid;
	int debuggable;
	int found;
};

/* packages.list: "<name> <uid> <debuggable> <data dir> <seinfo> <gids> ..." per line */
static void lookup(const char *name, struct pkg *out)
{
	char line[4096];
	FILE *f = fopen(PACKAGES_LIST, "re");
	if (f == NULL)
		die(errno, "packagelist_parse failed");
	while (fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL;
		char *n = strtok_r(line, " \n", &save);
		char *uid = strtok_r(NULL, " \n", &save);
		char *dbg = strtok_r(NULL, " \n", &save);
		if (n == NULL || uid == NULL || dbg == NULL || strcmp(n, name) != 0)
			continue;
		out->uid = strtoul(uid, NULL, 10);
		out->debuggable = strcmp(dbg, "1") == 0;
		out->found = 1;
		break;
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die(0, "usage: run-as <package-name> [--user <uid>] <command> [<args>]");
	uid_t caller = getuid();
	if (caller != AID_SHELL && caller != AID_ROOT)
		die(0, "only 'shell' or 'root' users can run this program");

	const char *pkgname = argv[1];
	int cmd = 2;
	long user = 0;
	if (argc >= 4 && strcmp(argv[2], "--user") == 0) {
		user = strtol(argv[3], NULL, 10);
		cmd += 2;
	}

	/* packages.list is root:package_info 0640, as on Android: read it with that egid */
	gid_t old_egid = getegid();
	if (setegid(AID_PACKAGE_INFO) == -1)
		die(errno, "setegid(AID_PACKAGE_INFO) failed");
	struct pkg info = {0, 0, 0};
	lookup(pkgname, &info);
	if (setegid(old_egid) == -1)
		die(errno, "couldn't restore egid");
	if (!info.found)
		die(0, "unknown package: %s", pkgname);
	if (user < 0 || user > 1000)
		die(0, "user id too big: %ld", user);
	uid_t app = (uid_t)(AID_USER_OFFSET * user + info.uid);
	if (app < AID_APP_START)
		die(0, "package not an application: %s", pkgname);
	if (!info.debuggable)
		die(0, "package not debuggable: %s", pkgname);

	char data_dir[512];
	snprintf(data_dir, sizeof(data_dir), "/data/user/%ld/%s", user, pkgname);
	struct stat st;
	if (lstat(data_dir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != app)
		die(0, "package has corrupt installation: %s", pkgname);

	/* all real/effective/saved ids at once; the capabilities go with the exec below */
	if (setgroups(0, NULL) == -1 || setresgid(app, app, app) == -1 ||
	    setresuid(app, app, app) == -1)
		die(errno, "couldn't switch to uid %u", (unsigned)app);
	if (chdir(data_dir) == -1)
		die(errno, "couldn't chdir to package's data directory '%s'", data_dir);
	setenv("HOME", data_dir, 1);
	setenv("PATH", DEFPATH, 1);
	unsetenv("IFS");
	char name[64]; /* getpwuid()'s name of an app uid on Android: u<user>_a<app id - 10000> */
	snprintf(name, sizeof(name), "u%ld_a%lu", user, info.uid - AID_APP_START);
	setenv("LOGNAME", name, 1);
	setenv("USER", name, 1);
	setenv("SHELL", "/system/bin/sh", 1);

	if (argc > cmd) {
		execvp(argv[cmd], argv + cmd);
		die(errno, "exec failed for %s", argv[cmd]);
	}
	execl("/system/bin/sh", "sh", (char *)NULL);
	die(errno, "exec failed");
	return 1;
}
