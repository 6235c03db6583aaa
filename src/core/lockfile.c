/* lockfile.c — flock(2) on <dir>/berth.lock. flock rather than fcntl locks: the lock belongs
 * to the open file description, so it is not dropped when some other code of the process
 * closes another descriptor of the same file, and the kernel releases it when the process dies
 * (kill -9 included), so a stale lock file never blocks a restart. */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

struct berth_lockfile {
	int fd;
};

static pid_t read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	long v;
	char *end;
	if (n <= 0) return 0;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || v <= 0 || v > 0x7fffffffL) return 0;
	return (pid_t)v;
}

berth_err berth_lockfile_acquire(const char *dir, struct berth_lockfile **out, pid_t *holder)
{
	char path[4096], pid[32];
	struct berth_lockfile *l;
	int fd, n;
	*out = NULL;
	*holder = 0;
	n = snprintf(path, sizeof path, "%s/berth.lock", dir);
	if (n < 0 || (size_t)n >= sizeof path) {
		errno = ENAMETOOLONG;
		return BERTH_EINVAL;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) return BERTH_EIO;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int saved = errno;
		if (saved == EWOULDBLOCK) *holder = read_pid(fd);
		close(fd);
		errno = saved;
		return saved == EWOULDBLOCK ? BERTH_ETOOMANY : BERTH_EIO;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		close(fd);
		return BERTH_EIO;
	}
	l = malloc(sizeof *l);
	if (!l) {
		close(fd);
		return BERTH_ENOMEM;
	}
	l->fd = fd;
	*out = l;
	return BERTH_OK;
}

void berth_lockfile_release(struct berth_lockfile *l)
{
	if (!l) return;
	close(l->fd);
	free(l);
}
