# Differential suite (tests/ev/): every t_*.c is built twice from the same
# object, against libev (the oracle) and against libtriloop-ev;
# tests/ev/run-diff.sh runs both on every backend and compares transcripts.
EVT_LIBEV = $(LIBEV_LIBS) -lpthread
EVT_TL = libtriloop-ev.la -lpthread
EVT_PROGS = t_order t_timer t_io t_misc t_signal t_async t_child t_stat t_embed t_fork t_backend t_thread
check_PROGRAMS += \
	tests/ev/t_order.libev tests/ev/t_order.tl \
	tests/ev/t_timer.libev tests/ev/t_timer.tl \
	tests/ev/t_io.libev tests/ev/t_io.tl \
	tests/ev/t_misc.libev tests/ev/t_misc.tl \
	tests/ev/t_signal.libev tests/ev/t_signal.tl \
	tests/ev/t_async.libev tests/ev/t_async.tl \
	tests/ev/t_child.libev tests/ev/t_child.tl \
	tests/ev/t_stat.libev tests/ev/t_stat.tl \
	tests/ev/t_embed.libev tests/ev/t_embed.tl \
	tests/ev/t_fork.libev tests/ev/t_fork.tl \
	tests/ev/t_backend.libev tests/ev/t_backend.tl \
	tests/ev/t_thread.libev tests/ev/t_thread.tl
tests_ev_t_order_libev_SOURCES = tests/ev/t_order.c tests/ev/common.h
tests_ev_t_order_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_order_tl_SOURCES = tests/ev/t_order.c tests/ev/common.h
tests_ev_t_order_tl_LDADD = $(EVT_TL)
tests_ev_t_timer_libev_SOURCES = tests/ev/t_timer.c tests/ev/common.h
tests_ev_t_timer_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_timer_tl_SOURCES = tests/ev/t_timer.c tests/ev/common.h
tests_ev_t_timer_tl_LDADD = $(EVT_TL)
tests_ev_t_io_libev_SOURCES = tests/ev/t_io.c tests/ev/common.h
tests_ev_t_io_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_io_tl_SOURCES = tests/ev/t_io.c tests/ev/common.h
tests_ev_t_io_tl_LDADD = $(EVT_TL)
tests_ev_t_misc_libev_SOURCES = tests/ev/t_misc.c tests/ev/common.h
tests_ev_t_misc_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_misc_tl_SOURCES = tests/ev/t_misc.c tests/ev/common.h
tests_ev_t_misc_tl_LDADD = $(EVT_TL)
tests_ev_t_signal_libev_SOURCES = tests/ev/t_signal.c tests/ev/common.h
tests_ev_t_signal_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_signal_tl_SOURCES = tests/ev/t_signal.c tests/ev/common.h
tests_ev_t_signal_tl_LDADD = $(EVT_TL)
tests_ev_t_async_libev_SOURCES = tests/ev/t_async.c tests/ev/common.h
tests_ev_t_async_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_async_tl_SOURCES = tests/ev/t_async.c tests/ev/common.h
tests_ev_t_async_tl_LDADD = $(EVT_TL)
tests_ev_t_child_libev_SOURCES = tests/ev/t_child.c tests/ev/common.h
tests_ev_t_child_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_child_tl_SOURCES = tests/ev/t_child.c tests/ev/common.h
tests_ev_t_child_tl_LDADD = $(EVT_TL)
tests_ev_t_stat_libev_SOURCES = tests/ev/t_stat.c tests/ev/common.h
tests_ev_t_stat_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_stat_tl_SOURCES = tests/ev/t_stat.c tests/ev/common.h
tests_ev_t_stat_tl_LDADD = $(EVT_TL)
tests_ev_t_embed_libev_SOURCES = tests/ev/t_embed.c tests/ev/common.h
tests_ev_t_embed_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_embed_tl_SOURCES = tests/ev/t_embed.c tests/ev/common.h
tests_ev_t_embed_tl_LDADD = $(EVT_TL)
tests_ev_t_fork_libev_SOURCES = tests/ev/t_fork.c tests/ev/common.h
tests_ev_t_fork_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_fork_tl_SOURCES = tests/ev/t_fork.c tests/ev/common.h
tests_ev_t_fork_tl_LDADD = $(EVT_TL)
tests_ev_t_backend_libev_SOURCES = tests/ev/t_backend.c tests/ev/common.h
tests_ev_t_backend_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_backend_tl_SOURCES = tests/ev/t_backend.c tests/ev/common.h
tests_ev_t_backend_tl_LDADD = $(EVT_TL)

# Not differential (libev asserts, or differs by backend): the closed-fd
# EV_ERROR path, checked by the program itself on every backend.
check_PROGRAMS += tests/ev/t_closedfd
tests_ev_t_closedfd_SOURCES = tests/ev/t_closedfd.c
tests_ev_t_closedfd_LDADD = $(EVT_TL)

# Whole-library checks and the real-program tests.
TESTS += tests/ev/exports.sh tests/ev/run-diff.sh tests/ev/closedfd.sh \
	tests/ev/preload-nghttp2.sh tests/ev/preload-nghttpx.sh
dist_noinst_SCRIPTS += tests/ev/exports.sh tests/ev/run-diff.sh \
	tests/ev/closedfd.sh tests/ev/preload-nghttp2.sh tests/ev/preload-nghttpx.sh
tests_ev_t_thread_libev_SOURCES = tests/ev/t_thread.c tests/ev/common.h
tests_ev_t_thread_libev_LDADD = $(EVT_LIBEV)
tests_ev_t_thread_tl_SOURCES = tests/ev/t_thread.c tests/ev/common.h
tests_ev_t_thread_tl_LDADD = $(EVT_TL)
