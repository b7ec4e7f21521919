"""The study's report, in parts: load (raw data, facts, notes), stats (paired
log ratios, geometric means, bootstrap intervals), verdict (the question,
answered per file workload), tables (markdown), plots (gnuplot), and
document, which puts them together.  bench/report.py is the command."""
