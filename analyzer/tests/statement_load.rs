#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Loading and validating statements: the format page's example, and the errors.

use std::path::Path;

use dicomtap_analyzer::statement::{self, Role, StatusRange, write};

const EXAMPLE: &str = include_str!("fixtures/statements/acme_ct9000.toml");

fn errors(text: &str) -> Vec<String> {
    match statement::parse(text, Path::new("t.toml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn format_page_example_loads() {
    let s = statement::parse(EXAMPLE, Path::new("acme.toml")).unwrap();
    assert_eq!(s.device.name, "ACME_CT9000");
    let ae = s.ae("CT9000  ").unwrap();
    assert_eq!(ae.capability.len(), 2);
    let ct = ae
        .capability("1.2.840.10008.5.1.4.1.1.2", Role::Scu)
        .unwrap();
    assert_eq!(ct.transfer_syntaxes[0].uid, "1.2.840.10008.1.2.4.90");
    assert_eq!(
        ct.transfer_syntaxes[0].keyword.as_deref(),
        Some("JPEG2000Lossless")
    );
    assert_eq!(
        ae.claims_transfer_syntax("1.2.840.10008.5.1.4.1.1.2", Role::Scu, "1.2.840.10008.1.2"),
        Some(true)
    );
    assert_eq!(
        ae.claims_transfer_syntax("1.2.840.10008.5.1.4.1.1.2", Role::Scp, "1.2.840.10008.1.2"),
        None
    );
    // capability narrows the AE list: C000 is allowed at AE level but not for CT storage
    assert_eq!(
        ae.allows_status(0xC000, "1.2.840.10008.5.1.4.1.1.2"),
        Some(false)
    );
    assert_eq!(
        ae.allows_status(0xA701, "1.2.840.10008.5.1.4.1.1.2"),
        Some(true)
    );
    assert_eq!(ae.allows_status(0xC123, "1.2.840.10008.1.20.1"), Some(true));
    assert_eq!(
        ae.statuses.as_ref().unwrap()[2],
        StatusRange {
            lo: 0xA700,
            hi: 0xA7FF
        }
    );
    assert!(ae.accepts_calling("PACS1"));
    assert!(!ae.accepts_calling("OTHER"));
    assert_eq!(ae.line, 10);
}

#[test]
fn written_statement_loads_back_identical() {
    let s = statement::parse(EXAMPLE, Path::new("acme.toml")).unwrap();
    let text = write::to_toml(&s);
    let mut back = statement::parse(&text, Path::new("acme.toml")).unwrap();
    // lines differ; compare the rest
    let mut orig = s.clone();
    for st in [&mut orig, &mut back] {
        st.device_line = 0;
        for a in &mut st.ae {
            a.line = 0;
            for c in &mut a.capability {
                c.line = 0;
            }
        }
    }
    assert_eq!(orig, back, "{text}");
}

#[test]
fn errors_name_file_line_key_and_expectation() {
    let text = EXAMPLE
        .replace(
            "\"ExplicitVRLittleEndian\", \"ImplicitVRLittleEndian\"]",
            "\"ExplicitVRLittleEndian\", \"CTImageStorage\"]",
        )
        .replace("role = \"SCU\"\ntransfer", "role = \"SCX\"\ntransfer")
        .replace("port = 104", "port = 104\nprot = 5");
    let e = errors(&text);
    assert!(
        e.iter().any(|l| l.starts_with("t.toml:") && l.contains("ae[0].capability[0].transfer_syntaxes[2]: CTImageStorage is a SOP class; expected a transfer syntax")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|l| l.contains("ae[0].capability[1].role: expected \"SCU\" or \"SCP\"")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|l| l.starts_with("t.toml:14: ae[0].prot: unknown key (did you mean `port`?)")),
        "{e:#?}"
    );
}

#[test]
fn unknown_uids_need_private_declaration() {
    let text = EXAMPLE.replace(
        "\"JPEG2000Lossless\", \"ExplicitVRLittleEndian\"",
        "\"1.2.3.4.5\", \"ExplicitVRLittleEndian\"",
    );
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|l| l.contains("transfer_syntaxes[0]: 1.2.3.4.5 is not in the DICOM registry")),
        "{e:#?}"
    );
    let ok = text
        .replace("[\"JPEG2000Lossless\"]", "[\"1.2.3.4.5\"]")
        .replace(
            "[x]",
            "[private_uids]\n\"1.2.3.4.5\" = { private = true, name = \"ACME fast\" }\n\n[x]",
        );
    let s = statement::parse(&ok, Path::new("t.toml")).unwrap();
    let c = &s.ae[0].capability[0];
    assert!(c.transfer_syntaxes[0].private);
    // a private declaration of a registry UID is an error
    let bad = text.replace(
        "[x]",
        "[private_uids]\n\"1.2.840.10008.1.2\" = { private = true }\n\n[x]",
    );
    assert!(
        errors(&bad)
            .iter()
            .any(|l| l.contains("is a registry UID (ImplicitVRLittleEndian)"))
    );
    let bad = EXAMPLE.replace("\"CTImageStorage\"", "\"CTImageStorag\"");
    assert!(
        errors(&bad)
            .iter()
            .any(|l| l.contains("sop_class: unknown keyword \"CTImageStorag\""))
    );
    let bad = EXAMPLE.replace(
        "sop_class = \"CTImageStorage\"",
        "sop_class = \"ExplicitVRLittleEndian\"",
    );
    assert!(
        errors(&bad)
            .iter()
            .any(|l| l.contains("is a transfer syntax; expected a SOP class"))
    );
}

#[test]
fn structural_errors() {
    assert!(
        errors("schema = \"dicomtap-statement/2\"\n[device]\nname=\"a\"\n[[ae]]\ntitle=\"A\"\n")
            .iter()
            .any(|l| l == "t.toml:1: schema: expected \"dicomtap-statement/1\"")
    );
    let e = errors("[device]\nname=\"a\"\n");
    assert!(e.iter().any(|l| l.contains("schema: missing")), "{e:?}");
    assert!(e.iter().any(|l| l.contains("ae: missing")), "{e:?}");
    let e = errors("schema = \"dicomtap-statement/1\"\n[device]\nname = \n");
    assert!(
        e.iter().any(|l| l.starts_with("t.toml:3: invalid TOML")),
        "{e:?}"
    );
    let dup = EXAMPLE.replace("[x]", "[[ae.capability]]\nsop_class = \"1.2.840.10008.5.1.4.1.1.2\"\nrole = \"SCU\"\ntransfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n[x]");
    assert!(
        errors(&dup)
            .iter()
            .any(|l| l.contains("duplicate capability CTImageStorage SCU (first at line 32)")),
        "{:?}",
        errors(&dup)
    );
    let bad = EXAMPLE.replace(
        "\"A700-A7FF\", \"C000-CFFF\"]  #",
        "\"A7FF-A700\", \"C000-CFFF\"]  #",
    );
    assert!(
        errors(&bad)
            .iter()
            .any(|l| l.contains("ae[0].statuses[2]: expected a status"))
    );
    let bad = EXAMPLE.replace("max_wait_s = 3600", "max_wait_s = -1");
    assert!(
        errors(&bad)
            .iter()
            .any(|l| l.contains("storage_commitment.max_wait_s: expected a non-negative"))
    );
    // [x] is free
    let free = EXAMPLE.replace("[x]", "[x]\nanything = { goes = [1, \"here\"] }");
    assert!(errors(&free).is_empty());
}

#[test]
fn device_names_unique_among_loaded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), EXAMPLE).unwrap();
    std::fs::write(dir.path().join("b.toml"), EXAMPLE).unwrap();
    let e = statement::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("b.toml:3: device.name: device name \"ACME_CT9000\" is already used by"),
        "{e}"
    );
    std::fs::write(
        dir.path().join("b.toml"),
        EXAMPLE
            .replace("ACME_CT9000", "OTHER")
            .replace("10.1.2.3", "10.1.2.4"),
    )
    .unwrap();
    assert_eq!(statement::load_dir(dir.path()).unwrap().len(), 2);
}

/// One AE title in two files of a directory: an error naming both files unless `hosts`
/// or (acceptors) `port` tell the two apart.
#[test]
fn one_ae_title_in_two_files_needs_hosts_or_port_to_tell_them_apart() {
    let ae = |device: &str, extra: &str| {
        format!(
            "schema = \"dicomtap-statement/1\"\n[device]\nname = \"{device}\"\n\
             [[ae]]\ntitle = \"STORESCP\"\n{extra}acceptor = true\n"
        )
    };
    let load = |a: &str, b: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), ae("A", a)).unwrap();
        std::fs::write(dir.path().join("b.toml"), ae("B", b)).unwrap();
        statement::load_dir(dir.path()).map_err(|e| e.to_string())
    };
    for (a, b) in [
        ("", ""),
        (
            "hosts = [\"10.0.0.1\", \"10.0.0.2\"]\n",
            "hosts = [\"10.0.0.2\"]\n",
        ),
        ("port = 104\n", "port = 104\n"),
        ("port = 104\n", ""),
        ("port = 104\ninitiator = true\n", "port = 11112\n"),
    ] {
        let e = load(a, b).unwrap_err();
        assert!(
            e.contains("b.toml:4: ae[0].title: AE title STORESCP is also claimed by")
                && e.contains("a.toml (line 4)")
                && e.contains("between A and B"),
            "{a:?} {b:?}: {e}"
        );
    }
    for (a, b) in [
        ("hosts = [\"10.0.0.1\"]\n", "hosts = [\"10.0.0.2\"]\n"),
        ("hosts = [\"10.0.0.1\"]\n", ""),
        ("port = 104\n", "port = 11112\n"),
    ] {
        assert_eq!(load(a, b).map(|s| s.len()), Ok(2), "{a:?} {b:?}");
    }
}

/// Found by fuzzing: an AE that states neither role must survive a write and a load.
#[test]
fn an_ae_stating_no_role_round_trips() {
    let text =
        "schema = \"dicomtap-statement/1\"\n\n[device]\nname = \"D\"\n\n[[ae]]\ntitle = \"A\"\n";
    let path = std::path::Path::new("ae-no-role.toml");
    let st = dicomtap_analyzer::statement::parse(text, path).expect("loads");
    let written = dicomtap_analyzer::statement::write::to_toml(&st);
    let again = dicomtap_analyzer::statement::parse(&written, path);
    assert!(
        again.is_ok(),
        "written statement does not load back:\n{written}\n{again:?}"
    );
}
