//! One module per subcommand. Exit codes: 0 clean, 1 findings at or above the chosen
//! severity, 2 usage or input error.

pub mod analyze;
pub mod demo;
pub mod export;
pub mod fleet;
pub mod import;
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
    // Colours only on a terminal: a log written to a file, a pipe or the journal must not
    // carry ANSI escape codes.
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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

/// RFC 3339 UTC (`2026-11-27T08:00:00Z`, fractional seconds allowed) or UNIX seconds, to
/// microseconds since the epoch; for the `--since`/`--until` options.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let err = || format!("{s:?} is not RFC 3339 UTC (2026-11-27T08:00:00Z) or UNIX seconds");
    if let Ok(secs) = s.parse::<f64>() {
        return if secs.is_finite() && (0.0..1e13).contains(&secs) {
            Ok((secs * 1e6) as u64)
        } else {
            Err(err())
        };
    }
    let rest = s.strip_suffix('Z').ok_or_else(err)?;
    let (date, time) = rest.split_once('T').ok_or_else(err)?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let numbers = |text: &str, sep: char| -> Result<Vec<i64>, String> {
        text.split(sep)
            .map(|p| {
                if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    Err(err())
                } else {
                    p.parse().map_err(|_| err())
                }
            })
            .collect()
    };
    let [y, m, day] = numbers(date, '-')?[..] else {
        return Err(err());
    };
    let [hh, mm, ss] = numbers(hms, ':')?[..] else {
        return Err(err());
    };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return Err(err());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let micros: u64 = format!("{:0<6}", &frac[..frac.len().min(6)])
        .parse()
        .map_err(|_| err())?;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .map(|s| s * 1_000_000 + micros)
        .map_err(|_| err())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(
            super::parse_time("2026-11-26T23:00:00.123456Z"),
            Ok(1_795_734_000_123_456)
        );
        assert_eq!(super::parse_time("10"), Ok(10_000_000));
        assert!(super::parse_time("yesterday").is_err());
        assert!(super::parse_time("2026-11-26T23:00:00.ééZ").is_err());
        assert!(super::parse_time("99999999-01-01T00:00:00Z").is_err());
        assert!(super::parse_time("-5").is_err());
    }
}
