//! `dicomtap analyze`: captures (pcap, pcapng, or a live stream on standard input) to
//! association timelines: one line per association, a detail view, JSON lines.

use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dicomtap_analyzer::analysis::{Analysis, AnalysisSink};
use dicomtap_analyzer::capture::{
    CaptureConfig, CaptureReader, CaptureStats, ConnectionInfo, DEFAULT_SERVER_PORTS,
};
use dicomtap_analyzer::conformance::{
    Checked, Checker, ConformanceFinding, FindingReport, FindingSink,
};
use dicomtap_analyzer::report::Report;
use dicomtap_analyzer::session::{FIRST_OF_A_KIND, Session};
use dicomtap_analyzer::text;
use dicomtap_wire::{EngineConfig, Event, Severity};

#[derive(clap::Args)]
pub struct Args {
    /// pcap or pcapng files; `-` reads a capture stream from standard input
    /// (`tcpdump -U -w - port 104 | dicomtap analyze -`).
    #[arg(required = true)]
    captures: Vec<PathBuf>,
    /// Print JSON lines: one `session` object per association as it ends, then a `summary`.
    #[arg(long)]
    json: bool,
    /// Show one association in detail: negotiation item by item, every DIMSE exchange, findings.
    #[arg(long, value_name = "ID")]
    detail: Option<u64>,
    /// Write every engine event as a JSON line to this file.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// A DICOM server port, to tell client from server when the handshake was not captured
    /// (repeatable; 104, 11112, 4242, 2761, 2762 are always known).
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Only associations with this address on either side.
    #[arg(long, value_name = "ADDR")]
    host: Option<IpAddr>,
    /// Only associations with this calling or called AE title.
    #[arg(long, value_name = "TITLE")]
    ae: Option<String>,
    /// Only associations that started at or after this time (RFC 3339 UTC, e.g.
    /// 2026-11-27T08:00:00Z, or UNIX seconds).
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    since: Option<u64>,
    /// Only associations that started before this time.
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    until: Option<u64>,
    /// Exit with status 1 when a finding at or above this severity is seen.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// Check the traffic against the device statements (*.toml) in this directory:
    /// findings per device and rule in the text output, `conformance_finding` lines with
    /// --json, counted by --fail-on. `dicomtap rules` lists the rules. The session filters
    /// (--host, --ae, --since, --until) do not apply to conformance findings.
    #[arg(long, value_name = "DIR")]
    statements: Option<PathBuf>,
    /// Write the conformance findings as JUnit XML (one test case per device and rule,
    /// failed when the rule has a finding at or above --fail-on, default warning).
    #[arg(long, value_name = "FILE", requires = "statements")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report (timeline, devices, latency, findings) to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

struct Filter {
    host: Option<IpAddr>,
    ae: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
}

impl Filter {
    fn matches(&self, s: &Session) -> bool {
        if let Some(h) = self.host
            && s.client.map(|a| a.ip()) != Some(h)
            && s.server.map(|a| a.ip()) != Some(h)
        {
            return false;
        }
        if let Some(ae) = &self.ae
            && s.requestor.ae_title.as_deref() != Some(ae.as_str())
            && s.acceptor.ae_title.as_deref() != Some(ae.as_str())
        {
            return false;
        }
        self.since.is_none_or(|t| s.first_ts_us >= t)
            && self.until.is_none_or(|t| s.first_ts_us < t)
    }
}

struct Output {
    json: bool,
    detail: Option<u64>,
    detail_events: Vec<Event>,
    /// Finding events of the detailed association per code.
    detail_per_code: std::collections::BTreeMap<&'static str, u64>,
    detail_session: Option<Session>,
    events: Option<BufWriter<std::fs::File>>,
    out: BufWriter<std::io::Stdout>,
    filter: Filter,
    worst: Option<Severity>,
    sessions: u64,
    error: Option<std::io::Error>,
    conformance: FindingReport,
    report: Option<Report>,
}

/// Events kept for `--detail`; beyond this the view says how many were left out.
const MAX_DETAIL_EVENTS: usize = 200_000;

impl Output {
    fn write(&mut self, f: impl FnOnce(&mut BufWriter<std::io::Stdout>) -> std::io::Result<()>) {
        if self.error.is_none()
            && let Err(e) = f(&mut self.out)
        {
            self.error = Some(e);
        }
    }
}

impl FindingSink for Output {
    fn finding(&mut self, finding: &ConformanceFinding) {
        self.conformance.add(finding);
        if let Some(r) = self.report.as_mut() {
            r.add_finding(dicomtap_analyzer::report::ReportFinding {
                association: finding.evidence.association,
                ts_us: finding.evidence.ts_us,
                severity: finding.severity,
                code: finding.rule.to_string(),
                device: format!("{} ({})", finding.device, finding.ae),
                message: format!("claims {}; observed {}", finding.claim, finding.observed),
            });
        }
        self.worst = self.worst.max(Some(finding.severity));
        if self.json {
            let mut line = serde_json::json!({ "type": "conformance_finding" });
            if let (Some(obj), Ok(serde_json::Value::Object(f))) =
                (line.as_object_mut(), serde_json::to_value(finding))
            {
                obj.extend(f);
            }
            self.write(|o| {
                serde_json::to_writer(&mut *o, &line)?;
                writeln!(o)
            });
        }
    }
}

impl AnalysisSink for Output {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        if let Some(w) = self.events.as_mut() {
            let line = serde_json::json!({ "association": conn.id.0, "client": conn.client, "server": conn.server, "event": event });
            let r = serde_json::to_writer(&mut *w, &line)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(w));
            if let Err(e) = r {
                self.error.get_or_insert(e);
            }
        }
        if self.detail == Some(conn.id.0) && self.detail_events.len() < MAX_DETAIL_EVENTS {
            // Findings of one code: the first few listed, the rest counted (as the session).
            if let dicomtap_wire::EventKind::Finding(f) = &event.kind {
                let n = self.detail_per_code.entry(f.code.id()).or_insert(0);
                *n += 1;
                if *n > FIRST_OF_A_KIND {
                    return;
                }
            }
            self.detail_events.push(event.clone());
        }
    }

    fn session(&mut self, conn: &ConnectionInfo, session: Session) {
        if !self.filter.matches(&session) {
            return;
        }
        self.sessions += 1;
        self.worst = self.worst.max(session.worst());
        if let Some(r) = self.report.as_mut() {
            r.add(&session);
        }
        if self.json {
            let line = serde_json::json!({ "type": "session", "requestor_known_by": conn.requestor_known_by, "session": &session });
            self.write(|o| {
                serde_json::to_writer(&mut *o, &line)?;
                writeln!(o)
            });
        } else if self.detail.is_none() {
            let line = text::session_line(&session);
            self.write(|o| writeln!(o, "{line}"));
        }
        if self.detail == Some(conn.id.0) {
            self.detail_session = Some(session);
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Every output file is created before the analysis: a path that cannot be written
    // fails at once, not after minutes of reading captures.
    let open_out = |p: &Option<PathBuf>| -> anyhow::Result<Option<std::fs::File>> {
        p.as_ref()
            .map(|p| {
                crate::cmd::create_private(p)
                    .with_context(|| format!("{}: cannot create", p.display()))
            })
            .transpose()
    };
    let mut junit_file = open_out(&args.junit)?;
    let mut html_file = open_out(&args.html)?;
    let events = match &args.events {
        Some(p) => Some(BufWriter::new(
            crate::cmd::create_private(p)
                .with_context(|| format!("{}: cannot create", p.display()))?,
        )),
        None => None,
    };
    let output = Output {
        json: args.json,
        detail: args.detail,
        detail_events: Vec::new(),
        detail_per_code: std::collections::BTreeMap::new(),
        detail_session: None,
        events,
        out: BufWriter::new(std::io::stdout()),
        filter: Filter {
            host: args.host,
            ae: args.ae.clone(),
            since: args.since,
            until: args.until,
        },
        worst: None,
        sessions: 0,
        error: None,
        conformance: FindingReport::default(),
        report: args.html.as_ref().map(|_| {
            let mut r = Report::new("dicomtap analysis");
            r.sources = args
                .captures
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            r
        }),
    };
    let mut ports: Vec<u16> = DEFAULT_SERVER_PORTS.to_vec();
    ports.extend(&args.ports);
    let capture_config = CaptureConfig {
        server_ports: ports,
        ..CaptureConfig::default()
    };
    let statements = match &args.statements {
        Some(dir) => Some(
            dicomtap_analyzer::statement::load_dir(dir)
                .with_context(|| format!("loading statements from {}", dir.display()))?,
        ),
        None => None,
    };
    let engine = match &statements {
        Some(_) => Checker::engine_config(EngineConfig::default()),
        None => EngineConfig::default(),
    };
    let mut analysis = Analysis::new(
        engine,
        Checked::new(Checker::new(statements.clone().unwrap_or_default()), output),
    )
    .with_server_ports(capture_config.server_ports.clone());
    let mut totals = Vec::new();
    let mut failed = None;
    for path in &args.captures {
        let name = path.display().to_string();
        analysis.sink_mut().checker.set_source(name.clone());
        let result = if name == "-" {
            CaptureReader::new("standard input", std::io::stdin().lock())
                .map(|r| r.with_config(capture_config.clone()))
                .and_then(|mut r| r.process(&mut analysis))
        } else {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            match std::fs::File::open(path) {
                Ok(file) => {
                    let (reader, _progress) = super::progress::Progress::wrap(file, &name, size);
                    CaptureReader::new(
                        name.clone(),
                        std::io::BufReader::with_capacity(1 << 20, reader),
                    )
                    .map(|r| r.with_config(capture_config.clone()))
                    .and_then(|mut r| r.process(&mut analysis))
                }
                Err(e) => {
                    say_err!("dicomtap: {name}: cannot open: {e}");
                    failed = Some(());
                    continue;
                }
            }
        };
        analysis.next_capture();
        match result {
            Ok(stats) => totals.push((name, stats)),
            Err(e) => {
                say_err!("dicomtap: {e}");
                failed = Some(());
            }
        }
    }
    let non_dicom = analysis.non_dicom_connections();
    let mut checked = analysis.into_sink();
    checked.finish();
    let (checker, mut out) = checked.into_parts();
    if let Some(id) = args.detail {
        print_detail(&mut out, id)?;
    }
    if out.json {
        let mut summary = serde_json::json!({ "type": "summary", "associations": out.sessions, "non_dicom_connections": non_dicom, "captures": totals.iter().map(|(n, s)| serde_json::json!({"file": n, "stats": s})).collect::<Vec<_>>() });
        if statements.is_some() {
            summary["conformance_findings"] = serde_json::json!(out.conformance.total());
            summary["devices"] = serde_json::json!(checker.devices_seen());
        }
        out.write(|o| {
            serde_json::to_writer(&mut *o, &summary)?;
            writeln!(o)
        });
    } else if args.detail.is_none() {
        for (name, stats) in &totals {
            let line = stats_line(name, stats);
            out.write(|o| writeln!(o, "{line}"));
        }
        if non_dicom > 0 {
            out.write(|o| {
                writeln!(
                    o,
                    "{non_dicom} TCP connections carried no DICOM and are not listed"
                )
            });
        }
    }
    if statements.is_some() && !out.json && args.detail.is_none() {
        // Claims and observations quote AE titles and UIDs from the wire.
        let text = format!("\n{}", text::escape_text(&out.conformance.text(3)));
        out.write(|o| o.write_all(text.as_bytes()));
    }
    if let Some(path) = &args.junit {
        let devices: Vec<String> = checker
            .statements()
            .iter()
            .map(|s| s.device.name.clone())
            .collect();
        let xml = dicomtap_analyzer::conformance::junit::junit_xml(
            &out.conformance,
            &devices,
            &checker.devices_seen(),
            args.fail_on.unwrap_or(Severity::Warning),
        );
        if let Some(f) = junit_file.as_mut() {
            f.write_all(xml.as_bytes())
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
    }
    out.write(|o| o.flush());
    if let (Some(path), Some(report)) = (&args.html, &out.report) {
        let html = dicomtap_analyzer::report::html::render(report);
        if let Some(f) = html_file.as_mut() {
            f.write_all(html.as_bytes())
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
    }
    if let Some(w) = out.events.as_mut() {
        w.flush().context("writing the event log")?;
    }
    if let Some(e) = out.error.take() {
        return Err(e.into());
    }
    if failed.is_some() {
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    match (args.fail_on, out.worst) {
        (Some(t), Some(w)) if w >= t => Ok(ExitCode::from(super::EXIT_FINDINGS)),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn stats_line(name: &str, s: &CaptureStats) -> String {
    let mut extra = Vec::new();
    for (n, what) in [
        (s.retransmissions, "retransmissions"),
        (s.out_of_order, "out-of-order segments"),
        (s.gaps, "gaps"),
        (s.non_tcp_skipped, "non-TCP packets skipped"),
        (s.truncated, "truncated record"),
    ] {
        if n > 0 {
            extra.push(format!("{n} {what}"));
        }
    }
    if s.recorder_lost_bytes > 0 {
        extra.push(format!(
            "recording incomplete: {} bytes dropped by the recorder",
            s.recorder_lost_bytes
        ));
    }
    format!(
        "{name}: {} packets, {} TCP connections{}{}",
        s.packets,
        s.connections,
        if extra.is_empty() { "" } else { ", " },
        extra.join(", ")
    )
}

fn print_detail(out: &mut Output, id: u64) -> anyhow::Result<()> {
    let Some(session) = out.detail_session.take() else {
        anyhow::bail!("no association #{id} in the capture (or it did not pass the filters)");
    };
    let mut lines = vec![
        text::session_line(&session),
        String::new(),
        "events:".to_string(),
    ];
    for e in &out.detail_events {
        for l in text::describe(e) {
            lines.push(format!("  {} {l}", text::timestamp(e.ts_us)));
        }
    }
    if out.detail_events.len() >= MAX_DETAIL_EVENTS {
        lines.push(format!(
            "  ... only the first {MAX_DETAIL_EVENTS} events are shown"
        ));
    }
    for (code, r) in &session.findings_repeated {
        lines.push(format!(
            "  ... and {} more {} findings of code {code}, not listed (the first {FIRST_OF_A_KIND} are)",
            r.count, r.severity
        ));
    }
    if session.findings_dropped > 0 {
        lines.push(format!(
            "  ... and {} more findings, not kept (too many codes)",
            session.findings_dropped
        ));
    }
    lines.push(String::new());
    lines.push("DIMSE exchanges:".to_string());
    for x in &session.exchanges {
        lines.push(format!(
            "  {} {:<9} {:<14} id {:<5} {:<40} status {:<6} {}",
            text::timestamp(x.ts_us),
            x.by.to_string(),
            x.command,
            x.message_id.map_or_else(|| "-".into(), |v| v.to_string()),
            x.sop_class
                .as_deref()
                .map(text::uid_short)
                .unwrap_or_default(),
            x.status.as_deref().unwrap_or("none"),
            x.latency_us.map_or_else(
                || "unanswered".to_string(),
                |l| format!("{:.3} ms", l as f64 / 1000.0)
            )
        ));
    }
    for l in lines {
        let l = text::escape_controls(&l);
        out.write(|o| writeln!(o, "{l}"));
    }
    Ok(())
}
