//! The documentation works as written: every ```sh block of README.md and docs/*.md runs
//! from a clean clone (in a scratch directory that links to the repository's files, with
//! `dicomtap` on the PATH) unless it is marked, on the line before it, with
//! `<!-- doc-test: skip (why) -->`: blocks that need root, a network interface, a daemon,
//! a device under test, or that run until stopped. And docs/statement-format.md names
//! every key the statement loader accepts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{run, temp_dir, workspace_dir};

struct Block {
    file: String,
    line: usize,
    code: String,
    skip: Option<String>,
}

fn doc_files() -> Vec<PathBuf> {
    let root = workspace_dir();
    let mut v = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

fn sh_blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let name = path
        .strip_prefix(workspace_dir())
        .unwrap_or(path)
        .display()
        .to_string();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() == "```sh" {
            let start = i;
            let mut code = String::new();
            i += 1;
            while i < lines.len() && !lines[i].starts_with("```") {
                code.push_str(lines[i]);
                code.push('\n');
                i += 1;
            }
            let skip = start
                .checked_sub(1)
                .and_then(|p| lines[p].trim().strip_prefix("<!-- doc-test: skip ("))
                .map(|r| {
                    let r = r.trim_end_matches(" -->");
                    r.strip_suffix(')').unwrap_or(r).to_string()
                });
            out.push(Block {
                file: name.clone(),
                line: start + 1,
                code,
                skip,
            });
        }
        i += 1;
    }
    out
}

#[test]
fn every_sh_block_of_the_docs_runs_or_says_why_not() {
    let tmp = temp_dir("docs-run");
    let dir = tmp.path();
    // A clean clone's files, without writing into the repository.
    let work = dir.join("clone");
    std::fs::create_dir(&work).unwrap();
    for e in std::fs::read_dir(workspace_dir()).unwrap().flatten() {
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), work.join(&name)).unwrap();
    }
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dicomtap"), bin.join("dicomtap")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    for file in doc_files() {
        for b in sh_blocks(&file) {
            let at = format!("{}:{}", b.file, b.line);
            if let Some(why) = b.skip {
                assert!(!why.trim().is_empty(), "{at}: a skipped block says why");
                skipped.push(format!("{at}: {why}"));
                continue;
            }
            // `cargo run --release -- X` is `dicomtap X` with the binary under test.
            let code = b.code.replace("cargo run --release -- ", "dicomtap ");
            let mut cmd = std::process::Command::new("bash");
            cmd.arg("-euo")
                .arg("pipefail")
                .arg("-c")
                .arg(&code)
                .current_dir(&work)
                .env("PATH", &path)
                // What the examples leave in the temp directory stays in the scratch one.
                .env("TMPDIR", dir);
            let out = run("doc-block", cmd, dir, Duration::from_secs(180));
            if !out.status.success() {
                failures.push(format!("{at}:\n{code}\n{}", out.text()));
            }
            ran.push(at);
        }
    }
    eprintln!("ran: {ran:#?}\nskipped: {skipped:#?}");
    assert!(ran.len() >= 3, "{ran:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every key list the loader passes to its `fields` check, read from its source.
fn loader_keys() -> Vec<String> {
    let src =
        std::fs::read_to_string(workspace_dir().join("analyzer/src/statement/load.rs")).unwrap();
    let mut keys = Vec::new();
    let mut rest = src.as_str();
    while let Some(at) = rest.find("self.fields(") {
        rest = &rest[at + "self.fields(".len()..];
        // The known keys: the first `&[ ... ]` of the call.
        let Some(open) = rest.find("&[") else { break };
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let list = &rest[open + 2..open + close];
        for part in list.split(',') {
            let k = part.trim().trim_matches('"');
            if !k.is_empty() {
                keys.push(k.to_string());
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn the_statement_format_page_names_every_key_the_loader_accepts() {
    let page = std::fs::read_to_string(workspace_dir().join("docs/statement-format.md")).unwrap();
    let keys = loader_keys();
    assert!(keys.len() > 40, "{keys:?}");
    for must in [
        "schema",
        "max_pdu_receive",
        "level_of_support",
        "report_on",
        "client_auth",
    ] {
        assert!(keys.iter().any(|k| k == must), "{must} in {keys:?}");
    }
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !page.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/statement-format.md does not describe {missing:?}"
    );
    // Its examples are valid: the full example statement loads.
    let example = format!(
        "{}\n{}\n{}\n{}",
        toml_block(&page, "schema = "),
        toml_block(&page, "[device]"),
        toml_block(&page, "[[ae]]"),
        toml_block(&page, "[[ae.capability]]")
    );
    let tmp = temp_dir("docs-format");
    let file = tmp.path().join("example.toml");
    std::fs::write(&file, &example).unwrap();
    if let Err(e) = dicomtap_analyzer::statement::load(&file) {
        panic!("the page's example does not load: {e}\n{example}");
    }
}

/// The ```toml block of `page` that starts with `first`.
fn toml_block(page: &str, first: &str) -> String {
    let key = format!("```toml\n{first}");
    let start = page.find(&key).map(|i| i + "```toml\n".len()).unwrap();
    let end = page[start..].find("```").unwrap() + start;
    page[start..end].to_string()
}
