#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap rules` and the argument handling of `dicomtap analyze --statements/--junit`.

use crate::support::dicomtap;

#[test]
fn rules_lists_every_rule_with_severity_and_why() {
    let out = dicomtap(&["rules", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules = v.as_array().unwrap();
    assert!(rules.len() >= 30, "{}", rules.len());
    for r in rules {
        for key in [
            "id",
            "severity",
            "claim",
            "summary",
            "why",
            "detection",
            "remedy",
        ] {
            assert!(
                r[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} of {r}"
            );
        }
    }
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in [
        "silent-success",
        "sop-class-not-claimed",
        "text-invalid-in-character-set",
        "max-pdu-advertised-differs",
    ] {
        assert!(ids.contains(&id), "{id}");
    }
    let text = String::from_utf8(dicomtap(&["rules"]).stdout).unwrap();
    assert!(
        text.contains("silent-success") && text.contains("why it matters:"),
        "{text}"
    );
    let one = dicomtap(&["rules", "silent-success"]);
    assert!(String::from_utf8_lossy(&one.stdout).contains("how it is detected"));
    let unknown = dicomtap(&["rules", "no-such-rule"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn analyze_names_a_bad_statement_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "schema = \"dicomtap-statement/1\"\n[device]\nnam = \"X\"\n",
    )
    .unwrap();
    let capture = dir.path().join("empty.pcap");
    // A valid, empty pcap (global header only).
    let mut pcap = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    pcap.truncate(24);
    std::fs::write(&capture, pcap).unwrap();
    let out = dicomtap(&[
        "analyze",
        "--statements",
        dir.path().to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    // --junit needs --statements.
    let out = dicomtap(&["analyze", "--junit", "x.xml", capture.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}
