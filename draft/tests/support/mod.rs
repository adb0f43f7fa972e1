//! Test support: real conformance statement content laid out as a PS3.2 document and
//! printed to PDF by headless Chromium, so the PDF reader is tested on what a real
//! renderer produces (positioned glyph runs, repeated table headers, page headers and
//! footers), not on hand-made PDF syntax.

#![allow(dead_code)]

pub mod chromium;
pub mod statement;
