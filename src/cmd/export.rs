//! `dicomtap export`: every object carried by C-STORE (plain, and the sub-operations of
//! C-GET and C-MOVE) in captures, written as Part-10 files byte-identical to what the
//! sender sent; incomplete objects reported, never written.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dicomtap_analyzer::analysis::Analysis;
use dicomtap_analyzer::capture::{CaptureConfig, CaptureReader, DEFAULT_SERVER_PORTS};
use dicomtap_analyzer::export::{ExportOutcome, ExportRecord, Exporter};
use dicomtap_analyzer::text;
use dicomtap_wire::EngineConfig;

#[derive(clap::Args)]
pub struct Args {
    /// pcap or pcapng files; `-` reads a capture stream from standard input.
    #[arg(required = true)]
    captures: Vec<PathBuf>,
    /// Directory to write into (created, mode 0700, if missing). Objects go to
    /// DIR/<association>/<SOP Instance UID>.dcm, files mode 0600.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print JSON lines: one `object` per C-STORE object, then a `summary`.
    #[arg(long)]
    json: bool,
    /// A DICOM server port, to tell client from server when the handshake was not captured
    /// (repeatable; 104, 11112, 4242, 2761, 2762 are always known).
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
}

struct Report {
    json: bool,
    out: BufWriter<std::io::Stdout>,
    error: Option<std::io::Error>,
}

impl Report {
    fn object(&mut self, rec: &ExportRecord) {
        if self.error.is_some() {
            return;
        }
        let r = if self.json {
            let mut v = serde_json::to_value(rec).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert("type".into(), "object".into());
            }
            serde_json::to_writer(&mut self.out, &v)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(self.out))
        } else {
            writeln!(self.out, "{}", text::escape_controls(&object_line(rec)))
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

/// `#3 exported   1.2.3.4 CTImageStorage 1.2.840.10008.1.2.1 37.4 kB from STORESCU msg 1 -> out/3/1.2.3.4.dcm; response 0000 (success)`
fn object_line(rec: &ExportRecord) -> String {
    let what = match &rec.outcome {
        ExportOutcome::Exported { .. } => "exported  ",
        ExportOutcome::Incomplete { .. } => "INCOMPLETE",
        ExportOutcome::Failed { .. } => "FAILED    ",
    };
    let ts = if rec.transfer_syntax_negotiated {
        text::uid_short(&rec.transfer_syntax)
    } else {
        format!(
            "{} (guessed: negotiation not captured)",
            text::uid_short(&rec.transfer_syntax)
        )
    };
    let tail = match &rec.outcome {
        ExportOutcome::Exported { path } => format!("-> {}", path.display()),
        ExportOutcome::Incomplete { reason } => format!("not written: {reason}"),
        ExportOutcome::Failed { error } => format!("not written: {error}"),
    };
    let response = match &rec.response {
        Some(r) if rec.refused => format!(
            "REFUSED by the receiver: {} ({}: {})",
            r.code, r.class, r.meaning
        ),
        Some(r) => format!("response {} ({})", r.code, r.class),
        None => "no response seen".to_string(),
    };
    let mut odd = String::new();
    if let (Some(a), Some(b)) = (&rec.sop_instance, &rec.dataset_sop_instance)
        && a != b
    {
        odd = format!("; the data set's own SOP Instance UID is {b}");
    }
    format!(
        "#{:<4} {what} {} {} {ts} {} from {} ({}) msg {} {tail}; {response}{odd}",
        rec.association,
        rec.sop_instance
            .as_deref()
            .unwrap_or("(no SOP instance UID)"),
        rec.sop_class
            .as_deref()
            .map(text::uid_short)
            .unwrap_or_else(|| "(no SOP class)".into()),
        text::bytes(rec.bytes),
        rec.sender_ae.as_deref().unwrap_or("?"),
        rec.sender,
        rec.message_id.map_or_else(|| "-".into(), |m| m.to_string()),
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    create_out_dir(&args.out)?;
    let mut report = Report {
        json: args.json,
        out: BufWriter::new(std::io::stdout()),
        error: None,
    };
    let mut ports: Vec<u16> = DEFAULT_SERVER_PORTS.to_vec();
    ports.extend(&args.ports);
    let capture_config = CaptureConfig {
        server_ports: ports,
        ..CaptureConfig::default()
    };
    let engine = EngineConfig {
        emit_data: true,
        emit_pdata: false,
        ..EngineConfig::default()
    };
    let mut failed = false;
    let mut totals = Vec::new();
    let stats = {
        let exporter = Exporter::new(&args.out, |rec: &ExportRecord| report.object(rec));
        let mut analysis = Analysis::new(engine, exporter);
        for path in &args.captures {
            let name = path.display().to_string();
            let result = if name == "-" {
                CaptureReader::new("standard input", std::io::stdin().lock())
                    .map(|r| r.with_config(capture_config.clone()))
                    .and_then(|mut r| r.process(&mut analysis))
            } else {
                CaptureReader::open(path)
                    .map(|r| r.with_config(capture_config.clone()))
                    .and_then(|mut r| r.process(&mut analysis))
            };
            analysis.next_capture();
            match result {
                Ok(s) => totals.push((name, s)),
                Err(e) => {
                    say_err!("dicomtap: {e}");
                    failed = true;
                }
            }
        }
        let mut exporter = analysis.into_sink();
        exporter.finish();
        exporter.stats().clone()
    };
    if report.json {
        let summary = serde_json::json!({
            "type": "summary",
            "out": args.out,
            "stats": stats,
            "captures": totals.iter().map(|(n, s)| serde_json::json!({"file": n, "stats": s})).collect::<Vec<_>>(),
        });
        if report.error.is_none() {
            let r = serde_json::to_writer(&mut report.out, &summary)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(report.out));
            report.error = r.err();
        }
    } else if report.error.is_none() {
        let r = writeln!(
            report.out,
            "{} objects exported to {} ({}), {} incomplete (not written), {} failed to write, {} refused by the receiver",
            stats.exported,
            args.out.display(),
            text::bytes(stats.bytes_written),
            stats.incomplete,
            stats.failed,
            stats.refused
        );
        report.error = r.err();
    }
    if report.error.is_none() {
        report.error = report.out.flush().err();
    }
    if let Some(e) = report.error.take() {
        return Err(e.into());
    }
    if failed || stats.failed > 0 {
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    if stats.incomplete > 0 {
        return Ok(ExitCode::from(super::EXIT_FINDINGS));
    }
    Ok(ExitCode::SUCCESS)
}

fn create_out_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("{}: cannot create the output directory", dir.display()))
}
