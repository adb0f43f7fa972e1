//! The `dicomtap` command line: clap subcommands, each handed to its module in `cmd/`.

/// `eprintln!` that never panics: with stderr closed (a pipe whose reader is gone) the
/// message is lost instead of the process dying with exit status 101.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics: a standard output closed by its reader (`| head`, a
/// supervisor that dropped the pipe) must not bring a running proxy down.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see [`say_err!`]).
macro_rules! say_err_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// DICOM protocol proxy, traffic recorder and conformance analyzer.
#[derive(Parser)]
#[command(name = "dicomtap", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info` or `dicomtap_proxy=debug`.
    #[arg(long, global = true, env = "DICOMTAP_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// `about` rather than doc comments: a doc comment here would also replace the
// subcommand's own long_about (its full --help text) with this one line.
enum Command {
    #[command(about = "Analyze captures: one line per association, details, JSON")]
    Analyze(cmd::analyze::Args),
    #[command(
        about = "Run the embedded default: a storage SCP, the proxy in front of it, a small study sent through it"
    )]
    Demo(cmd::demo::Args),
    #[command(
        about = "Write every C-STORE object in captures as a Part-10 file; report incomplete ones"
    )]
    Export(cmd::export::Args),
    #[command(
        about = "The fleet's central consumer: events of every site from NATS JetStream, checks across sites, fleet metrics and report"
    )]
    Fleet(cmd::fleet::Args),
    #[command(
        about = "Passive monitoring: read a capture stream continuously and serve Prometheus metrics"
    )]
    Monitor(cmd::monitor::Args),
    #[command(about = "Decode a raw one-direction DICOM byte stream and print its events")]
    Pdu(cmd::pdu::Args),
    #[command(
        about = "Actively test a live DICOM device against its statement: echo, contexts, store, commitment, Q/R.."
    )]
    Probe(cmd::probe::Args),
    #[command(about = "Run the transparent proxy: forward, record, export metrics")]
    Proxy(cmd::proxy::Args),
    #[command(
        about = "Re-send recorded associations to a target and diff its answers against the original"
    )]
    Replay(cmd::replay::Args),
    #[command(
        about = "List the conformance rules `analyze --statements` checks: id, severity, why it matters"
    )]
    Rules(cmd::rules::Args),
    #[command(
        about = "Device statements: check, import from dcm4che, diff (compatibility matrix), infer from traffic"
    )]
    Statement(cmd::statement::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cmd::init_logging(&cli.log);
    let result = match cli.command {
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Fleet(args) => cmd::fleet::run(args),
        Command::Monitor(args) => cmd::monitor::run(args),
        Command::Pdu(args) => cmd::pdu::run(args),
        Command::Probe(args) => cmd::probe::run(args),
        Command::Proxy(args) => cmd::proxy::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Rules(args) => cmd::rules::run(args),
        Command::Statement(args) => cmd::statement::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Errors may quote the wire (a capture's AE title, a peer's comment).
            let text = format!("{err:#}");
            say_err!("dicomtap: {}", dicomtap_analyzer::text::escape_text(&text));
            ExitCode::from(cmd::EXIT_USAGE)
        }
    }
}

/// Output piped into `head` and closed early is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let io = e.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        let json = e
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}
