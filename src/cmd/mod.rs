//! One module per subcommand. Exit codes: 0 clean, 1 findings at or above the chosen
//! severity, 2 usage or input error.

pub mod analyze;
pub mod demo;
pub mod export;
pub mod monitor;
pub mod pdu;
pub mod probe;
pub mod progress;
pub mod proxy;
pub mod replay;
pub mod rules;
pub mod statement;

/// Findings at or above the chosen severity.
#[allow(dead_code)]
pub const EXIT_FINDINGS: u8 = 1;
/// Usage or input error.
pub const EXIT_USAGE: u8 = 2;

/// Logs go to standard error so standard output stays machine-readable.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Creates (or truncates) a file readable and writable by its owner only: recordings,
/// event logs and exports hold patient data.
pub fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}
