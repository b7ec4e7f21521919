/*
 * The shared blocking pool: one per process, started lazily, used by the
 * epoll backend for file ops and by the threadpool backend for everything.
 *
 * A job (struct tl__job, in triloop.h because tl_op embeds one) runs
 * job->work() on a worker; the worker then hands it back to its loop with
 * tl__base_post(job->base, job), and job->done() runs on the loop thread.
 *
 * Threads: grows on demand up to TRILOOP_THREADS_MAX (default 256), keeps
 * TRILOOP_THREADS warm (default 2 x cores), retires idle workers after a
 * keep-alive.  A job that waits for an fd (tl__pool_wait) can be
 * interrupted by tl__pool_cancel: every worker has its own eventfd that the
 * wait polls beside the fd.
 */
#ifndef TL_POOL_H
#define TL_POOL_H

#include "triloop.h"

enum { TL__JOB_IDLE = 0, TL__JOB_QUEUED, TL__JOB_RUNNING, TL__JOB_DONE };

/* Queues a job.  0, or -errno when no worker exists and none can start. */
int tl__pool_submit(struct tl__job *job);
/* Queues a batch (linked through ->next) under one lock. */
int tl__pool_submit_batch(struct tl__job *head, struct tl__job *tail, unsigned n);

/*
 * Cancels a job.  Returns 1 if it was still queued: it is removed and will
 * never run nor be posted (the caller completes it).  Returns 0 if it is
 * running: job->cancelled is set and the worker's wait, if any, is
 * interrupted; it will be posted as usual.  Returns -ENOENT if it already
 * finished (it is posted or about to be).
 */
int tl__pool_cancel(struct tl__job *job);

/*
 * For work functions: waits until fd has events (POLLIN/POLLOUT) or the job
 * is cancelled.  Returns revents (> 0), -ECANCELED, or -errno.  timeout_ms
 * -1 waits forever.
 */
int tl__pool_wait(struct tl__job *job, int fd, short events, int timeout_ms);

/* After fork in the child: forget the parent's threads and queue. */
void tl__pool_atfork_child(void);

#endif
