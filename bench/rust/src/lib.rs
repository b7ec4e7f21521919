//! What the reference programs share with the C bench programs
//! (bench/common.c, bench/sock_common.h): the options, the process CPU clock,
//! the latency histogram and the one result line, so that run-study and
//! report.py read their rows like any other.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub fn die(status: i32, msg: &str) -> ! {
    eprintln!("{}", msg);
    std::process::exit(status);
}

/// user+sys CPU of the whole process (every thread, the blocking pools'
/// included), seconds: getrusage(RUSAGE_SELF), as bench_cpu() does.
pub fn process_cpu() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Log2 buckets split into 16 linear sub-buckets, as bench_hist.
pub const HIST_SUB: usize = 16;
pub const HIST_BUCKETS: usize = 64 * HIST_SUB;

#[derive(Clone)]
pub struct Hist {
    pub n: u64,
    pub count: Vec<u64>,
}

impl Default for Hist {
    fn default() -> Self {
        Hist { n: 0, count: vec![0; HIST_BUCKETS] }
    }
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < HIST_SUB as u64 {
            return v as usize;
        }
        let top = 63 - v.leading_zeros() as usize;
        let sub = ((v >> (top - 4)) as usize) & (HIST_SUB - 1);
        (top - 3) * HIST_SUB + sub
    }
    fn value(idx: usize) -> f64 {
        if idx < HIST_SUB {
            return idx as f64;
        }
        let (top, sub) = (idx / HIST_SUB + 3, idx % HIST_SUB);
        let lo = (1u64 << top) as f64 + sub as f64 * (1u64 << (top - 4)) as f64;
        lo + (1u64 << (top - 4)) as f64 / 2.0
    }
    pub fn add(&mut self, ns: u64) {
        self.count[Self::index(ns)] += 1;
        self.n += 1;
    }
    pub fn merge(&mut self, o: &Hist) {
        self.n += o.n;
        for (a, b) in self.count.iter_mut().zip(o.count.iter()) {
            *a += *b;
        }
    }
    /// p in [0,100]; microseconds.
    pub fn pct(&self, p: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let mut want = (self.n as f64 * p / 100.0) as u64;
        if want >= self.n {
            want = self.n - 1;
        }
        let mut seen = 0;
        for (i, c) in self.count.iter().enumerate() {
            seen += c;
            if seen > want {
                return Self::value(i) / 1000.0;
            }
        }
        0.0
    }
}

/// Measurement window: wall time and process CPU.
pub struct Span {
    t0: Instant,
    c0: f64,
    pub secs: f64,
    pub cpu: f64,
}

impl Span {
    pub fn begin() -> Span {
        let c0 = process_cpu();
        Span { t0: Instant::now(), c0, secs: 0.0, cpu: 0.0 }
    }
    pub fn end(&mut self) {
        self.secs = self.t0.elapsed().as_secs_f64().max(1e-9);
        self.cpu = process_cpu() - self.c0;
    }
}

fn num(prog: &str, opt: &str, v: &str) -> u64 {
    v.parse::<u64>()
        .unwrap_or_else(|_| die(2, &format!("{}: {} wants a non-negative integer, got '{}'", prog, opt, v)))
}

fn secs(prog: &str, opt: &str, v: &str) -> f64 {
    match v.parse::<f64>() {
        Ok(x) if x >= 0.0 && x <= 1e6 => x,
        _ => die(2, &format!("{}: {} wants seconds >= 0, got '{}'", prog, opt, v)),
    }
}

/// The file programs' options, as bench_fopts (reads only).
pub struct FOpts {
    pub path: String,
    pub bs: usize,
    pub qd: usize,
    pub rand: bool,
    pub direct: bool,
    pub secs: f64,
    pub warmup: f64,
    pub size: u64,
    pub file: File,
}

/// Parses --file --bs --qd --pattern --direct --secs --warmup (and the
/// program's own options, named in `own`, returned by name), checks them
/// as bench_fopts_parse does and opens the file.
pub fn parse_file(prog: &str, own: &[&str], usage_own: &str) -> (FOpts, HashMap<String, String>) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut path, mut bs, mut qd, mut rand, mut direct, mut s, mut w) =
        (None, 4096usize, 1usize, true, false, 1.0, 0.2);
    let mut extra = HashMap::new();
    let usage = || {
        eprintln!(
            "usage: {} --file PATH [--bs BYTES] [--qd N] [--pattern rand|seq] [--direct 0|1] \
             [--secs S] [--warmup S] {}",
            prog, usage_own
        )
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--help" || a == "-h" {
            usage();
            std::process::exit(0);
        }
        if !a.starts_with("--") || i + 1 >= args.len() {
            usage();
            die(2, &format!("{}: bad or incomplete option '{}'", prog, a));
        }
        let v = args[i + 1].as_str();
        match a {
            "--file" => path = Some(v.to_string()),
            "--bs" => bs = num(prog, a, v) as usize,
            "--qd" => qd = num(prog, a, v) as usize,
            "--direct" => direct = match v {
                "0" => false,
                "1" => true,
                _ => die(2, &format!("{}: --direct takes 0 or 1", prog)),
            },
            "--secs" => s = secs(prog, a, v),
            "--warmup" => w = secs(prog, a, v),
            "--pattern" => rand = match v {
                "rand" => true,
                "seq" => false,
                _ => die(2, &format!("{}: unknown pattern '{}' (rand or seq)", prog, v)),
            },
            _ if own.contains(&&a[2..]) => {
                extra.insert(a[2..].to_string(), v.to_string());
            }
            _ => {
                usage();
                die(2, &format!("{}: unknown option '{}'", prog, a));
            }
        }
        i += 2;
    }
    let path = path.unwrap_or_else(|| die(2, &format!("{}: --file PATH is required", prog)));
    if qd == 0 || qd > 4096 {
        die(2, &format!("{}: --qd must be 1..4096, got {}", prog, qd));
    }
    if bs == 0 || bs > (64 << 20) || bs % 512 != 0 {
        die(2, &format!("{}: --bs must be a multiple of 512 up to 64 MiB, got {}", prog, bs));
    }
    if direct && bs % 4096 != 0 {
        die(2, &format!("{}: --direct 1 wants --bs a multiple of 4096", prog));
    }
    if s <= 0.0 {
        die(2, &format!("{}: --secs must be > 0", prog));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(if direct { libc::O_DIRECT } else { 0 })
        .open(&path)
        .unwrap_or_else(|e| {
            die(2, &format!("{}: cannot open {}{} for reading: {}", prog, path,
                            if direct { " with O_DIRECT" } else { "" }, e))
        });
    let md = file.metadata().unwrap_or_else(|e| die(1, &format!("{}: fstat {}: {}", prog, path, e)));
    if !md.is_file() {
        die(2, &format!("{}: {} is not a regular file", prog, path));
    }
    let size = md.len() / bs as u64 * bs as u64;
    if size < bs as u64 * 2 {
        die(2, &format!("{}: {} is too small ({} bytes) for --bs {}; create it first (residency --create)",
                        prog, path, md.len(), bs));
    }
    (FOpts { path, bs, qd, rand, direct, secs: s, warmup: w, size, file }, extra)
}

/// A program option as a number, or its default.
pub fn opt_num(prog: &str, extra: &HashMap<String, String>, name: &str, def: u64) -> u64 {
    extra.get(name).map(|v| num(prog, name, v)).unwrap_or(def)
}

/// Where each slot reads next: random bs-aligned offsets (xorshift64*,
/// one state per slot), or one sequential cursor shared by all slots.
pub struct Offsets {
    pub rand: bool,
    pub bs: u64,
    pub size: u64,
    cursor: AtomicU64,
}

impl Offsets {
    pub fn new(o: &FOpts) -> Offsets {
        Offsets { rand: o.rand, bs: o.bs as u64, size: o.size, cursor: AtomicU64::new(0) }
    }
    pub fn next(&self, rng: &mut u64) -> u64 {
        if self.rand {
            let mut x = *rng;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            *rng = x;
            return x.wrapping_mul(0x2545F4914F6CDD1D) % (self.size / self.bs) * self.bs;
        }
        let blocks = self.size / self.bs;
        self.cursor.fetch_add(1, Ordering::Relaxed) % blocks * self.bs
    }
}

/// A page-aligned buffer (O_DIRECT wants it), movable to a pool thread.
pub struct Buf {
    ptr: *mut u8,
    len: usize,
}
unsafe impl Send for Buf {}

impl Buf {
    pub fn new(len: usize) -> Buf {
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            die(1, &format!("out of memory ({} bytes)", len));
        }
        unsafe { std::ptr::write_bytes(ptr, 0x5a, len) };
        Buf { ptr, len }
    }
    /// One blocking pread of the whole buffer at off; bytes read or -errno.
    pub fn pread(&mut self, fd: i32, off: u64) -> i64 {
        let r = unsafe { libc::pread(fd, self.ptr as *mut libc::c_void, self.len, off as libc::off_t) };
        if r < 0 {
            -(std::io::Error::last_os_error().raw_os_error().unwrap_or(5) as i64)
        } else {
            r as i64
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, 4096).unwrap();
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}

pub fn fd(o: &FOpts) -> i32 {
    o.file.as_raw_fd()
}

/// The result line, as bench_print_file: the same keys in the same order,
/// then extra ("k=v k=v": the runtime's settings).
pub fn print_file(o: &FOpts, imp: &str, ops: u64, s: &Span, h: &Hist, extra: &str) {
    let mut line = format!(
        "workload=file-read impl={} backend=- ops={} secs={:.4} ops_per_s={:.1} cpu_us_per_op={:.3} \
         qd={} bs={} pattern={} direct={} fsync=0 mbps={:.1}",
        imp, ops, s.secs, ops as f64 / s.secs,
        if ops > 0 { s.cpu * 1e6 / ops as f64 } else { 0.0 },
        o.qd, o.bs, if o.rand { "rand" } else { "seq" }, o.direct as i32,
        ops as f64 * o.bs as f64 / s.secs / 1e6
    );
    if h.n > 0 {
        line += &format!(" p50_us={:.1} p99_us={:.1}", h.pct(50.0), h.pct(99.0));
    }
    if !extra.is_empty() {
        line += " ";
        line += extra;
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = writeln!(out, "{}", line);
    let _ = out.flush();
}

pub fn check_read(prog: &str, r: i64, bs: usize) {
    if r != bs as i64 {
        die(1, &format!("{}: read returned {} ({})", prog, r,
                        if r < 0 { std::io::Error::from_raw_os_error(-r as i32).to_string() }
                        else { "short".to_string() }));
    }
}

pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Pins the whole process (called before any other thread starts, so every
/// thread the runtime creates inherits it) to one cpu, modulo the cpus
/// allowed, as sb_pin does for a thread; returns the cpu or -1 (not pinned:
/// cpu < 0, or fewer than 2 cpus).
pub fn pin_process(cpu: i64) -> i64 {
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return -1;
        }
        let n = libc::CPU_COUNT(&allowed) as i64;
        if n < 2 || cpu < 0 {
            return -1;
        }
        let want = cpu % n;
        let mut seen = 0;
        for c in 0..(libc::CPU_SETSIZE as usize) {
            if !libc::CPU_ISSET(c, &allowed) {
                continue;
            }
            if seen == want {
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(c, &mut one);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
                    return -1;
                }
                return c as i64;
            }
            seen += 1;
        }
        -1
    }
}

/// The echo servers' options: --port P [--cpu N|-1] [--msg BYTES]
/// [--stats FILE] and the program's own (`own`).
pub struct EOpts {
    pub port: u16,
    pub cpu: i64,
    pub msg: usize,
    pub stats: Option<String>,
    pub extra: HashMap<String, String>,
}

pub fn parse_echo(prog: &str, own: &[&str], usage_own: &str) -> EOpts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = EOpts { port: 0, cpu: -1, msg: 64, stats: None, extra: HashMap::new() };
    let mut port = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--help" || a == "-h" {
            eprintln!("usage: {} --port P [--cpu N|-1] [--msg BYTES] [--stats FILE] {}", prog, usage_own);
            std::process::exit(0);
        }
        let v = args.get(i + 1).map(|s| s.as_str()).unwrap_or_else(|| {
            die(2, &format!("{}: {} needs a value", prog, a))
        });
        let int = |lo: i64, hi: i64| match v.parse::<i64>() {
            Ok(x) if x >= lo && x <= hi => x,
            _ => die(2, &format!("{}: {} needs an integer in {}..{}, got '{}'", prog, a, lo, hi, v)),
        };
        match a {
            "--port" => port = Some(int(0, 65535) as u16),
            "--cpu" => o.cpu = int(-1, 4096),
            "--msg" => o.msg = int(1, 1 << 20) as usize,
            "--stats" => o.stats = Some(v.to_string()),
            _ if a.starts_with("--") && own.contains(&&a[2..]) => {
                o.extra.insert(a[2..].to_string(), v.to_string());
            }
            _ => die(2, &format!("{}: unknown option '{}'", prog, a)),
        }
        i += 2;
    }
    o.port = port.unwrap_or_else(|| die(2, &format!("{}: --port is required", prog)));
    o
}

/// The servers' report (key=value), to --stats FILE or stderr.  Written
/// at start-up: what it holds (the runtime's settings) is known then, and
/// the driver stops the server with SIGTERM.
pub fn write_stats(path: &Option<String>, line: &str) {
    match path {
        Some(p) => {
            if let Err(e) = std::fs::write(p, format!("{}\n", line)) {
                eprintln!("stats file {}: {}", p, e);
            }
        }
        None => eprintln!("{}", line),
    }
}

/// A listening socket on 127.0.0.1:port (0: any) with the C servers'
/// backlog (sb_listen: 4096, SO_REUSEADDR), blocking; the caller hands
/// it to its runtime.
pub fn listen(prog: &str, port: u16) -> std::net::TcpListener {
    use std::os::unix::io::FromRawFd;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            die(1, &format!("{}: socket: {}", prog, std::io::Error::last_os_error()));
        }
        let one: libc::c_int = 1;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one as *const _ as *const libc::c_void,
                         std::mem::size_of::<libc::c_int>() as libc::socklen_t);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = port.to_be();
        sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr,
                      std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t) != 0
            || libc::listen(fd, 4096) != 0
        {
            die(1, &format!("{}: bind/listen 127.0.0.1:{}: {}", prog, port, std::io::Error::last_os_error()));
        }
        std::net::TcpListener::from_raw_fd(fd)
    }
}

/// Says where the server listens, in the line the driver waits for.
pub fn announce(prog: &str, l: &std::net::TcpListener, pinned: i64) {
    if pinned >= 0 {
        eprintln!("{}: pinned to cpu {}", prog, pinned);
    } else {
        eprintln!("{}: not pinned", prog);
    }
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    eprintln!("{}: listening on 127.0.0.1:{}", prog, port);
}

/// Per-connection buffer, as the C servers' default --bufsize.
pub const ECHO_BUF: usize = 65536;
