# The study (issue 6).
