/* offload.c — a job queue and the threads that take from it. */
#include "offload.h"

#include <pthread.h>
#include <stdlib.h>

struct job {
	struct job *next;
	void (*fn)(void *arg);
	void *arg;
};

struct berth_offload {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	unsigned max, nthreads, idle;
	int stopping;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct berth_offload *o = arg;
	pthread_mutex_lock(&o->mu);
	for (;;) {
		struct job *j;
		while (!o->head && !o->stopping) {
			o->idle++;
			pthread_cond_wait(&o->cv, &o->mu);
			o->idle--;
		}
		if (!o->head) break; /* stopping, nothing left */
		j = o->head;
		o->head = j->next;
		if (!o->head) o->tail = NULL;
		pthread_mutex_unlock(&o->mu);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&o->mu);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

berth_err berth_offload_new(unsigned max_threads, struct berth_offload **out)
{
	struct berth_offload *o = calloc(1, sizeof *o);
	*out = NULL;
	if (!o) return BERTH_ENOMEM;
	o->max = max_threads ? max_threads : 1;
	o->threads = calloc(o->max, sizeof *o->threads);
	if (!o->threads) {
		free(o);
		return BERTH_ENOMEM;
	}
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	*out = o;
	return BERTH_OK;
}

berth_err berth_offload_run(struct berth_offload *o, void (*fn)(void *arg), void *arg)
{
	struct job *j = malloc(sizeof *j);
	if (!j) return BERTH_ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&o->mu);
	if (o->tail) o->tail->next = j;
	else o->head = j;
	o->tail = j;
	/* A thread more when none is idle; at the cap the job waits its turn. */
	if (!o->idle && o->nthreads < o->max &&
	    pthread_create(&o->threads[o->nthreads], NULL, worker, o) == 0)
		o->nthreads++;
	if (!o->nthreads) {
		/* No thread could start: take the job back, the caller runs it. */
		o->head = o->tail = NULL;
		pthread_mutex_unlock(&o->mu);
		free(j);
		return BERTH_ENOMEM;
	}
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return BERTH_OK;
}

void berth_offload_free(struct berth_offload *o)
{
	if (!o) return;
	pthread_mutex_lock(&o->mu);
	o->stopping = 1;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (unsigned i = 0; i < o->nthreads; i++) pthread_join(o->threads[i], NULL);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o->threads);
	free(o);
}
