//! `dicomtap rules`: the conformance rule catalogue (what `analyze --statements` checks).

use std::io::Write;
use std::process::ExitCode;

use dicomtap_analyzer::conformance::rules::CATALOGUE;

#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON array: id, severity, claim, summary, why, detection, remedy.
    #[arg(long)]
    json: bool,
    /// Show one rule in full (how it is detected, what to do).
    #[arg(value_name = "RULE")]
    rule: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let rules: Vec<_> = match &args.rule {
        Some(id) => {
            let found: Vec<_> = CATALOGUE.iter().filter(|r| r.id_str() == id).collect();
            if found.is_empty() {
                anyhow::bail!("no rule {id:?}; `dicomtap rules` lists them");
            }
            found
        }
        None => CATALOGUE.iter().collect(),
    };
    if args.json {
        let v: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id_str(),
                    "severity": r.severity,
                    "claim": r.claim,
                    "summary": r.summary,
                    "why": r.why,
                    "detection": r.detection,
                    "remedy": r.remedy,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for (i, r) in rules.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(
                out,
                "{:<38} {:<7} {}",
                r.id_str(),
                r.severity.to_string(),
                r.summary
            )?;
            writeln!(out, "{:<38} {:<7} statement key: {}", "", "", r.claim)?;
            writeln!(out, "{:<38} {:<7} why it matters: {}", "", "", r.why)?;
            if args.rule.is_some() {
                writeln!(
                    out,
                    "\nhow it is detected: {}\n\nwhat to do: {}",
                    r.detection, r.remedy
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
