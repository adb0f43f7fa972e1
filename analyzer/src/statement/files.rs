//! Statement files and directories: reading a file within its size cap, loading several
//! together, and the checks across the statements of one site (unique device names, AE
//! titles the analyzer can tell apart). The only file access of the statement module.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::error::{Diagnostic, StatementError};
use super::load::parse;
use super::model::*;

/// Largest statement file read: real ones are a few kilobytes, and parsing holds several
/// times the text in memory (a 21.6 MB file took 784 MB).
pub const MAX_STATEMENT_BYTES: u64 = 1 << 20;

/// Loads and validates one statement file.
pub fn load(path: &Path) -> Result<Statement, StatementError> {
    use std::io::Read as _;
    let fail = |message: String| {
        StatementError::Invalid(vec![Diagnostic {
            file: path.to_owned(),
            line: 0,
            key: String::new(),
            message,
        }])
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut text = String::new();
    file.take(MAX_STATEMENT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_STATEMENT_BYTES {
        return Err(fail(format!(
            "larger than {} MiB; a device statement is a few kilobytes",
            MAX_STATEMENT_BYTES >> 20
        )));
    }
    parse(&text, path)
}

/// Loads several files; all problems of all files are reported together, and device
/// names must be unique among them.
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<Statement>, StatementError> {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        match load(p) {
            Ok(s) => out.push(s),
            Err(e) => diags.extend(e.diagnostics()),
        }
    }
    diags.extend(check_unique_devices(&out));
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(StatementError::Invalid(diags))
    }
}

/// Loads every `*.toml` file of a directory (not recursive), in name order: the
/// statements of one site, which the analyzer must be able to tell apart (device names
/// unique, and no AE title claimed twice without `hosts` or `port` to separate the two,
/// [`check_distinguishable_aes`]).
pub fn load_dir(dir: &Path) -> Result<Vec<Statement>, StatementError> {
    let io = |source| StatementError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
            paths.push(p);
        }
    }
    paths.sort();
    let statements = load_files(&paths)?;
    let diags = check_distinguishable_aes(&statements);
    if diags.is_empty() {
        Ok(statements)
    } else {
        Err(StatementError::Invalid(diags))
    }
}

/// Two AEs of different statements that the analyzer could not tell apart: the same AE
/// title, addresses that overlap (`hosts` absent on both, or an address in both) and no
/// port to separate them (both acceptors only, on different `port`s). Traffic of that
/// title would be checked against whichever file sorts first. An AE with `hosts` and one
/// without are told apart (the first takes its addresses, the second the rest), as are
/// two with disjoint `hosts`. One error per pair, on the later AE, naming both files.
pub fn check_distinguishable_aes(statements: &[Statement]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        for (ai, a) in s.ae.iter().enumerate() {
            let Some((first, fa)) = statements[..i].iter().find_map(|f| {
                f.ae.iter()
                    .find(|b| ae_title_eq(&a.title, &b.title) && indistinguishable(a, b))
                    .map(|b| (f, b))
            }) else {
                continue;
            };
            let hosts = if a.hosts.is_empty() && fa.hosts.is_empty() {
                "neither lists `hosts`".to_owned()
            } else {
                "their `hosts` overlap".to_owned()
            };
            diags.push(Diagnostic {
                file: s.path.clone().unwrap_or_default(),
                line: a.line,
                key: format!("ae[{ai}].title"),
                message: format!(
                    "AE title {} is also claimed by {}{} and {hosts}, so traffic of that \
                     title cannot be told apart between {} and {}; give each AE the `hosts` \
                     it uses (or, for acceptors, its `port`), or load only one of the two",
                    a.title.trim(),
                    first.origin(),
                    if fa.line > 0 {
                        format!(" (line {})", fa.line)
                    } else {
                        String::new()
                    },
                    first.device.name,
                    s.device.name,
                ),
            });
        }
    }
    diags
}

/// Whether the checker could tell `a` and `b` (same title) apart: see
/// [`check_distinguishable_aes`].
fn indistinguishable(a: &Ae, b: &Ae) -> bool {
    let same_host = |x: &str, y: &str| match (x.parse::<IpAddr>(), y.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => x.eq_ignore_ascii_case(y),
    };
    let hosts_overlap = (a.hosts.is_empty() && b.hosts.is_empty())
        || a.hosts
            .iter()
            .any(|x| b.hosts.iter().any(|y| same_host(x, y)));
    // A called AE is matched by its port too; a calling one only by its address.
    let ports_differ =
        matches!((a.port, b.port), (Some(p), Some(q)) if p != q) && !a.initiator && !b.initiator;
    hosts_overlap && !ports_differ
}

/// Device names must be unique among the statements loaded together.
pub fn check_unique_devices(statements: &[Statement]) -> Vec<Diagnostic> {
    let mut seen: HashMap<&str, &Statement> = HashMap::new();
    let mut diags = Vec::new();
    for s in statements {
        if let Some(first) = seen.get(s.device.name.as_str()) {
            diags.push(Diagnostic {
                file: s.path.clone().unwrap_or_default(),
                line: s.device_line,
                key: "device.name".into(),
                message: format!(
                    "device name {:?} is already used by {}; names must be unique among loaded statements",
                    s.device.name,
                    first.origin()
                ),
            });
        } else {
            seen.insert(&s.device.name, s);
        }
    }
    diags
}
