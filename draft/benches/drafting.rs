//! Drafting benchmark: for every real document of `tests/fixtures` (and the PDFs made from
//! them, when headless Chromium is there), the time to read and draft it (median of
//! several runs), the peak memory of a process that drafts only it, and the accuracy
//! against the reference statements of `tests/gold`: (SOP class, role) recall and
//! precision, transfer syntax recall and precision per capability, private UIDs kept.
//!
//! `cargo bench -p dicomtap-draft --bench drafting` (add `-- --runs N`, default 5).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dicomtap_analyzer::statement;
use dicomtap_draft::{draft, read_file, score};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// (document, reference) pairs.
fn documents() -> Vec<(PathBuf, Option<&'static str>)> {
    let f = root().join("tests/fixtures");
    vec![
        (
            f.join("orthanc/DicomConformanceStatement-2021.txt"),
            Some("orthanc-2021"),
        ),
        (
            f.join("orthanc/DicomConformanceStatement-2016.txt"),
            Some("orthanc-2016"),
        ),
        (f.join("dcmtk/storescp.man"), Some("dcmtk-storescp")),
        (f.join("dcmtk/dcmqrscp.man"), Some("dcmtk-dcmqrscp")),
        (
            f.join("pynetdicom/storescp.rst"),
            Some("pynetdicom-storescp"),
        ),
        (f.join("pynetdicom/qrscp.rst"), Some("pynetdicom-qrscp")),
    ]
}

fn gold(name: &str) -> Option<(statement::Statement, Vec<String>)> {
    let printed = PRINTED_GOLD.with(|m| {
        m.borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
    });
    let path = printed.unwrap_or_else(|| root().join("tests/gold").join(format!("{name}.toml")));
    let text = std::fs::read_to_string(&path).ok()?;
    let st = statement::parse(&text, &path).ok()?;
    let raw: toml::Table = toml::from_str(&text).ok()?;
    let unscored = raw
        .get("x")
        .and_then(|x| x.get("ts_not_stated"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some((st, unscored))
}

/// Peak resident memory of this process so far, in KiB (Linux `VmHWM`).
fn peak_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child mode: draft one document and print the peak memory.
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let Some(p) = args.get(i + 1) else { return };
        let ok = read_file(Path::new(p))
            .ok()
            .and_then(|d| draft(&d).ok())
            .is_some();
        println!("{} {}", u8::from(ok), peak_kib().unwrap_or(0));
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);
    let me = std::env::current_exe().ok();
    println!(
        "{:<44} {:>6} {:>5} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "document",
        "format",
        "pages",
        "median_s",
        "peak_MiB",
        "cap_rec",
        "cap_pre",
        "ts_rec",
        "ts_pre",
        "private"
    );
    let mut docs = documents();
    docs.extend(extra_documents());
    for (path, gold_name) in docs {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            let d = read_file(&path).ok();
            let dr = d.as_ref().and_then(|d| draft(d).ok());
            times.push(t.elapsed().as_secs_f64());
            last = d.zip(dr);
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
        let peak = me.as_ref().and_then(|exe| {
            let out = Command::new(exe).arg("--one").arg(&path).output().ok()?;
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            s.split_whitespace().nth(1)?.parse::<f64>().ok()
        });
        let name = match path.strip_prefix(root().join("tests/fixtures")) {
            Ok(p) => p.display().to_string(),
            Err(_) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let Some((doc, drafted)) = last else {
            println!("{name:<44} failed to draft");
            continue;
        };
        let sc = gold_name
            .and_then(gold)
            .map(|(g, u)| score::score(&drafted.statement, &g, &u));
        let f = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        println!(
            "{name:<44} {:>6} {:>5} {median:>9.4} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
            doc.format.as_str(),
            doc.pages.map_or_else(|| "-".into(), |p| p.to_string()),
            peak.map_or_else(|| "-".into(), |k| format!("{:.1}", k / 1024.0)),
            f(sc.as_ref().map(score::Score::cap_recall)),
            f(sc.as_ref().map(score::Score::cap_precision)),
            f(sc.as_ref().map(score::Score::ts_recall)),
            f(sc.as_ref().map(score::Score::ts_precision)),
            f(sc.as_ref().map(score::Score::private_kept)),
        );
    }
}

/// PDFs printed by headless Chromium from Orthanc's statement laid out as PS3.2: the
/// statement itself (about 28 pages) and a long one (six AEs, about 300 pages), each with
/// a reference statement of what was printed (in a temporary directory that lives as long
/// as the process).
fn extra_documents() -> Vec<(PathBuf, Option<&'static str>)> {
    use support::statement::{Layout, Orthanc};
    let Some(chromium) = support::chromium::find() else {
        eprintln!("no chromium: PDFs not measured");
        return Vec::new();
    };
    let Ok(dir) = tempfile::tempdir() else {
        return Vec::new();
    };
    let dir = dir.keep();
    let orthanc = Orthanc::load("2021");
    let mut out = Vec::new();
    for (name, layout) in [
        ("orthanc-ps32", Layout::default()),
        (
            "orthanc-ps32-300-pages",
            Layout {
                aes: 6,
                min_compressed: 8,
                max_compressed: 12,
                rows_unbroken: false,
            },
        ),
    ] {
        let printed = support::statement::build(&orthanc, &layout);
        let opts = support::chromium::Print {
            timeout: Duration::from_secs(900),
            ..support::chromium::Print::default()
        };
        if let Err(e) = support::chromium::print(&chromium, &printed.html, &dir, name, opts) {
            eprintln!("{name}: {e}");
            continue;
        }
        // The reference: every printed presentation context row.
        let mut toml = String::from(
            "schema = \"dicomtap-statement/1\"\n[device]\nname = \"PRINTED\"\n[[ae]]\ntitle = \"PRINTED\"\ninitiator = true\nacceptor = true\n",
        );
        // The device as a whole: the transfer syntaxes of a SOP class and role are those
        // of every AE's row for it (scores compare devices, not AEs).
        let mut rows: std::collections::BTreeMap<(String, String), Vec<String>> =
            std::collections::BTreeMap::new();
        for t in &printed.context_tables {
            for r in &t.rows {
                let ts = rows.entry((r.uid.clone(), r.role.clone())).or_default();
                for uid in r
                    .transfer_syntaxes
                    .iter()
                    .filter_map(|n| orthanc.transfer_syntaxes().iter().find(|e| &e.name == n))
                    .map(|e| e.uid.clone())
                {
                    if !ts.contains(&uid) {
                        ts.push(uid);
                    }
                }
            }
        }
        for ((uid, role), ts) in rows {
            let ts: Vec<String> = ts.iter().map(|t| format!("\"{t}\"")).collect();
            toml.push_str(&format!(
                "[[ae.capability]]\nsop_class = \"{uid}\"\nrole = \"{role}\"\ntransfer_syntaxes = [{}]\n",
                ts.join(", ")
            ));
        }
        let g = dir.join(format!("{name}.gold.toml"));
        if std::fs::write(&g, toml).is_ok() {
            PRINTED_GOLD.with(|m| m.borrow_mut().push((name.to_owned(), g)));
            out.push((dir.join(format!("{name}.pdf")), Some(leak(name))));
        }
    }
    out
}

thread_local! {
    /// References of the printed PDFs, by name (they live in the temporary directory).
    static PRINTED_GOLD: std::cell::RefCell<Vec<(String, PathBuf)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}
