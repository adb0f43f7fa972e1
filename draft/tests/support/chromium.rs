//! Headless Chromium as a PDF printer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium binary, if one is installed.
pub fn find() -> Option<PathBuf> {
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Says why a test is skipped and returns `None` when Chromium is missing.
pub fn require() -> Option<PathBuf> {
    let found = find();
    if found.is_none() {
        eprintln!(
            "SKIPPED: chromium is not installed (scripts/install-test-peers.sh installs it); \
             the PDF tests render their documents with it"
        );
    }
    found
}

/// How the page is printed.
#[derive(Debug, Clone, Copy)]
pub struct Print {
    /// Keep Chromium's default header (date, title) and footer (URL, "n/N").
    pub header_footer: bool,
    /// How long Chromium may take before it is stopped.
    pub timeout: Duration,
}

impl Default for Print {
    fn default() -> Self {
        Print {
            header_footer: false,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Prints `html` to PDF with the Chromium at `chromium` and returns the PDF's bytes.
/// The HTML is written to `dir/name.html` and the PDF to `dir/name.pdf`.
pub fn print(
    chromium: &Path,
    html: &str,
    dir: &Path,
    name: &str,
    opts: Print,
) -> Result<Vec<u8>, String> {
    let html_path = dir.join(format!("{name}.html"));
    let pdf_path = dir.join(format!("{name}.pdf"));
    std::fs::write(&html_path, html)
        .map_err(|e| format!("writing {}: {e}", html_path.display()))?;
    let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.path().display()));
    if !opts.header_footer {
        cmd.arg("--no-pdf-header-footer");
    }
    cmd.arg(format!("--print-to-pdf={}", pdf_path.display()));
    cmd.arg(format!("file://{}", html_path.display()));
    let log_path = dir.join(format!("{name}.chromium.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| format!("chromium log: {e}"))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let mut child = cmd.spawn().map_err(|e| format!("starting chromium: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > opts.timeout => {
                // Stop the Chromium this test started (by its PID, through the handle).
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("chromium took more than {:?}", opts.timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for chromium: {e}")),
        }
    };
    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        return Err(format!("chromium failed ({status}): {stderr}"));
    }
    std::fs::read(&pdf_path).map_err(|e| format!("chromium wrote no PDF ({e}): {stderr}"))
}
