//! Does splice(2) pay for the proxy's forwarding on this machine? A relay over loopback
//! TCP moves the same byte streams four ways, interleaved in one run, and the figures are
//! ratios of that run (docs/performance.md, "splice and tee"):
//!
//! - `copy`: the proxy's way, `read` into a 64 KiB buffer and `write` it out;
//! - `copy+rec`: the same, each chunk also handed by reference to a recorder thread that
//!   reads every byte (a checksum: what the pcapng writer and the engine do with it);
//! - `splice`: socket -> pipe -> socket with `splice(2)`, no user-space copy;
//! - `splice+tee`: the same, `tee(2)` duplicating each chunk into a second pipe that the
//!   recorder thread `read`s (it needs the bytes in memory for the same checksum, the
//!   PDU/PDV headers and the command sets).
//!
//! Workloads like scripts/bench.sh's: `large` (one stream of 16 KiB writes, DCMTK's PDU
//! size, acknowledged once at the end), `small` (64 KiB objects in 16 KiB writes, each
//! answered with 128 bytes before the next, as a C-STORE-RSP is), `echo` (100-byte
//! request, 100-byte answer). Wall time of the client, and CPU (user + system) of the
//! relay's threads, recorder included.
//!
//! `cargo bench -p dicomtap-proxy --bench splice [-- --reps N --large-mib N --small N
//! --echo N]`. Without `--bench` (a test run) it does nothing.

#![allow(unsafe_code)] // splice, tee, pipe2, fcntl, getrusage: libc calls on owned descriptors
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CHUNK: usize = 64 * 1024;
const PDU: usize = 16 * 1024;
const OBJECT: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Copy,
    CopyRec,
    Splice,
    SpliceTee,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::Copy, Mode::CopyRec, Mode::Splice, Mode::SpliceTee];
    fn name(self) -> &'static str {
        match self {
            Mode::Copy => "copy",
            Mode::CopyRec => "copy+rec",
            Mode::Splice => "splice",
            Mode::SpliceTee => "splice+tee",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Large(usize),
    Small(usize),
    Echo(usize),
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Large(_) => "large",
            Workload::Small(_) => "small",
            Workload::Echo(_) => "echo",
        }
    }
    fn bytes(self) -> u64 {
        match self {
            Workload::Large(n) => n as u64 + 1,
            Workload::Small(n) => (n * (OBJECT + 128)) as u64,
            Workload::Echo(n) => (n * 200) as u64,
        }
    }
}

/// One run's figures.
struct Sample {
    wall: Duration,
    relay_cpu: Duration,
    /// Round trips, for the echo workload.
    rtts: Vec<Duration>,
    recorded: u64,
}

fn cpu_of_thread() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn pipe(size: i32) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded: both descriptors are new and ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETPIPE_SZ on a pipe we own; a refusal leaves the default size.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
    (r, w)
}

fn check(n: isize, what: &str) -> usize {
    if n < 0 {
        let e = std::io::Error::last_os_error();
        panic!("{what}: {e}");
    }
    n as usize
}

fn splice(from: RawFd, to: RawFd, len: usize) -> usize {
    loop {
        // SAFETY: plain descriptors, no offsets.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE,
            )
        };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return check(n, "splice");
    }
}

/// Moves exactly `len` bytes out of the pipe `from` into `to`.
fn splice_all(from: RawFd, to: RawFd, mut len: usize) {
    while len > 0 {
        let n = splice(from, to, len);
        assert!(n > 0, "splice out of the pipe returned 0");
        len -= n;
    }
}

/// What the recorder does with every byte: reads it (a one's-complement-style sum).
fn digest(acc: &mut u64, bytes: &[u8]) {
    let mut words = bytes.chunks_exact(4);
    for w in &mut words {
        *acc = acc.wrapping_add(u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])));
    }
    for b in words.remainder() {
        *acc = acc.wrapping_add(u64::from(*b));
    }
}

/// One direction of the relay, until `src` ends; returns the thread's CPU time.
fn relay_direction(
    mode: Mode,
    mut src: TcpStream,
    mut dst: TcpStream,
    rec: Option<Recorder>,
) -> Duration {
    match mode {
        Mode::Copy => {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = src.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                dst.write_all(&buf[..n]).expect("write");
            }
        }
        Mode::CopyRec => {
            let Some(Recorder::Chunks { to, back }) = rec else {
                unreachable!()
            };
            // A few buffers going round, as the proxy's chunk pool does: the recorder
            // holds a chunk by reference while forwarding goes on.
            let mut free: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; CHUNK]).collect();
            loop {
                let mut buf = free
                    .pop()
                    .unwrap_or_else(|| back.recv().expect("a buffer back"));
                buf.resize(CHUNK, 0);
                let n = src.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                dst.write_all(&buf[..n]).expect("write");
                buf.truncate(n);
                to.send(buf).expect("recorder");
                while let Ok(b) = back.try_recv() {
                    free.push(b);
                }
            }
            drop(to);
        }
        Mode::Splice | Mode::SpliceTee => {
            let (pr, pw) = pipe(CHUNK as i32);
            let tee_to = match rec {
                Some(Recorder::Pipe(w)) => Some(w),
                _ => None,
            };
            loop {
                let n = splice(src.as_raw_fd(), pw.as_raw_fd(), CHUNK);
                if n == 0 {
                    break;
                }
                match &tee_to {
                    None => splice_all(pr.as_raw_fd(), dst.as_raw_fd(), n),
                    Some(w) => {
                        // tee copies from the head of the pipe without consuming it: what
                        // was duplicated goes out before the next tee.
                        let mut left = n;
                        while left > 0 {
                            // SAFETY: two pipes we own.
                            let t = unsafe { libc::tee(pr.as_raw_fd(), w.as_raw_fd(), left, 0) };
                            let t = check(t, "tee");
                            assert!(t > 0, "tee returned 0");
                            splice_all(pr.as_raw_fd(), dst.as_raw_fd(), t);
                            left -= t;
                        }
                    }
                }
            }
        }
    }
    let _ = dst.shutdown(Shutdown::Write);
    cpu_of_thread()
}

enum Recorder {
    Chunks {
        to: mpsc::Sender<Vec<u8>>,
        back: mpsc::Receiver<Vec<u8>>,
    },
    Pipe(OwnedFd),
}

/// Starts a recorder for one direction: its handle for the relay and its thread, which
/// returns (bytes seen, CPU time).
fn recorder(
    mode: Mode,
) -> (
    Option<Recorder>,
    Option<thread::JoinHandle<(u64, Duration)>>,
) {
    match mode {
        Mode::Copy | Mode::Splice => (None, None),
        Mode::CopyRec => {
            let (to, from) = mpsc::channel::<Vec<u8>>();
            let (give, back) = mpsc::channel::<Vec<u8>>();
            let t = thread::spawn(move || {
                let (mut acc, mut seen) = (0u64, 0u64);
                for chunk in from {
                    digest(&mut acc, &chunk);
                    seen += chunk.len() as u64;
                    let _ = give.send(chunk);
                }
                std::hint::black_box(acc);
                (seen, cpu_of_thread())
            });
            (Some(Recorder::Chunks { to, back }), Some(t))
        }
        Mode::SpliceTee => {
            let (r, w) = pipe(1 << 20);
            let t = thread::spawn(move || {
                let mut f = std::fs::File::from(r);
                let mut buf = vec![0u8; CHUNK];
                let (mut acc, mut seen) = (0u64, 0u64);
                loop {
                    let n = f.read(&mut buf).expect("read the tee pipe");
                    if n == 0 {
                        break;
                    }
                    digest(&mut acc, &buf[..n]);
                    seen += n as u64;
                }
                std::hint::black_box(acc);
                (seen, cpu_of_thread())
            });
            (Some(Recorder::Pipe(w)), Some(t))
        }
    }
}

/// The upstream: takes the workload's requests and answers them.
fn serve(w: Workload, mut s: TcpStream) {
    s.set_nodelay(true).expect("nodelay");
    let mut buf = vec![0u8; CHUNK];
    match w {
        Workload::Large(total) => {
            let mut got = 0;
            while got < total {
                let n = s.read(&mut buf).expect("upstream read");
                assert!(n > 0, "stream ended early");
                got += n;
            }
            s.write_all(b"k").expect("upstream write");
        }
        Workload::Small(n) => {
            for _ in 0..n {
                s.read_exact(&mut buf[..OBJECT]).expect("object");
                s.write_all(&[0x55; 128]).expect("answer");
            }
        }
        Workload::Echo(n) => {
            for _ in 0..n {
                s.read_exact(&mut buf[..100]).expect("echo");
                s.write_all(&[0x66; 100]).expect("echo answer");
            }
        }
    }
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// The client's side: returns the wall time and, for echo, every round trip.
fn client(w: Workload, mut c: TcpStream) -> (Duration, Vec<Duration>) {
    c.set_nodelay(true).expect("nodelay");
    let pdu = vec![0xA5u8; PDU];
    let mut buf = vec![0u8; CHUNK];
    let mut rtts = Vec::new();
    let start = Instant::now();
    match w {
        Workload::Large(total) => {
            let mut sent = 0;
            while sent < total {
                let n = PDU.min(total - sent);
                c.write_all(&pdu[..n]).expect("send");
                sent += n;
            }
            c.read_exact(&mut buf[..1]).expect("done");
        }
        Workload::Small(n) => {
            for _ in 0..n {
                for _ in 0..OBJECT / PDU {
                    c.write_all(&pdu).expect("send");
                }
                c.read_exact(&mut buf[..128]).expect("answer");
            }
        }
        Workload::Echo(n) => {
            for _ in 0..n {
                let t = Instant::now();
                c.write_all(&pdu[..100]).expect("echo");
                c.read_exact(&mut buf[..100]).expect("echo answer");
                rtts.push(t.elapsed());
            }
        }
    }
    let wall = start.elapsed();
    let _ = c.shutdown(Shutdown::Write);
    let _ = c.read_to_end(&mut Vec::new());
    (wall, rtts)
}

/// One run: upstream, relay and client on loopback.
fn run(mode: Mode, w: Workload) -> Sample {
    let up = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let up_addr = up.local_addr().expect("addr");
    let relay = TcpListener::bind("127.0.0.1:0").expect("bind relay");
    let relay_addr = relay.local_addr().expect("addr");
    let server = thread::spawn(move || serve(w, up.accept().expect("accept").0));
    let relay_thread = thread::spawn(move || {
        let (c, _) = relay.accept().expect("accept client");
        let u = TcpStream::connect(up_addr).expect("connect upstream");
        c.set_nodelay(true).expect("nodelay");
        u.set_nodelay(true).expect("nodelay");
        let (rec_a, rec_ta) = recorder(mode);
        let (rec_b, rec_tb) = recorder(mode);
        let (c2, u2) = (c.try_clone().expect("clone"), u.try_clone().expect("clone"));
        let up_dir = thread::spawn(move || relay_direction(mode, c, u, rec_a));
        let down_cpu = relay_direction(mode, u2, c2, rec_b);
        let up_cpu = up_dir.join().expect("relay thread");
        let mut cpu = up_cpu + down_cpu;
        let mut recorded = 0;
        for t in [rec_ta, rec_tb].into_iter().flatten() {
            let (seen, c) = t.join().expect("recorder thread");
            recorded += seen;
            cpu += c;
        }
        (cpu, recorded)
    });
    let c = TcpStream::connect(relay_addr).expect("connect relay");
    let (wall, rtts) = client(w, c);
    let (relay_cpu, recorded) = relay_thread.join().expect("relay");
    server.join().expect("upstream");
    Sample {
        wall,
        relay_cpu,
        rtts,
        recorded,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "splice: nothing to do without --bench (cargo bench -p dicomtap-proxy --bench splice)"
        );
        return;
    }
    let reps = arg(&args, "--reps", 7);
    let workloads = [
        Workload::Large(arg(&args, "--large-mib", 512) << 20),
        Workload::Small(arg(&args, "--small", 1000)),
        Workload::Echo(arg(&args, "--echo", 2000)),
    ];
    let uname = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "splice: {} cores, Linux {uname}, load {}, {reps} repetitions, interleaved",
        thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for w in workloads {
        // Warm-up, not counted.
        for m in Mode::ALL {
            run(m, w);
        }
        let mut samples: Vec<Vec<Sample>> = Mode::ALL.iter().map(|_| Vec::new()).collect();
        for r in 0..reps {
            for k in 0..Mode::ALL.len() {
                let i = (r + k) % Mode::ALL.len();
                let s = run(Mode::ALL[i], w);
                if matches!(Mode::ALL[i], Mode::CopyRec | Mode::SpliceTee) {
                    assert_eq!(s.recorded, w.bytes(), "the recorder saw every byte");
                }
                samples[i].push(s);
            }
        }
        let gb = w.bytes() as f64 / 1e9;
        let wall: Vec<f64> = samples
            .iter()
            .map(|s| median(s.iter().map(|x| x.wall.as_secs_f64()).collect()))
            .collect();
        let cpu: Vec<f64> = samples
            .iter()
            .map(|s| median(s.iter().map(|x| x.relay_cpu.as_secs_f64() / gb).collect()))
            .collect();
        println!(
            "\n{} ({:.1} MB each way and back per run)",
            w.name(),
            w.bytes() as f64 / 1e6
        );
        println!(
            "  {:11} {:>10} {:>9} {:>13} {:>9} {:>9} {:>9}",
            "mode", "wall ms", "vs copy", "relay CPU s/GB", "vs copy", "p50 us", "p99 us"
        );
        for (i, m) in Mode::ALL.iter().enumerate() {
            let mut rtts: Vec<Duration> = samples[i]
                .iter()
                .flat_map(|s| s.rtts.iter().copied())
                .collect();
            let (p50, p99) = (percentile(&mut rtts, 0.5), percentile(&mut rtts, 0.99));
            println!(
                "  {:11} {:>10.1} {:>9.3} {:>13.3} {:>9.3} {:>9.1} {:>9.1}",
                m.name(),
                wall[i] * 1e3,
                wall[0] / wall[i],
                cpu[i],
                cpu[i] / cpu[0],
                p50,
                p99
            );
        }
        println!(
            "  splice+tee against copy+rec: throughput {:.3}x, relay CPU {:.3}x",
            wall[1] / wall[3],
            cpu[3] / cpu[1]
        );
    }
}
