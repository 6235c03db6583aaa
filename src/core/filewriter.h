/* filewriter.h — appends a stream to a file at the disk's speed.
 *
 * A short stream goes through the page cache (cheap, and a group commit makes it durable). Once
 * a writer has taken direct_after bytes (berth_filewriter_open) it switches the file to O_DIRECT: bytes
 * are gathered into a few aligned buffers that a background thread writes while the caller goes
 * on receiving and hashing the next ones. The page cache then costs neither the copy nor the
 * writeback, and the disk writes while the network reads. A filesystem without O_DIRECT keeps
 * the buffered path.
 *
 * The file always holds a prefix of the stream: after an error the file is cut back to the last
 * byte known written. Errors are errno values (0 = ok); the caller maps them. */
#ifndef BERTH_FILEWRITER_H
#define BERTH_FILEWRITER_H

#include <stddef.h>
#include <stdint.h>

struct berth_filewriter;

/* Takes ownership of fd (opened O_RDWR, without O_APPEND), whose current length is size. The
 * writer switches to O_DIRECT once it has taken direct_after bytes (< 0: never). */
int berth_filewriter_open(int fd, int64_t size, int64_t direct_after,
			  struct berth_filewriter **out);
/* Appends len bytes. A write error may surface here or at a later write or flush. */
int berth_filewriter_write(struct berth_filewriter *w, const void *buf, size_t len);
/* Every byte written so far is in the file (not necessarily durable: fdatasync or syncfs
 * does that). Returns a background write error that no write has reported yet; after an
 * error, berth_filewriter_size is the file's length. */
int berth_filewriter_flush(struct berth_filewriter *w);
/* A reader follows the file as it grows (a mirror's tee): stay on the buffered path and never
 * wait for the disk, so each byte is readable as soon as it is written; writeback is still
 * started as the stream goes, and the final flush makes it durable. */
void berth_filewriter_follow(struct berth_filewriter *w);
/* Bytes a reader of the file sees now: all of them on the buffered path, those the background
 * thread has written on the direct path. Safe to call from the writing thread only. */
int64_t berth_filewriter_visible(struct berth_filewriter *w);
/* Bytes in the stream so far (after a failed write or flush: the length of the file). */
int64_t berth_filewriter_size(const struct berth_filewriter *w);
/* Flushes (errors are lost: call flush first to see them) and closes the file. */
void berth_filewriter_close(struct berth_filewriter *w);

#endif
