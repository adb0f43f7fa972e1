//! `dicomtap replay`: re-send the requestor side of recorded associations to a target and
//! report how the target's answers differ from the original acceptor's.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use dicomtap_analyzer::text::escape_text;
use dicomtap_endpoints::replay::{self, ReplayOptions};

#[derive(clap::Args)]
#[command(
    long_about = "Re-send the requestor side of recorded associations (pcap/pcapng with \
full payload, e.g. a dicomtap proxy recording or tcpdump -s 0) to a target, PDU by PDU: the \
A-ASSOCIATE-RQ (AE titles optionally rewritten), then every P-DATA and release PDU. Before each \
PDU the replay waits until the target has given as many answers (A-ASSOCIATE-AC, final DIMSE \
responses) as the original acceptor had at that point. The report compares association result, \
accepted contexts and transfer syntaxes, DIMSE statuses per message ID, sub-operation counts and \
timing.\n\nIncomplete recordings (capture gaps, snapped payload, capture started mid-association) \
are refused per association with the reason. The capture's original destination is refused \
unless --allow-original-destination is given.\n\nExit codes: 0 no differences, 1 differences or \
associations that could not be replayed, 2 usage or input error."
)]
pub struct Args {
    /// The capture file (pcap or pcapng).
    capture: PathBuf,
    /// Where to send: HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    to: String,
    /// Only this association (the number `dicomtap analyze` shows); repeatable.
    #[arg(long = "association", value_name = "ID")]
    associations: Vec<u64>,
    /// Only associations that started at or after this time (RFC 3339 UTC or UNIX seconds).
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    since: Option<u64>,
    /// Only associations that started before this time.
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    until: Option<u64>,
    /// Send as fast as the target answers, instead of the original pacing.
    #[arg(long)]
    fast: bool,
    /// Rewrite the calling AE title of the A-ASSOCIATE-RQ.
    #[arg(long, value_name = "TITLE")]
    calling_ae: Option<String>,
    /// Rewrite the called AE title of the A-ASSOCIATE-RQ.
    #[arg(long, value_name = "TITLE")]
    called_ae: Option<String>,
    /// Print what would be sent, and when; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// JSON output (one object per association, as a JSON array).
    #[arg(long)]
    json: bool,
    /// Allow sending to the address the capture's associations went to.
    #[arg(long)]
    allow_original_destination: bool,
    /// Seconds to wait for each expected answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    timeout: f64,
}

fn check_title(t: &Option<String>) -> anyhow::Result<()> {
    if let Some(t) = t
        && (t.is_empty() || t.len() > 16 || !t.is_ascii())
    {
        bail!("AE title {t:?} must be 1 to 16 ASCII characters");
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_title(&args.calling_ae)?;
    check_title(&args.called_ae)?;
    let to: SocketAddr = args
        .to
        .to_socket_addrs()
        .with_context(|| format!("--to {}: not a HOST:PORT", args.to))?
        .next()
        .with_context(|| format!("--to {}: no address", args.to))?;
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    let opts = ReplayOptions {
        to,
        fast: args.fast,
        calling_ae: args.calling_ae.clone(),
        called_ae: args.called_ae.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        allow_original_destination: args.allow_original_destination,
        capture_destinations: Vec::new(),
    };
    let name = args.capture.display().to_string();
    let recorded =
        replay::load(&args.capture).with_context(|| format!("{name}: cannot read the capture"))?;
    let mut opts = opts;
    opts.capture_destinations = recorded.iter().map(|r| r.server).collect();
    opts.capture_destinations.sort();
    opts.capture_destinations.dedup();
    let missing: Vec<String> = args
        .associations
        .iter()
        .filter(|id| !recorded.iter().any(|r| r.id == **id))
        .map(|id| id.to_string())
        .collect();
    if !missing.is_empty() {
        let known = match (recorded.first(), recorded.last()) {
            (Some(a), Some(b)) => format!("it has associations {} to {}", a.id, b.id),
            _ => "it has no DICOM association".to_string(),
        };
        anyhow::bail!(
            "{name}: --association {}: no such association ({known}, numbered as \
             `dicomtap analyze` shows them)",
            missing.join(", ")
        );
    }
    let selected: Vec<_> = recorded
        .into_iter()
        .filter(|r| args.associations.is_empty() || args.associations.contains(&r.id))
        .filter(|r| {
            args.since.is_none_or(|t| r.first_ts_us >= t)
                && args.until.is_none_or(|t| r.first_ts_us < t)
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if selected.is_empty() {
        writeln!(out, "{name}: no association matches")?;
        return Ok(ExitCode::from(super::EXIT_FINDINGS));
    }
    if args.dry_run {
        let mut text = String::new();
        for r in &selected {
            replay::dry_run_text(r, &opts, &mut text);
        }
        out.write_all(escape_text(&text).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut results = Vec::new();
    for r in &selected {
        let res = replay::replay_one(r, &opts);
        if !args.json {
            let mut text = String::new();
            replay::to_text(&res, &mut text);
            out.write_all(escape_text(&text).as_bytes())?;
            out.flush()?;
        }
        results.push(res);
    }
    let bad = results
        .iter()
        .filter(|r| {
            r.refused.is_some()
                || !r.problems.is_empty()
                || !r.skipped.is_empty()
                || !r.differences.is_empty()
        })
        .count();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &results)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} associations: {} replayed without differences, {} with differences or problems, {} refused",
            results.len(),
            results
                .iter()
                .filter(|r| r.refused.is_none()
                    && r.problems.is_empty()
                    && r.skipped.is_empty()
                    && r.differences.is_empty())
                .count(),
            results
                .iter()
                .filter(|r| r.refused.is_none()
                    && (!r.problems.is_empty()
                        || !r.skipped.is_empty()
                        || !r.differences.is_empty()))
                .count(),
            results.iter().filter(|r| r.refused.is_some()).count(),
        )?;
    }
    Ok(if bad > 0 {
        ExitCode::from(super::EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}
