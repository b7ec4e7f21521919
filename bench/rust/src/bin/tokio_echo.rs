//! The echo protocol on tokio (mio's epoll readiness underneath): a task
//! per connection reading into its 64 KiB buffer and writing back what came
//! in.  --runtime ct|mt (current-thread, or multi-thread with --workers N,
//! default the cpus available).  --cpu N pins the whole process (every
//! runtime thread) to one cpu, as the C servers pin their loop; -1: not
//! pinned.  The settings go to --stats FILE (workers= blocking_max=
//! pinned=); SIGTERM ends it.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use triloop_bench_refs::*;

const PROG: &str = "tokio_echo";

fn main() {
    let o = parse_echo(PROG, &["runtime", "workers"], "[--runtime ct|mt] [--workers N]");
    let rt_kind = o.extra.get("runtime").map(|s| s.as_str()).unwrap_or("ct").to_string();
    let mut workers = o.extra.get("workers").map(|v| {
        v.parse::<usize>().ok().filter(|&n| n >= 1 && n <= 1024)
            .unwrap_or_else(|| die(2, &format!("{}: --workers needs 1..1024, got '{}'", PROG, v)))
    }).unwrap_or_else(num_cpus);
    // Before any thread exists, so that the runtime's threads inherit it.
    let pinned = pin_process(o.cpu);
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
    let rt = b.enable_io().build().unwrap_or_else(|e| die(1, &format!("{}: runtime: {}", PROG, e)));
    let std_l = listen(PROG, o.port);
    std_l.set_nonblocking(true).unwrap_or_else(|e| die(1, &format!("{}: nonblocking: {}", PROG, e)));
    write_stats(&o.stats, &format!("impl=tokio-{} backend=- workers={} blocking_max=512 pinned={}",
                                   rt_kind, workers, pinned));
    eprintln!("{}: {} runtime, {} worker thread(s)", PROG, rt_kind, workers);
    announce(PROG, &std_l, pinned);
    rt.block_on(async move {
        let l = tokio::net::TcpListener::from_std(std_l)
            .unwrap_or_else(|e| die(1, &format!("{}: listener: {}", PROG, e)));
        loop {
            let (mut s, _) = match l.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{}: accept: {}", PROG, e);
                    continue;
                }
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; ECHO_BUF];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
