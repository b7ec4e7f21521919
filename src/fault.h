/*
 * Syscall fault injection (./configure --enable-fault-injection; tests only).
 *
 * The library is linked with GNU ld --wrap=SYMBOL for every syscall and
 * liburing entry point the backends and the pool call (the list and the plan
 * syntax are at the top of src/fault.c).  Each __wrap_SYMBOL consults the
 * fault plan and either fails the way the real call can fail, returns a
 * short count, or calls the real function.
 *
 * The plan comes from TRILOOP_FAULT (read at the first wrapped call) or from
 * tl_fault_set().  These functions exist only in a fault-injection build,
 * for the tests; they are named tl_fault_* rather than tl__fault_* only so
 * that libtriloop.so's single export regex (^tl_[a-z]) lets the tests reach
 * them.  Not part of the API.
 */
#ifndef TL_FAULT_H
#define TL_FAULT_H

#include <stdint.h>

/* Replaces the plan and zeroes every counter.  0, or -EINVAL for a plan that
 * does not parse (the old plan stays); NULL or "" clears it. */
int tl_fault_set(const char *plan);
/* Calls seen and faults injected so far for one wrapped symbol ("read",
 * "io_uring_enter2", ...), or summed over all of them for NULL.  A symbol
 * that is not wrapped counts 0. */
uint64_t tl_fault_calls(const char *sym);
uint64_t tl_fault_injected(const char *sym);
/* The names of the wrapped symbols, NULL-terminated. */
const char *const *tl_fault_symbols(void);

/* Internal: should the uring backend's next cancel SQE (for an op on fd)
 * miss?  Counted under "io_uring_prep_cancel64". */
int tl__fault_uring_cancel_miss(int fd);

#endif
