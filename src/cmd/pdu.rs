//! `dicomtap pdu`: decode a raw one-direction byte stream (a TCP payload saved from
//! Wireshark's "Follow TCP stream", `tshark -e tcp.payload`, or a hex dump) and print
//! the events the engine sees in it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use dicomtap_wire::{Conversation, EngineConfig, EventKind, Severity, Side, StreamEnd};

#[derive(clap::Args)]
pub struct Args {
    /// File holding the bytes of one direction of an association (`-` for standard input).
    file: PathBuf,
    /// The file holds hexadecimal text (whitespace, colons and a leading 0x ignored).
    #[arg(long)]
    hex: bool,
    /// Who sent these bytes: the association requestor or the acceptor.
    #[arg(long, value_enum, default_value = "requestor")]
    from: From,
    /// Print the events as JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// The stream starts at an unknown position: scan for the first PDU boundary.
    #[arg(long)]
    resync: bool,
    /// Exit with status 1 when a finding at or above this severity is seen.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// Bytes buffered for an association PDU before it is skipped undecoded.
    #[arg(long, default_value_t = 1 << 20)]
    max_association_pdu: u32,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum From {
    Requestor,
    Acceptor,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let mut raw = Vec::new();
    if name == "-" {
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("reading standard input")?;
    } else {
        raw = std::fs::read(&args.file).with_context(|| format!("{name}: cannot read"))?;
    }
    let bytes = if args.hex {
        parse_hex(&raw).map_err(|e| anyhow::anyhow!("{name}: {e}"))?
    } else {
        raw
    };
    if bytes.is_empty() {
        anyhow::bail!(
            "{name}: no bytes to decode (the input is empty{})",
            if args.hex {
                " or holds no hexadecimal digits"
            } else {
                ""
            }
        );
    }
    let from = match args.from {
        From::Requestor => Side::Requestor,
        From::Acceptor => Side::Acceptor,
    };
    let config = EngineConfig {
        max_association_pdu: args.max_association_pdu,
        ..EngineConfig::default()
    };
    let mut conv = Conversation::new(config);
    if args.resync {
        conv.resynchronize(from);
    }
    conv.feed(from, 0, &bytes);
    conv.end(from, 0, StreamEnd::Close);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut worst: Option<Severity> = None;
    while let Some(event) = conv.poll() {
        if let EventKind::Finding(f) = &event.kind {
            worst = worst.max(Some(f.severity));
        }
        if args.json {
            serde_json::to_writer(&mut out, &event)?;
            writeln!(out)?;
        } else {
            for line in dicomtap_analyzer::text::describe(&event) {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    match (args.fail_on, worst) {
        (Some(threshold), Some(w)) if w >= threshold => Ok(ExitCode::from(super::EXIT_FINDINGS)),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Hex text to bytes; the error names the offset of the first character that is not hex.
fn parse_hex(text: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c == b'0' && matches!(text.get(i + 1), Some(b'x' | b'X')) && high.is_none() {
            i += 2;
            continue;
        }
        if c.is_ascii_whitespace() || c == b':' || c == b',' {
            i += 1;
            continue;
        }
        let Some(v) = (c as char).to_digit(16) else {
            bail!(
                "byte offset {i}: '{}' is not a hexadecimal digit",
                c as char
            );
        };
        match high.take() {
            None => high = Some(v as u8),
            Some(h) => out.push(h << 4 | v as u8),
        }
        i += 1;
    }
    if high.is_some() {
        bail!(
            "byte offset {}: odd number of hexadecimal digits",
            text.len()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_parsing() {
        assert_eq!(
            super::parse_hex(b"0x01 02:0a\nFF").ok(),
            Some(vec![1, 2, 10, 255])
        );
        let err = super::parse_hex(b"01 0g")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("byte offset 4"), "{err}");
        assert!(super::parse_hex(b"012").is_err());
    }
}
