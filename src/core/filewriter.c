/* filewriter.c — see filewriter.h. The direct path: the caller copies the stream into DIO_NBUF
 * aligned buffers in turn; a full buffer is queued to the writer thread, which writes buffers in
 * order with pwrite. The caller waits only when every buffer is queued (the disk is the
 * bottleneck then). A stream that does not start or end on an alignment boundary is handled by
 * re-reading the partial first block into the first buffer, and by writing the final partial
 * block through the page cache. */
#include "filewriter.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"

#define DIO_ALIGN ((int64_t)4096)
#define DIO_BUF ((size_t)512 << 10)
#define DIO_NBUF 3

/* Buffered path: writeback is started every WRITEBACK_STEP bytes and the step before the previous
 * one is waited for, so dirty memory stays bounded and the final flush has only the tail left. */
#define WRITEBACK_STEP ((int64_t)8 << 20)

struct dio {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* any change of submitted, written, err or stop */
	char *mem;         /* DIO_NBUF buffers of DIO_BUF bytes, page aligned */
	int64_t job_off[DIO_NBUF];
	size_t job_len[DIO_NBUF];
	uint64_t submitted; /* buffers queued so far; buffer i is mem + (i % DIO_NBUF) * DIO_BUF */
	uint64_t written;   /* buffers the thread is done with */
	int64_t good;       /* the file holds the stream up to here */
	int err;            /* first write error; later buffers are skipped */
	int buffered;       /* O_DIRECT was refused mid-stream: the thread fell back */
	int stop;
	int fd;
	/* the caller's side */
	size_t fill;      /* bytes in the buffer being filled (number `submitted`) */
	int64_t fill_off; /* its offset in the file, aligned */
};

struct berth_filewriter {
	int fd;
	int64_t size;    /* bytes of the stream so far */
	int64_t taken;   /* bytes this writer took, against direct_after */
	int64_t direct_after;
	int64_t flushed; /* buffered path: writeback started up to here */
	int no_direct;   /* stay buffered: the file refused O_DIRECT, or it failed once */
	int no_wait;     /* a reader follows the file: never wait for the disk (follow) */
	struct dio *d;   /* the direct path, while on */
};

static void undo_failed(int e)
{
	berth_log(BERTH_LOG_ERROR, "store: cannot cut a staged file back after a failed write: %s",
		  strerror(e));
}

static int pwrite_all(int fd, const char *buf, size_t len, int64_t off, size_t *done)
{
	*done = 0;
	while (*done < len) {
		ssize_t n = pwrite(fd, buf + *done, len - *done, (off_t)(off + (int64_t)*done));
		if (n < 0) {
			if (errno == EINTR) continue;
			return errno;
		}
		if (n == 0) return EIO;
		*done += (size_t)n;
	}
	return 0;
}

static int set_direct(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0) return errno;
	fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
	return fcntl(fd, F_SETFL, fl) == 0 ? 0 : errno;
}

/* Writes one queued buffer; a filesystem that turns out to refuse direct writes of it gets the
 * rest through the page cache. */
static int dio_write_job(struct dio *d, const char *buf, size_t len, int64_t off)
{
	size_t done = 0;
	int e = pwrite_all(d->fd, buf, len, off, &done);
	if (e == EINVAL && !d->buffered) {
		d->buffered = 1;
		if (!(e = set_direct(d->fd, 0))) {
			size_t more = 0;
			e = pwrite_all(d->fd, buf + done, len - done, off + (int64_t)done, &more);
		}
	}
	return e;
}

static void *dio_thread(void *arg)
{
	struct dio *d = arg;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (d->written == d->submitted && !d->stop) pthread_cond_wait(&d->cv, &d->mu);
		if (d->written == d->submitted) break; /* stopped and drained */
		unsigned slot = (unsigned)(d->written % DIO_NBUF);
		int64_t off = d->job_off[slot];
		size_t len = d->job_len[slot];
		int skip = d->err != 0;
		pthread_mutex_unlock(&d->mu);
		int e = skip ? 0 : dio_write_job(d, d->mem + (size_t)slot * DIO_BUF, len, off);
		pthread_mutex_lock(&d->mu);
		if (e && !d->err) d->err = e;
		if (!skip && !e && off + (int64_t)len > d->good) d->good = off + (int64_t)len;
		d->written++;
		pthread_cond_broadcast(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* Queues the first len bytes of the buffer being filled. */
static void dio_submit(struct dio *d, size_t len)
{
	pthread_mutex_lock(&d->mu);
	unsigned slot = (unsigned)(d->submitted % DIO_NBUF);
	d->job_off[slot] = d->fill_off;
	d->job_len[slot] = len;
	d->submitted++;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* Waits until the buffer numbered `submitted` is free to fill; returns a write error if any. */
static int dio_wait_slot(struct dio *d)
{
	int e;
	pthread_mutex_lock(&d->mu);
	while (d->submitted - d->written >= DIO_NBUF && !d->err) pthread_cond_wait(&d->cv, &d->mu);
	e = d->err;
	pthread_mutex_unlock(&d->mu);
	return e;
}

static void dio_free(struct dio *d)
{
	if (d->mem) munmap(d->mem, DIO_BUF * DIO_NBUF);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* Turns the direct path on at the current end of the stream. Any failure leaves the writer on
 * the buffered path for good; nothing is lost either way. */
static void dio_start(struct berth_filewriter *w)
{
	struct dio *d = calloc(1, sizeof *d);
	pthread_attr_t attr;
	int64_t start = w->size & ~(DIO_ALIGN - 1);
	size_t pre = (size_t)(w->size - start), got = 0;
	int ok = 0;
	w->no_direct = 1;
	if (!d) return;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->fd = w->fd;
	d->good = w->size;
	d->fill = pre;
	d->fill_off = start;
	d->mem = mmap(NULL, DIO_BUF * DIO_NBUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (d->mem == MAP_FAILED) {
		d->mem = NULL;
		goto out;
	}
	/* The partial block before the switch is rewritten whole by the first direct write. */
	while (got < pre) {
		ssize_t n = pread(w->fd, d->mem + got, pre - got, (off_t)(start + (int64_t)got));
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) goto out;
		got += (size_t)n;
	}
	if (set_direct(w->fd, 1)) goto out;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN + (64 << 10));
	ok = pthread_create(&d->thread, &attr, dio_thread, d) == 0;
	pthread_attr_destroy(&attr);
	if (!ok) (void)set_direct(w->fd, 0);
out:
	if (!ok) {
		dio_free(d);
		return;
	}
	w->no_direct = 0;
	w->d = d;
}

/* Ends the direct path: queues the aligned part of the last buffer, waits for the thread,
 * writes the unaligned tail through the page cache, and cuts the file back to what was written
 * after an error. Returns the first error. */
static int dio_end(struct berth_filewriter *w)
{
	struct dio *d = w->d;
	size_t aligned = d->fill & ~(size_t)(DIO_ALIGN - 1), tail = d->fill - aligned;
	int e;
	if (aligned && !dio_wait_slot(d)) dio_submit(d, aligned);
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	e = d->err;
	if (!e) e = set_direct(w->fd, 0);
	if (!e && tail) {
		size_t done = 0;
		unsigned slot = (unsigned)(d->submitted % DIO_NBUF);
		if (aligned) slot = (unsigned)((d->submitted - 1) % DIO_NBUF);
		e = pwrite_all(w->fd, d->mem + (size_t)slot * DIO_BUF + aligned, tail,
			       d->fill_off + (int64_t)aligned, &done);
		if (!e) d->good = d->fill_off + (int64_t)d->fill;
	}
	if (e) {
		(void)set_direct(w->fd, 0);
		/* Keep the file a prefix of the stream: nothing after the last good byte. */
		if (ftruncate(w->fd, (off_t)d->good) != 0) undo_failed(errno);
		w->size = d->good;
		w->no_direct = 1;
	}
	w->flushed = w->size;
	dio_free(d);
	w->d = NULL;
	return e;
}

static int direct_write(struct berth_filewriter *w, const char *buf, size_t len)
{
	struct dio *d = w->d;
	while (len > 0) {
		if (d->fill == 0) {
			int e = dio_wait_slot(d);
			if (e) {
				(void)dio_end(w);
				return e;
			}
		}
		size_t n = DIO_BUF - d->fill < len ? DIO_BUF - d->fill : len;
		unsigned slot = (unsigned)(d->submitted % DIO_NBUF);
		memcpy(d->mem + (size_t)slot * DIO_BUF + d->fill, buf, n);
		d->fill += n;
		buf += n;
		len -= n;
		w->size += (int64_t)n;
		if (d->fill == DIO_BUF) { /* full: the thread takes it at once */
			dio_submit(d, DIO_BUF);
			d->fill_off += (int64_t)DIO_BUF;
			d->fill = 0;
		}
	}
	return 0;
}

static int buffered_write(struct berth_filewriter *w, const char *buf, size_t len)
{
	size_t done = 0;
	int e = pwrite_all(w->fd, buf, len, w->size, &done);
	if (e) {
		/* A partial write is undone so the file stays at a length the caller accounted. */
		if (ftruncate(w->fd, (off_t)w->size) != 0) undo_failed(errno);
		return e;
	}
	w->size += (int64_t)len;
	if (w->size - w->flushed >= WRITEBACK_STEP) {
		int64_t from = w->flushed;
		w->flushed = w->size;
		/* Both calls are advisory: errors surface at the final fdatasync/syncfs. */
		(void)sync_file_range(w->fd, from, w->size - from, SYNC_FILE_RANGE_WRITE);
		if (from >= WRITEBACK_STEP && !w->no_wait)
			(void)sync_file_range(w->fd, 0, from,
					      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
						      SYNC_FILE_RANGE_WAIT_AFTER);
	}
	return 0;
}

int berth_filewriter_open(int fd, int64_t size, int64_t direct_after,
			  struct berth_filewriter **out)
{
	struct berth_filewriter *w = calloc(1, sizeof *w);
	if (!w) return ENOMEM;
	w->fd = fd;
	w->size = size;
	w->direct_after = direct_after;
	w->no_direct = direct_after < 0;
	w->flushed = size;
	*out = w;
	return 0;
}

int berth_filewriter_write(struct berth_filewriter *w, const void *buf, size_t len)
{
	int e;
	if (len == 0) return 0;
	if (!w->d && !w->no_direct && w->taken >= w->direct_after) dio_start(w);
	e = w->d ? direct_write(w, buf, len) : buffered_write(w, buf, len);
	if (!e) w->taken += (int64_t)len;
	return e;
}

int berth_filewriter_flush(struct berth_filewriter *w)
{
	return w->d ? dio_end(w) : 0;
}

void berth_filewriter_follow(struct berth_filewriter *w)
{
	if (!w->d) w->no_direct = 1;
	w->no_wait = 1;
}

int64_t berth_filewriter_visible(struct berth_filewriter *w)
{
	int64_t v;
	if (!w->d) return w->size;
	pthread_mutex_lock(&w->d->mu);
	v = w->d->good;
	pthread_mutex_unlock(&w->d->mu);
	return v;
}

int64_t berth_filewriter_size(const struct berth_filewriter *w)
{
	return w->size;
}

void berth_filewriter_close(struct berth_filewriter *w)
{
	if (!w) return;
	if (w->d) (void)dio_end(w);
	close(w->fd);
	free(w);
}
