# The core shared by both front ends: base (backend selection, wakefd),
# the blocking pool, the blocking/nonblocking syscall runners, and the
# backends (backends/local.mk adds them).
noinst_LTLIBRARIES += libtlcore.la
libtlcore_la_SOURCES = src/base.h src/base.c src/pool.h src/pool.c src/ops_sync.c
libtlcore_la_CFLAGS = $(AM_CFLAGS) $(URING_CFLAGS)
libtlcore_la_LIBADD = $(URING_LIBS) -lpthread

# libtriloop: the tl_* front end.
lib_LTLIBRARIES += libtriloop.la
libtriloop_la_SOURCES = src/loop.c src/strerror.c
libtriloop_la_LIBADD = libtlcore.la
libtriloop_la_LDFLAGS = -version-info 0:0:0 -export-symbols-regex '^tl_[a-z]'

bin_PROGRAMS += triloop-info
triloop_info_SOURCES = src/triloop-info.c
triloop_info_LDADD = libtriloop.la
