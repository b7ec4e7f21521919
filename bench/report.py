#!/usr/bin/env python3
"""The study's report (bench/run-study calls it at the end of a run).

  report.py DIR [--no-plots]                    DIR/report.md, appendix.md, PNGs from DIR's data
  report.py report DIR                          the same (the driver's older spelling)
  report.py fio2kv FIO.json ENGINE DIRECT FSYNC fio JSON -> one key=value line

DIR holds results.csv (or raw.txt, from which results.csv is written),
facts.txt and/or facts.json, and notes.txt.  Regenerating a report from
the same data gives the same report.md except its last line (the time it
was generated).  The parts are in bench/report/ (a package: it shadows
this file's name for imports, which is what finds it)."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import document, load  # noqa: E402  (the package bench/report/)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    if len(args) == 5 and args[0] == "fio2kv":
        print(load.fio2kv(*args[1:5]))
        return 0
    if args and args[0] == "report":
        args = args[1:]
    if len(args) != 1 or any(f not in ("--no-plots",) for f in flags) or not os.path.isdir(args[0]):
        sys.stderr.write(__doc__)
        return 2
    document.render(args[0], draw_plots="--no-plots" not in flags)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
