# libtriloop-ev: the ev_* front end (issue 5).  Compiled against the system
# <ev.h>; exports exactly the ev_* symbols.  -version-info 4:0:0 gives the
# soname libtriloop-ev.so.4, matching libev.so.4's major so the file can
# stand in for it (LD_PRELOAD, or a symlink named libev.so.4).
lib_LTLIBRARIES += libtriloop-ev.la
libtriloop_ev_la_SOURCES = src/ev/ev.c
libtriloop_ev_la_LIBADD = libtlcore.la -lm
libtriloop_ev_la_LDFLAGS = -version-info 4:0:0 -export-symbols-regex '^ev_'

# Differential suite (tests/ev/): every t_*.c is built twice from the same
# object, against libev (the oracle) and against libtriloop-ev;
# tests/ev/run-diff.sh runs both on every backend and compares transcripts.
EVT_LIBEV = $(LIBEV_LIBS) -lpthread
EVT_TL = libtriloop-ev.la -lpthread
check_PROGRAMS += \
	tests/ev/t_order.libev tests/ev/t_order.tl \
	tests/ev/t_timer.libev tests/ev/t_timer.tl
tests_ev_t_order_libev_SOURCES = tests/ev/t_order.c tests/ev/common.h
tests_ev_t_order_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_order_tl_SOURCES = tests/ev/t_order.c tests/ev/common.h
tests_ev_t_order_tl_LDADD = $(EVT_TL)
tests_ev_t_timer_libev_SOURCES = tests/ev/t_timer.c tests/ev/common.h
tests_ev_t_timer_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_timer_tl_SOURCES = tests/ev/t_timer.c tests/ev/common.h
tests_ev_t_timer_tl_LDADD = $(EVT_TL)
