# The core shared by both front ends: base (backend selection, wakefd),
# the blocking pool, the blocking/nonblocking syscall runners, and the
# backends (backends/local.mk adds them).
noinst_LTLIBRARIES += libtlcore.la
# (one line: tests/fuzz/build.sh reads this list)
libtlcore_la_SOURCES = src/base.h src/base.c src/pool.h src/pool.c src/ops_sync.c src/fixed.c
libtlcore_la_CFLAGS = $(AM_CFLAGS) $(URING_CFLAGS)
libtlcore_la_LIBADD = $(URING_LIBS) -lpthread

# libtriloop: the tl_* front end.
lib_LTLIBRARIES += libtriloop.la
libtriloop_la_SOURCES = src/loop.c src/strerror.c
libtriloop_la_LIBADD = libtlcore.la
# Exports are the list in src/triloop.map (tests/exports.sh checks it).
libtriloop_la_LDFLAGS = -version-info 0:0:0 -Wl,--version-script=$(srcdir)/src/triloop.map
EXTRA_libtriloop_la_DEPENDENCIES = src/triloop.map
EXTRA_DIST += src/triloop.map

bin_PROGRAMS += triloop-info
triloop_info_SOURCES = src/triloop-info.c
triloop_info_LDADD = libtriloop.la

# ---- fault injection (see src/fault.c).  ./configure --enable-fault-injection links
# libtriloop.so with GNU ld --wrap for every syscall and liburing entry point
# the library calls, so only the library's own calls reach src/fault.c (the
# test programs' and libtriloop-ev's are untouched).  Needs the shared
# library (the default).  The test API (src/fault.h) is exported in this
# build only: src/triloop.map lists it as the pattern tl_fault_*.
if FAULT_INJECTION
FAULT_WRAP = -Wl,--wrap=read -Wl,--wrap=write -Wl,--wrap=pread \
	-Wl,--wrap=pwrite -Wl,--wrap=readv -Wl,--wrap=writev -Wl,--wrap=preadv \
	-Wl,--wrap=pwritev -Wl,--wrap=recv -Wl,--wrap=send -Wl,--wrap=accept4 \
	-Wl,--wrap=connect -Wl,--wrap=openat -Wl,--wrap=close -Wl,--wrap=fsync \
	-Wl,--wrap=fdatasync -Wl,--wrap=poll -Wl,--wrap=eventfd \
	-Wl,--wrap=epoll_create1 -Wl,--wrap=epoll_ctl -Wl,--wrap=epoll_wait \
	-Wl,--wrap=pthread_create -Wl,--wrap=calloc -Wl,--wrap=realloc \
	-Wl,--wrap=io_uring_queue_init_params -Wl,--wrap=io_uring_enter2 \
	-Wl,--wrap=io_uring_register -Wl,--wrap=io_uring_register_ring_fd \
	-Wl,--wrap=io_uring_register_iowq_max_workers \
	-Wl,--wrap=io_uring_get_probe_ring
libtriloop_la_SOURCES += src/fault.c src/fault.h
libtriloop_la_LDFLAGS += $(FAULT_WRAP)
endif
