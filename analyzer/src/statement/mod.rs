//! Device statements: the machine-readable conformance statements of
//! `shared/statement-format.md`. Loading and validation (`load`), the typed model
//! (`model`), dcm4che import (`import`), statement-to-statement compatibility
//! (`diff`), inference from traffic (`infer`) and writing statements back out (`write`).
//! No sockets; file access only in `load`.

pub mod diff;
pub mod error;
pub mod import;
pub mod infer;
pub mod load;
pub mod model;
pub mod write;

pub use error::{Diagnostic, StatementError};
pub use load::{load, load_dir, load_files, parse};
pub use model::*;
