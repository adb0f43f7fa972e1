//! Device statements from text: `statement::parse` (TOML, validation) and, when the text
//! is JSON, `statement::import::from_dcm4che` (a dcm4che device configuration).
//!
//! Input format: UTF-8 text (anything else is ignored), a statement TOML or a dcm4che
//! JSON (seeds in fuzz/seeds/statement: the bundled statements, the test fixtures).
//!
//! Checked besides "no panic": every diagnostic names the file; a statement that loads
//! is written back out (`write::to_toml`, documented to "load back to the same
//! statement") and must load back to a statement that writes the same text (source line
//! numbers, which the model keeps, necessarily differ), then the pair goes through `diff` and its text
//! and HTML renderings; an imported statement must write out to TOML that loads, and
//! load back equal to what was imported.
#![no_main]

#[path = "common/known.rs"]
mod known;

use std::path::Path;

use dicomtap_analyzer::statement::{self, Statement, StatementError, diff, import, write};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz.toml";

fn load(text: &str, what: &str) -> Result<Statement, StatementError> {
    let r = statement::parse(text, Path::new(NAME));
    if let Err(e) = &r {
        let diags = e.diagnostics();
        assert!(!diags.is_empty(), "{what}: an error without diagnostics");
        for d in diags {
            assert_eq!(
                d.file,
                Path::new(NAME),
                "{what}: diagnostic names another file"
            );
        }
    }
    r
}

fn round_trip(s: &Statement, what: &str) {
    let text = write::to_toml(s);
    let back = match load(&text, what) {
        Ok(b) => b,
        Err(e) => panic!("{what}: written statement does not load: {e:?}\n{text}"),
    };
    // Statements keep their source line numbers, which the writer cannot reproduce:
    // compare what they write instead.
    let again = write::to_toml(&back);
    if again != text {
        let diff: Vec<String> = text
            .lines()
            .zip(again.lines())
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .take(6)
            .map(|(i, (x, y))| format!("line {}: {x}  =>  {y}", i + 1))
            .collect();
        panic!(
            "{what}: written statement loads back different:\n{}\n{text}",
            diff.join("\n")
        );
    }
    let pair = [s.clone(), back];
    let report = diff::diff(&pair);
    let _ = diff::to_text(&report);
    let _ = diff::to_html(&report, "fuzz");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = load(text, "parsed") {
        round_trip(&s, "parsed");
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
        && let Ok(imported) = import::from_dcm4che(&json, "fuzz.json")
    {
        let mut s = imported.statement;
        s.path = Some(NAME.into());
        round_trip(&s, "imported");
    }
});
