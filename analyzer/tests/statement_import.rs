#![allow(clippy::expect_used, clippy::unwrap_used)]
//! dcm4che device JSON import: the mapping, the notes, and that the output validates.

use std::path::Path;

use dicomtap_analyzer::statement::{self, ClientAuth, Role, import, write};

const JSON: &str = include_str!("fixtures/dcm4che/modality.json");

#[test]
fn imports_annex_h_core_and_dcm4che_extensions() {
    let json: serde_json::Value = serde_json::from_str(JSON).unwrap();
    let imp = import::from_dcm4che(&json, "modality.json").unwrap();
    let s = &imp.statement;
    assert_eq!(s.device.name, "CT_SCANNER_3");
    assert_eq!(s.device.manufacturer.as_deref(), Some("ACME Medical"));
    assert_eq!(s.device.model.as_deref(), Some("CT-9000"));
    assert_eq!(s.device.software_versions, ["5.2.1", "VA20"]);
    let ae = &s.ae[0];
    assert_eq!(ae.title, "CT9000");
    assert!(ae.initiator && ae.acceptor);
    assert_eq!(ae.hosts, ["10.1.2.3"]);
    assert_eq!(ae.port, Some(104));
    assert_eq!(ae.character_sets, ["ISO_IR 100", "ISO_IR 192"]);
    assert_eq!(ae.max_pdu_receive, Some(65536));
    assert_eq!(ae.max_pdu_send, Some(16384));
    let w = ae.async_window.unwrap();
    assert_eq!((w.invoked, w.performed), (4, 1));
    assert_eq!(ae.timeouts_s.artim, Some(30.0));
    assert_eq!(ae.timeouts_s.dimse, Some(60.0));
    assert_eq!(ae.timeouts_s.idle, Some(300.0));
    assert_eq!(ae.timeouts_s.connect, Some(10.0));
    assert_eq!(
        ae.accept_calling_ae_titles.as_deref(),
        Some(&["PACS1".to_owned(), "WS1".to_owned()][..])
    );
    assert_eq!(ae.max_associations.acceptor, Some(4));
    let tls = ae.tls.as_ref().unwrap();
    assert!(!tls.required, "a plain connection exists too");
    assert_eq!(tls.versions, ["1.2", "1.3"]);
    assert_eq!(tls.client_auth, Some(ClientAuth::None));
    let ct = ae
        .capability("1.2.840.10008.5.1.4.1.1.2", Role::Scu)
        .unwrap();
    assert_eq!(ct.transfer_syntaxes.len(), 3);
    assert_eq!(
        ct.transfer_syntaxes[0].keyword.as_deref(),
        Some("JPEG2000Lossless")
    );
    let find = ae
        .capability("1.2.840.10008.5.1.4.1.2.2.1", Role::Scu)
        .unwrap();
    let f = find.extended_negotiation.unwrap().find.unwrap();
    assert_eq!(
        (f.relational, f.fuzzy_person_name),
        (Some(true), Some(false))
    );
    // the private SOP class is declared, the wildcard entries are reported, not invented
    assert!(
        s.private_uids
            .contains_key("1.2.826.0.1.3680043.2.1234.1.1")
    );
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains("\"Latin-1\" is not a defined term")),
        "{:?}",
        imp.notes
    );
    assert!(
        imp.notes.iter().any(|n| n.contains("SOP class \"*\"")),
        "{:?}",
        imp.notes
    );
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains("transfer syntax \"*\"")),
        "{:?}",
        imp.notes
    );
    assert_eq!(ae.capability.len(), 4);
}

#[test]
fn imported_statement_validates() {
    let json: serde_json::Value = serde_json::from_str(JSON).unwrap();
    let imp = import::from_dcm4che(&json, "modality.json").unwrap();
    let text = write::to_toml(&imp.statement);
    let back = statement::parse(&text, Path::new("imported.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.ae[0].capability.len(), 4);
}

#[test]
fn rejects_what_is_not_a_device() {
    let json: serde_json::Value = serde_json::from_str(r#"{"dicomAETitle": "X"}"#).unwrap();
    assert!(
        import::from_dcm4che(&json, "x.json")
            .unwrap_err()
            .to_string()
            .contains("dicomDeviceName")
    );
}
