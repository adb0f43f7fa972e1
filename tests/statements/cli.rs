#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap statement check|import|diff|infer` end to end.

use std::path::PathBuf;

use crate::support::dicomtap;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_reports_file_line_key_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("analyzer/tests/fixtures/statements/acme_ct9000.toml");
    let out = dicomtap(&["statement", "check", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: device ACME_CT9000, 1 AE: CT9000"));

    let bad = dir.path().join("bad.toml");
    let src = std::fs::read_to_string(&example).unwrap().replace(
        "\"JPEG2000Lossless\", \"ExplicitVRLittleEndian\"",
        "\"JPEG2000Lossles\", \"ExplicitVRLittleEndian\"",
    );
    std::fs::write(&bad, src).unwrap();
    let out = dicomtap(&["statement", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:35: ae[0].capability[0].transfer_syntaxes[0]: unknown keyword \"JPEG2000Lossles\"",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn bundled_statements_check() {
    let out = dicomtap(&[
        "statement",
        "check",
        root().join("statements").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 3);
    // With the alternative of DCMTK's storescp: one AE title claimed twice, nothing to
    // tell the two apart.
    let out = dicomtap(&[
        "statement",
        "check",
        root().join("statements").to_str().unwrap(),
        root().join("statements/alternatives").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("alternatives/pynetdicom-storescp.toml:")
            && err.contains("ae[0].title: AE title STORESCP is also claimed by")
            && err.contains("statements/dcmtk-storescp.toml (line "),
        "{err}"
    );
    assert_eq!(text(&out.stdout).lines().count(), 3);
}

#[test]
fn import_writes_a_valid_statement() {
    let dir = tempfile::tempdir().unwrap();
    let json = root().join("analyzer/tests/fixtures/dcm4che/modality.json");
    let out_file = dir.path().join("ct.toml");
    let out = dicomtap(&[
        "statement",
        "import",
        json.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("note:"));
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert!(written.starts_with("# Imported by dicomtap"), "{written}");
    let out = dicomtap(&["statement", "check", out_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn diff_matrix_json_html_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("diff.html");
    let s = root().join("statements");
    let a = s.join("dcmtk-dcmqrscp.toml");
    let b = s.join("dcmtk-storescp.toml");
    let out = dicomtap(&[
        "statement",
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--fail-on-incompatible",
        "--detail",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains("DCMTK_DCMQRSCP/DCMQRSCP") && t.contains("ok 121/121"),
        "{t}"
    );
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("<table class=\"matrix\">")
    );
    // orthanc proposes Q/R classes storescp does not take: a predicted failure
    let o = s.join("orthanc-1.10.toml");
    let out = dicomtap(&[
        "statement",
        "diff",
        o.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--fail-on-incompatible",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pairs"][0]["verdict"], "partial");
}

#[test]
fn infer_from_a_public_capture() {
    let cap = std::env::var_os("DICOMTAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"))
        .join("captures/public/tapirx-dicom_arq_2_get_testclient.pcap");
    if !cap.exists() {
        eprintln!("skipped: {} not present", cap.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("inferred.toml");
    let out = dicomtap(&[
        "statement",
        "infer",
        cap.to_str().unwrap(),
        "--ae",
        "testclient",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st = dicomtap_analyzer::statement::load(&out_file).unwrap();
    let ae = st.ae("testclient").unwrap();
    assert!(ae.initiator && !ae.acceptor);
    assert_eq!(
        ae.implementation_version_name.as_deref(),
        Some("GODICOM_1_1")
    );
    assert_eq!(ae.capability.len(), 123);
    // not in the capture: an error, exit 2
    let out = dicomtap(&[
        "statement",
        "infer",
        cap.to_str().unwrap(),
        "--ae",
        "NOBODY",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// A small site written for the diff tests: a CT modality and an ultrasound cart that only
/// initiate, and five acceptors that each fail or degrade in one known way (or work).
fn write_site(dir: &std::path::Path) {
    let files: &[(&str, &str)] = &[
        (
            "a-ct.toml",
            r#"schema = "dicomtap-statement/1"
[device]
name = "CT_SCANNER"
[[ae]]
title = "CT1"
initiator = true
acceptor = false
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCU"
transfer_syntaxes = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "JPEGBaseline8Bit"]
[[ae.capability]]
sop_class = "Verification"
role = "SCU"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
"#,
        ),
        (
            "b-us.toml",
            r#"schema = "dicomtap-statement/1"
[device]
name = "US_CART"
[[ae]]
title = "US1"
initiator = true
acceptor = false
[[ae.capability]]
sop_class = "UltrasoundImageStorage"
role = "SCU"
transfer_syntaxes = ["ExplicitVRLittleEndian"]
"#,
        ),
        (
            "c-j2k.toml",
            r#"schema = "dicomtap-statement/1"
[device]
name = "J2K_ARCHIVE"
[[ae]]
title = "J2KARCH"
initiator = false
acceptor = true
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCP"
transfer_syntaxes = ["JPEG2000Lossless"]
[[ae.capability]]
sop_class = "Verification"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
"#,
        ),
    ];
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    // Four CT archives that differ from each other in one setting each.
    let archives = [
        (
            "d-listed.toml",
            ct_archive(
                "LISTED_PACS",
                "LISTED",
                "accept_calling_ae_titles = [\"WS1\", \"WS2\"]\n",
                "",
            ),
        ),
        (
            "e-tls.toml",
            ct_archive("TLS_PACS", "SECURE", "tls = { required = true }\n", ""),
        ),
        (
            "f-evil.toml",
            ct_archive(r#"Evil <'&\"> Co"#, r#"<'&\">"#, "", ""),
        ),
        (
            "g-lossy.toml",
            ct_archive(
                "LOSSY_WS",
                "LOSSYWS",
                "",
                "preferred_transfer_syntaxes = [\"JPEGBaseline8Bit\"]\n",
            ),
        ),
    ];
    for (name, body) in archives {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

/// A statement of an archive that only accepts: CT images in Explicit VR Little Endian or
/// JPEG Baseline, and Verification; `ae_lines` and `ct_lines` are added to the AE and to
/// its CT capability.
fn ct_archive(device: &str, title: &str, ae_lines: &str, ct_lines: &str) -> String {
    format!(
        r#"schema = "dicomtap-statement/1"
[device]
name = "{device}"
[[ae]]
title = "{title}"
initiator = false
acceptor = true
{ae_lines}[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCP"
transfer_syntaxes = ["ExplicitVRLittleEndian", "JPEGBaseline8Bit"]
{ct_lines}[[ae.capability]]
sop_class = "Verification"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
"#
    )
}

/// The pair blocks of the summary: (header line, finding lines).
fn summary_blocks(t: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for section in t.split("\n\n") {
        if section.starts_with("What will negotiate") {
            break;
        }
        let mut lines = section.lines();
        let Some(head) = lines.next() else { continue };
        if head.ends_with(": FAIL") || head.ends_with(": DEGRADE") {
            blocks.push((head.to_owned(), lines.map(str::to_owned).collect()));
        }
    }
    blocks
}

#[test]
fn diff_summary_of_a_hand_written_site() {
    let dir = tempfile::tempdir().unwrap();
    write_site(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = dicomtap(&["statement", "diff", d, "--fail-on-incompatible"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    // CT1 against the five acceptors: allow-list, TLS and JPEG 2000 fail, the lossy
    // preference degrades, the escaping test device works; US1 has nothing in common
    // with any of them.
    assert!(
        t.contains(
            "\n7 devices, 5 initiator→acceptor pairs: 3 fail, 1 degrade, 1 work (5 more combinations with no SOP class in common: not applicable)\n"
        ),
        "{t}"
    );
    let blocks = summary_blocks(&t);
    let heads: Vec<&str> = blocks.iter().map(|b| b.0.as_str()).collect();
    // association-level failures first (input order), then the rejected context, then
    // the degraded pair
    assert_eq!(
        heads,
        [
            "CT1 (CT_SCANNER) -> LISTED (LISTED_PACS): FAIL",
            "CT1 (CT_SCANNER) -> SECURE (TLS_PACS): FAIL",
            "CT1 (CT_SCANNER) -> J2KARCH (J2K_ARCHIVE): FAIL",
            "CT1 (CT_SCANNER) -> LOSSYWS (LOSSY_WS): DEGRADE",
        ],
        "{t}"
    );
    assert!(t.starts_with("Predicted to fail or degrade"), "{t}");
    assert_eq!(
        blocks[0].1,
        [
            "  fail: association rejected: LISTED accepts only calling AE titles WS1, WS2; CT1 is not listed: A-ASSOCIATE-RJ (rejected-permanent, reason 3: calling AE title not recognized)"
        ]
    );
    assert_eq!(
        blocks[1].1,
        ["  fail: association rejected: SECURE requires TLS; CT1 states no TLS support"]
    );
    assert_eq!(
        blocks[2].1,
        [
            "  fail: CTImageStorage: context rejected, no common transfer syntax: CT1 proposes ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit; J2KARCH accepts JPEG2000Lossless"
        ]
    );
    assert_eq!(blocks[3].1.len(), 1, "{t}");
    assert!(
        blocks[3].1[0].starts_with("  degrade: CTImageStorage: LOSSYWS prefers the lossy JPEGBaseline8Bit although ExplicitVRLittleEndian is common"),
        "{t}"
    );
    // what will negotiate, per pair
    let line = |needle: &str| {
        t.lines()
            .filter(|l| l.contains(needle))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("CT1 (CT_SCANNER) -> J2KARCH (J2K_ARCHIVE) "),
        [
            "CT1 (CT_SCANNER) -> J2KARCH (J2K_ARCHIVE) fail 1 of 2 SOP classes will negotiate (0 with compression)"
        ]
    );
    assert_eq!(
        line("CT1 (CT_SCANNER) -> LISTED (LISTED_PACS) "),
        ["CT1 (CT_SCANNER) -> LISTED (LISTED_PACS) fail nothing will negotiate"]
    );
    assert_eq!(
        line("-> LOSSYWS (LOSSY_WS) "),
        [
            "CT1 (CT_SCANNER) -> LOSSYWS (LOSSY_WS) degrade 2 of 2 SOP classes will negotiate (1 with compression)"
        ]
    );
    assert!(
        t.contains("US1 (US_CART) -> J2KARCH (J2K_ARCHIVE)\n"),
        "{t}"
    );

    // the JSON carries the same summary
    let out = dicomtap(&["statement", "diff", d, "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["summary"]["counts"];
    assert_eq!(
        (
            &c["devices"],
            &c["pairs"],
            &c["fail"],
            &c["degrade"],
            &c["work"],
            &c["not_applicable"]
        ),
        (
            &7.into(),
            &5.into(),
            &3.into(),
            &1.into(),
            &1.into(),
            &5.into()
        )
    );
    let pairs = v["summary"]["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 10);
    assert_eq!(pairs[0]["outcome"], "fail");
    assert_eq!(pairs[0]["findings"][0]["kind"], "ae-allow-list");
    assert_eq!(pairs[2]["findings"][0]["kind"], "no-common-transfer-syntax");
    assert_eq!(pairs[2]["findings"][0]["sop_classes"][0], "CTImageStorage");
    assert_eq!(pairs[2]["negotiated"], 1);
    assert_eq!(pairs[9]["outcome"], "not_applicable");
    let k = pairs[3]["pair"].as_u64().unwrap() as usize;
    assert_eq!(v["pairs"][k]["acceptor"]["ae"], "LOSSYWS");

    // --detail: today's full listing, every SOP class of every pair
    let out = dicomtap(&["statement", "diff", d, "--detail"]);
    let full = text(&out.stdout);
    assert!(full.starts_with("Compatibility matrix"), "{full}");
    assert!(
        full.contains("CT_SCANNER/CT1 -> J2K_ARCHIVE/J2KARCH: partial (1/2 contexts accepted)"),
        "{full}"
    );
    assert!(full.contains("REJECTED: transfer syntaxes not supported (result 4)"));
    assert!(full.contains("  Verification "), "{full}");
    assert!(!t.contains("  Verification "), "{t}");

    // without the failing acceptors the exit code is 0
    let ok = tempfile::tempdir().unwrap();
    for f in ["a-ct.toml", "f-evil.toml", "g-lossy.toml"] {
        std::fs::copy(dir.path().join(f), ok.path().join(f)).unwrap();
    }
    let out = dicomtap(&[
        "statement",
        "diff",
        ok.path().to_str().unwrap(),
        "--fail-on-incompatible",
    ]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout)
            .contains("3 devices, 2 initiator→acceptor pairs: 0 fail, 1 degrade, 1 work\n")
    );
}

#[test]
fn diff_html_matrix_with_the_bundled_statements() {
    let dir = tempfile::tempdir().unwrap();
    write_site(dir.path());
    let html = dir.path().join("matrix.html");
    let bundled = root().join("statements");
    let alternatives = bundled.join("alternatives");
    let out = dicomtap(&[
        "statement",
        "diff",
        bundled.to_str().unwrap(),
        alternatives.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    // initiators: DCMQRSCP, ORTHANC, CT1, US1; acceptors: the four bundled AEs and the
    // five written here. One cell each; the two bundled AEs that are both are "same device".
    assert_eq!(page.matches("<td class=\"cell ").count(), 4 * 9, "{page}");
    assert_eq!(page.matches("<td class=\"cell self\"").count(), 2);
    let cell_class = |title: &str| {
        let at = page
            .find(&format!("title=\"{title}"))
            .unwrap_or_else(|| panic!("no cell {title}"));
        let start = page[..at].rfind("<td class=\"cell ").unwrap();
        page[start + 16..at].trim().trim_end_matches('"').to_owned()
    };
    assert_eq!(
        cell_class("DCMQRSCP (DCMTK_DCMQRSCP) to STORESCP (DCMTK_STORESCP): work"),
        "work"
    );
    assert_eq!(
        cell_class("CT1 (CT_SCANNER) to SECURE (TLS_PACS): fail"),
        "fail"
    );
    assert_eq!(
        cell_class("CT1 (CT_SCANNER) to LOSSYWS (LOSSY_WS): degrade"),
        "degrade"
    );
    assert_eq!(
        cell_class("US1 (US_CART) to J2KARCH (J2K_ARCHIVE): n/a"),
        "na"
    );
    assert_eq!(
        cell_class(
            "CT1 (CT_SCANNER) to &lt;&#39;&amp;&quot;&gt; (Evil &lt;&#39;&amp;&quot;&gt; Co): work"
        ),
        "work"
    );
    // the matrix agrees with the JSON summary, cell by cell
    let n = |o: &str| page.matches(&format!("<td class=\"cell {o}\"")).count() as u64;
    let c = &v["summary"]["counts"];
    assert_eq!(n("fail"), c["fail"].as_u64().unwrap());
    assert_eq!(n("degrade"), c["degrade"].as_u64().unwrap());
    assert_eq!(n("work"), c["work"].as_u64().unwrap());
    assert_eq!(n("na"), c["not_applicable"].as_u64().unwrap());
    assert_eq!(c["devices"], 11);
    // every compared pair has its section, linked from its cell
    let pairs = v["pairs"].as_array().unwrap().len();
    for k in 0..pairs {
        assert!(page.contains(&format!("<details class=\"pair\" id=\"pair-{k}\">")));
        assert!(page.contains(&format!("<a href=\"#pair-{k}\">")));
    }
    // statement text is escaped everywhere, quotes included
    assert!(!page.contains("<'&\">"), "raw statement text in the page");
    assert!(page.contains("&lt;&#39;&amp;&quot;&gt;"));
    // sources and generation time
    assert!(page.contains("f-evil.toml") && page.contains("orthanc-1.10.toml"));
    assert!(page.contains("Generated 20"));
    assert!(!page.contains("src=") && !page.contains("<link"));
}
