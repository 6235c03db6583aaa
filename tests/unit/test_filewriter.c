/* test_filewriter.c — the staged-file writer: streams across the direct-I/O switch, in odd
 * pieces, resumed at unaligned offsets, flushed midway, and cut short by a write error (a
 * RLIMIT_FSIZE limit), always leaving the file a prefix of the stream. Run on the build folder's
 * filesystem (O_DIRECT) and on /dev/shm when there is one. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/filewriter.h"
#include "t.h"

#define STREAM ((size_t)13 << 20)
#define DIRECT_AFTER ((int64_t)4 << 20) /* the switch, inside the stream */

static unsigned char *stream;
static const char *dirs[2];
static int ndirs;

static void fill_stream(void)
{
	uint32_t x = 2463534242u;
	stream = malloc(STREAM);
	for (size_t i = 0; i < STREAM; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		stream[i] = (unsigned char)x;
	}
}

/* A scratch file in dir; returns an O_RDWR descriptor. */
static int scratch(const char *dir, char *path, size_t len)
{
	snprintf(path, len, "%s/berth-fw-XXXXXX", dir);
	return mkstemp(path);
}

static int64_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* Does the file at path equal stream[0..n)? */
static int file_is_prefix(const char *path, size_t n)
{
	unsigned char *buf = malloc(n + 1);
	int fd = open(path, O_RDONLY), ok = 0;
	size_t got = 0;
	if (fd >= 0 && buf) {
		ssize_t k;
		while ((k = read(fd, buf + got, n + 1 - got)) > 0) got += (size_t)k;
		ok = got == n && memcmp(buf, stream, n) == 0;
	}
	if (fd >= 0) close(fd);
	free(buf);
	return ok;
}

/* Writes stream[from..to) in pieces cycling through sizes, as a network would deliver it. */
static int write_pieces(struct berth_filewriter *w, size_t from, size_t to)
{
	static const size_t sizes[] = {1, 4096, 65536 - 17, 3, 700001, 8191, 65536, 12345};
	size_t i = 0;
	while (from < to) {
		size_t n = sizes[i++ % (sizeof sizes / sizeof sizes[0])];
		if (n > to - from) n = to - from;
		int e = berth_filewriter_write(w, stream + from, n);
		if (e) return e;
		from += n;
	}
	return 0;
}

/* One writer takes the whole stream: the switch happens mid-stream at an odd offset. */
static void test_whole_stream(void)
{
	for (int i = 0; i < ndirs; i++) {
		char path[256];
		struct berth_filewriter *w = NULL;
		int fd = scratch(dirs[i], path, sizeof path);
		CHECK(fd >= 0);
		if (fd < 0) continue;
		CHECK_EQ_INT(berth_filewriter_open(fd, 0, DIRECT_AFTER, &w), 0);
		CHECK_EQ_INT(write_pieces(w, 0, STREAM), 0);
		CHECK_EQ_INT(berth_filewriter_size(w), STREAM);
		CHECK_EQ_INT(berth_filewriter_flush(w), 0);
		CHECK(file_is_prefix(path, STREAM));
		berth_filewriter_close(w);
		CHECK(file_is_prefix(path, STREAM));
		unlink(path);
	}
}

/* Chunks as PATCH requests make them: each a new writer resuming at the file's odd length,
 * some past the switch threshold, one closed without a flush. */
static void test_resumed_chunks(void)
{
	static const size_t cuts[] = {5000003, 5000004, 9999999, STREAM};
	for (int i = 0; i < ndirs; i++) {
		char path[256];
		size_t at = 0;
		int fd = scratch(dirs[i], path, sizeof path);
		CHECK(fd >= 0);
		if (fd < 0) continue;
		close(fd);
		for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
			struct berth_filewriter *w = NULL;
			fd = open(path, O_RDWR);
			CHECK(fd >= 0);
			CHECK_EQ_INT(berth_filewriter_open(fd, (int64_t)at, DIRECT_AFTER, &w), 0);
			CHECK_EQ_INT(write_pieces(w, at, cuts[c]), 0);
			if (c != 1) CHECK_EQ_INT(berth_filewriter_flush(w), 0);
			berth_filewriter_close(w);
			at = cuts[c];
			CHECK(file_is_prefix(path, at));
		}
		unlink(path);
	}
}

/* A write error past 9 MiB + 1234 bytes (the file size limit): the error is reported by a write
 * or by the flush, and the file is the stream's prefix of exactly the length the writer says. */
static void test_write_error(void)
{
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_IGN);
	for (int i = 0; i < ndirs; i++) {
		char path[256];
		struct berth_filewriter *w = NULL;
		int fd = scratch(dirs[i], path, sizeof path), e;
		CHECK(fd >= 0);
		if (fd < 0) continue;
		lim = old;
		lim.rlim_cur = (9 << 20) + 1234;
		CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
		CHECK_EQ_INT(berth_filewriter_open(fd, 0, DIRECT_AFTER, &w), 0);
		e = write_pieces(w, 0, STREAM);
		if (!e) e = berth_filewriter_flush(w);
		setrlimit(RLIMIT_FSIZE, &old);
		CHECK_EQ_INT(e, EFBIG);
		int64_t size = berth_filewriter_size(w);
		CHECK(size <= (9 << 20) + 1234);
		CHECK_EQ_INT(file_size(path), size);
		CHECK(file_is_prefix(path, (size_t)size));
		berth_filewriter_close(w);
		CHECK_EQ_INT(file_size(path), size);
		unlink(path);
	}
	signal(SIGXFSZ, SIG_DFL);
}

int main(void)
{
	struct stat sb;
	fill_stream();
	dirs[ndirs++] = "build";
	if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode)) dirs[ndirs++] = "/dev/shm";
	T_RUN(test_whole_stream);
	T_RUN(test_resumed_chunks);
	T_RUN(test_write_error);
	free(stream);
	return T_DONE("filewriter");
}
