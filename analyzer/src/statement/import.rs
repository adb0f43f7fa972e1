//! Import of a dcm4che device configuration (the JSON of dcm4che's `JsonConfiguration`,
//! as exported by dcm4chee-arc's UI or `GET /dcm4chee-arc/devices/{name}`) into a
//! statement.
//!
//! Mapped: the PS3.15 Annex H core (dicomDevice: dicomDeviceName, dicomManufacturer,
//! dicomManufacturerModelName, dicomSoftwareVersion, dicomDescription; dicomNetworkAE:
//! dicomAETitle, dicomAssociationInitiator/Acceptor, dicomSupportedCharacterSet,
//! dicomNetworkConnectionReference; dicomNetworkConnection: dicomHostname, dicomPort,
//! dicomTLSCipherSuite; dicomTransferCapability: dicomSOPClass, dicomTransferRole,
//! dicomTransferSyntax) and the dcm4che extensions that have a place in the format:
//! `dcmNetworkConnection` {dcmReceivePDULength, dcmSendPDULength, dcmMaxOpsInvoked,
//! dcmMaxOpsPerformed, dcmAARQTimeout, dcmAAACTimeout, dcmResponseTimeout, dcmIdleTimeout,
//! dcmTCPConnectTimeout (all ms), dcmTLSProtocol, dcmTLSNeedClientAuth}, `dcmNetworkAE`
//! {dcmAcceptedCallingAETitle, dcmPreferredTransferSyntax}, `dcmTransferCapability`
//! {dcmPreferredTransferSyntax, dcmRelationalQueries, dcmCombinedDateTimeMatching,
//! dcmFuzzySemanticMatching, dcmTimezoneQueryAdjustment, dcmStorageConformance,
//! dcmDigitalSignatureSupport, dcmDataElementCoercion} and `dcmDevice`
//! {dcmLimitOpenAssociations}. Everything else is ignored; what could not be mapped is
//! returned as notes.

use std::collections::BTreeMap;

use dicomtap_wire::uid;
use serde_json::Value;

use super::load::{ae_title_problem, is_character_set};
use super::model::*;

/// A failed import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a dcm4che device configuration: {0}")]
    NotADevice(String),
}

/// An imported statement, with what the import could not map.
#[derive(Debug, Clone)]
pub struct Imported {
    pub statement: Statement,
    /// One line per value skipped or guessed, for the header of the written file.
    pub notes: Vec<String>,
}

/// Converts a dcm4che device JSON (the object with `dicomDeviceName`, or a
/// one-element array of it) into a statement. `source` names the input in the
/// statement's `document`.
pub fn from_dcm4che(json: &Value, source: &str) -> Result<Imported, ImportError> {
    let dev = match json {
        Value::Array(a) if a.len() == 1 => a.first().unwrap_or(json),
        v => v,
    };
    let Some(obj) = dev.as_object() else {
        return Err(ImportError::NotADevice("expected a JSON object".into()));
    };
    let Some(name) = obj.get("dicomDeviceName").and_then(Value::as_str) else {
        return Err(ImportError::NotADevice("no dicomDeviceName".into()));
    };
    let mut notes = Vec::new();
    let mut private_uids = BTreeMap::new();
    let device = Device {
        name: name.to_owned(),
        manufacturer: str_of(dev, "dicomManufacturer"),
        model: str_of(dev, "dicomManufacturerModelName"),
        software_versions: strings_of(dev, "dicomSoftwareVersion"),
        document: Some(format!(
            "Imported from the dcm4che device configuration {source}{}",
            str_of(dev, "dicomDescription")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )),
    };
    let limit = dev
        .get("dcmDevice")
        .and_then(|d| d.get("dcmLimitOpenAssociations"))
        .and_then(Value::as_u64)
        .filter(|&n| n > 0)
        .map(|n| n.min(u32::MAX.into()) as u32);
    let conns: Vec<&Value> = dev
        .get("dicomNetworkConnection")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut aes = Vec::new();
    for (i, a) in dev
        .get("dicomNetworkAE")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(title) = str_of(a, "dicomAETitle") else {
            notes.push(format!("dicomNetworkAE[{i}] has no dicomAETitle: skipped"));
            continue;
        };
        if let Some(p) = ae_title_problem(&title) {
            notes.push(format!("dicomNetworkAE[{i}] title {title:?}: {p}: skipped"));
            continue;
        }
        if a.get("dicomInstalled").and_then(Value::as_bool) == Some(false) {
            notes.push(format!(
                "AE {title} is not installed (dicomInstalled = false): skipped"
            ));
            continue;
        }
        let my_conns: Vec<&Value> = strings_of(a, "dicomNetworkConnectionReference")
            .iter()
            .filter_map(|r| {
                let idx = r.rsplit('/').next()?.parse::<usize>().ok()?;
                conns.get(idx).copied()
            })
            .filter(|c| is_dicom_connection(c))
            .collect();
        aes.push(import_ae(
            a,
            &title,
            &my_conns,
            limit,
            &mut private_uids,
            &mut notes,
        ));
    }
    if aes.is_empty() {
        return Err(ImportError::NotADevice(format!(
            "device {name} has no usable dicomNetworkAE"
        )));
    }
    Ok(Imported {
        statement: Statement {
            path: None,
            device,
            device_line: 0,
            ae: aes,
            private_uids,
        },
        notes,
    })
}

fn is_dicom_connection(c: &Value) -> bool {
    c.get("dcmNetworkConnection")
        .and_then(|e| e.get("dcmProtocol"))
        .and_then(Value::as_str)
        .is_none_or(|p| p == "DICOM")
        && c.get("dicomInstalled").and_then(Value::as_bool) != Some(false)
}

fn str_of(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// A string array (or a single string, which some exports write for one value).
fn strings_of(v: &Value, k: &str) -> Vec<String> {
    match v.get(k) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn ext_u64(c: &Value, k: &str) -> Option<u64> {
    c.get("dcmNetworkConnection")
        .and_then(|e| e.get(k))
        .and_then(Value::as_u64)
}

fn ms(v: Option<u64>) -> Option<f64> {
    v.filter(|&ms| ms > 0).map(|ms| ms as f64 / 1000.0)
}

fn import_ae(
    a: &Value,
    title: &str,
    conns: &[&Value],
    limit: Option<u32>,
    private_uids: &mut BTreeMap<String, PrivateUid>,
    notes: &mut Vec<String>,
) -> Ae {
    let initiator = a
        .get("dicomAssociationInitiator")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let acceptor = a
        .get("dicomAssociationAcceptor")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut hosts: Vec<String> = Vec::new();
    for c in conns {
        if let Some(h) = str_of(c, "dicomHostname")
            && !hosts.contains(&h)
            && !h.trim().is_empty()
            && !h.contains(char::is_whitespace)
        {
            hosts.push(h);
        }
    }
    let is_tls = |c: &&Value| !strings_of(c, "dicomTLSCipherSuite").is_empty();
    let plain: Vec<&Value> = conns.iter().copied().filter(|c| !is_tls(c)).collect();
    let tls_conns: Vec<&Value> = conns.iter().copied().filter(is_tls).collect();
    let port = plain
        .iter()
        .chain(tls_conns.iter())
        .find_map(|c| c.get("dicomPort").and_then(Value::as_u64))
        .filter(|p| (1..=65535).contains(p))
        .map(|p| p as u16);
    if plain.len() + tls_conns.len() > 1 {
        notes.push(format!(
            "AE {title}: {} DICOM connections; port {} and the association parameters of the first are used",
            conns.len(),
            port.map_or("-".to_owned(), |p| p.to_string())
        ));
    }
    let first = plain.first().or(tls_conns.first()).copied();
    let tls = tls_conns.first().map(|c| {
        let versions: Vec<String> = c
            .get("dcmNetworkConnection")
            .map(|e| strings_of(e, "dcmTLSProtocol"))
            .unwrap_or_default()
            .iter()
            .filter_map(|p| match p.as_str() {
                "TLSv1" => Some("1.0".to_owned()),
                "TLSv1.1" => Some("1.1".to_owned()),
                "TLSv1.2" => Some("1.2".to_owned()),
                "TLSv1.3" => Some("1.3".to_owned()),
                _ => None,
            })
            .collect();
        // dcm4che: dcmTLSNeedClientAuth defaults to true.
        let need = c
            .get("dcmNetworkConnection")
            .and_then(|e| e.get("dcmTLSNeedClientAuth"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Tls {
            required: plain.is_empty(),
            versions,
            client_auth: Some(if need {
                ClientAuth::Required
            } else {
                ClientAuth::None
            }),
        }
    });
    let pdu = |k: &str| {
        first
            .and_then(|c| ext_u64(c, k))
            .map(|v| v.min(u32::MAX.into()) as u32)
    };
    let ops = |k: &str| {
        first
            .and_then(|c| ext_u64(c, k))
            .map(|v| v.min(65535) as u16)
    };
    let async_window = match (ops("dcmMaxOpsInvoked"), ops("dcmMaxOpsPerformed")) {
        (None, None) => None,
        // dcm4che: 1 (synchronous) when absent.
        (i, p) => Some(AsyncWindow {
            invoked: i.unwrap_or(1),
            performed: p.unwrap_or(1),
        }),
    };
    let t = |k: &str| ms(first.and_then(|c| ext_u64(c, k)));
    let timeouts_s = Timeouts {
        // ARTIM: waiting for the A-ASSOCIATE-RQ (acceptor) or -AC (initiator).
        artim: if acceptor {
            t("dcmAARQTimeout").or(t("dcmAAACTimeout"))
        } else {
            t("dcmAAACTimeout").or(t("dcmAARQTimeout"))
        },
        dimse: t("dcmResponseTimeout"),
        idle: t("dcmIdleTimeout"),
        connect: t("dcmTCPConnectTimeout"),
    };
    let mut character_sets = Vec::new();
    for cs in strings_of(a, "dicomSupportedCharacterSet") {
        if is_character_set(&cs) {
            character_sets.push(cs);
        } else {
            notes.push(format!(
                "AE {title}: character set {cs:?} is not a defined term: skipped"
            ));
        }
    }
    let ext = a.get("dcmNetworkAE");
    let accept_calling_ae_titles = ext
        .map(|e| strings_of(e, "dcmAcceptedCallingAETitle"))
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.into_iter()
                .filter(|t| ae_title_problem(t).is_none())
                .collect()
        });
    let ae_preferred = ext
        .map(|e| strings_of(e, "dcmPreferredTransferSyntax"))
        .unwrap_or_default();
    let mut capability: Vec<Capability> = Vec::new();
    for (j, tc) in a
        .get("dicomTransferCapability")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let label = str_of(tc, "cn").unwrap_or_else(|| format!("dicomTransferCapability[{j}]"));
        let Some(sop) = str_of(tc, "dicomSOPClass") else {
            notes.push(format!("AE {title}: {label}: no dicomSOPClass: skipped"));
            continue;
        };
        if sop == "*" {
            notes.push(format!(
                "AE {title}: {label}: SOP class \"*\" (any) cannot be stated; list the SOP classes explicitly"
            ));
            continue;
        }
        let role = match str_of(tc, "dicomTransferRole").as_deref() {
            Some("SCU") => Role::Scu,
            Some("SCP") => Role::Scp,
            other => {
                notes.push(format!(
                    "AE {title}: {label}: dicomTransferRole {other:?}: skipped"
                ));
                continue;
            }
        };
        let Some(sop_class) = resolve(&sop, false, &label, private_uids) else {
            notes.push(format!(
                "AE {title}: {label}: {sop:?} is not a SOP class UID: skipped"
            ));
            continue;
        };
        let mut transfer_syntaxes = Vec::new();
        for ts in strings_of(tc, "dicomTransferSyntax") {
            if ts == "*" {
                notes.push(format!(
                    "AE {title}: {label}: transfer syntax \"*\" (any) cannot be stated; kept the explicit ones"
                ));
                continue;
            }
            match resolve(&ts, true, &format!("{label} transfer syntax"), private_uids) {
                Some(r) if !transfer_syntaxes.contains(&r) => transfer_syntaxes.push(r),
                Some(_) => {}
                None => notes.push(format!(
                    "AE {title}: {label}: {ts:?} is not a transfer syntax UID: skipped"
                )),
            }
        }
        let tce = tc.get("dcmTransferCapability");
        let mut preferred_src = tce
            .map(|e| strings_of(e, "dcmPreferredTransferSyntax"))
            .unwrap_or_default();
        if preferred_src.is_empty() && role == Role::Scp {
            preferred_src.clone_from(&ae_preferred);
        }
        let preferred_transfer_syntaxes: Vec<UidRef> = preferred_src
            .iter()
            .filter_map(|p| transfer_syntaxes.iter().find(|t| &t.uid == p).cloned())
            .collect();
        let flag = |k: &str| tce.and_then(|e| e.get(k)).and_then(Value::as_bool);
        let level = |k: &str, max: u64| {
            tce.and_then(|e| e.get(k))
                .and_then(Value::as_u64)
                .filter(|v| *v <= max)
                .map(|v| v as u8)
        };
        let find = [
            "dcmRelationalQueries",
            "dcmCombinedDateTimeMatching",
            "dcmFuzzySemanticMatching",
            "dcmTimezoneQueryAdjustment",
        ]
        .iter()
        .any(|k| flag(k).is_some())
        .then(|| FindExtNeg {
            relational: flag("dcmRelationalQueries"),
            combined_date_time: flag("dcmCombinedDateTimeMatching"),
            fuzzy_person_name: flag("dcmFuzzySemanticMatching"),
            timezone_adjust: flag("dcmTimezoneQueryAdjustment"),
        });
        let storage = StorageExtNeg {
            level_of_support: level("dcmStorageConformance", 3),
            digital_signature: level("dcmDigitalSignatureSupport", 2),
            element_coercion: level("dcmDataElementCoercion", 2),
        };
        let storage = (storage != StorageExtNeg::default()).then_some(storage);
        let extended_negotiation =
            (find.is_some() || storage.is_some()).then_some(ExtendedNegotiation {
                storage,
                find,
                retrieve: None,
            });
        if let Some(prev) = capability
            .iter_mut()
            .find(|c| c.sop_class == sop_class && c.role == role)
        {
            for t in transfer_syntaxes {
                if !prev.transfer_syntaxes.contains(&t) {
                    prev.transfer_syntaxes.push(t);
                }
            }
            notes.push(format!(
                "AE {title}: {label}: merged with the earlier {sop_class} {role} entry"
            ));
            continue;
        }
        if transfer_syntaxes.is_empty() {
            notes.push(format!(
                "AE {title}: {label}: no transfer syntax that can be stated: skipped"
            ));
            continue;
        }
        capability.push(Capability {
            line: 0,
            sop_class,
            role,
            transfer_syntaxes,
            preferred_transfer_syntaxes,
            role_selection: None,
            extended_negotiation,
            common_extended_negotiation: None,
            statuses: None,
            storage_commitment: None,
        });
    }
    Ae {
        title: title.trim().to_owned(),
        line: 0,
        hosts,
        port,
        initiator,
        acceptor,
        character_sets,
        implementation_class_uid: None,
        implementation_version_name: None,
        max_pdu_receive: pdu("dcmReceivePDULength"),
        max_pdu_send: pdu("dcmSendPDULength"),
        max_presentation_contexts: None,
        max_associations: MaxAssociations {
            initiator: None,
            acceptor: if acceptor { limit } else { None },
        },
        async_window,
        timeouts_s,
        accept_calling_ae_titles,
        user_identity: Vec::new(),
        tls,
        private_creators: Vec::new(),
        statuses: None,
        capability,
    }
}

/// A registry UID of the right kind, or a syntactically valid unknown UID declared
/// private (named after the dcm4che `cn`).
fn resolve(
    s: &str,
    transfer_syntax: bool,
    label: &str,
    private_uids: &mut BTreeMap<String, PrivateUid>,
) -> Option<UidRef> {
    let u = s.trim_end_matches('\0').trim();
    if !uid::is_valid(u) {
        return None;
    }
    if uid::lookup(u).is_some() {
        let ok = if transfer_syntax {
            uid::is_transfer_syntax(u)
        } else {
            uid::is_sop_class(u)
        };
        return ok.then(|| UidRef::standard(u));
    }
    private_uids
        .entry(u.to_owned())
        .or_insert_with(|| PrivateUid {
            private: true,
            name: Some(label.to_owned()),
        });
    Some(UidRef {
        uid: u.to_owned(),
        keyword: None,
        private: true,
    })
}
