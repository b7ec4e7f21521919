//! smol's file path: each read one blocking::unblock(pread) on the
//! `blocking` crate's pool (what smol's async-fs does underneath), --qd
//! tasks each with one read in flight, on a LocalExecutor driven by the
//! main thread (smol::block_on).  The pool's cap is BLOCKING_MAX_THREADS
//! (the crate's default 500); --blocking-max N sets it.
//! Prints the C programs' line, impl smol, with blocking_max= and
//! threads_max= (the process's threads after the run).
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use triloop_bench_refs::*;

const PROG: &str = "smol_read";

async fn phase(ex: &smol::LocalExecutor<'_>, o: Arc<FOpts>, offs: Arc<Offsets>, secs: f64,
               bufs: Vec<Buf>) -> (u64, Hist, Vec<Buf>) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let fd = fd(&o);
    let total = Rc::new(RefCell::new((0u64, Hist::default())));
    let mut tasks = Vec::new();
    for (i, buf) in bufs.into_iter().enumerate() {
        let (o, offs, total) = (o.clone(), offs.clone(), total.clone());
        tasks.push(ex.spawn(async move {
            let mut rng = 0x9fb21c651e98df25u64 ^ (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15);
            let (mut ops, mut h, mut buf) = (0u64, Hist::default(), buf);
            while Instant::now() < deadline {
                let off = offs.next(&mut rng);
                let t = Instant::now();
                let (b, r) = blocking::unblock(move || {
                    let r = buf.pread(fd, off);
                    (buf, r)
                })
                .await;
                buf = b;
                check_read(PROG, r, o.bs);
                h.add(t.elapsed().as_nanos() as u64);
                ops += 1;
            }
            let mut t = total.borrow_mut();
            t.0 += ops;
            t.1.merge(&h);
            buf
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await);
    }
    let t = total.borrow();
    (t.0, t.1.clone(), out)
}

fn threads_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l[8..].trim().parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let (o, extra) = parse_file(PROG, &["blocking-max"], "[--blocking-max N]");
    if let Some(v) = extra.get("blocking-max") {
        // Read by the blocking crate when its pool starts (first unblock).
        std::env::set_var("BLOCKING_MAX_THREADS", v);
    }
    let blocking_max = std::env::var("BLOCKING_MAX_THREADS").ok()
        .and_then(|v| v.parse::<u64>().ok()).map(|v| v.clamp(1, 10000)).unwrap_or(500);
    eprintln!("{}: LocalExecutor on the main thread, blocking pool up to {} threads", PROG, blocking_max);
    let offs = Arc::new(Offsets::new(&o));
    let o = Arc::new(o);
    let ex = smol::LocalExecutor::new();
    let (ops, h, span) = smol::block_on(ex.run(async {
        let mut bufs: Vec<Buf> = (0..o.qd).map(|_| Buf::new(o.bs)).collect();
        if o.warmup > 0.0 {
            bufs = phase(&ex, o.clone(), offs.clone(), o.warmup, bufs).await.2;
        }
        let mut s = Span::begin();
        let (ops, h, _) = phase(&ex, o.clone(), offs.clone(), o.secs, bufs).await;
        s.end();
        (ops, h, s)
    }));
    let extra = format!("workers=1 blocking_max={} threads_max={}", blocking_max, threads_now());
    print_file(&o, "smol", ops, &span, &h, &extra);
}
