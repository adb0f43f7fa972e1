//! Errors of loading statements: every one names the file, the line, the key path and
//! what was expected.

use std::fmt;
use std::path::PathBuf;

/// One problem in a statement file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file (unreadable, ...).
    pub line: usize,
    /// Key path such as `ae[0].capability[2].transfer_syntaxes[1]`; empty for the file.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Loading one or several statements failed.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// A directory could not be listed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One or more files are invalid (or unreadable); all problems found, in file order.
    #[error("{}", Lines(.0))]
    Invalid(Vec<Diagnostic>),
}

impl StatementError {
    /// The diagnostics (an I/O error becomes one for its path).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            StatementError::Io { path, source } => vec![Diagnostic {
                file: path.clone(),
                line: 0,
                key: String::new(),
                message: source.to_string(),
            }],
            StatementError::Invalid(d) => d.clone(),
        }
    }
}

struct Lines<'a>(&'a [Diagnostic]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
