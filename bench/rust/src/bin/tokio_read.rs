//! tokio's file path: random or sequential reads, --qd in flight.
//!   --api pool (default): each read one spawn_blocking(pread) on tokio's
//!       blocking pool, --qd tasks each with one read in flight: what
//!       tokio::fs does underneath, minus its own buffer copy.
//!   --api fs: tokio::fs::File itself (seek + read_exact), which allows one
//!       operation in flight per file: --qd 1 only.
//!   --runtime ct|mt: current-thread or multi-thread runtime (--workers N,
//!       default the cpus available); --blocking-max N: the blocking pool's
//!       cap (tokio's default 512).
//! Prints the C programs' line (bench_print_file), impl tokio-ct|tokio-mt
//! (pool) or tokio-fs-ct|tokio-fs-mt (fs), with the settings: workers=
//! blocking_max= and threads_max= (the process's threads after the run:
//! how far the blocking pool grew).
use std::io::SeekFrom;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use triloop_bench_refs::*;

const PROG: &str = "tokio_read";

async fn pool_phase(o: Arc<FOpts>, offs: Arc<Offsets>, secs: f64, bufs: Vec<Buf>) -> (u64, Hist, Vec<Buf>) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let fd = fd(&o);
    let mut tasks = Vec::new();
    for (i, buf) in bufs.into_iter().enumerate() {
        let (o, offs) = (o.clone(), offs.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = 0x9fb21c651e98df25u64 ^ (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15);
            let (mut ops, mut h, mut buf) = (0u64, Hist::default(), buf);
            while Instant::now() < deadline {
                let off = offs.next(&mut rng);
                let t = Instant::now();
                let (b, r) = tokio::task::spawn_blocking(move || {
                    let r = buf.pread(fd, off);
                    (buf, r)
                })
                .await
                .unwrap_or_else(|e| die(1, &format!("{}: spawn_blocking: {}", PROG, e)));
                buf = b;
                check_read(PROG, r, o.bs);
                h.add(t.elapsed().as_nanos() as u64);
                ops += 1;
            }
            (ops, h, buf)
        }));
    }
    let (mut ops, mut h, mut bufs) = (0, Hist::default(), Vec::new());
    for t in tasks {
        let (n, th, b) = t.await.unwrap_or_else(|e| die(1, &format!("{}: task: {}", PROG, e)));
        ops += n;
        h.merge(&th);
        bufs.push(b);
    }
    (ops, h, bufs)
}

async fn fs_phase(f: &mut tokio::fs::File, o: &FOpts, offs: &Offsets, secs: f64, buf: &mut [u8]) -> (u64, Hist) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut rng = 0x9fb21c651e98df25u64 ^ 0x9E3779B97F4A7C15;
    let (mut ops, mut h) = (0u64, Hist::default());
    let mut pos = u64::MAX;
    while Instant::now() < deadline {
        let off = offs.next(&mut rng);
        let t = Instant::now();
        if off != pos {
            f.seek(SeekFrom::Start(off)).await.unwrap_or_else(|e| die(1, &format!("{}: seek: {}", PROG, e)));
        }
        f.read_exact(buf).await.unwrap_or_else(|e| die(1, &format!("{}: read: {}", PROG, e)));
        pos = off + o.bs as u64;
        h.add(t.elapsed().as_nanos() as u64);
        ops += 1;
    }
    (ops, h)
}

fn threads_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l[8..].trim().parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let (o, extra) = parse_file(PROG, &["runtime", "api", "workers", "blocking-max"],
                                "[--runtime ct|mt] [--api pool|fs] [--workers N] [--blocking-max N]");
    let rt_kind = extra.get("runtime").map(|s| s.as_str()).unwrap_or("ct").to_string();
    let api = extra.get("api").map(|s| s.as_str()).unwrap_or("pool").to_string();
    let blocking_max = opt_num(PROG, &extra, "blocking-max", 512) as usize;
    let mut workers = opt_num(PROG, &extra, "workers", num_cpus() as u64) as usize;
    if blocking_max == 0 || workers == 0 {
        die(2, &format!("{}: --workers and --blocking-max must be >= 1", PROG));
    }
    let mut b = match rt_kind.as_str() {
        "ct" => {
            workers = 1;
            tokio::runtime::Builder::new_current_thread()
        }
        "mt" => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(workers);
            b
        }
        _ => die(2, &format!("{}: --runtime takes ct or mt", PROG)),
    };
    let imp = match api.as_str() {
        "pool" => format!("tokio-{}", rt_kind),
        "fs" if o.qd != 1 => die(2, &format!("{}: --api fs: tokio::fs::File allows one op in flight per file, so --qd 1", PROG)),
        "fs" if o.direct => die(2, &format!("{}: --api fs: tokio::fs::File reads into its own unaligned buffer, so no O_DIRECT", PROG)),
        "fs" => format!("tokio-fs-{}", rt_kind),
        _ => die(2, &format!("{}: --api takes pool or fs", PROG)),
    };
    let rt = b.max_blocking_threads(blocking_max).build()
        .unwrap_or_else(|e| die(1, &format!("{}: runtime: {}", PROG, e)));
    eprintln!("{}: {} runtime, {} worker thread(s), blocking pool up to {} threads, api {}",
              PROG, rt_kind, workers, blocking_max, api);
    let offs = Arc::new(Offsets::new(&o));
    let o = Arc::new(o);
    let (ops, h, span) = rt.block_on(async {
        if api == "pool" {
            let bufs: Vec<Buf> = (0..o.qd).map(|_| Buf::new(o.bs)).collect();
            let bufs = if o.warmup > 0.0 {
                pool_phase(o.clone(), offs.clone(), o.warmup, bufs).await.2
            } else {
                bufs
            };
            let mut s = Span::begin();
            let (ops, h, _) = pool_phase(o.clone(), offs.clone(), o.secs, bufs).await;
            s.end();
            (ops, h, s)
        } else {
            let std = o.file.try_clone().unwrap_or_else(|e| die(1, &format!("{}: dup: {}", PROG, e)));
            let mut f = tokio::fs::File::from_std(std);
            let mut buf = vec![0x5au8; o.bs];
            if o.warmup > 0.0 {
                fs_phase(&mut f, &o, &offs, o.warmup, &mut buf).await;
            }
            let mut s = Span::begin();
            let (ops, h) = fs_phase(&mut f, &o, &offs, o.secs, &mut buf).await;
            s.end();
            (ops, h, s)
        }
    });
    let extra = format!("workers={} blocking_max={} threads_max={}", workers, blocking_max, threads_now());
    print_file(&o, &imp, ops, &span, &h, &extra);
    rt.shutdown_background();
}
