//! `dicomtap-draft`: a device statement drafted from a vendor's DICOM Conformance
//! Statement document (PS3.2 layout) as PDF, HTML or plain text / Markdown /
//! reStructuredText.
//!
//! Two stages, so each can be tested on its own:
//! - [`read`] turns a document into a [`Document`]: headings, lines of running text and
//!   tables (rows and cells), every piece with its [`Loc`] (page and line, section, table);
//! - the drafter reads a [`Document`] against the DICOM registry and produces a statement
//!   whose every claim carries its evidence, plus a review report.
//!
//! Nothing here opens a socket; file access is limited to reading the input.

pub mod document;
pub mod drafter;
pub mod names;
pub mod read;
pub mod score;

pub use document::{Block, Document, Format, Loc, Row, Table};
pub use drafter::{DraftError, Drafted, Report, draft, draft_named};
pub use read::{ReadError, read_bytes, read_file};
