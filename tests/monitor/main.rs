//! `dicomtap monitor` and its reports (docs/monitor.md): the HTML report in a headless
//! browser, metrics from a capture of real peers, the alert rules and dashboard, the
//! metrics over TLS.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod deploy;
mod metrics_tls;
mod report;

/// `dicomtap monitor INPUT FLAG --metrics 127.0.0.1:PORT` on a free port (FLAG is
/// `--no-follow` or `--rotated`): the process and its metrics port.
fn spawn_monitor(
    dir: &std::path::Path,
    input: &std::path::Path,
    flag: &str,
) -> (support::Proc, u16) {
    let port = support::free_port();
    let mon = support::Proc::spawn(
        "monitor",
        support::command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "monitor",
                input.to_str().unwrap(),
                flag,
                "--metrics",
                &format!("127.0.0.1:{port}"),
            ],
        ),
        dir,
    );
    (mon, port)
}
