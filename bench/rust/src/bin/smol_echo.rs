//! The echo protocol on smol: Async<TcpStream> (async-io's epoll reactor)
//! with a task per connection on a LocalExecutor driven by the main thread
//! (smol::block_on), each reading into its 64 KiB buffer and writing back
//! what came in.  --cpu N pins the whole process (the main thread and
//! async-io's reactor thread) to one cpu; -1: not pinned.  The settings go
//! to --stats FILE; SIGTERM ends it.
use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use triloop_bench_refs::*;

const PROG: &str = "smol_echo";

fn main() {
    let o = parse_echo(PROG, &[], "");
    // Before any thread exists, so that async-io's thread inherits it.
    let pinned = pin_process(o.cpu);
    let std_l = listen(PROG, o.port);
    write_stats(&o.stats, &format!("impl=smol backend=- workers=1 pinned={}", pinned));
    eprintln!("{}: LocalExecutor on the main thread, async-io reactor", PROG);
    announce(PROG, &std_l, pinned);
    let l = Async::new(std_l).unwrap_or_else(|e| die(1, &format!("{}: listener: {}", PROG, e)));
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        loop {
            let (mut s, _) = match l.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{}: accept: {}", PROG, e);
                    continue;
                }
            };
            ex.spawn(async move {
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
            })
            .detach();
        }
    }));
}
