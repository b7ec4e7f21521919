/* What only the io_uring backend can tell (for triloop-info and tests). */
#ifndef TL_URING_H
#define TL_URING_H

struct tl__base;

/*
 * One line describing the ring this loop runs on: entries, the setup flags
 * the kernel accepted, io-wq bound, which ops are native and which go to the
 * blocking pool.  NULL when b's backend is not uring.  The string lives as
 * long as the loop (it is rebuilt by fork).
 */
const char *tl__uring_describe(struct tl__base *b);

#endif
