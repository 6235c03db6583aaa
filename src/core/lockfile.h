/* lockfile.h — one owner at a time for an embedded store: an exclusive flock on
 * <dir>/berth.lock, which holds the owner's PID for the error a second process prints. The lock
 * lives as long as the process (or until berth_lockfile_release); it never blocks. */
#ifndef BERTH_LOCKFILE_H
#define BERTH_LOCKFILE_H

#include <sys/types.h>

#include "err.h"

struct berth_lockfile;

/* Takes the lock on dir (which must exist). BERTH_OK: *out holds it. BERTH_ETOOMANY: another
 * process holds it; *holder is its PID (0 if unknown). Anything else: the file could not be
 * opened or locked (errno says why). */
berth_err berth_lockfile_acquire(const char *dir, struct berth_lockfile **out, pid_t *holder)
	BERTH_MUST_CHECK;
/* Releases and frees; NULL is a no-op. The file stays (removing it would race a new owner). */
void berth_lockfile_release(struct berth_lockfile *l);

#endif
