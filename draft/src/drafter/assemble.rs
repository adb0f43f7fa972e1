//! The second pass: raw findings to a statement. Transfer syntax lists are given to the
//! capabilities that lack their own (by reference, then by section, then the document's
//! general list), roles come from the row, the sentence or the heading, capabilities are
//! given to their AE, sections copied into another role, and every claim gets evidence.

use std::collections::BTreeMap;

use dicomtap_analyzer::statement::{
    Ae, Capability, ClientAuth, Device, ExtendedNegotiation, FindExtNeg, PrivateUid, ReportOn,
    RetrieveExtNeg, Role, Statement, StorageCommitment, StorageExtNeg, Timeouts, Tls, UidRef,
    UserIdentityType,
};
use dicomtap_wire::syntax::IMPLICIT_VR_LITTLE_ENDIAN;
use dicomtap_wire::uid;

use super::evidence::{Evidence, EvidenceMap};
use super::parameters::Parameters;
use super::report::{Note, Report};
use super::scan::{RawCap, Resolved, Roles, Scan, table_ref};
use crate::document::{Document, Loc};

/// The statement, its evidence and the report, before writing.
pub struct Assembled {
    pub statement: Statement,
    pub evidence: EvidenceMap,
}

fn section_chain(scan: &Scan, mut s: usize) -> Vec<usize> {
    let mut v = vec![s];
    let mut guard = 0;
    while let Some(p) = scan.sections.get(s).and_then(|x| x.parent) {
        v.push(p);
        s = p;
        guard += 1;
        if guard > 64 {
            break;
        }
    }
    v
}

/// Roles of a section from the innermost sentence or heading that names them.
fn section_roles(scan: &Scan, s: usize) -> Option<Roles> {
    section_chain(scan, s).into_iter().find_map(|i| {
        scan.sections
            .get(i)
            .and_then(|x| x.line_roles.or(x.heading_roles))
    })
}

fn ts_roles(scan: &Scan, s: usize) -> Option<Roles> {
    section_chain(scan, s).into_iter().find_map(|i| {
        scan.sections
            .get(i)
            .and_then(|x| x.ts_roles.or(x.heading_roles))
    })
}

fn uidref(r: &Resolved) -> UidRef {
    if uid::lookup(&r.uid).is_some() {
        UidRef::standard(&r.uid)
    } else {
        UidRef {
            uid: r.uid.clone(),
            keyword: None,
            private: true,
        }
    }
}

fn label(u: &str) -> String {
    uid::keyword(u).map_or_else(|| u.to_owned(), str::to_owned)
}

/// A device name for the statement from the document's title or file name: letters,
/// digits and underscores, upper case.
pub fn device_name(doc: &Document) -> String {
    // A title that is not a conformance statement's ("DICOM image archive (central test
    // node)", a man page's) describes the program; its file is named after it.
    let from_title = doc
        .title
        .as_deref()
        .filter(|t| t.to_lowercase().contains("conformance statement"))
        .map(|t| {
            let l = t.to_lowercase();
            let mut rest = t.to_owned();
            for p in [
                "dicom conformance statement of ",
                "dicom conformance statement for ",
                "dicom conformance statement",
                "conformance statement",
            ] {
                if let Some(i) = l.find(p) {
                    let before = t.get(..i).unwrap_or("").trim();
                    let after = t.get(i + p.len()..).unwrap_or("").trim();
                    rest = if after.is_empty() { before } else { after }.to_owned();
                    break;
                }
            }
            rest
        });
    let stem = std::path::Path::new(&doc.source)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw = from_title
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .unwrap_or(stem);
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name = name.trim_matches('_').chars().take(48).collect::<String>();
    if name.is_empty() {
        "DRAFTED_DEVICE".into()
    } else {
        name
    }
}

pub fn assemble(
    doc: &Document,
    scan: &Scan,
    params: &Parameters,
    report: &mut Report,
) -> Assembled {
    let mut ev = EvidenceMap::default();
    // Device.
    let name = device_name(doc);
    ev.add(
        "device.name".into(),
        Evidence::new(
            &Loc::default(),
            &format!(
                "from the document's {}",
                if doc.title.is_some() {
                    "title"
                } else {
                    "file name"
                }
            ),
        ),
    );
    let mut device = Device {
        name: name.clone(),
        manufacturer: params.manufacturer.as_ref().map(|f| f.value.clone()),
        model: None,
        software_versions: params
            .software_version
            .iter()
            .map(|f| f.value.clone())
            .collect(),
        document: Some(match &doc.title {
            Some(t) => format!("{t} ({})", file_name(&doc.source)),
            None => file_name(&doc.source),
        }),
    };
    if let Some(f) = &params.manufacturer {
        ev.add("device.manufacturer".into(), f.ev.clone());
    }
    if device.manufacturer.as_deref().is_some_and(str::is_empty) {
        device.manufacturer = None;
    }
    // AEs.
    let mut aes: Vec<(Ae, Option<String>)> = Vec::new();
    for a in &scan.aes {
        if dicomtap_analyzer::statement::load::ae_title_problem(&a.title).is_some() {
            report.unreadable.push(Note {
                at: a.ev.at.clone(),
                text: format!("AE title \"{}\" is not a valid AE title", a.title),
            });
            continue;
        }
        if aes.iter().any(|(x, _)| x.title == a.title) {
            continue;
        }
        ev.add(format!("ae.{}.title", a.title), a.ev.clone());
        if a.port.is_some() {
            ev.add(format!("ae.{}.port", a.title), a.ev.clone());
        }
        aes.push((
            Ae {
                title: a.title.clone(),
                port: a.port,
                ..Ae::default()
            },
            a.name.clone(),
        ));
    }
    // PS3.2 gives each AE a section "4.2.1 Storage SCU AE Specification"; without an AE
    // title table, those sections name the AEs.
    if aes.is_empty() {
        for (i, sec) in scan.sections.iter().enumerate() {
            let Some(fname) = ae_specification_name(&sec.title) else {
                continue;
            };
            let title: String = fname
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .take(16)
                .collect();
            if title.is_empty() || aes.iter().any(|(a, _)| a.title == title) {
                continue;
            }
            let at = scan
                .sentences
                .iter()
                .find(|x| x.section == i)
                .map(|x| x.at.clone())
                .unwrap_or_default();
            report.missing.push(format!(
                "AE title of {fname}: not stated; drafted \"{title}\" from its section's heading (set the real one)"
            ));
            ev.add(format!("ae.{title}.title"), Evidence::new(&at, &sec.title));
            aes.push((
                Ae {
                    title,
                    ..Ae::default()
                },
                Some(fname),
            ));
        }
    }
    if aes.is_empty() {
        let title: String = name.chars().take(16).collect();
        report.missing.push(format!(
            "AE title: the document names none; drafted \"{title}\" from the device name (set the real one)"
        ));
        ev.add(
            format!("ae.{title}.title"),
            Evidence::new(&Loc::default(), "not in the document: from the device name"),
        );
        aes.push((
            Ae {
                title,
                ..Ae::default()
            },
            None,
        ));
    }
    // Transfer syntax lists by caption reference.
    let mut by_ref: BTreeMap<String, Vec<Resolved>> = BTreeMap::new();
    for l in scan.ts_lists.iter().filter(|l| l.conditional) {
        report.assumptions.push(Note {
            at: l.ev.at.clone(),
            text: format!(
                "{} transfer syntax(es) offered only with an option or configuration: not drafted as claims ({})",
                l.entries.len(),
                l.entries.iter().map(|e| label(&e.uid)).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    for l in scan.ts_lists.iter().filter(|l| !l.conditional) {
        if let Some(r) = l.caption.as_deref().and_then(table_ref) {
            by_ref
                .entry(r)
                .or_default()
                .extend(l.entries.iter().cloned());
        }
    }
    // Capabilities: (ae index, sop uid, role) -> capability under construction.
    struct Building {
        sop: Resolved,
        ts: Vec<Resolved>,
        ev: Evidence,
        ts_ev: Option<Evidence>,
        ext: Option<String>,
        section: usize,
    }
    let mut caps: BTreeMap<(usize, String, Role), Building> = BTreeMap::new();
    let mut order: Vec<(usize, String, Role)> = Vec::new();
    let mut role_assumed = 0usize;
    let mut default_ts = 0usize;
    let ae_for = |section: usize| -> usize {
        if aes.len() < 2 {
            return 0;
        }
        for s in section_chain(scan, section) {
            let title = scan
                .sections
                .get(s)
                .map(|x| x.title.to_lowercase())
                .unwrap_or_default();
            for (i, (a, fname)) in aes.iter().enumerate() {
                if title.contains(&a.title.to_lowercase())
                    || fname
                        .as_deref()
                        .is_some_and(|f| !f.is_empty() && title.contains(&f.to_lowercase()))
                {
                    return i;
                }
            }
        }
        0
    };
    let fallback_role = {
        let n = name.to_lowercase();
        if n.ends_with("scu") {
            Role::Scu
        } else {
            Role::Scp
        }
    };
    // Rows whose abstract syntax is a table of SOP classes.
    let mut expanded: Vec<RawCap> = Vec::new();
    for g in &scan.groups {
        let tables: Vec<usize> = scan
            .captions
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_deref().and_then(table_ref).as_ref() == Some(&g.target))
            .map(|(i, _)| i)
            .collect();
        let members: Vec<&RawCap> = scan
            .caps
            .iter()
            .filter(|c| c.table.is_some_and(|t| tables.contains(&t)))
            .collect();
        if members.is_empty() {
            report.unreadable.push(Note {
                at: g.ev.at.clone(),
                text: format!(
                    "refers to {} for its SOP classes, but no SOP classes were found there",
                    g.target
                ),
            });
            continue;
        }
        for m in members {
            let mut ts = g.ts.clone();
            if ts.is_empty() {
                if let Some(list) = g.ts_ref.as_ref().and_then(|r| by_ref.get(r)) {
                    ts = list.clone();
                }
            }
            expanded.push(RawCap {
                sop: m.sop.clone(),
                roles: g.roles,
                section: g.section,
                ts,
                ts_ref: None,
                ext_neg: None,
                ev: g.ev.clone(),
                table: None,
            });
        }
    }
    // The tables a group row points at list SOP classes; only the group rows claim them.
    let grouped: Vec<usize> = scan
        .groups
        .iter()
        .flat_map(|g| {
            scan.captions
                .iter()
                .enumerate()
                .filter(|(_, c)| c.as_deref().and_then(table_ref).as_ref() == Some(&g.target))
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        })
        .collect();
    let own = scan
        .caps
        .iter()
        .filter(|c| !c.table.is_some_and(|t| grouped.contains(&t)));
    for c in own.chain(expanded.iter()) {
        let roles = c
            .roles
            .or_else(|| section_roles(scan, c.section))
            .map(Roles::list)
            .unwrap_or_default();
        let roles = if roles.is_empty() {
            role_assumed += 1;
            vec![fallback_role]
        } else {
            roles
        };
        let ai = ae_for(c.section);
        for role in roles {
            let key = (ai, c.sop.uid.clone(), role);
            let b = caps.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Building {
                    sop: c.sop.clone(),
                    ts: Vec::new(),
                    ev: c.ev.clone(),
                    ts_ev: None,
                    ext: c.ext_neg.clone(),
                    section: c.section,
                }
            });
            for t in &c.ts {
                if !b.ts.contains(t) {
                    b.ts.push(t.clone());
                }
            }
            if !c.ts.is_empty() && b.ts_ev.is_none() {
                b.ts_ev = Some(c.ev.clone());
            }
            if let Some(r) = &c.ts_ref {
                match by_ref.get(r) {
                    Some(list) => {
                        for t in list {
                            if !b.ts.contains(t) {
                                b.ts.push(t.clone());
                            }
                        }
                        b.ts_ev = b.ts_ev.clone().or_else(|| {
                            scan.ts_lists
                                .iter()
                                .find(|l| l.caption.as_deref().and_then(table_ref).as_ref() == Some(r))
                                .map(|l| l.ev.clone())
                        });
                    }
                    None => report.unreadable.push(Note {
                        at: c.ev.at.clone(),
                        text: format!("refers to {r} for its transfer syntaxes, but no such table of transfer syntaxes was found"),
                    }),
                }
            }
        }
    }
    // Copies of a section's capabilities into another role.
    for cp in &scan.copies {
        let target = cp.target.to_lowercase();
        let sections: Vec<usize> = scan
            .sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.title.to_lowercase().contains(&target))
            .map(|(i, _)| i)
            .collect();
        let table_target = table_ref(&cp.target);
        let src: Vec<(usize, String, Role)> = order
            .iter()
            .filter(|(_, _, _)| true)
            .filter(|k| {
                caps.get(*k).is_some_and(|b| {
                    section_chain(scan, b.section)
                        .iter()
                        .any(|s| sections.contains(s))
                        || table_target.as_ref().is_some_and(|t| {
                            scan.caps.iter().any(|rc| {
                                rc.sop.uid == b.sop.uid
                                    && rc
                                        .table
                                        .and_then(|ti| scan.captions.get(ti).cloned().flatten())
                                        .as_deref()
                                        .and_then(table_ref)
                                        .as_ref()
                                        == Some(t)
                            })
                        })
                })
            })
            .cloned()
            .collect();
        if src.is_empty() {
            report.unreadable.push(Note {
                at: cp.ev.at.clone(),
                text: format!(
                    "refers to \"{}\" for its SOP classes, but found no SOP classes there",
                    cp.target
                ),
            });
            continue;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (ai, sop, _) in src {
            if !seen.insert((ai, sop.clone())) {
                continue;
            }
            for role in cp.roles.list() {
                let key = (ai, sop.clone(), role);
                if caps.contains_key(&key) {
                    continue;
                }
                let from = caps.values().find(|b| b.sop.uid == sop);
                let Some(from) = from else { continue };
                let b = Building {
                    sop: from.sop.clone(),
                    ts: Vec::new(),
                    ev: cp.ev.clone(),
                    ts_ev: None,
                    ext: None,
                    section: cp.section,
                };
                order.push(key.clone());
                caps.insert(key, b);
            }
        }
    }
    // Transfer syntaxes for capabilities without their own: lists in the same section
    // family, then the document's general lists for that role.
    for key in &order {
        let Some(b) = caps.get_mut(key) else { continue };
        if !b.ts.is_empty() {
            continue;
        }
        let chain = section_chain(scan, b.section);
        let parent = chain.get(1).copied();
        let near: Vec<&super::scan::TsList> = scan
            .ts_lists
            .iter()
            .filter(|l| !l.conditional)
            .filter(|l| {
                let lc = section_chain(scan, l.section);
                l.section == b.section
                    || (parent.is_some() && lc.get(1).copied() == parent && l.section != 0)
                    || (lc.contains(&b.section) && l.section != 0)
            })
            .filter(|l| ts_roles(scan, l.section).is_none_or(|r| r.list().contains(&key.2)))
            .collect();
        let lists: Vec<&super::scan::TsList> = if near.is_empty() {
            scan.ts_lists
                .iter()
                .filter(|l| !l.conditional)
                .filter(|l| {
                    // A general list: in a section of its own, not among SOP classes.
                    !scan.caps.iter().any(|c| c.section == l.section)
                })
                .filter(|l| match ts_roles(scan, l.section) {
                    Some(r) => r.list().contains(&key.2),
                    None => true,
                })
                .collect()
        } else {
            near
        };
        for l in &lists {
            for t in &l.entries {
                if !b.ts.contains(t) {
                    b.ts.push(t.clone());
                }
            }
        }
        if let Some(l) = lists.first() {
            b.ts_ev = Some(l.ev.clone());
        }
        if b.ts.is_empty() {
            default_ts += 1;
            b.ts.push(Resolved {
                uid: IMPLICIT_VR_LITTLE_ENDIAN.into(),
                private_name: None,
            });
            b.ts_ev = Some(Evidence::new(
                &Loc::default(),
                "not in the document: Implicit VR Little Endian, the default every AE supports (PS3.5 10.1)",
            ));
        }
    }
    if role_assumed > 0 {
        report.assumptions.push(Note {
            at: Loc::default(),
            text: format!(
                "{role_assumed} SOP class row(s) say no role, nor does their section: drafted as {fallback_role} (check)"
            ),
        });
    }
    if default_ts > 0 {
        report.assumptions.push(Note {
            at: Loc::default(),
            text: format!(
                "{default_ts} capabilities have no transfer syntax in the document: drafted with Implicit VR Little Endian only (the default transfer syntax)"
            ),
        });
    }
    // Private UIDs.
    let mut private_uids = BTreeMap::new();
    for b in caps.values() {
        for r in std::iter::once(&b.sop).chain(b.ts.iter()) {
            if uid::lookup(&r.uid).is_none() {
                private_uids.entry(r.uid.clone()).or_insert(PrivateUid {
                    private: true,
                    name: r
                        .private_name
                        .clone()
                        .map(|n| super::evidence::one_line(&n, 80)),
                });
            }
        }
    }
    // Preferred transfer syntaxes (SCP).
    let preferred: Vec<String> = params
        .preferred_ts
        .iter()
        .map(|f| f.value.clone())
        .collect();
    // Build the AEs' capabilities.
    for key in &order {
        let Some(b) = caps.get(key) else { continue };
        let (ai, _, role) = key;
        let Some((ae, _)) = aes.get_mut(*ai) else {
            continue;
        };
        let sop = uidref(&b.sop);
        let ts: Vec<UidRef> = b.ts.iter().map(uidref).collect();
        let pref: Vec<UidRef> = if *role == Role::Scp {
            preferred
                .iter()
                .filter(|p| ts.iter().any(|t| &t.uid == *p))
                .map(|p| UidRef::standard(p))
                .collect()
        } else {
            Vec::new()
        };
        let claim = format!(
            "ae.{}.capability.{}.{}",
            ae.title,
            label(&sop.uid),
            role.as_str()
        );
        ev.add(claim.clone(), b.ev.clone());
        if let Some(t) = &b.ts_ev {
            ev.add(format!("{claim}.transfer_syntaxes"), t.clone());
        }
        if !pref.is_empty() {
            if let Some(f) = params.preferred_ts.first() {
                ev.add(format!("{claim}.preferred_transfer_syntaxes"), f.ev.clone());
            }
        }
        let storage_commitment = (sop.uid == uid::STORAGE_COMMITMENT_PUSH_MODEL
            && !params.commitment_report.is_empty())
        .then(|| StorageCommitment {
            report_on: params
                .commitment_report
                .iter()
                .map(|f| {
                    if f.value == "same_association" {
                        ReportOn::SameAssociation
                    } else {
                        ReportOn::NewAssociation
                    }
                })
                .collect(),
            max_wait_s: None,
        });
        if storage_commitment.is_some() {
            if let Some(f) = params.commitment_report.first() {
                ev.add(format!("{claim}.storage_commitment"), f.ev.clone());
            }
        }
        let extended_negotiation = b.ext.as_deref().and_then(|t| ext_neg(t, &sop));
        if extended_negotiation.is_some() {
            ev.add(format!("{claim}.extended_negotiation"), b.ev.clone());
        }
        match role {
            Role::Scp => ae.acceptor = true,
            Role::Scu => ae.initiator = true,
        }
        ae.capability.push(Capability {
            line: 0,
            sop_class: sop,
            role: *role,
            transfer_syntaxes: ts,
            preferred_transfer_syntaxes: pref,
            role_selection: None,
            extended_negotiation,
            common_extended_negotiation: None,
            statuses: None,
            storage_commitment,
        });
    }
    // AE-level parameters apply to every AE (statements with several AEs usually give
    // one table per AE; those are told apart by section).
    let n_aes = aes.len();
    for (ae, _) in aes.iter_mut() {
        let t = ae.title.clone();
        let mut claim = |k: &str, e: &Evidence| ev.add(format!("ae.{t}.{k}"), e.clone());
        if let Some(f) = &params.max_pdu_receive {
            ae.max_pdu_receive = Some(f.value);
            claim("max_pdu_receive", &f.ev);
        }
        if let Some(f) = &params.max_pdu_send {
            ae.max_pdu_send = Some(f.value);
            claim("max_pdu_send", &f.ev);
        }
        if let Some(f) = &params.max_associations {
            if ae.acceptor {
                ae.max_associations.acceptor = Some(f.value);
            } else {
                ae.max_associations.initiator = Some(f.value);
            }
            claim("max_associations", &f.ev);
        }
        if let Some(f) = &params.max_presentation_contexts {
            ae.max_presentation_contexts = Some(f.value);
            claim("max_presentation_contexts", &f.ev);
        }
        if let Some(f) = &params.async_window {
            if f.value.0 != 1 || f.value.1 != 1 {
                ae.async_window = Some(dicomtap_analyzer::statement::AsyncWindow {
                    invoked: f.value.0,
                    performed: f.value.1,
                });
                claim("async_window", &f.ev);
            }
        }
        let mut to = Timeouts::default();
        for (slot, f, k) in [
            (&mut to.artim, &params.artim, "timeouts_s.artim"),
            (&mut to.dimse, &params.dimse, "timeouts_s.dimse"),
            (&mut to.idle, &params.idle, "timeouts_s.idle"),
            (&mut to.connect, &params.connect, "timeouts_s.connect"),
        ] {
            if let Some(f) = f {
                *slot = Some(f.value);
                claim(k, &f.ev);
            }
        }
        ae.timeouts_s = to;
        if let Some(f) = &params.implementation_class_uid {
            ae.implementation_class_uid = Some(f.value.clone());
            claim("implementation_class_uid", &f.ev);
        }
        if let Some(f) = &params.implementation_version_name {
            ae.implementation_version_name = Some(f.value.clone());
            claim("implementation_version_name", &f.ev);
        }
        if !params.character_sets.is_empty() {
            let mut cs: Vec<String> = params
                .character_sets
                .iter()
                .map(|f| f.value.clone())
                .collect();
            if !cs.iter().any(|c| c == "ISO_IR 6") {
                cs.insert(0, "ISO_IR 6".into());
            }
            ae.character_sets = cs;
            if let Some(f) = params.character_sets.first() {
                claim("character_sets", &f.ev);
            }
        }
        if let Some(f) = &params.tls {
            ae.tls = Some(Tls {
                required: f.value.required,
                versions: f.value.versions.clone(),
                client_auth: f.value.client_auth_required.then_some(ClientAuth::Required),
            });
            claim("tls", &f.ev);
        }
        let mut ui: Vec<UserIdentityType> = params
            .user_identity
            .iter()
            .filter_map(|f| UserIdentityType::parse(f.value))
            .collect();
        ui.sort();
        ui.dedup();
        if !ui.is_empty() {
            ae.user_identity = ui;
            if let Some(f) = params.user_identity.first() {
                claim("user_identity", &f.ev);
            }
        }
    }
    let _ = n_aes;
    // What a statement should have that the document does not say.
    let first = aes.first().map(|(a, _)| a.clone()).unwrap_or_default();
    let mut missing = |what: &str| report.missing.push(what.to_owned());
    if first.max_pdu_receive.is_none() {
        missing("max_pdu_receive: the maximum PDU the device receives is not stated");
    }
    if first.implementation_class_uid.is_none() {
        missing("implementation_class_uid: not stated");
    }
    if first.implementation_version_name.is_none() {
        missing("implementation_version_name: not stated");
    }
    if first.timeouts_s == Timeouts::default() {
        missing("timeouts_s: no ARTIM, DIMSE, idle or connect timeout is stated");
    }
    if first.max_associations.acceptor.is_none() && first.max_associations.initiator.is_none() {
        missing("max_associations: the number of simultaneous associations is not stated");
    }
    if first.character_sets.is_empty() {
        missing("character_sets: none stated (the statement then claims ISO_IR 6 only)");
    }
    if first.tls.is_none() {
        missing("tls: security (TLS) is not mentioned; the statement then claims plain TCP only");
    }
    if aes.iter().all(|(a, _)| a.port.is_none()) {
        missing("port: no listening port is stated");
    }
    if aes.iter().all(|(a, _)| a.capability.is_empty()) {
        missing("capabilities: no SOP class was found in the document");
    }
    let statement = Statement {
        path: None,
        device,
        device_line: 0,
        ae: aes.into_iter().map(|(a, _)| a).collect(),
        private_uids,
    };
    Assembled {
        statement,
        evidence: ev,
    }
}

/// The AE's name in a heading "4.2.1 Storage SCU AE Specification" (or "Application
/// Entity Specification").
fn ae_specification_name(heading: &str) -> Option<String> {
    let h = heading.trim();
    let lower = h.to_lowercase();
    let end = lower
        .find(" ae specification")
        .or_else(|| lower.find(" application entity specification"))?;
    let name = h.get(..end)?.trim();
    // Drop the section number.
    let name = name
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .trim();
    (!name.is_empty() && name.len() <= 40).then(|| name.to_owned())
}

fn file_name(source: &str) -> String {
    std::path::Path::new(source)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| source.to_owned())
}

/// An extended negotiation cell read for what the format can state.
fn ext_neg(text: &str, sop: &UidRef) -> Option<ExtendedNegotiation> {
    let l = text.to_lowercase();
    if l.trim().is_empty()
        || l.starts_with("none")
        || l.starts_with("no")
        || l.contains("not support")
    {
        return None;
    }
    let kw = sop.keyword.as_deref().unwrap_or("");
    if kw.contains("QueryRetrieve") && kw.ends_with("Find")
        || kw.contains("WorklistInformationModel")
    {
        let relational = l.contains("relational").then_some(true);
        let fuzzy = l.contains("fuzzy").then_some(true);
        let dt =
            (l.contains("combined date") || l.contains("date-time") || l.contains("date time"))
                .then_some(true);
        let tz = l.contains("timezone").then_some(true);
        if relational.is_some() || fuzzy.is_some() || dt.is_some() || tz.is_some() {
            return Some(ExtendedNegotiation {
                find: Some(FindExtNeg {
                    relational,
                    combined_date_time: dt,
                    fuzzy_person_name: fuzzy,
                    timezone_adjust: tz,
                }),
                ..ExtendedNegotiation::default()
            });
        }
        return None;
    }
    if kw.contains("QueryRetrieve") && (kw.ends_with("Move") || kw.ends_with("Get")) {
        return l.contains("relational").then(|| ExtendedNegotiation {
            retrieve: Some(RetrieveExtNeg {
                relational: Some(true),
            }),
            ..ExtendedNegotiation::default()
        });
    }
    if kw.ends_with("Storage") {
        let level = ["level 0", "level 1", "level 2", "level 3"]
            .iter()
            .position(|w| l.contains(w))
            .map(|i| i as u8);
        return level.map(|lv| ExtendedNegotiation {
            storage: Some(StorageExtNeg {
                level_of_support: Some(lv),
                digital_signature: None,
                element_coercion: None,
            }),
            ..ExtendedNegotiation::default()
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ae_names_from_specification_headings() {
        assert_eq!(
            ae_specification_name("4.2.1 Storage SCU AE Specification").as_deref(),
            Some("Storage SCU")
        );
        assert_eq!(
            ae_specification_name("2.2.3 ORTHANC3 Application Entity Specification").as_deref(),
            Some("ORTHANC3")
        );
        assert_eq!(ae_specification_name("4.2 AE Specifications"), None);
        assert_eq!(ae_specification_name("Transfer Syntaxes"), None);
    }
}
