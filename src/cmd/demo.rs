//! `dicomtap demo`: the embedded default, and the first command to run after cloning.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dicomtap_endpoints::demo::{DemoOptions, DemoReport, DemoSession};
use dicomtap_endpoints::peers::study::StudyOptions;
use dicomtap_proxy::config::PayloadMode;

#[derive(clap::Args)]
#[command(
    about = "Run the embedded default: a storage SCP, the proxy in front of it, a small study sent through it",
    long_about = "Starts an embedded storage SCP on 127.0.0.1, the dicomtap proxy in front of \
it (recording to pcapng + a JSON-lines event log, metrics on), then sends a C-ECHO and a small \
generated study (CT slices and a Secondary Capture, UTF-8 names) through the proxy from an \
embedded SCU. Prints the associations, negotiation and DIMSE exchanges the proxy saw, checks \
that every object arrived byte-identical, and says where the recording and metrics are.\n\n\
Nothing leaves the machine: every socket is on 127.0.0.1.\n\n\
Exit status: 0 when everything checked out, 1 when an object was not stored intact or the \
recording is missing, 2 when the demo could not run.\n\n\
Examples:\n  dicomtap demo\n  dicomtap demo --out ./demo --json\n  dicomtap demo --keep-running \
--port 11112 --metrics-port 9464"
)]
pub struct Args {
    /// Demo directory (recording in DIR/recording, the study as files in DIR/study);
    /// default: a fresh directory under the system temp directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// After the demo traffic, keep the proxy and SCP up (for storescu, echoscu, curl)
    /// until Ctrl-C or SIGTERM.
    #[arg(long)]
    keep_running: bool,
    /// Proxy port on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    port: u16,
    /// Metrics port on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    metrics_port: u16,
    /// Embedded SCP port on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    scp_port: u16,
    /// AE title of the embedded SCP (the called AE title to use).
    #[arg(long, value_name = "AE", default_value = "DEMO-SCP")]
    scp_ae: String,
    /// What the capture keeps: full, headers (no pixel data) or none (event log only).
    #[arg(long, value_name = "MODE", default_value = "full")]
    payload: PayloadMode,
    /// Number of CT slices in the generated study.
    #[arg(long, value_name = "N", default_value_t = 3)]
    slices: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.scp_ae.is_empty() || args.scp_ae.len() > 16 {
        anyhow::bail!("--scp-ae must be 1 to 16 characters");
    }
    let opts = DemoOptions {
        out_dir: args.out.clone(),
        proxy_port: args.port,
        metrics_port: args.metrics_port,
        scp_port: args.scp_port,
        scp_ae_title: args.scp_ae.clone(),
        payload: args.payload,
        study: StudyOptions {
            ct_slices: args.slices,
            ..StudyOptions::default()
        },
        ..DemoOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = runtime.block_on(demo(opts, args.keep_running, args.json))?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).context("serializing the report")?
        );
    } else if !args.keep_running {
        print!("{}", render(&report, false));
    } else {
        print!("{}", render_final(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FINDINGS)
    })
}

async fn demo(opts: DemoOptions, keep_running: bool, json: bool) -> anyhow::Result<DemoReport> {
    let mut session = DemoSession::start(opts)
        .await
        .context("starting the demo")?;
    if let Err(e) = session.exercise().await {
        let _ = session.finish().await;
        return Err(e).context("sending the demo traffic through the proxy");
    }
    if keep_running {
        let snapshot = session.snapshot().await;
        let text = format!(
            "{}{}",
            if json {
                String::new()
            } else {
                render(&snapshot, true)
            },
            keep_running_help(&snapshot)
        );
        // In JSON mode standard output carries only the final report.
        if json {
            say_err_inline!("{text}");
        } else {
            print!("{text}");
        }
        wait_for_stop().await?;
        say_err!("dicomtap demo: stopping (draining for up to 5 s)");
    }
    Ok(session.finish().await?)
}

async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}

fn keep_running_help(r: &DemoReport) -> String {
    let (host, port) = (r.proxy_listen.ip(), r.proxy_listen.port());
    let mut s = String::new();
    let _ = writeln!(s, "\nThe proxy and the SCP keep running. Try:");
    let _ = writeln!(s, "  echoscu -aec {} {host} {port}", r.scp_ae_title);
    let _ = writeln!(
        s,
        "  storescu -aec {} {host} {port} {}/*.dcm",
        r.scp_ae_title,
        r.study_dir.display()
    );
    if let Some(url) = &r.metrics_url {
        let _ = writeln!(s, "  curl {url}");
    }
    let _ = writeln!(s, "Ctrl-C stops them and closes the recording.");
    s
}

fn millis(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// The report as text. `live`: the proxy is still running (recording not yet closed).
fn render(r: &DemoReport, live: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "dicomtap demo: storage SCP \"{}\" on {}, proxy in front of it on {}",
        r.scp_ae_title, r.scp_listen, r.proxy_listen
    );
    let _ = writeln!(s, "  study {}", r.study_instance_uid);

    let _ = writeln!(s, "\nAssociations the proxy saw");
    if r.associations.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for a in &r.associations {
        let ends = match a.duration_us {
            Some(d) if !a.ended.is_empty() => format!("{} after {}", a.ended, millis(d)),
            _ if !a.ended.is_empty() => a.ended.clone(),
            _ => "open".into(),
        };
        let _ = writeln!(
            s,
            "  #{} {} -> {}  ({} -> {})  {}",
            a.id,
            a.calling_ae,
            a.called_ae,
            a.client.map(|c| c.to_string()).unwrap_or_default(),
            a.upstream.map(|c| c.to_string()).unwrap_or_default(),
            ends
        );
        let _ = writeln!(
            s,
            "     {} context(s) proposed, {} accepted, {} rejected",
            a.proposed_contexts,
            a.accepted_contexts.len(),
            a.rejected_contexts.len()
        );
        for c in a.accepted_contexts.iter().chain(&a.rejected_contexts) {
            let ts = c
                .transfer_syntax_name
                .clone()
                .or_else(|| c.transfer_syntax.clone())
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "     pc {:<3} {:<12} {:<32} {}",
                c.id, c.result, c.sop_class, ts
            );
        }
        for x in &a.exchanges {
            let _ = writeln!(
                s,
                "     {:<8} msg {:<3} {:<32} {} {:<8} {}",
                x.command,
                x.message_id.map(|m| m.to_string()).unwrap_or("-".into()),
                x.sop_class.as_deref().unwrap_or("-"),
                x.status.as_deref().unwrap_or("----"),
                x.status_class.as_deref().unwrap_or("no-rsp"),
                x.latency_us.map(millis).unwrap_or_default()
            );
        }
        for d in &a.datasets {
            let charset = if d.specific_character_set.is_empty() {
                "default repertoire".to_string()
            } else {
                d.specific_character_set.join("\\")
            };
            let check = if !d.unchecked_character_sets.is_empty() {
                format!("unchecked: {}", d.unchecked_character_sets.join(", "))
            } else if d.invalid_text_values == 0 {
                "all text valid".to_string()
            } else {
                format!("{} text value(s) INVALID", d.invalid_text_values)
            };
            let _ = writeln!(
                s,
                "     data set msg {:<3} {:<32} {:<4} {charset}: {check}",
                d.message_id.map(|m| m.to_string()).unwrap_or("-".into()),
                d.sop_class.as_deref().unwrap_or("-"),
                d.modality.as_deref().unwrap_or("-"),
            );
        }
        for n in &a.notes {
            let _ = writeln!(s, "     note: {n}");
        }
    }
    if r.events_lost > 0 {
        let _ = writeln!(s, "  ({} events missed by this report)", r.events_lost);
    }

    let stored = r
        .objects
        .iter()
        .filter(|o| o.status.as_deref() == Some("0000"))
        .count();
    let identical = r.objects.iter().filter(|o| o.byte_identical).count();
    let _ = writeln!(
        s,
        "\nObjects: {} sent, {} stored with Success, {} byte-identical at the SCP",
        r.objects.len(),
        stored,
        identical
    );
    for o in &r.objects {
        let _ = writeln!(
            s,
            "  {:<30} {:<9} {:<26} {:>5} {} {}",
            o.sop_class,
            size(o.bytes),
            o.transfer_syntax_name
                .as_deref()
                .unwrap_or(&o.transfer_syntax),
            o.status.as_deref().unwrap_or("----"),
            if o.byte_identical {
                "identical"
            } else if o.received {
                "DIFFERENT"
            } else {
                "NOT RECEIVED"
            },
            o.error.as_deref().unwrap_or("")
        );
    }

    let _ = writeln!(
        s,
        "\nRecording in {}{}",
        r.recording_dir.display(),
        if live { " (still being written)" } else { "" }
    );
    for f in &r.recording_files {
        let mode = f.mode.map(|m| format!("mode {m:o}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<7} {}  {}  {}",
            f.kind,
            f.path.display(),
            size(f.bytes),
            mode
        );
    }
    if let Some(p) = r.recording_files.iter().find(|f| f.kind == "pcapng") {
        let _ = writeln!(
            s,
            "  open it: wireshark {}   or: tshark -r {} -d tcp.port=={},dicom -Y dicom",
            p.path.display(),
            p.path.display(),
            r.scp_listen.port()
        );
    }
    let _ = writeln!(s, "  study files: {}", r.study_dir.display());

    if let Some(url) = &r.metrics_url {
        let _ = writeln!(
            s,
            "\nMetrics at {url}{}",
            if live {
                ""
            } else {
                " (fetched before shutdown)"
            }
        );
        for l in &r.metric_lines {
            let _ = writeln!(s, "  {l}");
        }
    }
    let _ = writeln!(
        s,
        "\n{}",
        if r.ok {
            "Result: OK, every object went through the proxy intact and was recorded."
        } else {
            "Result: FAILED, see above."
        }
    );
    s
}

/// After `--keep-running`: what happened in total.
fn render_final(r: &DemoReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "dicomtap demo: stopped after {} association(s)",
        r.associations.len()
    );
    for a in &r.associations {
        let stores = a
            .exchanges
            .iter()
            .filter(|x| x.command == "C-STORE")
            .count();
        let others = a.exchanges.len() - stores;
        let _ = writeln!(
            s,
            "  #{} {} -> {}: {} C-STORE, {} other exchange(s), {}",
            a.id,
            a.calling_ae,
            a.called_ae,
            stores,
            others,
            if a.ended.is_empty() { "open" } else { &a.ended }
        );
    }
    let _ = writeln!(
        s,
        "  the SCP received {} object(s) in all",
        r.scp_received_objects
    );
    for f in &r.recording_files {
        let _ = writeln!(s, "  recorded {} ({})", f.path.display(), size(f.bytes));
    }
    let _ = writeln!(s, "{}", if r.ok { "Result: OK" } else { "Result: FAILED" });
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_well() {
        assert_eq!(super::size(10), "10 B");
        assert_eq!(super::size(8192), "8.0 KiB");
        assert_eq!(super::millis(1500), "1.5 ms");
    }
}
