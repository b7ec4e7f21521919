# examples/: programs written as a new user would write them, against the
# public header only, with -Wall -Wextra -Werror whatever configure was told.
# tests/examples.sh runs them on every backend with scripted clients.
EX_CPPFLAGS = -I$(top_srcdir)/include
EX_CFLAGS = -std=gnu11 -Wall -Wextra -Werror
noinst_PROGRAMS += examples/httpd examples/copy examples/chat
examples_httpd_SOURCES = examples/httpd.c
examples_httpd_CPPFLAGS = $(EX_CPPFLAGS)
examples_httpd_CFLAGS = $(EX_CFLAGS)
examples_httpd_LDADD = libtriloop.la
examples_copy_SOURCES = examples/copy.c
examples_copy_CPPFLAGS = $(EX_CPPFLAGS)
examples_copy_CFLAGS = $(EX_CFLAGS)
examples_copy_LDADD = libtriloop.la
examples_chat_SOURCES = examples/chat.c
examples_chat_CPPFLAGS = $(EX_CPPFLAGS)
examples_chat_CFLAGS = $(EX_CFLAGS)
examples_chat_LDADD = libtriloop.la

# The README's example, cut out of README.md (between its readme-example
# markers) at build time, so that it cannot drift from what is built.
check_PROGRAMS += tests/readme_example
nodist_tests_readme_example_SOURCES = tests/readme_example.c
tests_readme_example_CPPFLAGS = $(EX_CPPFLAGS)
tests_readme_example_CFLAGS = $(EX_CFLAGS)
tests_readme_example_LDADD = libtriloop.la
CLEANFILES += tests/readme_example.c
tests/readme_example.c: $(top_srcdir)/README.md
	$(AM_V_GEN)$(MKDIR_P) tests && \
	sed -n '/^<!-- readme-example/,/^<!-- \/readme-example/p' $(top_srcdir)/README.md | \
	  sed '1,/^```c$$/d;/^```$$/,$$d' >$@.tmp && test -s $@.tmp && mv $@.tmp $@

TESTS += tests/examples.sh
dist_noinst_SCRIPTS += tests/examples.sh tests/examples.py
