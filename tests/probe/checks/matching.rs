use super::*;

#[test]
fn probe_matching_catches_wildcard_on_surname_only() {
    let Some(scp) = PyScp::start(
        "probe_matching_catches_wildcard_on_surname_only",
        "surname",
        "surname",
        &[],
    ) else {
        return;
    };

    let (code, report) = scp.probe("probe-surname", None, &["matching"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "matching"), "fail");
    let rows = table_rows(&report, "matching");
    let row = |value: &str| row_of(&rows, 1, value);
    // Wildcards inside the surname work; across the component separator they do not.
    assert_eq!(row("<T>ALPHA*")[4], "ok");
    assert_eq!(row("<T>ALPHA^JOHN")[4], "ok");
    assert_eq!(row("<T>AL*A^JOHN")[4], "DIFFERS");
    assert_eq!(row("<T>ALPHA^J*")[4], "DIFFERS");
    assert_eq!(row("*^MARY")[4], "DIFFERS");
    assert_eq!(row("*ALPHA")[3], "A");
    assert_eq!(row("20210101-20211231")[4], "ok");
    // This SCP ignores Study Time: every time range matches all four studies.
    assert_eq!(row("080000-100000")[3], "ABCD");
    assert_eq!(row("080000-100000")[4], "DIFFERS");
}

#[test]
fn probe_charset_catches_mangled_names() {
    let Some(scp) = PyScp::start(
        "probe_charset_catches_mangled_names",
        "mangle",
        "mangle",
        &[],
    ) else {
        return;
    };

    let (code, report) = scp.probe(
        "probe-mangle",
        Some(&acceptor_statement(
            "PYSCP",
            "character_sets = [\"ISO_IR 100\", \"ISO_IR 144\", \"ISO_IR 126\", \"ISO_IR 192\"]",
        )),
        &[
            "--charset-files",
            scp.data.charset_files.to_str().unwrap(),
            "charset",
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "charset"), "fail", "{report:#}");
    let rows = table_rows(&report, "charset");
    let row = |f: &str| row_of(&rows, 0, f);
    assert!(row("chrRuss.dcm")[3].starts_with("MANGLED"), "{rows:?}");
    assert!(row("chrGreek.dcm")[3].starts_with("MANGLED"), "{rows:?}");
    // Latin-1 names survive a Latin-1 re-encoding.
    assert!(
        row("chrFren.dcm")[3].contains("same text") || row("chrFren.dcm")[3] == "identical",
        "{rows:?}"
    );
}

#[test]
fn probe_matching_catches_component_groups_dropped_though_utf8_is_claimed() {
    let Some(scp) = PyScp::start(
        "probe_matching_catches_component_groups_dropped_though_utf8_is_claimed",
        "alphaonly",
        "alphaonly",
        &[],
    ) else {
        return;
    };

    let (code, report) = scp.probe(
        "probe-alphaonly",
        Some(&acceptor_statement(
            "PYSCP",
            "character_sets = [\"ISO_IR 192\"]",
        )),
        &["matching"],
    );
    // Everything PS3.4 requires matches (time ranges included); the claimed UTF-8 name
    // with its ideographic and phonetic groups does not.
    assert_verdicts(&report, code, 0, &["matching"], "differs-from-statement");
    let rows = table_rows(&report, "matching");
    let row = |value: &str| row_of(&rows, 1, value);
    assert_eq!(
        row("<T>YAMADA^TAROU=山田^太郎=やまだ^たろう")[4],
        "DIFFERS from the statement",
        "{rows:?}"
    );
    assert_eq!(row("<T>YAMADA*")[4], "ok", "{rows:?}");
    assert_eq!(row("080000-100000")[4], "ok", "{rows:?}");
    assert!(
        rows.iter().filter(|r| r[4] == "DIFFERS").count() == 0,
        "{rows:?}"
    );
}
