# libtriloop-ev: the ev_* front end (issue 5).
