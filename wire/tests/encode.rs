//! The PDU encoder: every PDU type round-trips through the decoders and the engine
//! without a finding, matches dicom-ul's bytes where both can express the PDU, and
//! refuses values its length fields cannot hold; bounded loops over field sizes.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, AssociationAC, AssociationRJ, AssociationRJResult,
    AssociationRJServiceProviderPresentationReason, AssociationRJServiceUserReason,
    AssociationRJSource, AssociationRQ, PDataValue, PDataValueType, Pdu,
    PresentationContextProposed, PresentationContextResult, PresentationContextResultReason,
    RequestorRoles, UserIdentity as UlUserIdentity, UserIdentityType, UserVariableItem, write_pdu,
};
use dicomtap_wire::assoc::{
    self, CommonExtendedNegotiation, Notes, ProposedContext, RoleSelection,
};
use dicomtap_wire::dimse::{Command, encode_command, field};
use dicomtap_wire::encode::{
    self, AssociateAc, AssociateRq, ContextAnswer, ExtendedNegotiationItem, Pdv, RawItem,
    UserIdentity, UserInfo,
};
use dicomtap_wire::pdata::{PdvParser, PdvPiece};
use dicomtap_wire::{Conversation, EngineConfig, EventKind, Side};

const VERIFICATION: &str = "1.2.840.10008.1.1";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const IMPLICIT: &str = "1.2.840.10008.1.2";
const EXPLICIT: &str = "1.2.840.10008.1.2.1";

fn ul(p: &Pdu) -> Vec<u8> {
    let mut out = Vec::new();
    write_pdu(&mut out, p).expect("dicom-ul writes the PDU");
    out
}

/// The body after the PDU header, checking the header's type and length.
fn body(bytes: &[u8], pdu_type: u8) -> &[u8] {
    assert_eq!(bytes[0], pdu_type);
    assert_eq!(bytes[1], 0);
    let len = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
    assert_eq!(len, bytes.len() - 6, "PDU length field");
    &bytes[6..]
}

fn uid(n: usize) -> String {
    // Valid UIDs of any length from 1: "1", "1.2", "1.22", ...
    let mut s = String::from("1");
    while s.len() < n {
        s.push(if s.len() % 2 == 1 { '.' } else { '2' });
    }
    if s.ends_with('.') {
        s.pop();
        s.push('3');
        s.truncate(n);
    }
    s
}

fn full_rq() -> AssociateRq {
    let mut rq = AssociateRq::new("MODALITY", "PACS");
    rq.contexts = vec![
        ProposedContext {
            id: 1,
            abstract_syntax: VERIFICATION.into(),
            transfer_syntaxes: vec![IMPLICIT.into()],
        },
        ProposedContext {
            id: 3,
            abstract_syntax: CT.into(),
            transfer_syntaxes: vec![EXPLICIT.into(), IMPLICIT.into()],
        },
    ];
    rq.user_info = UserInfo {
        max_length: Some(16_384),
        implementation_class_uid: Some("1.2.3.4".into()),
        async_window: Some((3, 2)),
        role_selections: vec![RoleSelection {
            sop_class: CT.into(),
            scu: true,
            scp: false,
        }],
        implementation_version_name: Some("TEST_1".into()),
        extended_negotiation: vec![ExtendedNegotiationItem {
            sop_class: CT.into(),
            info: vec![1, 0, 1],
        }],
        common_extended_negotiation: vec![CommonExtendedNegotiation {
            sop_class: CT.into(),
            service_class: "1.2.840.10008.4.2".into(),
            related_general_sop_classes: vec![MR.into(), VERIFICATION.into()],
        }],
        user_identity: Some(UserIdentity {
            identity_type: 2,
            positive_response_requested: true,
            primary: b"alice".to_vec(),
            secondary: b"secret".to_vec(),
        }),
        user_identity_response: None,
        other: Vec::new(),
    };
    rq
}

fn decode_rq(bytes: &[u8]) -> (assoc::AssociateRequest, Notes) {
    let mut notes = Notes::new();
    let rq = assoc::decode_request(body(bytes, 0x01), 6, &mut notes).expect("decodes");
    (rq, notes)
}

fn decode_ac(bytes: &[u8]) -> (assoc::AssociateAccept, Notes) {
    let mut notes = Notes::new();
    let ac = assoc::decode_accept(body(bytes, 0x02), 6, &mut notes).expect("decodes");
    (ac, notes)
}

#[test]
fn associate_rq_round_trips_every_sub_item() {
    let rq = full_rq();
    let bytes = rq.to_vec().unwrap();
    let (back, notes) = decode_rq(&bytes);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(back.protocol_version, 1);
    assert_eq!(back.calling_ae, "MODALITY");
    assert_eq!(back.called_ae, "PACS");
    assert_eq!(
        back.application_context.as_deref(),
        Some(encode::APPLICATION_CONTEXT)
    );
    assert_eq!(back.contexts, rq.contexts);
    let ui = &back.user_info;
    assert_eq!(ui.max_length, Some(16_384));
    assert_eq!(ui.implementation_class_uid.as_deref(), Some("1.2.3.4"));
    assert_eq!(ui.implementation_version_name.as_deref(), Some("TEST_1"));
    assert_eq!(ui.async_window, Some((3, 2)));
    assert_eq!(ui.role_selections, rq.user_info.role_selections);
    assert_eq!(ui.extended_negotiation.len(), 1);
    assert_eq!(ui.extended_negotiation[0].sop_class, CT);
    assert_eq!(ui.extended_negotiation[0].info, "010001");
    assert_eq!(
        ui.common_extended_negotiation,
        rq.user_info.common_extended_negotiation
    );
    let id = ui.user_identity.as_ref().expect("user identity");
    assert_eq!(id.identity_type, 2);
    assert!(id.positive_response_requested);
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(id.primary_field_length, 5);
    assert_eq!(id.secondary_field_length, 6);
    assert!(ui.unknown.is_empty() && back.unknown.is_empty());
}

#[test]
fn associate_rq_matches_dicom_ul() {
    // What both can express: no asynchronous window, no common extended negotiation.
    let mut rq = full_rq();
    rq.user_info.async_window = None;
    rq.user_info.common_extended_negotiation.clear();
    let theirs = ul(&Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: "MODALITY".into(),
        called_ae_title: "PACS".into(),
        application_context_name: encode::APPLICATION_CONTEXT.into(),
        presentation_contexts: rq
            .contexts
            .iter()
            .map(|c| PresentationContextProposed {
                id: c.id,
                abstract_syntax: c.abstract_syntax.clone(),
                transfer_syntaxes: c.transfer_syntaxes.clone(),
            })
            .collect(),
        user_variables: vec![
            UserVariableItem::MaxLength(16_384),
            UserVariableItem::ImplementationClassUID("1.2.3.4".into()),
            UserVariableItem::ScuScpRoleSelectionSubItem(
                CT.into(),
                RequestorRoles {
                    scu: true,
                    scp: false,
                },
            ),
            UserVariableItem::ImplementationVersionName("TEST_1".into()),
            UserVariableItem::SopClassExtendedNegotiationSubItem(CT.into(), vec![1, 0, 1]),
            UserVariableItem::UserIdentityItem(UlUserIdentity::new(
                true,
                UserIdentityType::UsernamePassword,
                b"alice".to_vec(),
                b"secret".to_vec(),
            )),
        ],
    }));
    assert_eq!(rq.to_vec().unwrap(), theirs);
}

fn full_ac() -> AssociateAc {
    AssociateAc {
        protocol_version: 1,
        called_ae: "PACS".into(),
        calling_ae: "MODALITY".into(),
        application_context: encode::APPLICATION_CONTEXT.into(),
        results: vec![
            ContextAnswer {
                id: 1,
                result: 0,
                transfer_syntax: Some(IMPLICIT.into()),
            },
            ContextAnswer {
                id: 3,
                result: 4,
                transfer_syntax: Some(EXPLICIT.into()),
            },
        ],
        user_info: UserInfo {
            max_length: Some(32_768),
            implementation_class_uid: Some("1.2.3.5".into()),
            implementation_version_name: Some("ACCEPTOR".into()),
            role_selections: vec![RoleSelection {
                sop_class: CT.into(),
                scu: false,
                scp: true,
            }],
            ..UserInfo::default()
        },
    }
}

#[test]
fn associate_ac_round_trips_and_matches_dicom_ul() {
    let ac = full_ac();
    let bytes = ac.to_vec().unwrap();
    let (back, notes) = decode_ac(&bytes);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        (back.called_ae.as_str(), back.calling_ae.as_str()),
        ("PACS", "MODALITY")
    );
    assert_eq!(back.results.len(), 2);
    for (r, a) in back.results.iter().zip(&ac.results) {
        assert_eq!((r.id, r.result), (a.id, a.result));
        assert_eq!(r.transfer_syntax, a.transfer_syntax);
    }
    assert_eq!(back.user_info.max_length, Some(32_768));
    assert_eq!(back.user_info.role_selections, ac.user_info.role_selections);

    let theirs = ul(&Pdu::AssociationAC(AssociationAC {
        protocol_version: 1,
        calling_ae_title: "MODALITY".into(),
        called_ae_title: "PACS".into(),
        application_context_name: encode::APPLICATION_CONTEXT.into(),
        presentation_contexts: vec![
            PresentationContextResult {
                id: 1,
                reason: PresentationContextResultReason::Acceptance,
                transfer_syntax: IMPLICIT.into(),
            },
            PresentationContextResult {
                id: 3,
                reason: PresentationContextResultReason::TransferSyntaxesNotSupported,
                transfer_syntax: EXPLICIT.into(),
            },
        ],
        user_variables: vec![
            UserVariableItem::MaxLength(32_768),
            UserVariableItem::ImplementationClassUID("1.2.3.5".into()),
            UserVariableItem::ScuScpRoleSelectionSubItem(
                CT.into(),
                RequestorRoles {
                    scu: false,
                    scp: true,
                },
            ),
            UserVariableItem::ImplementationVersionName("ACCEPTOR".into()),
        ],
    }));
    assert_eq!(bytes, theirs);
}

#[test]
fn associate_ac_says_what_dicom_ul_cannot() {
    // A rejection without a transfer syntax sub-item, the asynchronous window and the
    // user identity server response.
    let mut ac = full_ac();
    ac.results[1].transfer_syntax = None;
    ac.user_info.async_window = Some((1, 1));
    ac.user_info.user_identity_response = Some(b"token".to_vec());
    let (back, notes) = decode_ac(&ac.to_vec().unwrap());
    assert_eq!(back.results[1].transfer_syntax, None);
    assert_eq!(back.user_info.async_window, Some((1, 1)));
    assert_eq!(back.user_info.user_identity_response_length, Some(5));
    // The only note is the tolerated missing sub-item of the rejection.
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .1
            .message
            .contains("without a transfer syntax sub-item")
    );
}

#[test]
fn answering_echoes_the_request() {
    let (rq, _) = decode_rq(&full_rq().to_vec().unwrap());
    let ac = AssociateAc::answering(&rq);
    assert_eq!(ac.called_ae, "PACS");
    assert_eq!(ac.calling_ae, "MODALITY");
    assert_eq!(ac.application_context, encode::APPLICATION_CONTEXT);
    assert_eq!(ac.protocol_version, 1);
}

#[test]
fn other_sub_items_are_written_as_given_and_kept_by_the_decoder() {
    let mut rq = full_rq();
    rq.user_info.other.push(RawItem {
        item_type: 0x7F,
        value: vec![9; 7],
    });
    let (back, notes) = decode_rq(&rq.to_vec().unwrap());
    assert_eq!(back.user_info.unknown.len(), 1);
    assert_eq!(back.user_info.unknown[0].item_type, 0x7F);
    assert_eq!(back.user_info.unknown[0].length, 7);
    assert_eq!(notes.len(), 1);
}

#[test]
fn ae_titles_are_space_padded_and_cut_at_16() {
    assert_eq!(&encode::ae_title("AB"), b"AB              ");
    assert_eq!(&encode::ae_title("ABCDEFGHIJKLMNOPQR"), b"ABCDEFGHIJKLMNOP");
    let rq = AssociateRq::new("A", "ABCDEFGHIJKLMNOPQR")
        .to_vec()
        .unwrap();
    assert_eq!(&rq[10..26], b"ABCDEFGHIJKLMNOP");
    assert_eq!(&rq[26..42], b"A               ");
}

#[test]
fn reject_abort_release_round_trip_and_match_dicom_ul() {
    for (result, source, reason) in [(1u8, 1u8, 3u8), (2, 3, 1), (2, 3, 2), (1, 1, 7), (2, 2, 2)] {
        let rj = encode::associate_rj(result, source, reason);
        let mut notes = Notes::new();
        let back = assoc::decode_reject(body(&rj, 0x03), 6, &mut notes).unwrap();
        assert_eq!(
            (back.result, back.source, back.reason),
            (result, source, reason)
        );
        assert!(notes.is_empty());
    }
    let theirs = ul(&Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Permanent,
        source: AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CallingAETitleNotRecognized,
        ),
    }));
    assert_eq!(encode::associate_rj(1, 1, 3).to_vec(), theirs);
    let theirs = ul(&Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    }));
    assert_eq!(encode::associate_rj(2, 3, 2).to_vec(), theirs);
    // Out of the table (an access-control reason), written as given.
    let rj = encode::associate_rj(1, 1, 9);
    let mut notes = Notes::new();
    let back = assoc::decode_reject(body(&rj, 0x03), 6, &mut notes).unwrap();
    assert_eq!(back.reason, 9);
    assert_eq!(notes.len(), 1);

    for (source, reason) in [(0u8, 0u8), (2, 0), (2, 1), (2, 2), (2, 6)] {
        let a = encode::abort(source, reason);
        let mut notes = Notes::new();
        let back = assoc::decode_abort(body(&a, 0x07), 6, &mut notes).unwrap();
        assert_eq!((back.source, back.reason), (source, reason));
        assert!(notes.is_empty());
    }
    let theirs = ul(&Pdu::AbortRQ {
        source: AbortRQSource::ServiceProvider(AbortRQServiceProviderReason::UnexpectedPdu),
    });
    assert_eq!(encode::abort(2, 2).to_vec(), theirs);
    assert_eq!(
        encode::abort(0, 0).to_vec(),
        ul(&Pdu::AbortRQ {
            source: AbortRQSource::ServiceUser
        })
    );
    assert_eq!(encode::RELEASE_RQ.to_vec(), ul(&Pdu::ReleaseRQ));
    assert_eq!(encode::RELEASE_RP.to_vec(), ul(&Pdu::ReleaseRP));
}

#[test]
fn p_data_matches_dicom_ul_with_one_and_several_pdvs() {
    let cmd = encode_command(&Command::new(field::C_ECHO_RQ));
    let pdvs = [
        Pdv {
            pc_id: 1,
            command: true,
            last: true,
            data: &cmd,
        },
        Pdv {
            pc_id: 3,
            command: false,
            last: false,
            data: &[1, 2, 3, 4],
        },
    ];
    let mut ours = Vec::new();
    encode::p_data(&mut ours, &pdvs).unwrap();
    let theirs = ul(&Pdu::PData {
        data: pdvs
            .iter()
            .map(|p| PDataValue {
                presentation_context_id: p.pc_id,
                value_type: if p.command {
                    PDataValueType::Command
                } else {
                    PDataValueType::Data
                },
                is_last: p.last,
                data: p.data.to_vec(),
            })
            .collect(),
    });
    assert_eq!(ours, theirs);
    let mut one = Vec::new();
    encode::p_data(&mut one, &pdvs[..1]).unwrap();
    let header = encode::p_data_header(1, true, true, cmd.len()).unwrap();
    assert_eq!(&one[..12], &header);
    assert_eq!(&one[12..], &cmd[..]);
}

/// Every PDU type through the engine, in both directions: no finding, and the events
/// say what was encoded.
#[test]
fn a_whole_association_through_the_engine() {
    let mut conv = Conversation::new(EngineConfig {
        emit_data: true,
        ..EngineConfig::default()
    });
    let rq = full_rq();
    conv.feed(Side::Requestor, 0, &rq.to_vec().unwrap());
    let mut ac = full_ac();
    ac.results[1].result = 0;
    conv.feed(Side::Acceptor, 1, &ac.to_vec().unwrap());
    let mut cmd = Command::new(field::C_STORE_RQ);
    cmd.message_id = Some(7);
    cmd.priority = Some(0);
    cmd.affected_sop_class = Some(CT.into());
    cmd.affected_sop_instance = Some("1.2.3.4.5".into());
    cmd.has_dataset = true;
    let cmd = encode_command(&cmd);
    // Explicit VR Little Endian: one Pixel Data element (OB), which the peek skips.
    let mut data = vec![0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0];
    data.extend_from_slice(&4988u32.to_le_bytes());
    data.extend((0..4988u32).map(|i| i as u8));
    let mut stream = Vec::new();
    for pdv in encode::fragments(3, true, &cmd, 64).chain(encode::fragments(3, false, &data, 1000))
    {
        encode::p_data(&mut stream, &[pdv]).unwrap();
    }
    conv.feed(Side::Requestor, 2, &stream);
    conv.feed(Side::Requestor, 3, &encode::RELEASE_RQ);
    conv.feed(Side::Acceptor, 4, &encode::RELEASE_RP);
    conv.feed(Side::Requestor, 5, &encode::abort(0, 0));
    let mut kinds = Vec::new();
    let mut got = Vec::new();
    while let Some(e) = conv.poll() {
        match e.kind {
            EventKind::Finding(f) => panic!("finding: {}", f.message),
            EventKind::DataFragment(f) => got.extend_from_slice(&f.bytes),
            EventKind::Command(c) => {
                assert_eq!(c.command.message_id, Some(7));
                kinds.push("command");
            }
            EventKind::AssociateRq(_) => kinds.push("rq"),
            EventKind::AssociateAc(_) => kinds.push("ac"),
            EventKind::ReleaseRq => kinds.push("release-rq"),
            EventKind::ReleaseRp => kinds.push("release-rp"),
            EventKind::Abort(_) => kinds.push("abort"),
            _ => {}
        }
    }
    assert_eq!(got, data);
    assert_eq!(
        kinds,
        ["rq", "ac", "command", "release-rq", "release-rp", "abort"]
    );
    assert_eq!(conv.accepted_contexts().count(), 2);
}

#[test]
fn too_long_values_are_errors_and_write_nothing() {
    let mut rq = full_rq();
    rq.contexts[0].abstract_syntax = "1".repeat(65_536);
    let mut out = vec![0xAA];
    let e = rq.encode(&mut out).unwrap_err();
    assert_eq!(e.what, "abstract syntax sub-item");
    assert_eq!(e.len, 65_536);
    assert_eq!(out, [0xAA]);
    // The sub-item fits, its presentation context item does not.
    rq.contexts[0].abstract_syntax = "1".repeat(65_532);
    let e = rq.encode(&mut out).unwrap_err();
    assert_eq!(e.what, "presentation context item");
    // A value inside a sub-item, and a sub-item inside user information.
    let mut rq = full_rq();
    rq.user_info.extended_negotiation[0].info = vec![0; 70_000];
    assert!(rq.encode(&mut out).is_err());
    let mut rq = full_rq();
    rq.user_info.role_selections[0].sop_class = "1".repeat(70_000);
    assert_eq!(
        rq.encode(&mut out).unwrap_err().what,
        "role selection SOP class"
    );
    assert_eq!(out, [0xAA]);
    // Just fits: a 65,535-byte sub-item value.
    let mut rq = full_rq();
    rq.user_info.other.push(RawItem {
        item_type: 0x7F,
        value: vec![0; 65_535 - 8 - 4 - 20],
    });
    rq.user_info = UserInfo {
        other: rq.user_info.other,
        ..UserInfo::default()
    };
    let bytes = rq.to_vec().unwrap();
    let (back, _) = decode_rq(&bytes);
    assert_eq!(back.user_info.unknown[0].length as usize, 65_535 - 32);
}

/// Bounded loops over field sizes: UID lengths, context and transfer syntax counts,
/// extended negotiation and identity field lengths; every encoding decodes to what was
/// put in, without a finding.
#[test]
fn field_sizes_round_trip() {
    for n in 1..=64 {
        let u = uid(n);
        assert_eq!(u.len(), n);
        let mut rq = AssociateRq::new(&"C".repeat(n % 17), &"D".repeat((n * 3) % 17));
        rq.contexts = (0..(n % 9))
            .map(|i| ProposedContext {
                id: (i * 2 + 1) as u8,
                abstract_syntax: uid(n),
                transfer_syntaxes: (0..=(i % 4)).map(|k| uid(1 + (n + k) % 64)).collect(),
            })
            .collect();
        rq.user_info = UserInfo {
            max_length: Some(n as u32 * 1021),
            implementation_class_uid: Some(uid(n)),
            implementation_version_name: Some("V".repeat(n % 17)),
            async_window: (n % 3 == 0).then_some((n as u16, 1)),
            role_selections: (0..n % 4)
                .map(|k| RoleSelection {
                    sop_class: uid(1 + (n * k) % 64),
                    scu: k % 2 == 0,
                    scp: k % 3 == 0,
                })
                .collect(),
            extended_negotiation: vec![ExtendedNegotiationItem {
                sop_class: uid(n),
                info: vec![7; n * 5],
            }],
            user_identity: Some(UserIdentity {
                identity_type: 1 + (n % 5) as u8,
                positive_response_requested: n % 2 == 0,
                primary: vec![b'u'; n * 7],
                secondary: vec![b'p'; n * 11],
            }),
            ..UserInfo::default()
        };
        let bytes = rq.to_vec().unwrap();
        let (back, notes) = decode_rq(&bytes);
        // An empty version name is kept; only absent sub-items would be noted.
        assert!(notes.is_empty(), "n={n}: {notes:?}");
        assert_eq!(back.calling_ae, "C".repeat(n % 17));
        assert_eq!(back.called_ae, "D".repeat((n * 3) % 17));
        assert_eq!(back.contexts, rq.contexts, "n={n}");
        assert_eq!(back.user_info.role_selections, rq.user_info.role_selections);
        assert_eq!(back.user_info.async_window, rq.user_info.async_window);
        assert_eq!(back.user_info.extended_negotiation[0].info.len(), n * 10);
        let id = back.user_info.user_identity.clone().unwrap();
        assert_eq!(id.primary_field_length as usize, n * 7);
        assert_eq!(id.secondary_field_length as usize, n * 11);

        let mut ac = AssociateAc::answering(&back);
        ac.results = rq
            .contexts
            .iter()
            .map(|c| ContextAnswer {
                id: c.id,
                result: c.id % 5,
                transfer_syntax: c.transfer_syntaxes.last().cloned(),
            })
            .collect();
        ac.user_info.max_length = Some(0);
        ac.user_info.implementation_class_uid = Some(uid(n));
        let (a, notes) = decode_ac(&ac.to_vec().unwrap());
        assert!(notes.is_empty(), "n={n}: {notes:?}");
        assert_eq!(a.results.len(), ac.results.len());
        for (r, x) in a.results.iter().zip(&ac.results) {
            assert_eq!((r.id, r.result), (x.id, x.result));
            assert_eq!(r.transfer_syntax, x.transfer_syntax);
        }
    }
}

#[test]
fn the_most_contexts_allowed_round_trip() {
    let mut rq = AssociateRq::new("A", "B");
    rq.contexts = (0..128)
        .map(|i| ProposedContext {
            id: (i * 2 + 1) as u8,
            abstract_syntax: CT.into(),
            transfer_syntaxes: vec![EXPLICIT.into(), IMPLICIT.into()],
        })
        .collect();
    rq.user_info.max_length = Some(0);
    rq.user_info.implementation_class_uid = Some("1.2".into());
    let (back, notes) = decode_rq(&rq.to_vec().unwrap());
    assert!(notes.is_empty());
    assert_eq!(back.contexts.len(), 128);
    assert_eq!(back.contexts[127].id, 255);
}

/// Fragmenting to a maximum length: each PDU fits, the PDVs rebuild the data, only the
/// last is marked last, and the PDV parser agrees with the encoder on every item.
#[test]
fn fragments_fit_the_maximum_length() {
    let data: Vec<u8> = (0..3001u32).map(|i| (i * 7) as u8).collect();
    for len in [0usize, 1, 2, 5, 6, 7, 100, 994, 995, 3000, 3001] {
        for max in [0u32, 1, 6, 7, 8, 64, 1000, 1006, 4096, 16_384] {
            let data = &data[..len];
            let pdvs: Vec<Pdv<'_>> = encode::fragments(5, len % 2 == 0, data, max).collect();
            assert!(!pdvs.is_empty());
            let mut rebuilt = Vec::new();
            for (i, pdv) in pdvs.iter().enumerate() {
                assert_eq!(pdv.last, i + 1 == pdvs.len(), "len={len} max={max}");
                assert_eq!(pdv.pc_id, 5);
                assert_eq!(pdv.command, len % 2 == 0);
                let mut bytes = Vec::new();
                encode::p_data(&mut bytes, &[*pdv]).unwrap();
                let pdu_len = bytes.len() - 6;
                if max > 6 {
                    assert!(pdu_len <= max as usize, "len={len} max={max}: {pdu_len}");
                }
                let mut parser = PdvParser::new(pdu_len as u32);
                let mut rest = &bytes[6..];
                while !rest.is_empty() {
                    let (used, piece) = parser.step(rest, 6);
                    rest = &rest[used..];
                    match piece {
                        Some(PdvPiece::Header {
                            pc_id,
                            control,
                            length,
                            ..
                        }) => {
                            assert_eq!(pc_id, 5);
                            assert_eq!(control, pdv.control());
                            assert_eq!(length as usize, pdv.data.len() + 2);
                        }
                        Some(PdvPiece::Fragment { bytes, .. }) => rebuilt.extend_from_slice(bytes),
                        Some(PdvPiece::BadLength { .. }) => panic!("bad length"),
                        None => {}
                    }
                }
            }
            assert_eq!(rebuilt, data, "len={len} max={max}");
            if max == 0 || max as usize >= len + 6 {
                assert_eq!(pdvs.len(), 1);
            }
        }
    }
}

#[test]
fn any_pdu_is_framed_as_given() {
    let mut out = Vec::new();
    encode::pdu(&mut out, 0x0A, &[1, 2, 3, 4]).unwrap();
    assert_eq!(out, [0x0A, 0, 0, 0, 0, 4, 1, 2, 3, 4]);
}
