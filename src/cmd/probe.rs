//! `dicomtap probe`: test a live DICOM device (C-ECHO, presentation contexts, C-STORE,
//! Storage Commitment, C-FIND/C-MOVE/C-GET, Q/R matching, character sets, max PDU, load,
//! timeouts, malformed data), over plain TCP or TLS, and set the results against its
//! statement.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use dicomtap_analyzer::text::{escape_controls, escape_text};
use dicomtap_endpoints::probe::{self, Check, ProbeConfig, Verdict, report};

#[derive(clap::Args)]
#[command(
    long_about = "Test a live DICOM device the way an integration engineer should before \
go-live, and set the results against its statement (--statement).\n\n\
Nothing is written to the device without --allow-writes. Without it, the checks that store \
objects (store, commitment, find-move, matching, charset) are refused when named and left out \
of the defaults and of `all`; max-pdu, load and malformed leave their C-STOREs out. With it, \
the probe first prints what it will store (patients, studies, instances), marks every object \
as test data (patient name and ID starting with --test-patient, Study Description, Patient \
Comments, private creator \"dicomtap probe\") and ends with the Study Instance UIDs it \
wrote, so they can be deleted.\n\n\
Checks (default: echo contexts max-pdu, plus store commitment with --allow-writes; `all` = \
every check that neither disturbs nor, without --allow-writes, writes):\n\n  \
echo        C-ECHO\n  \
contexts    presentation-context sweep: every SOP class / transfer syntax the statement \
claims plus common ones (one context each), and the most contexts accepted in one \
association; shows what differs from the statement (every row with --detail or --json)\n  \
store       (writes) one generated instance per storage SOP class the device accepts (CT, MR, \
CR, DX, MG, US, NM, PET, XA, RF, SC, RT Dose, RT Plan, SR, Encapsulated PDF) in each \
uncompressed transfer syntax it accepts\n  \
commitment  (writes) Storage Commitment of what store wrote, run with every store: every \
instance answered Success must be committed (report on the same association, or on \
--listen)\n  \
find-move   (writes) C-FIND of the stored study, C-MOVE to the probe's own SCP (--listen, \
--move-ae), C-GET\n  \
matching    (writes) Q/R matching on 4 test patients: wildcards, case, component groups, \
date and time ranges\n  \
charset     (writes) store Part-10 files (--charset-files), query and retrieve them, compare \
the name bytes\n  \
max-pdu     advertise a huge max length; what the device advertises and sends\n  \
load        (only when named) N simultaneous associations (--load-associations, default \
the statement's max + 1): accepted, rejected and why, latencies\n  \
timeouts    (only when named) ARTIM, idle association and DIMSE timeouts, measured\n  \
malformed   (only when named) broken PDUs, command sets and data sets, each followed by a \
C-ECHO\n\n\
With a statement, a check of a service it does not claim is skipped; without one, so is a \
check of a service the contexts sweep saw rejected. A target that refuses the connection \
stops the run after the first check.\n\n\
--tls runs every check over TLS (--tls-ca, optionally --tls-cert/--tls-key, \
--tls-server-name); --listen-tls-cert and --listen-tls-key make the probe's own SCP \
(--listen) a TLS one (--listen-tls-ca: client certificates required).\n\n\
`dicomtap probe matrix DIR` (or --devices DIR) instead runs a C-ECHO from every source AE \
title to every destination of a site's statements (the directory `statement import \
--out-dir` writes) and sets each result against the destination's \
accept_calling_ae_titles.",
    after_help = "Exit codes: 0 every check passed (or was skipped); 1 a check failed (with \
--strict, also when one differs from the statement); 2 usage or input error, writing checks \
named without --allow-writes, or the target could not be connected to."
)]
pub struct Args {
    /// The device: HOST:PORT (required unless the check is `matrix`).
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,
    /// The device's AE title (required unless the check is `matrix`).
    #[arg(long, value_name = "TITLE")]
    called_ae: Option<String>,
    /// `matrix`: the site's statements (as `probe matrix DIR`): a statement file or a
    /// directory of them; every acceptor AE with hosts and port is a destination, every
    /// initiator AE title a source.
    #[arg(long, value_name = "PATH")]
    devices: Option<PathBuf>,
    /// `matrix`: an extra source AE title; repeatable.
    #[arg(long = "source", value_name = "TITLE")]
    sources: Vec<String>,
    /// The probe's AE title.
    #[arg(long, value_name = "TITLE", default_value = "DICOMTAP")]
    calling_ae: String,
    /// The device's statement (TOML); the AE matching --called-ae is used.
    #[arg(long, value_name = "FILE")]
    statement: Option<PathBuf>,
    /// Extra SOP class (keyword or UID) for the context sweep; repeatable.
    #[arg(long = "sop-class", value_name = "UID")]
    sop_classes: Vec<String>,
    /// Where the probe's own SCP listens (C-MOVE destination, commitment reports on a new
    /// association): PORT or ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    #[command(flatten)]
    listen_tls: Box<ListenTls>,
    /// The AE title the device knows the probe's SCP by (C-MOVE destination).
    #[arg(long, value_name = "TITLE", default_value = "DICOMTAP")]
    move_ae: String,
    /// Transfer syntax of the stored objects: implicit, explicit, or the UID of one of them.
    #[arg(long, value_name = "TS", default_value = "explicit")]
    transfer_syntax: String,
    /// Seconds to wait for the Storage Commitment N-EVENT-REPORT.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    commit_wait: f64,
    /// Directory of Part-10 files for the charset check (pydicom's charset_files).
    #[arg(long, value_name = "DIR")]
    charset_files: Option<PathBuf>,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Longest wait for the device to give up in the timeouts check (per measurement).
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    timeouts_max: f64,
    /// Simultaneous associations of the load check (default: the statement's
    /// max_associations.acceptor + 1, or 10).
    #[arg(long, value_name = "N")]
    load_associations: Option<u32>,
    /// Talk to the target over TLS (DICOM TLS, PS3.15 Annex B); needs --tls-ca.
    #[arg(long)]
    tls: bool,
    /// Trust store (PEM) for the target's certificate (`matrix`: for destinations whose
    /// statement requires TLS).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The probe's client certificate chain (PEM), for targets that ask for one.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Name the target's certificate is verified against (default: the host of --target).
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write JUnit XML (one test case per check).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Exit 1 also when a check differs from the statement.
    #[arg(long)]
    strict: bool,
    /// Let checks store objects on the device (test data, listed before and after).
    #[arg(long)]
    allow_writes: bool,
    /// Prefix of every generated patient's name and ID (letters, digits, - and _; at most
    /// 16), for sites with naming rules for test patients.
    #[arg(long, value_name = "PREFIX", default_value = probe::DEFAULT_TEST_PATIENT)]
    test_patient: String,
    /// Show every table row in text, HTML and JUnit (JSON always has them).
    #[arg(long)]
    detail: bool,
    /// Checks to run: echo, contexts, store, commitment, find-move, matching, charset,
    /// max-pdu, load, timeouts, malformed (what each does: --help); `all`; or `matrix DIR`
    /// on its own.
    #[arg(value_name = "CHECK")]
    checks: Vec<String>,
}

/// TLS on the probe's own SCP (boxed: the command enum stays small).
#[derive(clap::Args)]
struct ListenTls {
    /// The probe's SCP (--listen) speaks TLS only, with this certificate chain (PEM, leaf
    /// first); needs --listen-tls-key.
    #[arg(long, value_name = "FILE")]
    listen_tls_cert: Option<PathBuf>,
    /// The private key of --listen-tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    listen_tls_key: Option<PathBuf>,
    /// Trust store (PEM) for the device's client certificate: when given, the probe's SCP
    /// requires one and verifies it.
    #[arg(long, value_name = "FILE")]
    listen_tls_ca: Option<PathBuf>,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !(v > 0.0 && v.is_finite()) {
        bail!("--{name} must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

fn addr(s: &str, what: &str) -> anyhow::Result<SocketAddr> {
    s.to_socket_addrs()
        .with_context(|| format!("{what} {s}: not a HOST:PORT"))?
        .next()
        .with_context(|| format!("{what} {s}: no address"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.checks.first().is_some_and(|c| c == "matrix") {
        if args.checks.len() > 2 {
            bail!("`matrix` takes one directory (or statement file) and runs on its own");
        }
        return run_matrix(&args, args.checks.get(1).map(PathBuf::from));
    }
    if args.checks.iter().any(|c| c == "matrix") {
        bail!("`matrix` runs on its own, not with other checks");
    }
    let (Some(target), Some(called_ae)) = (args.target.clone(), args.called_ae.clone()) else {
        bail!("--target and --called-ae are required (except for `probe matrix`)");
    };
    for t in [&called_ae, &args.calling_ae, &args.move_ae] {
        if t.is_empty() || t.len() > 16 || !t.is_ascii() {
            bail!("AE title {t:?} must be 1 to 16 ASCII characters");
        }
    }
    let mut checks = Vec::new();
    for c in &args.checks {
        if c == "all" {
            checks.extend(Check::all(args.allow_writes));
            continue;
        }
        match Check::parse(c) {
            Some(c) => checks.push(c),
            None => bail!(
                "unknown check {c:?}; checks: {}",
                Check::ALL.map(|c| c.name()).join(", ")
            ),
        }
    }
    if checks.is_empty() {
        checks = Check::defaults(args.allow_writes);
    }
    let prefix = args.test_patient.to_ascii_uppercase();
    if prefix.is_empty()
        || prefix.len() > 16
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("--test-patient {prefix:?}: 1 to 16 letters, digits, - or _");
    }
    let mut cfg = ProbeConfig::new(addr(&target, "--target")?, &called_ae);
    cfg.allow_writes = args.allow_writes;
    cfg.test_patient = prefix;
    cfg.calling_ae = args.calling_ae.clone();
    cfg.move_ae = args.move_ae.clone();
    cfg.timeout = secs("timeout", args.timeout)?;
    cfg.commit_wait = secs("commit-wait", args.commit_wait)?;
    cfg.timeouts_max = secs("timeouts-max", args.timeouts_max)?;
    cfg.charset_files = args.charset_files.clone();
    if args.load_associations == Some(0) {
        bail!("--load-associations must be at least 1");
    }
    cfg.load_associations = args.load_associations;
    cfg.tls = tls_client(&args, &target)?;
    cfg.store_transfer_syntax = match args.transfer_syntax.as_str() {
        "implicit" | probe::dataset::IMPLICIT_LE => probe::dataset::IMPLICIT_LE.to_string(),
        "explicit" | probe::dataset::EXPLICIT_LE => probe::dataset::EXPLICIT_LE.to_string(),
        other => bail!(
            "--transfer-syntax {other:?}: the probe generates implicit or explicit VR little endian"
        ),
    };
    for s in &args.sop_classes {
        match dicomtap_wire::uid::from_keyword_or_uid(s) {
            Some(uid) => cfg.sop_classes.push(uid),
            None => bail!("--sop-class {s:?} is neither a SOP class keyword nor a UID"),
        }
    }
    if let Some(l) = &args.listen {
        cfg.listen = Some(match l.parse::<u16>() {
            Ok(port) => SocketAddr::from(([0, 0, 0, 0], port)),
            Err(_) => addr(l, "--listen")?,
        });
    }
    listen_tls(&args, &mut cfg)?;
    if let Some(path) = &args.statement {
        let st = dicomtap_analyzer::statement::load(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let ae = match st.ae(&called_ae) {
            Some(a) => a.clone(),
            None if st.ae.len() == 1 => st.ae[0].clone(),
            None => bail!(
                "{}: no AE titled {:?} (it has: {})",
                path.display(),
                called_ae,
                st.ae
                    .iter()
                    .map(|a| a.title.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        cfg.statement = Some((st, ae));
    }
    let plan = probe::plan(&cfg, &checks);
    let refused = plan.refused_writes(&cfg);
    if !refused.is_empty() {
        let mut msg = format!(
            "{} would write to the device:\n",
            refused
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for l in &plan.writes {
            msg.push_str(&format!("  {l}\n"));
        }
        msg.push_str("add --allow-writes to run them (or leave them out: `all` without --allow-writes runs only the checks that write nothing)");
        bail!(msg);
    }
    if cfg.allow_writes && !plan.writes.is_empty() {
        say_err!("may write test data to {} ({}):", cfg.called_ae, cfg.target);
        for l in &plan.writes {
            say_err!("  {l}");
        }
        say_err!(
            "  every object: patient name and ID starting with {}, Study Description \"{}\", private creator \"{}\"",
            cfg.test_patient,
            probe::checks::TEST_STUDY_DESCRIPTION,
            dicomtap_endpoints::peers::iods::PRIVATE_CREATOR
        );
    }
    // The report files are created before the probe runs: a path that cannot be written
    // fails at once, not after minutes against the device.
    let mut html = open_report(args.html.as_ref())?;
    let mut junit = open_report(args.junit.as_ref())?;
    let progress = ProgressLine::start();
    if let Some(line) = &progress {
        let now = line.now.clone();
        cfg.progress = Some(probe::Progress(std::sync::Arc::new(move |s: &str| {
            if let Ok(mut n) = now.lock() {
                *n = (s.to_string(), std::time::Instant::now());
            }
        })));
    }
    let report = probe::run_plan(&cfg, &plan);
    drop(progress);
    let report = report?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let text = report::to_text(&report, args.detail);
        out.write_all(escape_text(&text).as_bytes())?;
    }
    out.flush()?;
    if let Some((f, p)) = html.as_mut() {
        f.write_all(report::to_html(&report, args.detail).as_bytes())
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if let Some((f, p)) = junit.as_mut() {
        f.write_all(report::to_junit(&report, args.detail).as_bytes())
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if let Some(s) = &report.stopped {
        say_err!("dicomtap probe: {}", escape_controls(s));
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let failed =
        report.failed() || (args.strict && report.count(Verdict::DiffersFromStatement) > 0);
    Ok(if failed {
        ExitCode::from(super::EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the probe is doing, redrawn on standard error twice a second with the time spent
/// on it; only on a terminal. Cleared when dropped.
struct ProgressLine {
    now: std::sync::Arc<std::sync::Mutex<(String, std::time::Instant)>>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressLine {
    fn start() -> Option<ProgressLine> {
        use std::io::IsTerminal;
        use std::sync::atomic::Ordering;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let now = std::sync::Arc::new(std::sync::Mutex::new((
            String::new(),
            std::time::Instant::now(),
        )));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (n, d) = (now.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let Ok(g) = n.lock() else { break };
                if !g.0.is_empty() {
                    let line: String = escape_controls(&g.0).chars().take(150).collect();
                    say_err_inline!("\r\x1b[2K{line} [{:.0} s]", g.1.elapsed().as_secs_f64());
                }
            }
            say_err_inline!("\r\x1b[2K");
        });
        Some(ProgressLine {
            now,
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The rustls client configuration of `--tls`, built by the proxy's TLS module.
fn tls_client(args: &Args, target: &str) -> anyhow::Result<Option<probe::link::TlsClient>> {
    use dicomtap_proxy::tls;
    let given = args.tls_ca.is_some()
        || args.tls_cert.is_some()
        || args.tls_key.is_some()
        || args.tls_server_name.is_some();
    if !args.tls {
        if given {
            bail!("--tls-ca, --tls-cert, --tls-key and --tls-server-name need --tls");
        }
        return Ok(None);
    }
    let Some(ca) = args.tls_ca.clone() else {
        bail!("--tls needs --tls-ca (the trust store for the target's certificate)");
    };
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        bail!("--tls-cert and --tls-key go together");
    }
    let host = match target.rsplit_once(':') {
        Some((h, _)) => h.trim_matches(|c| c == '[' || c == ']').to_string(),
        None => target.to_string(),
    };
    let name = args.tls_server_name.clone().unwrap_or(host);
    let config = tls::build_client_config(&tls::ClientTlsConfig {
        ca,
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        server_name: Some(name.clone()),
        versions: tls::default_versions(),
        cipher_suites: tls::default_cipher_suites(),
    })
    .map_err(|e| anyhow::anyhow!("--tls: {e}"))?;
    probe::link::TlsClient::new(config, &name)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("--tls-server-name: {e}"))
}

/// The rustls server configuration of the probe's listener (`--listen-tls-*`), built by
/// the proxy's TLS module.
fn listen_tls(args: &Args, cfg: &mut ProbeConfig) -> anyhow::Result<()> {
    use dicomtap_proxy::tls;
    let lt = &args.listen_tls;
    let (cert, key) = match (&lt.listen_tls_cert, &lt.listen_tls_key) {
        (None, None) => {
            if lt.listen_tls_ca.is_some() {
                bail!("--listen-tls-ca needs --listen-tls-cert and --listen-tls-key");
            }
            return Ok(());
        }
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => bail!("--listen-tls-cert and --listen-tls-key go together"),
    };
    if args.listen.is_none() {
        bail!("--listen-tls-cert needs --listen (the probe's SCP)");
    }
    let client_auth = if lt.listen_tls_ca.is_some() {
        tls::ClientAuth::Required
    } else {
        tls::ClientAuth::Off
    };
    let config = tls::build_server_config(&tls::ServerTlsConfig {
        cert,
        key,
        client_ca: lt.listen_tls_ca.clone(),
        client_auth,
        versions: tls::default_versions(),
        cipher_suites: tls::default_cipher_suites(),
    })
    .map_err(|e| anyhow::anyhow!("--listen-tls: {e}"))?;
    cfg.listen_tls = Some(config);
    Ok(())
}

fn run_matrix(args: &Args, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use dicomtap_endpoints::probe::matrix;
    let path = match (dir, &args.devices) {
        (Some(_), Some(_)) => bail!("`probe matrix DIR` and --devices: give one of them"),
        (Some(d), None) => d,
        (None, Some(d)) => d.clone(),
        (None, None) => bail!(
            "`probe matrix` needs the site's statements: `probe matrix DIR` (a directory of statements, as `statement import --out-dir` writes, or one file)"
        ),
    };
    let path = &path;
    let statements = if path.is_dir() {
        dicomtap_analyzer::statement::load_dir(path)
    } else {
        dicomtap_analyzer::statement::load_files(std::slice::from_ref(path))
    }
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let plan = matrix::plan(&statements, &args.sources);
    if plan.sources.is_empty() || plan.destinations.is_empty() {
        bail!(
            "{}: {} source AE titles and {} destinations (acceptor AEs with hosts and port) found; need at least one of each{}",
            path.display(),
            plan.sources.len(),
            plan.destinations.len(),
            if plan.destinations.is_empty() && !plan.skipped.is_empty() {
                format!(
                    " ({} acceptor AEs have no hosts/port: statements drafted from vendors' documents do not know the site's addresses; add `hosts` and `port` to each [[ae]])",
                    plan.skipped.len()
                )
            } else {
                String::new()
            }
        );
    }
    let tls = match &args.tls_ca {
        Some(ca) => {
            use dicomtap_proxy::tls;
            if args.tls_cert.is_some() != args.tls_key.is_some() {
                bail!("--tls-cert and --tls-key go together");
            }
            Some(
                tls::build_client_config(&tls::ClientTlsConfig {
                    ca: ca.clone(),
                    cert: args.tls_cert.clone(),
                    key: args.tls_key.clone(),
                    server_name: None,
                    versions: tls::default_versions(),
                    cipher_suites: tls::default_cipher_suites(),
                })
                .map_err(|e| anyhow::anyhow!("--tls-ca: {e}"))?,
            )
        }
        None => None,
    };
    let mut html = open_report(args.html.as_ref())?;
    let m = matrix::run(plan, secs("timeout", args.timeout)?, tls);
    if let Some((f, p)) = html.as_mut() {
        f.write_all(m.to_html().as_bytes())
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &m)?;
        writeln!(out)?;
    } else {
        let mut t = m.table();
        for c in t.rows.iter_mut().flatten() {
            *c = escape_controls(c).into_owned();
        }
        let mut text = String::new();
        report::table_text(&t, "", true, &mut text);
        out.write_all(text.as_bytes())?;
        for s in &m.skipped {
            writeln!(out, "skipped {}", escape_controls(&s.to_string()))?;
        }
        for p in m.problems() {
            writeln!(out, "{}", escape_controls(&p.to_string()))?;
        }
        let fails = m
            .cells
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count();
        let differs = m
            .cells
            .iter()
            .filter(|c| c.verdict == Verdict::DiffersFromStatement)
            .count();
        writeln!(
            out,
            "{} pairs: {fails} fail, {differs} differ from the statements",
            m.cells.len()
        )?;
    }
    let differs = m
        .cells
        .iter()
        .any(|c| c.verdict == Verdict::DiffersFromStatement);
    Ok(if m.failed() || (args.strict && differs) {
        ExitCode::from(super::EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// A report file created (owner-only) before the run, with its path for messages.
fn open_report(path: Option<&PathBuf>) -> anyhow::Result<Option<(std::fs::File, &PathBuf)>> {
    path.map(|p| {
        super::create_private(p)
            .map(|f| (f, p))
            .with_context(|| format!("{}: cannot create", p.display()))
    })
    .transpose()
}
