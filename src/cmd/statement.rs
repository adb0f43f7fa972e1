//! `dicomtap statement check|import|diff|infer`: device statements (the machine-readable
//! conformance statements of `shared/statement-format.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use dicomtap_analyzer::analysis::Analysis;
use dicomtap_analyzer::capture::{CaptureConfig, CaptureReader, DEFAULT_SERVER_PORTS};
use dicomtap_analyzer::statement::{
    self, Diagnostic, Role, Statement, diff, infer::Inference, write,
};
use dicomtap_analyzer::text::{escape_controls, escape_text};
use dicomtap_wire::EngineConfig;

use super::EXIT_USAGE;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Validate statement files (or directories of *.toml): errors as `file:line: key:
    /// message` on standard error, one summary line per valid file. Exit 0 when all are
    /// valid, 2 otherwise.
    Check {
        /// Statement files or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Draft statements from conformance statement documents: a vendor's DICOM
    /// Conformance Statement as PDF, HTML, plain text, Markdown or reStructuredText, or a
    /// dcm4che device configuration (JSON); the format is told from the content. Every
    /// drafted claim records where in the document it was read (`[x.evidence]`), and the
    /// draft is validated before it is written. A document that cannot be read is an
    /// error naming the file; then nothing is written (exit 2).
    Import(super::import::Args),
    /// Predict, for every initiator/acceptor pair of AEs and every SOP class, whether
    /// presentation context negotiation succeeds and with which transfer syntax the
    /// acceptor answers, plus the differences that matter (PDU sizes, context limits,
    /// character sets, TLS, AE allow-lists, role selection, extended negotiation,
    /// storage commitment, compression). By default a summary: what fails or degrades,
    /// pair by pair, then what will negotiate and the totals.
    Diff {
        /// Two or more statement files (or directories of *.toml).
        #[arg(required = true, num_args = 1.., value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the full listing instead of the summary: the matrix, every pair SOP class
        /// by SOP class, drift between statements of the same AE title.
        #[arg(long, conflicts_with = "json")]
        detail: bool,
        /// Print the report as JSON (the full report, with the summary under `summary`).
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML matrix to this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Exit with status 1 when any pair has a predicted failure (a rejected association
        /// or presentation context, or a failure-level difference).
        #[arg(long)]
        fail_on_incompatible: bool,
    },
    /// Write the statement that captured traffic supports for one AE title: SOP classes,
    /// roles and transfer syntaxes negotiated and used, max PDU, implementation
    /// identity, character sets, private creators, statuses returned, async window, role
    /// selection. Diff it against the vendor's statement to see the drift.
    Infer {
        /// pcap or pcapng files.
        #[arg(required = true, value_name = "CAPTURE")]
        captures: Vec<PathBuf>,
        /// The AE title whose behaviour to infer.
        #[arg(long, value_name = "TITLE")]
        ae: String,
        /// Device name of the statement (default INFERRED_<TITLE>).
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
        /// A DICOM server port, to tell client from server when the handshake was not
        /// captured (repeatable; 104, 11112, 4242, 2761, 2762 are always known).
        #[arg(long = "port", value_name = "PORT")]
        ports: Vec<u16>,
        /// Write the statement here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Check { files } => check(&files),
        Sub::Import(a) => super::import::run(a),
        Sub::Diff {
            files,
            detail,
            json,
            html,
            fail_on_incompatible,
        } => diff_cmd(
            &files,
            DiffOutput { detail, json },
            html.as_deref(),
            fail_on_incompatible,
        ),
        Sub::Infer {
            captures,
            ae,
            device,
            ports,
            output,
        } => infer_cmd(&captures, &ae, device.as_deref(), &ports, output.as_deref()),
    }
}

/// Files named, with directories expanded to their *.toml files (sorted).
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "toml") && f.is_file())
                .collect();
            v.sort();
            if v.is_empty() {
                bail!(
                    "{}: no statement files (*.toml) in this directory",
                    p.display()
                );
            }
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub(super) fn print_diagnostics(d: &[Diagnostic]) {
    let mut err = std::io::stderr().lock();
    for x in d {
        let _ = writeln!(err, "{}", escape_controls(&x.to_string()));
    }
}

/// One line about a valid statement.
pub fn summary(s: &Statement) -> String {
    let aes: Vec<String> =
        s.ae.iter()
            .map(|a| {
                let mut roles = Vec::new();
                if a.initiator {
                    roles.push("initiator");
                }
                if a.acceptor {
                    roles.push("acceptor");
                }
                let scu = a.capability.iter().filter(|c| c.role == Role::Scu).count();
                let scp = a.capability.len() - scu;
                format!(
                    "{} ({}; {scu} SCU, {scp} SCP capabilities)",
                    a.title,
                    if roles.is_empty() {
                        "no role".to_owned()
                    } else {
                        roles.join(", ")
                    }
                )
            })
            .collect();
    format!(
        "{}: ok: device {}, {} AE{}: {}",
        s.origin(),
        s.device.name,
        s.ae.len(),
        if s.ae.len() == 1 { "" } else { "s" },
        aes.join("; ")
    )
}

fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = expand(files)?;
    let mut diags = Vec::new();
    let mut ok = Vec::new();
    for f in &files {
        match statement::load(f) {
            Ok(s) => ok.push(s),
            Err(e) => diags.extend(e.diagnostics()),
        }
    }
    // Loaded together as one site would be: devices unique, AEs told apart.
    let mut dup = statement::load::check_unique_devices(&ok);
    dup.extend(statement::load::check_distinguishable_aes(&ok));
    let dup_files: Vec<PathBuf> = dup.iter().map(|d| d.file.clone()).collect();
    diags.extend(dup);
    let mut out = std::io::stdout().lock();
    for s in ok
        .iter()
        .filter(|s| !s.path.as_ref().is_some_and(|p| dup_files.contains(p)))
    {
        writeln!(out, "{}", escape_controls(&summary(s)))?;
    }
    print_diagnostics(&diags);
    if diags.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        let bad: std::collections::BTreeSet<&PathBuf> = diags.iter().map(|d| &d.file).collect();
        say_err!(
            "{} error(s) in {} of {} file(s)",
            diags.len(),
            bad.len(),
            files.len()
        );
        Ok(ExitCode::from(EXIT_USAGE))
    }
}

pub(super) fn emit(text: &str, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("{}: cannot write", p.display()))
        }
        None => {
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}

/// Validates generated text by loading it back; a failure is a bug in the generator.
pub(super) fn verify(text: &str, name: &Path) -> anyhow::Result<()> {
    if let Err(e) = statement::parse(text, name) {
        print_diagnostics(&e.diagnostics());
        bail!("the generated statement does not validate (a dicomtap bug; please report it)");
    }
    Ok(())
}

fn diff_cmd(
    files: &[PathBuf],
    output: DiffOutput,
    html: Option<&Path>,
    fail: bool,
) -> anyhow::Result<ExitCode> {
    let files = expand(files)?;
    if files.len() < 2 {
        bail!("statement diff needs at least two statements");
    }
    let statements = match statement::load_files(&files) {
        Ok(s) => s,
        Err(e) => {
            print_diagnostics(&e.diagnostics());
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let report = diff::diff(&statements);
    let mut out = std::io::stdout().lock();
    if output.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let text = if output.detail {
            diff::to_text(&report)
        } else {
            diff::to_summary_text(&report)
        };
        out.write_all(escape_text(&text).as_bytes())?;
    }
    if let Some(p) = html {
        let page = diff::to_html_with(&report, &diff_html_options(&statements, &files));
        std::fs::write(p, page).with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if fail && report.has_failure() {
        return Ok(ExitCode::from(super::EXIT_FINDINGS));
    }
    Ok(ExitCode::SUCCESS)
}

/// Which text `statement diff` prints.
#[derive(Clone, Copy)]
struct DiffOutput {
    detail: bool,
    json: bool,
}

/// Title, generation time (UTC) and the statement files, for the HTML matrix.
fn diff_html_options(statements: &[Statement], files: &[PathBuf]) -> diff::HtmlOptions {
    let names: Vec<&str> = statements.iter().map(|s| s.device.name.as_str()).collect();
    let t = dicomtap_analyzer::text::UtcTime::now();
    diff::HtmlOptions {
        title: format!("dicomtap statement diff: {}", names.join(", ")),
        generated: Some(format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC by dicomtap {}",
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            env!("CARGO_PKG_VERSION")
        )),
        sources: files.iter().map(|f| f.display().to_string()).collect(),
    }
}

fn infer_cmd(
    captures: &[PathBuf],
    ae: &str,
    device: Option<&str>,
    ports: &[u16],
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let mut server_ports: Vec<u16> = DEFAULT_SERVER_PORTS.to_vec();
    server_ports.extend(ports);
    let cfg = CaptureConfig {
        server_ports,
        ..CaptureConfig::default()
    };
    let mut analysis = Analysis::new(EngineConfig::default(), Inference::new(ae));
    let mut sources = Vec::new();
    for path in captures {
        let mut reader = CaptureReader::open(path)
            .map(|r| r.with_config(cfg.clone()))
            .with_context(|| format!("{}: cannot read capture", path.display()))?;
        reader
            .process(&mut analysis)
            .with_context(|| format!("{}: cannot read capture", path.display()))?;
        analysis.next_capture();
        sources.push(path.display().to_string());
    }
    let inference = analysis.into_sink();
    if inference.associations() == 0 {
        say_err!(
            "dicomtap: AE title {} is not the calling or called AE of any association in {}",
            escape_controls(&format!("\"{ae}\"")),
            sources.join(", ")
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if let Some(problem) = statement::load::ae_title_problem(ae) {
        say_err!(
            "dicomtap: AE title {} of {} association(s) cannot be claimed by a statement: {problem}",
            escape_controls(&format!("\"{ae}\"")),
            inference.associations()
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let st = inference.statement(device, &sources);
    let header = vec![
        format!(
            "Inferred by dicomtap {} from captured traffic of AE {}.",
            env!("CARGO_PKG_VERSION"),
            st.ae.first().map_or(ae, |a| a.title.as_str())
        ),
        "It states what the traffic shows, no more: a SOP class never used is absent, a transfer"
            .into(),
        "syntax never proposed or accepted is absent. Diff it against the vendor's statement:"
            .into(),
        "  dicomtap statement diff vendor.toml this.toml".into(),
    ];
    let opts = write::WriteOptions {
        header,
        x: Some(inference.evidence_toml()),
    };
    let out = write::to_toml_with(&st, &opts);
    verify(&out, output.unwrap_or(Path::new("<infer>")))?;
    emit(&out, output)?;
    say_err!(
        "{}: {} association(s), {} capabilities",
        escape_controls(ae),
        inference.associations(),
        st.ae.first().map_or(0, |a| a.capability.len())
    );
    Ok(ExitCode::SUCCESS)
}
