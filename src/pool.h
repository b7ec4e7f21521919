/*
 * The shared blocking pool: one per process, started lazily, used by the
 * epoll backend for file ops and by the threadpool backend for everything.
 *
 * A job (struct tl__job, in triloop.h because tl_op embeds one) runs
 * job->work() on a worker; the worker then hands it back to its loop with
 * tl__base_post(job->base, job), and job->done() runs on the loop thread.
 *
 * Two classes of jobs:
 *  - work jobs (TL__POOL_WORK: ops, file I/O, anything tl__pool_submit and
 *    tl__pool_submit_batch queue): at most TRILOOP_THREADS_MAX (default 256)
 *    run at once; more wait in the queue for a running one to finish.  While
 *    they are short (page-cached reads), at most TRILOOP_THREADS_EAGER
 *    (default: cores) run at once; see the top of pool.c.
 *  - wait jobs (TL__POOL_WAIT: the threadpool backend's readiness waits,
 *    one per fd with interest, and on every backend the pool ops that may
 *    wait for a peer forever, see tl__op_pool_class): never queue behind
 *    the bound, a thread is started for each one no idle worker takes.
 *    They are bounded by the number of watched fds and of such ops in
 *    flight, not by TRILOOP_THREADS_MAX: with the bound
 *    shared, max quiet fds would hold every worker and starve the other
 *    watchers and every file op forever.  The bound still keeps work jobs
 *    from growing the pool without limit, and no wait job holds a work slot,
 *    so file ops cannot be starved by watchers either.
 * So the pool has at most TRILOOP_THREADS_MAX + (wait jobs in it) threads
 * busy.  It keeps TRILOOP_THREADS warm (default 2 x cores) and retires idle
 * workers after a keep-alive.  A job that waits for an fd (tl__pool_wait)
 * can be interrupted by tl__pool_cancel: every worker has its own eventfd
 * that the wait polls beside the fd (so each blocked wait costs a thread and
 * one fd).
 */
#ifndef TL_POOL_H
#define TL_POOL_H

#include "triloop.h"

/* job->state; QUEUED_WAIT is a queued wait job. */
enum { TL__JOB_IDLE = 0, TL__JOB_QUEUED, TL__JOB_RUNNING, TL__JOB_DONE, TL__JOB_QUEUED_WAIT };
enum { TL__POOL_WORK = 0, TL__POOL_WAIT = 1 };

/* Queues a work job.  0, or -errno when no worker exists and none can start. */
int tl__pool_submit(struct tl__job *job);
/* Queues a batch of work jobs (linked through ->next) under one lock. */
int tl__pool_submit_batch(struct tl__job *head, struct tl__job *tail, unsigned n);

/* A list of jobs linked through ->next, head to tail, n of them. */
struct tl__pool_list {
  struct tl__job *head, *tail;
  unsigned n;
};
/* Queues work jobs and wait jobs (either may be NULL or empty) under one
 * lock.  0, or -errno when no worker exists and none can start: then no job
 * of either list is queued. */
int tl__pool_submit_lists(struct tl__pool_list *work, struct tl__pool_list *wait);

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

/*
 * A queued job that no worker will come for, because a thread could not be
 * started while every worker is held (a quiet fd's wait can hold one for
 * ever), is handed back to its loop without running: done() then sees
 * job->cancelled == -1 and job->res the spawn error (-EAGAIN, -EMFILE).
 */

/* After fork in the child: forget the parent's threads and queue. */
void tl__pool_atfork_child(void);

#endif
