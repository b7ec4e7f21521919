# Man pages: installed by `make install`; tests/man.sh renders each one
# with warnings on, and installcheck (run by distcheck) finds them installed.
dist_man_MANS = man/triloop.3 man/triloop_loop.3 man/triloop_watchers.3 \
	man/triloop_ops.3 man/triloop_bufring.3 man/triloop_pool.3 man/triloop-ev.3 \
	man/triloop-info.1
TESTS += tests/man.sh
dist_noinst_SCRIPTS += tests/man.sh

installcheck-local: installcheck-man
installcheck-man:
	@for p in $(dist_man_MANS); do \
	  f="$(DESTDIR)$(mandir)/man$${p##*.}/$${p##*/}"; \
	  test -f "$$f" || { echo "not installed: $$f"; exit 1; }; \
	done; echo "man pages installed under $(DESTDIR)$(mandir)"
.PHONY: installcheck-man
