//go:build linux

// See nsenter_linux.go for why this runs before the Go runtime.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void berth_nsenter(void)
{
	const char *spec = getenv("_BERTH_NSENTER");
	if (spec == NULL || *spec == '\0')
		return;

	const char *p = spec;
	while (*p) {
		char *end;
		errno = 0;
		long fd = strtol(p, &end, 10);
		if (errno != 0 || end == p || fd < 0 || fd > 65535) {
			fprintf(stderr, "berth nsenter: bad descriptor list %s\n", spec);
			_exit(125);
		}
		if (setns((int)fd, 0) < 0) {
			fprintf(stderr, "berth nsenter: setns fd %ld: %s\n", fd, strerror(errno));
			_exit(125);
		}
		close((int)fd);
		p = (*end == ',') ? end + 1 : end;
	}
	unsetenv("_BERTH_NSENTER");
}
