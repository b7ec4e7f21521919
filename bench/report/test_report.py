"""Unit tests of the report's statistics and verdict on small synthetic
data (python3 -m unittest from bench/, or python3 bench/report/test_report.py).
Stdlib only; writes only to temporary directories."""
import csv
import math
import os
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from report import document, load, stats, verdict  # noqa: E402


def rows_for(workload, backend, values, reps=3, **point):
    """One row per (point, rep): values maps a point's qd or conns to the
    per-rep CPU µs/op list (ops/s is made its reciprocal)."""
    out = []
    for x, cpus in values.items():
        for rep in range(1, reps + 1):
            cpu = cpus[rep - 1]
            r = dict(rep=str(rep), workload=workload, impl="triloop", backend=backend,
                     cpu_us_per_op=f"{cpu:.4f}", ops_per_s=f"{1e6 / cpu:.1f}", **point)
            if workload == "echo":
                r.update(conns=str(x), msg="64", loops="1", set="matrix")
            else:
                r.update(qd=str(x))
            out.append(r)
    return out


FILE = dict(pattern="rand", bs="4096", direct="0", fsync="0")


def study(file_ratio, sock_ratio, jitter=0.02, qds=(1, 8, 32), conns=(1, 16, 256)):
    """uring costs 1 µs/op; epoll costs ratio µs/op (so epoll ÷ uring =
    ratio), each rep scaled by 1 + jitter * (-1, 0, +1)."""
    rows = []
    j = [1 - jitter, 1.0, 1 + jitter]
    rows += rows_for("file-read", "uring", {q: [1.0, 1.0, 1.0] for q in qds}, **FILE)
    rows += rows_for("file-read", "epoll", {q: [file_ratio * k for k in j] for q in qds}, **FILE)
    rows += rows_for("echo", "uring", {c: [1.0, 1.0, 1.0] for c in conns})
    rows += rows_for("echo", "epoll", {c: [sock_ratio * k for k in reversed(j)] for c in conns})
    return load.Study("/nonexistent", rows=rows, facts={"cores": "2"}, notes=[])


class Stats(unittest.TestCase):
    def test_log_ratios_pair_by_rep(self):
        a = [dict(rep="1", x="2"), dict(rep="2", x="8"), dict(rep="3", x="5")]
        b = [dict(rep="2", x="4"), dict(rep="1", x="1")]  # rep 3 missing on b
        self.assertEqual([round(math.exp(v), 9) for v in stats.log_ratios(a, b, "x")], [2.0, 2.0])

    def test_geometric_mean_and_interval(self):
        s = stats.summarise([[math.log(2), math.log(8)], [math.log(4)]])
        self.assertAlmostEqual(s.gm, 4.0)
        self.assertEqual((s.n, s.points), (3, 2))
        self.assertLessEqual(s.lo, s.gm)
        self.assertGreaterEqual(s.hi, s.gm)
        self.assertGreaterEqual(s.lo, 2.0 - 1e-9)
        self.assertLessEqual(s.hi, 8.0 + 1e-9)

    def test_constant_ratio_has_zero_width(self):
        s = stats.summarise([[math.log(3)] * 4])
        self.assertAlmostEqual(s.lo, 3.0)
        self.assertAlmostEqual(s.hi, 3.0)

    def test_bootstrap_is_deterministic(self):
        data = [[0.1, 0.5, -0.2], [0.3, 0.9]]
        self.assertEqual(repr(stats.summarise(data)), repr(stats.summarise(data)))
        self.assertEqual(stats.difference(data, [[0.0, 0.1]]), stats.difference(data, [[0.0, 0.1]]))

    def test_quantile(self):
        self.assertEqual(stats.quantile([1.0, 2.0, 3.0, 4.0], 0.5), 2.5)
        self.assertEqual(stats.quantile([1.0, 2.0, 3.0], 0.0), 1.0)


class Judge(unittest.TestCase):
    def test_supported(self):
        v = verdict.Verdict(study(3.0, 1.05))
        it = v.items[0]
        self.assertEqual(it["key"], "cached-rand")
        self.assertEqual(it["cpu"][2], verdict.SUPPORTED, it["cpu"][3])
        self.assertAlmostEqual(it["cpu"][0].gm, 3.0, delta=0.01)

    def test_file_ratio_below_one_is_not_supported(self):
        # Sockets are worse still, so file minus socket is positive: the
        # verdict must still fail, since uring does not beat epoll on files.
        v = verdict.Verdict(study(0.8, 0.5))
        it = v.items[0]
        self.assertGreater(it["cpu"][1][1], 0)  # the difference interval is above 0 ...
        self.assertEqual(it["cpu"][2], verdict.NOT_SUPPORTED, it["cpu"][3])  # ... and still no
        self.assertIn("below 1", it["cpu"][3])

    def test_file_and_socket_overlap_is_inconclusive(self):
        v = verdict.Verdict(study(1.30, 1.28, jitter=0.10))
        it = v.items[0]
        self.assertGreater(it["cpu"][0].lo, 1)  # the file ratio alone is above 1
        self.assertLess(it["cpu"][1][1], 0)
        self.assertGreater(it["cpu"][1][2], 0)
        self.assertEqual(it["cpu"][2], verdict.INCONCLUSIVE, it["cpu"][3])
        self.assertIn("cannot be told apart", it["cpu"][3])

    def test_file_edge_below_socket_edge_is_not_supported(self):
        v = verdict.Verdict(study(1.5, 3.0))
        self.assertEqual(v.items[0]["cpu"][2], verdict.NOT_SUPPORTED)

    def test_file_ratio_straddling_one_is_inconclusive(self):
        v = verdict.Verdict(study(1.0, 0.5, jitter=0.3))
        self.assertEqual(v.items[0]["cpu"][2], verdict.INCONCLUSIVE)

    def test_no_sockets_no_verdict(self):
        st = study(3.0, 1.0)
        st2 = load.Study("/nonexistent", rows=[r for r in st.rows if r["workload"] != "echo"], facts={}, notes=[])
        self.assertFalse(verdict.Verdict(st2).ready())


class Load(unittest.TestCase):
    def test_parse_kv_takes_cmd_as_the_rest_of_the_line(self):
        r = load.parse_kv("workload=file-read qd=8 cmd=env A=1 bench/file_read --qd 8 --x=y\n")
        self.assertEqual(r, {"workload": "file-read", "qd": "8", "cmd": "env A=1 bench/file_read --qd 8 --x=y"})
        self.assertEqual(load.parse_kv("workload=echo conns=1"), {"workload": "echo", "conns": "1"})

    def test_fixed_at_the_program_default_is_the_same_point(self):
        rows = [dict(rep="1", workload="file-read", impl="triloop", backend="uring", qd="8", fixed="0"),
                dict(rep="2", workload="file-read", impl="triloop", backend="uring", qd="8"),
                dict(rep="1", workload="file-read", impl="triloop", backend="uring", qd="8", fixed="1"),
                dict(rep="1", workload="file-read", impl="raw-uring", backend="-", qd="8", fixed="1"),
                dict(rep="2", workload="file-read", impl="raw-uring", backend="-", qd="8"),
                dict(rep="1", workload="file-read", impl="raw-uring", backend="-", qd="8", fixed="0")]
        st = load.Study("/nonexistent", rows=rows, facts={}, notes=[])
        got = sorted((load.label(g), len(r)) for g, r in st.find())
        self.assertEqual(got, [("raw-uring", 2), ("raw-uring (plain READ)", 1), ("triloop uring", 2),
                               ("triloop uring fixed", 1)])

    def test_raw_txt_to_results_csv_with_cmd_last(self):
        d = tempfile.mkdtemp(prefix="report-test-")
        try:
            with open(os.path.join(d, "raw.txt"), "w") as f:
                f.write("rep=1 workload=file-read impl=pread backend=- zz=1 cmd=bench/pread_inline --qd 1\n")
            rows = load.read_rows(d)
            self.assertEqual(rows[0]["cmd"], "bench/pread_inline --qd 1")
            with open(os.path.join(d, "results.csv")) as f:
                header = f.readline().strip().split(",")
            self.assertEqual(header[:4], ["rep", "workload", "impl", "backend"])
            self.assertEqual(header[-2:], ["zz", "cmd"])
        finally:
            shutil.rmtree(d)

    def test_rows_of_one_point_told_apart_by_a_new_column(self):
        rows = []
        for api in ("spawn_blocking", "fs"):
            for rep in "12":
                rows.append(dict(rep=rep, workload="file-read", impl="tokio-ct", backend="-", qd="1",
                                 api=api, ops_per_s="1000", cpu_us_per_op="5"))
        st = load.Study("/nonexistent", rows=rows, facts={}, notes=[])
        names = sorted(load.label(g) for g, _ in st.find(workload="file-read"))
        self.assertEqual(names, ["tokio-ct [api=fs]", "tokio-ct [api=spawn_blocking]"])
        self.assertTrue(all(len(r) == 2 for _, r in st.find()))

    def test_threads_in_labels(self):
        self.assertEqual(load.label(dict(impl="tokio-mt", backend="-", threads="2")), "tokio-mt (2 thr)")
        self.assertEqual(load.label(dict(impl="raw-pool", backend="-", threads="8", qd="8")), "raw-pool")
        self.assertEqual(load.label(dict(impl="raw-pool", backend="-", threads="2", qd="8")), "raw-pool (2 thr)")
        self.assertEqual(load.label(dict(impl="triloop", backend="epoll+nowait")), "triloop epoll+nowait")


class Document(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="report-test-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, st):
        load.write_csv(os.path.join(self.dir, "results.csv"), st.rows)
        with open(os.path.join(self.dir, "facts.txt"), "w") as f:
            f.write("date=2026-01-01T00:00:00+00:00\nmode=quick\nreps=3\ncores=2\ncpu=Test CPU\n")

    def test_opening_holds_the_verdicts(self):
        self.write(study(0.8, 0.5))
        L = document.render(self.dir, draw_plots=False, now="T")
        first = next(i for i, l in enumerate(L) if l.startswith("## "))
        opening = L[:first]
        while opening and opening[-1] == "":
            opening.pop()
        self.assertLessEqual(len(opening), document.OPENING_MAX)
        text = "\n".join(opening)
        self.assertIn("cached random reads (4 KiB, qd 1–32): 0.80", text)
        self.assertIn("**not supported**", text)
        self.assertIn("socket echo (64 B, 1–256 conns): 0.50", text)
        self.assertIn("Machine: Test CPU, 2 cores", text)

    def test_regeneration_is_identical(self):
        self.write(study(3.0, 1.05))
        document.render(self.dir, draw_plots=False, now="A")
        with open(os.path.join(self.dir, "report.md")) as f:
            a = f.read()
        document.render(self.dir, draw_plots=False, now="B")
        with open(os.path.join(self.dir, "report.md")) as f:
            b = f.read()
        self.assertEqual(a.replace("at A.", "at B."), b)

    def test_untuned_fio_left_out_of_the_summary(self):
        st = study(3.0, 1.05)
        rows = list(st.rows)
        for rep in "123":
            for q in ("1", "8", "32"):
                rows.append(dict(rep=rep, workload="file-read", impl="fio-io_uring", backend="-", qd=q,
                                 cpu_us_per_op="2", ops_per_s="500000", **FILE))
        self.write(load.Study("/nonexistent", rows=rows, facts={}, notes=[]))
        text = "\n".join(document.render(self.dir, draw_plots=False, now="T"))
        self.assertIn("fio is left out of this summary", text)
        for r in rows:
            if r["impl"] == "fio-io_uring":
                r["tuned"] = "1"
        self.write(load.Study("/nonexistent", rows=rows, facts={}, notes=[]))
        text = "\n".join(document.render(self.dir, draw_plots=False, now="T"))
        self.assertNotIn("fio is left out", text)
        self.assertIn("| triloop uring / fio-io_uring |", text)

    def test_unknown_impls_and_calibration(self):
        st = study(3.0, 1.05)
        rows = list(st.rows)
        for rep in "123":
            rows.append(dict(rep=rep, workload="file-read", impl="tokio-mt", backend="-", threads="2",
                             qd="8", cpu_us_per_op="9", ops_per_s="100000", **FILE))
            for op, ns in (("null_syscall", "100"), ("eventfd_rtt", "9000")):
                rows.append(dict(rep=rep, workload="calibrate", impl="calibrate", backend="-", op=op,
                                 ns_per_op=ns))
        for r in rows:
            if r["workload"] == "file-read" and r["impl"] == "triloop":
                r["syscalls_per_op"] = "1.0" if r["backend"] == "uring" else "3.0"
        with open(os.path.join(self.dir, "results.csv"), "w", newline="") as f:
            keys = sorted({k for r in rows for k in r})
            w = csv.DictWriter(f, fieldnames=keys, restval="")
            w.writeheader()
            w.writerows(rows)
        L = document.render(self.dir, draw_plots=False, now="T")
        text = "\n".join(L)
        self.assertIn("tokio forwards files to a blocking pool", text)
        self.assertIn("at 100 ns per null syscall", text)
        self.assertIn("2.00 more syscalls per op", text)
        self.assertIn("| eventfd_rtt | cross-thread eventfd wake-up and back (two wake-ups) | 9000 |", text)
        self.assertIn("| null_syscall | null syscall (getppid) | 100 |", text)


if __name__ == "__main__":
    unittest.main()
