//go:build linux

// See nsenter_linux.go for why this runs before the Go runtime.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/nsfs.h>

static void berth_unshare(void)
{
	const char *flags = getenv("_BERTH_UNSHARE");
	if (flags == NULL || *flags == '\0')
		return;
	char *end;
	errno = 0;
	unsigned long f = strtoul(flags, &end, 10);
	if (errno != 0 || *end != '\0') {
		fprintf(stderr, "berth nsenter: bad unshare flags %s\n", flags);
		_exit(125);
	}
	if (unshare((int)f) < 0) {
		fprintf(stderr, "berth nsenter: unshare 0x%lx: %s\n", f, strerror(errno));
		_exit(125);
	}
	unsetenv("_BERTH_UNSHARE");
}

void berth_nsenter(void)
{
	const char *spec = getenv("_BERTH_NSENTER");
	if (spec == NULL || *spec == '\0') {
		berth_unshare();
		return;
	}

	const char *p = spec;
	while (*p) {
		char *end;
		errno = 0;
		long fd = strtol(p, &end, 10);
		if (errno != 0 || end == p || fd < 0 || fd > 65535) {
			fprintf(stderr, "berth nsenter: bad descriptor list %s\n", spec);
			_exit(125);
		}
		int type = ioctl((int)fd, NS_GET_NSTYPE);
		if (setns((int)fd, 0) < 0) {
			fprintf(stderr, "berth nsenter: setns fd %ld: %s\n", fd, strerror(errno));
			_exit(125);
		}
		// Our host uid is unmapped in the joined user namespace: files we
		// create would fail with EOVERFLOW. Become its root.
		if (type == CLONE_NEWUSER) {
			if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
				fprintf(stderr, "berth nsenter: become root of the joined user namespace: %s\n", strerror(errno));
				_exit(125);
			}
		}
		close((int)fd);
		p = (*end == ',') ? end + 1 : end;
	}
	unsetenv("_BERTH_NSENTER");
	berth_unshare();
}
