# libtriloop-ev: the ev_* front end.  Compiled against the system <ev.h>;
# exports exactly the names in src/ev/ev.map (tests/ev/exports.sh checks).  -version-info 4:0:0 gives the
# soname libtriloop-ev.so.4, matching libev.so.4's major so the file can
# stand in for it (LD_PRELOAD, or a symlink named libev.so.4).
lib_LTLIBRARIES += libtriloop-ev.la
libtriloop_ev_la_SOURCES = src/ev/ev.c
# Calls between ev_* functions inside the library bind locally (no PLT, and
# the compiler may inline them): the library is the interposer, nothing is
# meant to interpose on it.
libtriloop_ev_la_CFLAGS = $(AM_CFLAGS) -fno-semantic-interposition
libtriloop_ev_la_LIBADD = libtlcore.la -lm
libtriloop_ev_la_LDFLAGS = -version-info 4:0:0 -Wl,--version-script=$(srcdir)/src/ev/ev.map
EXTRA_libtriloop_ev_la_DEPENDENCIES = src/ev/ev.map
EXTRA_DIST += src/ev/ev.map

dist_noinst_SCRIPTS += src/ev/ev-symbols.sh src/ev/bench/run.sh

# The drop-in's own gate against libev (sh src/ev/bench/run.sh from the build
# dir): timer, io churn, async and echo ratios to real libev.  The study in
# bench/ reports the backends; this measures the ev_* layer on top of them.
if HAVE_LIBEV
noinst_PROGRAMS += src/ev/bench/evbench.libev src/ev/bench/evbench.tl
src_ev_bench_evbench_libev_SOURCES = src/ev/bench/evbench.c
src_ev_bench_evbench_libev_LDADD = $(LIBEV_LIBS) -lpthread
src_ev_bench_evbench_tl_SOURCES = src/ev/bench/evbench.c
src_ev_bench_evbench_tl_LDADD = libtriloop-ev.la -lpthread
endif
