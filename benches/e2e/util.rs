//! Process guards, ports, /proc readings, statistics, small HTTP GET.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// Processes started and directories created, for the signal handler: a SIGINT/SIGTERM
/// ends the harness without unwinding, so the guards' `Drop` would never run.
static LIVE: Mutex<Vec<(u32, bool)>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub fn register(pid: u32, group: bool) {
    if let Ok(mut l) = LIVE.lock() {
        l.push((pid, group));
    }
}

pub fn unregister(pid: u32) {
    if let Ok(mut l) = LIVE.lock() {
        l.retain(|(p, _)| *p != pid);
    }
}

fn kill(sig: &str, pid: u32, group: bool) {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let _ = Command::new("kill")
        .args([sig, "--", &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// On SIGINT or SIGTERM: end every registered process by its id, remove the scratch
/// directories, exit 130.
pub fn install_signal_cleanup() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        eprintln!("e2e: interrupted, stopping the processes it started");
        let live: Vec<(u32, bool)> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
        for &(pid, group) in &live {
            kill("-TERM", pid, group);
        }
        std::thread::sleep(Duration::from_secs(2));
        for &(pid, group) in &live {
            kill("-KILL", pid, group);
        }
        for d in DIRS.lock().map(|d| d.clone()).unwrap_or_default() {
            let _ = std::fs::remove_dir_all(d);
        }
        std::process::exit(130);
    });
    Ok(())
}

/// A child process that is ended when the guard drops: SIGTERM to it (or to its process
/// group when it leads one), at most `grace` to exit, then SIGKILL. Always by its id.
pub struct Proc {
    pub name: String,
    child: Child,
    group: bool,
    grace: Duration,
    /// Lines of standard output, when it was piped through [`Proc::spawn_piped`].
    lines: Option<mpsc::Receiver<String>>,
}

impl Proc {
    /// Starts `cmd` with standard output and error appended to `log`. `group`: the child
    /// leads a new process group (for forking servers: the guard then ends the children too).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, group: bool) -> anyhow::Result<Proc> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if group {
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {name}: {e}"))?;
        register(child.id(), group);
        Ok(Proc {
            name: name.to_string(),
            child,
            group,
            grace: Duration::from_secs(5),
            lines: None,
        })
    }

    /// Starts `cmd` with standard output read line by line (see [`Proc::wait_line`]) and
    /// standard error appended to `log`.
    pub fn spawn_piped(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {name}: {e}"))?;
        register(child.id(), false);
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("{name}: no stdout"))?;
        let (tx, rx) = mpsc::channel();
        // Drains standard output until EOF so the child never blocks on a full pipe; ends
        // when the child does.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        Ok(Proc {
            name: name.to_string(),
            child,
            group: false,
            grace: Duration::from_secs(10),
            lines: Some(rx),
        })
    }

    /// How long [`Proc::stop_with`] waits before SIGKILL.
    pub fn with_grace(mut self, grace: Duration) -> Proc {
        self.grace = grace;
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for a line of standard output containing `needle`.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let rx = self
            .lines
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{}: stdout not piped", self.name))?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(_) => anyhow::bail!("{}: no {needle:?} line within {timeout:?}", self.name),
            }
        }
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, sig: &str) {
        kill(sig, self.child.id(), self.group);
    }

    /// SIGTERM (or `sig`), then waits up to the grace period, then SIGKILL.
    pub fn stop_with(&mut self, sig: &str) {
        if self.alive() {
            self.signal(sig);
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline {
                if !self.alive() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.alive() {
            let _ = self.child.kill();
        }
        if self.group {
            // Children of a forking server may outlive their parent.
            self.signal("-KILL");
        }
        let _ = self.child.wait();
        unregister(self.child.id());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop_with("-TERM");
    }
}

/// A directory removed (recursively) when the guard drops, unless `keep`.
pub struct TempDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl TempDir {
    pub fn new(path: PathBuf) -> anyhow::Result<TempDir> {
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        if let Ok(mut d) = DIRS.lock() {
            d.push(path.clone());
        }
        Ok(TempDir { path, keep: false })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bound then released).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `addr` (bounded by `timeout`).
pub fn wait_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("nothing listening on {addr} after {timeout:?}")
}

/// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Open file descriptors of a process.
pub fn proc_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// CPU seconds used by a process and its reaped children (utime+stime+cutime+cstime).
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields restart after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14 -> index 11.
    let ticks: u64 = f[11..15].iter().filter_map(|v| v.parse::<u64>().ok()).sum();
    Some(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The soft limit on open files of this process.
pub fn nofile_limit() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    s.lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile of a sorted slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `GET path` on `addr`, the body as text (small responses only: /metrics).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = Vec::new();
    s.take(16 * 1024 * 1024).read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    Ok(match text.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => text,
    })
}

/// Sum of every sample of `metric` (all label sets) in a Prometheus text exposition.
pub fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

/// Runs `cmd` to completion with a deadline; kills it (by pid) when the deadline passes.
/// Its output goes to `log` (the caller's stdout setting is replaced).
/// Returns the wall time and whether it exited with status 0.
pub fn run_timed(mut cmd: Command, timeout: Duration, log: &Path) -> anyhow::Result<(f64, bool)> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    register(child.id(), false);
    let r = loop {
        if let Some(status) = child.try_wait()? {
            break Ok((started.elapsed().as_secs_f64(), status.success()));
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break Err(anyhow::anyhow!("timed out after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    unregister(child.id());
    r
}

/// Is `prog` on the PATH?
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}
