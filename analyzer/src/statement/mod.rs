//! Device statements: the machine-readable conformance statements of
//! `shared/statement-format.md`. Validation (`load`, over the spanned TOML tree of
//! `tree`, with the vocabularies of `values`), files, directories and the checks across a
//! site's statements (`files`), the typed model (`model`), dcm4che import (`import`),
//! statement-to-statement compatibility (`diff`), inference from traffic (`infer`) and
//! writing statements back out (`write`). No sockets; file access only in `files`.

pub mod diff;
pub mod error;
mod files;
pub mod import;
pub mod infer;
pub mod load;
pub mod model;
mod tree;
mod values;
pub mod write;

pub use error::{Diagnostic, StatementError};
pub use load::{load, load_dir, load_files, parse};
pub use model::*;
