/* offload.h — a small pool of threads for work that must not run on the event loop (asking an
 * upstream registry): threads start as jobs need them, up to a cap, and stay for the next jobs
 * (each keeps its metadata connection, so a job costs no thread start and no database open). */
#ifndef BERTH_OFFLOAD_H
#define BERTH_OFFLOAD_H

#include "../core/err.h"

struct berth_offload;

/* At most max_threads threads. */
berth_err berth_offload_new(unsigned max_threads, struct berth_offload **out) BERTH_MUST_CHECK;
/* Queues fn(arg). BERTH_ENOMEM when it cannot (the caller runs it itself). */
berth_err berth_offload_run(struct berth_offload *o, void (*fn)(void *arg),
			    void *arg) BERTH_MUST_CHECK;
/* Runs what is queued, then joins the threads. NULL is a no-op. */
void berth_offload_free(struct berth_offload *o);

#endif
