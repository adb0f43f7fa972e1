//! Helpers shared by the root end-to-end tests that drive real third-party peers (DCMTK,
//! pynetdicom, Orthanc) and capture their traffic with dumpcap/tshark on loopback.
//!
//! Everything here is bounded and cleans up after itself: every child process is owned by
//! a [`Proc`] guard that ends it by PID on drop, every wait has a deadline, every port is
//! on 127.0.0.1, every file lives in a temporary directory.
//!
//! A test that needs a tool calls [`require`]: a missing peer fails the test with the
//! command that installs it, unless `DICOMTAP_ALLOW_MISSING_PEERS=1` is set, in which
//! case the test is skipped with a message (for machines that cannot install peers).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

pub mod conformance;
pub mod peers;
pub mod pki;

/// The loopback address every test binds and connects to.
pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How the test suite is told where to find things.
pub const ENV_VENV: &str = "DICOMTAP_VENV";
pub const ENV_SHARED: &str = "DICOMTAP_SHARED";
pub const ENV_ALLOW_MISSING: &str = "DICOMTAP_ALLOW_MISSING_PEERS";

/// The workspace root (where the root `Cargo.toml` is).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` next to the workspace, or `$DICOMTAP_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os(ENV_SHARED) {
        Some(p) => PathBuf::from(p),
        None => workspace_dir().join("../shared"),
    }
}

/// The public third-party captures.
pub fn public_captures_dir() -> PathBuf {
    shared_dir().join("captures/public")
}

/// A fresh temporary directory; it and everything in it are removed on drop. The
/// directory is made world-traversable so that peers run as another user (Orthanc) can
/// reach files the test puts in it.
pub fn temp_dir(prefix: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("dicomtap-{prefix}-"))
        .tempdir()
        .expect("creating a temporary directory");
    set_mode(dir.path(), 0o755);
    dir
}

/// chmod.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Whether `tool` is an executable on `PATH` (or an existing path).
pub fn have(tool: &str) -> bool {
    find_executable(tool).is_some()
}

/// The full path of `tool` on `PATH`.
pub fn find_executable(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    // Debian puts Orthanc in /usr/sbin, which a non-login PATH may lack.
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(tool))
        .find(|p| is_exe(p))
}

/// Checks that every tool is present. Returns `false` (the caller returns early, skipping
/// the test) only when `DICOMTAP_ALLOW_MISSING_PEERS=1`; otherwise a missing tool fails
/// the test with the command that installs it.
#[must_use]
pub fn require(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: missing test peer(s) {missing:?}; install them with scripts/install-test-peers.sh"
    );
    if std::env::var(ENV_ALLOW_MISSING).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {msg}");
        false
    } else {
        panic!("{msg} (or set {ENV_ALLOW_MISSING}=1 to skip)");
    }
}

// ---------------------------------------------------------------------------------------
// Ports

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago and has not been handed out before
/// in this test process (so parallel tests never get the same one).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind(SocketAddr::from((LOCALHOST, 0)))
            .expect("binding 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("local address of a bound listener")
            .port();
        drop(listener);
        let mut ports = handed_out().lock().unwrap_or_else(|p| p.into_inner());
        if ports.insert(port) {
            return port;
        }
    }
    panic!("no fresh free port found after 100 attempts");
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, or `timeout`
/// passes; also gives up early if `proc` exits. Returns whether the port is open.
pub fn wait_for_port(port: u16, timeout: Duration, mut proc: Option<&mut Proc>) -> bool {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((LOCALHOST, port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if let Some(p) = proc.as_deref_mut()
            && p.try_wait().is_some()
        {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// Processes

/// A child process owned by the test. Its standard output and error go to files in a
/// log directory (so a chatty peer can never block on a full pipe). On drop it is asked
/// to stop (SIGTERM, so that wrappers can pass it on), then killed (SIGKILL) if it has
/// not exited within a few seconds, always by its own PID.
pub struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `cmd` with its output in `log_dir/name.stdout` and `log_dir/name.stderr`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Proc {
        let stdout = log_dir.join(format!("{name}.stdout"));
        let stderr = log_dir.join(format!("{name}.stderr"));
        let out =
            File::create(&stdout).unwrap_or_else(|e| panic!("creating {}: {e}", stdout.display()));
        let err =
            File::create(&stderr).unwrap_or_else(|e| panic!("creating {}: {e}", stderr.display()));
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_wait().is_some());
        self.status
    }

    /// Sends `signal` (a name such as "INT" or "TERM") to this process's PID.
    pub fn signal(&mut self, signal: &str) {
        if self.try_wait().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Asks the process to stop with `signal`, waits up to `grace`, then kills it.
    /// Returns its exit status.
    pub fn stop(&mut self, signal: &str, grace: Duration) -> Option<ExitStatus> {
        self.signal(signal);
        if self.wait_timeout(grace).is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.status
    }

    /// What it wrote to standard output so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout)
    }

    /// What it wrote to standard error so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// Both outputs, for assertion messages.
    pub fn output(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            self.stdout(),
            self.name,
            self.stderr()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.stop("TERM", Duration::from_secs(5));
        }
    }
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The result of a [`run`]: exit status and outputs.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// Both outputs, for assertion messages.
    pub fn text(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion, killing it if it takes longer than `timeout` (then panics).
/// Outputs go through files in `log_dir`, named after `name`.
pub fn run(name: &str, cmd: Command, log_dir: &Path, timeout: Duration) -> RunOutput {
    let mut proc = Proc::spawn(name, cmd, log_dir);
    let Some(status) = proc.wait_timeout(timeout) else {
        proc.stop("KILL", Duration::from_secs(2));
        panic!(
            "{name} did not finish within {timeout:?}\n{}",
            proc.output()
        );
    };
    RunOutput {
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

/// [`run`], and panics unless it exits successfully.
pub fn run_ok(name: &str, cmd: Command, log_dir: &Path, timeout: Duration) -> RunOutput {
    let out = run(name, cmd, log_dir, timeout);
    assert!(out.status.success(), "{name} failed:\n{}", out.text());
    out
}

/// A `Command` for `program` with `args`.
pub fn command<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Command {
    let mut cmd = Command::new(find_executable(program).unwrap_or_else(|| program.into()));
    cmd.args(args);
    cmd
}

/// UID and GID of a local user, if it exists.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// Python (pynetdicom, pydicom)

/// The project virtual environment's python: `$DICOMTAP_VENV/bin/python`, else
/// `<workspace>/.venv/bin/python`.
pub fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os(ENV_VENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join(".venv"));
    let py = venv.join("bin/python");
    py.is_file().then_some(py)
}

/// Where pydicom keeps its sample files.
#[derive(Debug, Clone)]
pub struct PydicomData {
    pub test_files: PathBuf,
    pub charset_files: PathBuf,
}

/// Asks the venv's pydicom where its data directories are (once per test process).
pub fn pydicom_data() -> Option<PydicomData> {
    static DATA: OnceLock<Option<PydicomData>> = OnceLock::new();
    DATA.get_or_init(|| {
        let py = venv_python()?;
        let out = Command::new(py)
            .args([
                "-c",
                "import os, pydicom.data as d; b = os.path.dirname(d.__file__); \
                 print(os.path.join(b, 'test_files')); print(os.path.join(b, 'charset_files'))",
            ])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let data = PydicomData {
            test_files: PathBuf::from(lines.next()?),
            charset_files: PathBuf::from(lines.next()?),
        };
        (data.test_files.is_dir() && data.charset_files.is_dir()).then_some(data)
    })
    .clone()
}

/// Runs the built `dicomtap` with `args` to its end and returns what it printed and its
/// exit status (for commands that read files and exit on their own).
pub fn dicomtap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dicomtap"))
        .args(args)
        .output()
        .expect("running the built dicomtap")
}

/// [`require`] the tools, then [`require_python`]: the python of the venv and pydicom's
/// test data, or `None` (the test returns: skipped with a message, or failed by
/// `require`'s rules).
pub fn require_peers(test: &str, tools: &[&str]) -> Option<(PathBuf, PydicomData)> {
    if !require(test, tools) {
        return None;
    }
    require_python(test)
}

/// Like [`require`] for the venv with pynetdicom and pydicom.
#[must_use]
pub fn require_python(test: &str) -> Option<(PathBuf, PydicomData)> {
    match (venv_python(), pydicom_data()) {
        (Some(py), Some(data)) => Some((py, data)),
        _ => {
            let msg = format!(
                "{test}: no python venv with pydicom at ${ENV_VENV} or .venv; \
                 install it with scripts/install-test-peers.sh"
            );
            if std::env::var(ENV_ALLOW_MISSING).is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED {msg}");
                None
            } else {
                panic!("{msg} (or set {ENV_ALLOW_MISSING}=1 to skip)");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Capture

/// A dumpcap capture on the loopback interface, limited to some TCP ports, into a pcapng
/// file. Stop it with [`Capture::finish`] to get the file; dropping it kills dumpcap.
pub struct Capture {
    proc: Proc,
    file: PathBuf,
}

impl Capture {
    /// Starts `dumpcap -i lo -f "tcp port A or tcp port B..." -w dir/name.pcapng` and
    /// waits (bounded) until it reports that it is capturing.
    pub fn start(name: &str, ports: &[u16], dir: &Path) -> Capture {
        Capture::start_with(name, "lo", ports, dir, |args| command("dumpcap", args))
    }

    /// Like [`Capture::start`], on interface `iface`, running the command `dumpcap` makes
    /// of dumpcap's arguments (e.g. dumpcap inside a network namespace).
    pub fn start_with(
        name: &str,
        iface: &str,
        ports: &[u16],
        dir: &Path,
        dumpcap: impl FnOnce(&[String]) -> Command,
    ) -> Capture {
        assert!(!ports.is_empty(), "a capture needs at least one port");
        let file = dir.join(format!("{name}.pcapng"));
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let args: Vec<String> = vec![
            "-i".into(),
            iface.into(),
            "-q".into(),
            "-f".into(),
            filter,
            "-w".into(),
            file.to_str().expect("temporary paths are UTF-8").into(),
        ];
        let mut proc = Proc::spawn(&format!("dumpcap-{name}"), dumpcap(&args), dir);
        let started = wait_until(Duration::from_secs(15), || {
            proc.stderr().contains("Capturing on") || proc.try_wait().is_some()
        });
        assert!(
            started && proc.try_wait().is_none(),
            "dumpcap did not start capturing on {iface} (needs root or CAP_NET_RAW):\n{}",
            proc.output()
        );
        // "Capturing on" is printed as the capture starts; give the filter a moment.
        std::thread::sleep(Duration::from_millis(200));
        Capture { proc, file }
    }

    /// Lets the last packets through, stops dumpcap (SIGINT, it then writes out what it
    /// holds), and returns the capture file.
    pub fn finish(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(500));
        self.proc.stop("INT", Duration::from_secs(10));
        let size = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 0,
            "dumpcap wrote nothing to {}\n{}",
            self.file.display(),
            self.proc.output()
        );
        self.file.clone()
    }
}

/// Runs tshark with `args` (bounded time) and returns its standard output.
pub fn tshark(args: &[&str], log_dir: &Path) -> String {
    let out = run_ok(
        "tshark",
        command("tshark", args),
        log_dir,
        Duration::from_secs(60),
    );
    out.stdout
}

/// Runs `tshark -r file -T fields -e f1 -e f2 ...` with `extra` options before the
/// fields and returns one row per frame, the fields split on tabs. Multiple occurrences
/// of a field in a frame are joined with `|`.
pub fn tshark_fields(
    file: &Path,
    extra: &[&str],
    fields: &[&str],
    log_dir: &Path,
) -> Vec<Vec<String>> {
    let file = file.to_str().expect("temporary paths are UTF-8");
    let mut args = vec!["-r", file, "-n"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]);
    for f in fields {
        args.push("-e");
        args.push(f);
    }
    tshark(&args, log_dir)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// `secs.frac` (as tshark prints frame.time_epoch) to microseconds.
pub fn epoch_to_us(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = secs.parse().unwrap_or(0);
    let mut micros = 0u64;
    for i in 0..6 {
        let d = frac
            .as_bytes()
            .get(i)
            .map_or(0, |b| u64::from(b.wrapping_sub(b'0')));
        micros = micros * 10 + d.min(9);
    }
    secs * 1_000_000 + micros
}

/// One TCP segment of a capture, as tshark saw it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub frame: u64,
    pub stream: u64,
    pub ts_us: u64,
    pub src_port: u16,
    pub dst_port: u16,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    /// Relative sequence number of the segment's first byte.
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Every TCP segment of `file`, in capture order, with its payload. tshark's own TCP
/// reassembly is off so that each frame carries exactly its own bytes.
pub fn tcp_segments(file: &Path, log_dir: &Path) -> Vec<Segment> {
    let rows = tshark_fields(
        file,
        &[
            "-o",
            "tcp.desegment_tcp_streams:FALSE",
            "-o",
            "tcp.relative_sequence_numbers:TRUE",
            "-Y",
            "tcp",
        ],
        &[
            "frame.number",
            "tcp.stream",
            "frame.time_epoch",
            "tcp.srcport",
            "tcp.dstport",
            "tcp.flags",
            "tcp.seq",
            "tcp.payload",
        ],
        log_dir,
    );
    rows.into_iter()
        .map(|r| {
            let get = |i: usize| r.get(i).map(String::as_str).unwrap_or("");
            let num = |i: usize| -> u64 {
                get(i)
                    .parse()
                    .unwrap_or_else(|_| panic!("tshark field {i} of {r:?} is not a number"))
            };
            let flags = u16::from_str_radix(get(5).trim_start_matches("0x"), 16)
                .unwrap_or_else(|_| panic!("tshark tcp.flags of {r:?} is not hex"));
            let payload = hex_decode(&get(7).replace([':', '|'], ""))
                .unwrap_or_else(|| panic!("tshark tcp.payload of {r:?} is not hex"));
            Segment {
                frame: num(0),
                stream: num(1),
                ts_us: epoch_to_us(get(2)),
                src_port: num(3) as u16,
                dst_port: num(4) as u16,
                syn: flags & 0x02 != 0,
                ack: flags & 0x10 != 0,
                fin: flags & 0x01 != 0,
                rst: flags & 0x04 != 0,
                seq: num(6),
                payload,
            }
        })
        .collect()
}

/// The segments of `segments`, grouped by TCP stream index.
pub fn by_stream(segments: Vec<Segment>) -> BTreeMap<u64, Vec<Segment>> {
    let mut map: BTreeMap<u64, Vec<Segment>> = BTreeMap::new();
    for s in segments {
        map.entry(s.stream).or_default().push(s);
    }
    map
}

/// Hex text (no separators) to bytes.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Bytes to lowercase hex text.
pub fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// ---------------------------------------------------------------------------------------
// HTTP

/// `GET path` on 127.0.0.1:port (with a bearer token when given); the whole response,
/// status line and headers included, or "" when nothing answered within 5 s.
pub fn http_get(port: u16, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// [`http_get`] split into the status line and the body (both "" when nothing answered).
pub fn http_get_status_body(port: u16, path: &str, token: Option<&str>) -> (String, String) {
    let text = http_get(port, path, token);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

// ---------------------------------------------------------------------------------------
// dicomtap proxy

/// The address a `dicomtap proxy` start-up line begins with, after its prefix:
/// `ADDR -> UPSTREAM` (after "listening on ") or `http://ADDR/metrics` or
/// `https://ADDR/metrics` (after "metrics on ").
pub fn printed_addr(rest: &str) -> Option<SocketAddr> {
    let addr = rest.split_whitespace().next()?;
    let addr = addr.strip_prefix("https://").unwrap_or(addr);
    addr.trim_start_matches("http://")
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// `dicomtap proxy` started from a configuration file, with its bound ports read from
/// its standard output.
pub struct Proxy {
    pub proc: Proc,
    /// Listening ports, in the order of the configuration's listeners.
    pub ports: Vec<u16>,
    pub metrics: u16,
    /// The recording directory.
    pub rec: PathBuf,
}

/// Writes `toml` as `dir/name.toml` and starts `dicomtap proxy --config` with a recording
/// in `dir/name-rec`, metrics on a free loopback port and a 2 s drain.
pub fn start_proxy(dir: &Path, name: &str, toml: &str) -> Proxy {
    start_proxy_draining(dir, name, toml, "2s")
}

/// [`start_proxy`] with this `--drain`.
pub fn start_proxy_draining(dir: &Path, name: &str, toml: &str, drain: &str) -> Proxy {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, toml).unwrap();
    let rec = dir.join(format!("{name}-rec"));
    let cmd = command(
        env!("CARGO_BIN_EXE_dicomtap"),
        &[
            "proxy",
            "--config",
            cfg.to_str().unwrap(),
            "--record",
            rec.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
            "--drain",
            drain,
        ],
    );
    let mut proc = Proc::spawn(name, cmd, dir);
    let up = wait_until(Duration::from_secs(20), || {
        proc.stdout().contains("dicomtap proxy: recording to") || proc.try_wait().is_some()
    });
    let out = proc.stdout();
    assert!(
        up && proc.try_wait().is_none(),
        "proxy did not start\n{}",
        proc.output()
    );
    let port_of = |rest: &str| -> u16 { printed_addr(rest).expect("an address").port() };
    Proxy {
        ports: out
            .lines()
            .filter_map(|l| l.strip_prefix("dicomtap proxy: listening on "))
            .map(port_of)
            .collect(),
        metrics: out
            .lines()
            .find_map(|l| l.strip_prefix("dicomtap proxy: metrics on "))
            .map(port_of)
            .expect("metrics address"),
        proc,
        rec,
    }
}

/// A tmpfs mounted on a directory, unmounted on drop (lazily if still busy).
pub struct Tmpfs {
    pub dir: PathBuf,
    /// False when mounting was not permitted: `dir` is a plain directory then.
    pub mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `dir` (root only); says so when it cannot.
    pub fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = is_root()
            && Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={bytes},mode=0700"),
                    "tmpfs",
                ])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!(
                "could not mount a tmpfs on {} (not root?): the full-disk part is skipped",
                dir.display()
            );
        }
        Tmpfs {
            dir: dir.to_path_buf(),
            mounted,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Whether every tool is installed; says which are not (the test then skips).
pub fn peers_available(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!("SKIPPED: {missing:?} not installed (run scripts/install-test-peers.sh)");
    false
}
