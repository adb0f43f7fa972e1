//! Engine tests on bytes: PDUs built with dicom-ul's writer (an independent encoder), fed
//! whole, byte by byte and in random chunks.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, AssociationAC, AssociationRQ, PDataValue,
    PDataValueType, Pdu, PresentationContextProposed, PresentationContextResult,
    PresentationContextResultReason, RequestorRoles, UserVariableItem, write_pdu,
};
use dicomtap_wire::dimse::{Command, encode_command, field};
use dicomtap_wire::engine::Phase;
use dicomtap_wire::{Conversation, EngineConfig, Event, EventKind, FindingCode, Side, StreamEnd};
use proptest::prelude::*;

const VERIFICATION: &str = "1.2.840.10008.1.1";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const IMPLICIT: &str = "1.2.840.10008.1.2";
const EXPLICIT: &str = "1.2.840.10008.1.2.1";

fn pdu(p: &Pdu) -> Vec<u8> {
    let mut out = Vec::new();
    write_pdu(&mut out, p).expect("dicom-ul writes the PDU");
    out
}

fn rq() -> Vec<u8> {
    pdu(&Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: "MODALITY".into(),
        called_ae_title: "PACS".into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![
            PresentationContextProposed {
                id: 1,
                abstract_syntax: VERIFICATION.into(),
                transfer_syntaxes: vec![IMPLICIT.into()],
            },
            PresentationContextProposed {
                id: 3,
                abstract_syntax: CT.into(),
                transfer_syntaxes: vec![EXPLICIT.into(), IMPLICIT.into()],
            },
        ],
        user_variables: vec![
            UserVariableItem::MaxLength(16384),
            UserVariableItem::ImplementationClassUID("1.2.3.4".into()),
            UserVariableItem::ImplementationVersionName("TEST_1".into()),
            UserVariableItem::ScuScpRoleSelectionSubItem(
                CT.into(),
                RequestorRoles {
                    scu: true,
                    scp: false,
                },
            ),
        ],
    }))
}

fn ac(max: u32) -> Vec<u8> {
    pdu(&Pdu::AssociationAC(AssociationAC {
        protocol_version: 1,
        calling_ae_title: "MODALITY".into(),
        called_ae_title: "PACS".into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![
            PresentationContextResult {
                id: 1,
                reason: PresentationContextResultReason::Acceptance,
                transfer_syntax: IMPLICIT.into(),
            },
            PresentationContextResult {
                id: 3,
                reason: PresentationContextResultReason::Acceptance,
                transfer_syntax: EXPLICIT.into(),
            },
        ],
        user_variables: vec![
            UserVariableItem::MaxLength(max),
            UserVariableItem::ImplementationClassUID("1.2.3.5".into()),
        ],
    }))
}

fn pdata(pc: u8, kind: PDataValueType, last: bool, data: Vec<u8>) -> Vec<u8> {
    pdu(&Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type: kind,
            is_last: last,
            data,
        }],
    })
}

fn store_rq(id: u16) -> Vec<u8> {
    let mut c = Command::new(field::C_STORE_RQ);
    c.message_id = Some(id);
    c.affected_sop_class = Some(CT.into());
    c.affected_sop_instance = Some(format!("1.2.3.4.{id}"));
    c.priority = Some(0);
    c.has_dataset = true;
    encode_command(&c)
}

fn store_rsp(id: u16, status: u16) -> Vec<u8> {
    let mut c = Command::new(field::C_STORE_RSP);
    c.responded_to = Some(id);
    c.affected_sop_class = Some(CT.into());
    c.affected_sop_instance = Some(format!("1.2.3.4.{id}"));
    c.status = Some(dicomtap_wire::status::classify(status, field::C_STORE_RSP));
    encode_command(&c)
}

/// Explicit VR LE data set: SpecificCharacterSet, SOPClassUID, SOPInstanceUID, Modality,
/// PatientName, then pixel data of `pixels` bytes.
fn dataset(id: u16, pixels: usize) -> Vec<u8> {
    fn el(out: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], v: &[u8]) {
        let mut v = v.to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == b"UI" { 0 } else { b' ' });
        }
        out.extend_from_slice(&g.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(vr);
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(&v);
    }
    let mut out = Vec::new();
    el(&mut out, 0x0008, 0x0005, b"CS", b"ISO_IR 192");
    el(&mut out, 0x0008, 0x0016, b"UI", CT.as_bytes());
    el(
        &mut out,
        0x0008,
        0x0018,
        b"UI",
        format!("1.2.3.4.{id}").as_bytes(),
    );
    el(&mut out, 0x0008, 0x0060, b"CS", b"CT");
    el(&mut out, 0x0010, 0x0010, b"PN", "Müller^Jürgen".as_bytes());
    out.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
    out.extend_from_slice(&(pixels as u32).to_le_bytes());
    out.extend(std::iter::repeat_n(0xAB, pixels));
    out
}

/// A whole association: (sender, bytes) in order.
fn association() -> Vec<(Side, Vec<u8>)> {
    let mut s = vec![(Side::Requestor, rq()), (Side::Acceptor, ac(32768))];
    let mut echo = Command::new(field::C_ECHO_RQ);
    echo.message_id = Some(1);
    echo.affected_sop_class = Some(VERIFICATION.into());
    s.push((
        Side::Requestor,
        pdata(1, PDataValueType::Command, true, encode_command(&echo)),
    ));
    let mut echo_rsp = Command::new(field::C_ECHO_RSP);
    echo_rsp.responded_to = Some(1);
    echo_rsp.affected_sop_class = Some(VERIFICATION.into());
    echo_rsp.status = Some(dicomtap_wire::status::classify(0, field::C_ECHO_RSP));
    s.push((
        Side::Acceptor,
        pdata(1, PDataValueType::Command, true, encode_command(&echo_rsp)),
    ));
    for id in 2..4u16 {
        s.push((
            Side::Requestor,
            pdata(3, PDataValueType::Command, true, store_rq(id)),
        ));
        let ds = dataset(id, 40000);
        let chunks: Vec<&[u8]> = ds.chunks(16000).collect();
        for (i, c) in chunks.iter().enumerate() {
            s.push((
                Side::Requestor,
                pdata(3, PDataValueType::Data, i + 1 == chunks.len(), c.to_vec()),
            ));
        }
        s.push((
            Side::Acceptor,
            pdata(3, PDataValueType::Command, true, store_rsp(id, 0)),
        ));
    }
    s.push((Side::Requestor, pdu(&Pdu::ReleaseRQ)));
    s.push((Side::Acceptor, pdu(&Pdu::ReleaseRP)));
    s
}

fn run(chunks: &[(Side, Vec<u8>)], split: &dyn Fn(usize) -> usize) -> Vec<Event> {
    let mut conv = Conversation::new(EngineConfig::default());
    let mut events = Vec::new();
    for (k, (side, bytes)) in chunks.iter().enumerate() {
        let mut pos = 0;
        let mut n = 0;
        while pos < bytes.len() {
            let take = split(k * 7919 + n).clamp(1, bytes.len() - pos);
            conv.feed(*side, 0, &bytes[pos..pos + take]);
            pos += take;
            n += 1;
        }
        while let Some(e) = conv.poll() {
            events.push(e);
        }
    }
    conv.end(Side::Requestor, 0, StreamEnd::Close);
    conv.end(Side::Acceptor, 0, StreamEnd::Close);
    while let Some(e) = conv.poll() {
        events.push(e);
    }
    events
}

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Command(c) => c.command.command.to_string(),
            EventKind::Finding(f) => format!("finding:{}", f.code.id()),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.get("event").and_then(|s| s.as_str()).map(str::to_string))
                .unwrap_or_default(),
        })
        .collect()
}

#[test]
fn a_whole_association_decodes_cleanly() {
    let events = run(&association(), &|_| usize::MAX);
    let k = kinds(&events);
    let findings: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Finding(_)))
        .collect();
    assert!(findings.is_empty(), "unexpected findings: {findings:#?}");
    assert_eq!(k.iter().filter(|s| *s == "C-STORE-RQ").count(), 2);
    assert_eq!(k.iter().filter(|s| *s == "C-STORE-RSP").count(), 2);
    assert_eq!(k.iter().filter(|s| *s == "dataset_peek").count(), 2);
    assert_eq!(k.iter().filter(|s| *s == "dataset_end").count(), 2);
    assert!(k.contains(&"release_rq".to_string()) && k.contains(&"release_rp".to_string()));
    let rq = events.iter().find_map(|e| match &e.kind {
        EventKind::AssociateRq(rq) => Some(rq),
        _ => None,
    });
    let rq = rq.expect("A-ASSOCIATE-RQ decoded");
    assert_eq!(
        (rq.calling_ae.as_str(), rq.called_ae.as_str()),
        ("MODALITY", "PACS")
    );
    assert_eq!(rq.contexts.len(), 2);
    assert_eq!(rq.user_info.max_length, Some(16384));
    assert_eq!(
        rq.user_info.implementation_version_name.as_deref(),
        Some("TEST_1")
    );
    assert_eq!(rq.user_info.role_selections.len(), 1);
    let ends: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::DatasetEnd(d) => Some(d.length),
            _ => None,
        })
        .collect();
    assert_eq!(ends, vec![dataset(2, 40000).len() as u64; 2]);
    let rsp_latency = events.iter().find_map(|e| match &e.kind {
        EventKind::Command(c) if c.command.command == "C-STORE-RSP" => Some(c.latency_us),
        _ => None,
    });
    assert_eq!(rsp_latency, Some(Some(0)));
}

#[test]
fn byte_by_byte_equals_whole() {
    let assoc = association();
    let whole = run(&assoc, &|_| usize::MAX);
    let bytewise = run(&assoc, &|_| 1);
    assert_eq!(whole, bytewise);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_chunking_equals_whole(sizes in proptest::collection::vec(1usize..5000, 1..64)) {
        let assoc = association();
        let whole = run(&assoc, &|_| usize::MAX);
        let split = move |n: usize| sizes[n % sizes.len()];
        let chunked = run(&assoc, &split);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), resync in any::<bool>()) {
        let mut conv = Conversation::new(EngineConfig::default());
        if resync { conv.resynchronize(Side::Requestor); }
        conv.feed(Side::Requestor, 0, &bytes);
        conv.end(Side::Requestor, 0, StreamEnd::Reset);
        while conv.poll().is_some() {}
    }

    #[test]
    fn mutated_association_never_panics(flips in proptest::collection::vec((0usize..200_000, any::<u8>()), 1..16)) {
        let mut stream: Vec<u8> = association().into_iter().filter(|(s, _)| *s == Side::Requestor).flat_map(|(_, b)| b).collect();
        let len = stream.len();
        for (pos, val) in flips { stream[pos % len] = val; }
        let mut conv = Conversation::new(EngineConfig::default());
        conv.feed(Side::Requestor, 0, &stream);
        conv.end(Side::Requestor, 0, StreamEnd::Close);
        while conv.poll().is_some() {}
    }
}

fn findings(events: &[Event]) -> Vec<FindingCode> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.code),
            _ => None,
        })
        .collect()
}

#[test]
fn pdu_larger_than_receiver_advertised() {
    let mut s = association();
    s[1] = (Side::Acceptor, ac(8192));
    let events = run(&s, &|_| usize::MAX);
    let f = findings(&events);
    assert!(f.contains(&FindingCode::PduExceedsMaxLength), "{f:?}");
}

#[test]
fn four_gigabyte_pdata_is_streamed_not_buffered() {
    let mut conv = Conversation::new(EngineConfig::default());
    conv.feed(Side::Requestor, 0, &rq());
    conv.feed(Side::Acceptor, 0, &ac(0));
    // P-DATA declaring 0xFFFFFFF0 bytes, with one PDV of nearly that size.
    let mut head = vec![4, 0, 0xFF, 0xFF, 0xFF, 0xF0];
    head.extend_from_slice(&0xFFFF_FFECu32.to_be_bytes());
    head.extend_from_slice(&[3, 0]);
    conv.feed(Side::Requestor, 0, &head);
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..64 {
        conv.feed(Side::Requestor, 0, &chunk);
    }
    conv.end(Side::Requestor, 0, StreamEnd::Reset);
    let mut ev = Vec::new();
    while let Some(e) = conv.poll() {
        ev.push(e);
    }
    let f = findings(&ev);
    assert!(f.contains(&FindingCode::TruncatedPdu), "{f:?}");
    assert!(f.contains(&FindingCode::IncompleteMessage), "{f:?}");
}

#[test]
fn huge_association_pdu_is_skipped_and_reported() {
    let mut conv = Conversation::new(EngineConfig::default());
    conv.feed(Side::Requestor, 0, &[1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1]);
    conv.end(Side::Requestor, 0, StreamEnd::Close);
    let mut ev = Vec::new();
    while let Some(e) = conv.poll() {
        ev.push(e);
    }
    let f = findings(&ev);
    assert!(
        f.contains(&FindingCode::PduTooLarge) && f.contains(&FindingCode::TruncatedPdu),
        "{f:?}"
    );
}

#[test]
fn data_after_abort_and_unknown_type_are_findings() {
    let abort = pdu(&Pdu::AbortRQ {
        source: AbortRQSource::ServiceProvider(AbortRQServiceProviderReason::UnexpectedPdu),
    });
    let mut s = vec![
        (Side::Requestor, rq()),
        (Side::Acceptor, ac(0)),
        (Side::Acceptor, abort),
    ];
    s.push((
        Side::Requestor,
        pdata(3, PDataValueType::Command, true, store_rq(9)),
    ));
    s.push((Side::Requestor, vec![0x09, 0, 0, 0, 0, 2, 0xAA, 0xBB]));
    let events = run(&s, &|_| usize::MAX);
    let f = findings(&events);
    assert!(f.contains(&FindingCode::UnexpectedPdu), "{f:?}");
    assert!(f.contains(&FindingCode::UnknownPduType), "{f:?}");
    let abort = events.iter().find_map(|e| match &e.kind {
        EventKind::Abort(a) => Some(a.description.clone()),
        _ => None,
    });
    assert_eq!(abort.as_deref(), Some("service-provider: unexpected-PDU"));
}

#[test]
fn gap_inside_pixel_data_keeps_sync() {
    let assoc = association();
    let mut conv = Conversation::new(EngineConfig::default());
    let mut events = Vec::new();
    for (k, (side, bytes)) in assoc.iter().enumerate() {
        // Drop 1000 bytes in the middle of the second data PDU of the first C-STORE.
        if k == 6 {
            conv.feed(*side, 0, &bytes[..5000]);
            conv.gap(*side, 0, 1000);
            conv.feed(*side, 0, &bytes[6000..]);
        } else {
            conv.feed(*side, 0, bytes);
        }
        while let Some(e) = conv.poll() {
            events.push(e);
        }
    }
    let k = kinds(&events);
    assert_eq!(k.iter().filter(|s| *s == "C-STORE-RSP").count(), 2, "{k:?}");
    assert!(findings(&events).contains(&FindingCode::IncompleteMessage));
    assert!(!findings(&events).contains(&FindingCode::Garbage));
    assert_eq!(conv.phase(), Phase::Released);
}

#[test]
fn gap_in_headers_resynchronises_on_next_pdu() {
    let assoc = association();
    let mut conv = Conversation::new(EngineConfig::default());
    let mut events = Vec::new();
    for (k, (side, bytes)) in assoc.iter().enumerate() {
        // Lose the first 3 bytes of the echo response PDU: its header is gone.
        if k == 3 {
            conv.gap(*side, 0, 3);
            conv.feed(*side, 0, &bytes[3..]);
        } else {
            conv.feed(*side, 0, bytes);
        }
        while let Some(e) = conv.poll() {
            events.push(e);
        }
    }
    let k = kinds(&events);
    assert!(!k.contains(&"C-ECHO-RSP".to_string()));
    assert_eq!(k.iter().filter(|s| *s == "C-STORE-RSP").count(), 2, "{k:?}");
    assert!(k.contains(&"resync".to_string()), "{k:?}");
    assert_eq!(conv.phase(), Phase::Released);
}

#[test]
fn late_start_still_decodes_commands() {
    let assoc = association();
    let mut conv = Conversation::new(EngineConfig::default());
    conv.resynchronize(Side::Requestor);
    conv.resynchronize(Side::Acceptor);
    let mut events = Vec::new();
    // Start in the middle of the echo request, as a capture started late would.
    for (k, (side, bytes)) in assoc.iter().enumerate().skip(2) {
        let b = if k == 2 { &bytes[10..] } else { &bytes[..] };
        conv.feed(*side, 0, b);
        while let Some(e) = conv.poll() {
            events.push(e);
        }
    }
    let k = kinds(&events);
    assert_eq!(k.iter().filter(|s| *s == "C-STORE-RQ").count(), 2, "{k:?}");
    assert!(
        findings(&events).contains(&FindingCode::NegotiationNotSeen),
        "{k:?}"
    );
    let peeks = events.iter().filter(|e| matches!(&e.kind, EventKind::DatasetPeek(p) if p.peek.sop_class_uid.as_deref() == Some(CT))).count();
    assert_eq!(peeks, 2);
}

#[test]
fn gap_of_whole_pdus_inside_a_data_set_marks_it_incomplete() {
    let assoc = association();
    let mut conv = Conversation::new(EngineConfig::default());
    let mut events = Vec::new();
    for (k, (side, bytes)) in assoc.iter().enumerate() {
        // Lose the second data PDU of the first C-STORE whole: the gap is on PDU boundaries.
        if k == 6 {
            conv.gap(*side, 0, bytes.len() as u64);
        } else {
            conv.feed(*side, 0, bytes);
        }
        while let Some(e) = conv.poll() {
            events.push(e);
        }
    }
    assert!(
        findings(&events).contains(&FindingCode::IncompleteMessage),
        "{:?}",
        kinds(&events)
    );
    let peeks = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::DatasetPeek(_)))
        .count();
    assert_eq!(
        peeks, 1,
        "the damaged data set is not peeked, the second one is"
    );
    assert_eq!(conv.phase(), Phase::Released);
}
