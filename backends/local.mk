# One file per backend, each exporting one const struct tl__backend.
libtlcore_la_SOURCES += backends/epoll.c backends/uring.c backends/uring.h backends/threadpool.c
