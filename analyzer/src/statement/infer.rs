//! Inference: the statement that observed traffic supports for one AE title.
//!
//! [`Inference`] is an [`AnalysisSink`]: feed it the events of one or more captures
//! (through [`crate::analysis::Analysis`]) and [`Inference::statement`] returns what the
//! AE really did: the SOP classes and roles it used or negotiated, the transfer syntaxes it
//! proposed (as requestor) or accepted (as acceptor), the Max Length it advertised and the
//! largest PDU it sent, its implementation class UID and version name, the character sets
//! and private creators of the data sets it sent, the statuses it returned, the async
//! window, role selection (as requestor) and extended negotiation it used. What the AE
//! only relayed is not its own: the data sets of the C-STORE sub-operations it sends for
//! a C-GET or C-MOVE do not make their character sets and private creators its claims,
//! and the role selection items it answers as acceptor are the requestor's proposals.
//! What traffic cannot show (timeouts, allow-lists, TLS, a preference order, limits such
//! as the most simultaneous associations or contexts) is not claimed; what was observed
//! of it goes under `[x.inferred]`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use dicomtap_wire::assoc::{AssociateAccept, AssociateRequest};
use dicomtap_wire::{Event, EventKind, Side, uid};

use super::model::*;
use super::write::quote;
use crate::analysis::AnalysisSink;
use crate::capture::{ConnId, ConnectionInfo};
use crate::session::Session;

/// Per (SOP class, role) observations.
#[derive(Debug, Default, Clone)]
struct CapObs {
    /// Transfer syntaxes proposed (requestor) or accepted (acceptor), first-seen order.
    ts: Vec<String>,
    /// Transfer syntaxes the data sets actually used.
    used: BTreeSet<String>,
    role_selection: Option<(bool, bool)>,
    ext_neg: Option<Vec<u8>>,
    /// SOP class common extended negotiation sent: service class, related classes.
    common: Option<(String, Vec<String>)>,
    statuses: BTreeSet<u16>,
    requests: u64,
    associations: u64,
}

#[derive(Debug, Default)]
struct Conn {
    side: Option<Side>,
    rq: Option<AssociateRequest>,
    /// pc id -> (abstract syntax, accepted transfer syntax)
    contexts: HashMap<u8, (String, Option<String>)>,
    /// The peer asked for a C-GET on this association: the C-STORE sub-operations the AE
    /// then sends carry instances it keeps, not ones it made.
    peer_get: bool,
    /// Message IDs of the AE's C-STORE requests that are sub-operations of a C-GET or
    /// C-MOVE (relayed instances).
    relayed: BTreeSet<u16>,
}

/// Collects what one AE title did.
#[derive(Debug)]
pub struct Inference {
    title: String,
    conns: HashMap<ConnId, Conn>,
    caps: BTreeMap<(String, Role), CapObs>,
    /// Associations as requestor / acceptor.
    as_requestor: u64,
    as_acceptor: u64,
    hosts: BTreeSet<String>,
    ports: BTreeSet<u16>,
    max_length: BTreeMap<u32, u64>,
    largest_pdu: u32,
    impl_class: BTreeMap<String, u64>,
    impl_version: BTreeMap<String, u64>,
    max_contexts: usize,
    async_window: Option<(u16, u16)>,
    user_identity: BTreeSet<u8>,
    charsets: BTreeSet<String>,
    private_creators: BTreeSet<String>,
    statuses: BTreeSet<u16>,
    open_as: [BTreeSet<ConnId>; 2],
    max_open: [usize; 2],
    peers_called: BTreeSet<String>,
    peers_calling: BTreeSet<String>,
    refused: BTreeSet<String>,
    rejected_calling: BTreeSet<String>,
    first_ts_us: Option<u64>,
    last_ts_us: u64,
    /// Role selection items the AE answered as acceptor (the requestor proposed them).
    role_selections_answered: u64,
    /// Data sets of C-GET / C-MOVE sub-operations the AE sent: relayed, so their
    /// character sets and private creators are not the AE's.
    relayed_data_sets: u64,
}

fn trim_title(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || c == '\0')
}

impl Inference {
    /// Watches associations where `title` is the calling or called AE title.
    pub fn new(title: &str) -> Self {
        Inference {
            title: trim_title(title).to_owned(),
            conns: HashMap::new(),
            caps: BTreeMap::new(),
            as_requestor: 0,
            as_acceptor: 0,
            hosts: BTreeSet::new(),
            ports: BTreeSet::new(),
            max_length: BTreeMap::new(),
            largest_pdu: 0,
            impl_class: BTreeMap::new(),
            impl_version: BTreeMap::new(),
            max_contexts: 0,
            async_window: None,
            user_identity: BTreeSet::new(),
            charsets: BTreeSet::new(),
            private_creators: BTreeSet::new(),
            statuses: BTreeSet::new(),
            open_as: [BTreeSet::new(), BTreeSet::new()],
            max_open: [0, 0],
            peers_called: BTreeSet::new(),
            peers_calling: BTreeSet::new(),
            refused: BTreeSet::new(),
            rejected_calling: BTreeSet::new(),
            first_ts_us: None,
            last_ts_us: 0,
            role_selections_answered: 0,
            relayed_data_sets: 0,
        }
    }

    /// Associations in which the AE took part.
    pub fn associations(&self) -> u64 {
        self.as_requestor + self.as_acceptor
    }

    fn cap(&mut self, sop: &str, role: Role) -> &mut CapObs {
        self.caps.entry((sop.to_owned(), role)).or_default()
    }

    fn on_rq(&mut self, conn: &ConnectionInfo, id: ConnId, rq: &AssociateRequest) {
        let side = if trim_title(&rq.calling_ae) == self.title {
            Side::Requestor
        } else if trim_title(&rq.called_ae) == self.title {
            Side::Acceptor
        } else {
            return;
        };
        let c = self.conns.entry(id).or_default();
        c.side = Some(side);
        c.rq = Some(rq.clone());
        self.open_as[side.index()].insert(id);
        let open = self.open_as[side.index()].len();
        let m = &mut self.max_open[side.index()];
        *m = (*m).max(open);
        match side {
            Side::Requestor => {
                self.as_requestor += 1;
                self.hosts.insert(conn.client.ip().to_string());
                self.peers_called
                    .insert(trim_title(&rq.called_ae).to_owned());
                let u = &rq.user_info;
                if let Some(l) = u.max_length {
                    *self.max_length.entry(l).or_default() += 1;
                }
                self.note_impl(
                    u.implementation_class_uid.as_deref(),
                    u.implementation_version_name.as_deref(),
                );
                if let Some(w) = u.async_window {
                    self.async_window = Some(w);
                }
                if let Some(ui) = &u.user_identity {
                    self.user_identity.insert(ui.identity_type);
                }
                self.max_contexts = self.max_contexts.max(rq.contexts.len());
                let mut seen = BTreeSet::new();
                for pc in &rq.contexts {
                    let rs = u.role_selection(&pc.abstract_syntax);
                    let roles = match rs {
                        Some(r) => roles_of(Side::Requestor, r.scu, r.scp),
                        None => vec![Role::Scu],
                    };
                    for role in roles {
                        let ext = u
                            .extended_negotiation
                            .iter()
                            .find(|e| e.sop_class == pc.abstract_syntax)
                            .and_then(|e| hex::decode(&e.info).ok());
                        let common = u
                            .common_extended_negotiation
                            .iter()
                            .find(|e| e.sop_class == pc.abstract_syntax)
                            .map(|e| {
                                (
                                    e.service_class.clone(),
                                    e.related_general_sop_classes.clone(),
                                )
                            });
                        let first = seen.insert((pc.abstract_syntax.clone(), role));
                        let o = self.cap(&pc.abstract_syntax, role);
                        if common.is_some() && role == Role::Scu {
                            o.common = common;
                        }
                        for t in &pc.transfer_syntaxes {
                            if !o.ts.contains(t) {
                                o.ts.push(t.clone());
                            }
                        }
                        if let Some(r) = rs {
                            o.role_selection = Some((r.scu, r.scp));
                        }
                        if ext.is_some() {
                            o.ext_neg = ext;
                        }
                        if first {
                            o.associations += 1;
                        }
                    }
                }
            }
            Side::Acceptor => {
                self.as_acceptor += 1;
                self.hosts.insert(conn.server.ip().to_string());
                self.ports.insert(conn.server.port());
                self.peers_calling
                    .insert(trim_title(&rq.calling_ae).to_owned());
            }
        }
    }

    fn on_ac(&mut self, id: ConnId, ac: &AssociateAccept) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let (Some(side), Some(rq)) = (c.side, c.rq.clone()) else {
            return;
        };
        for r in &ac.results {
            let Some(pc) = rq.contexts.iter().find(|p| p.id == r.id) else {
                continue;
            };
            let accepted = r.result == 0;
            c.contexts.insert(
                r.id,
                (
                    pc.abstract_syntax.clone(),
                    if accepted {
                        r.transfer_syntax.clone()
                    } else {
                        None
                    },
                ),
            );
        }
        if side != Side::Acceptor {
            return;
        }
        let u = &ac.user_info;
        if let Some(l) = u.max_length {
            *self.max_length.entry(l).or_default() += 1;
        }
        self.note_impl(
            u.implementation_class_uid.as_deref(),
            u.implementation_version_name.as_deref(),
        );
        if let Some(w) = u.async_window {
            self.async_window = Some(w);
        }
        if let Some(ui) = &rq.user_info.user_identity
            && u.user_identity_response_length.is_some()
        {
            self.user_identity.insert(ui.identity_type);
        }
        let accepted = ac.results.iter().filter(|r| r.result == 0).count();
        self.max_contexts = self.max_contexts.max(accepted);
        let mut seen = BTreeSet::new();
        for r in &ac.results {
            let Some(pc) = rq.contexts.iter().find(|p| p.id == r.id) else {
                continue;
            };
            if r.result != 0 {
                self.refused.insert(pc.abstract_syntax.clone());
                continue;
            }
            let rs = u.role_selection(&pc.abstract_syntax);
            if rs.is_some() {
                self.role_selections_answered += 1;
            }
            let roles = match rs {
                Some(x) => roles_of(Side::Acceptor, x.scu, x.scp),
                None => vec![Role::Scp],
            };
            for role in roles {
                let ext = u
                    .extended_negotiation
                    .iter()
                    .find(|e| e.sop_class == pc.abstract_syntax)
                    .and_then(|e| hex::decode(&e.info).ok());
                let first = seen.insert((pc.abstract_syntax.clone(), role));
                let o = self.cap(&pc.abstract_syntax, role);
                if let Some(t) = &r.transfer_syntax
                    && !o.ts.contains(t)
                {
                    o.ts.push(t.clone());
                }
                // An acceptor's role selection item answers the requestor's proposal:
                // the roles it took are its capabilities, the item is not its claim.
                if ext.is_some() {
                    o.ext_neg = ext;
                }
                if first {
                    o.associations += 1;
                }
            }
        }
    }

    fn note_impl(&mut self, class: Option<&str>, version: Option<&str>) {
        if let Some(c) = class {
            *self.impl_class.entry(c.to_owned()).or_default() += 1;
        }
        if let Some(v) = version {
            *self.impl_version.entry(v.to_owned()).or_default() += 1;
        }
    }

    /// The statement the traffic supports. `device` names it (default
    /// `INFERRED_<TITLE>`); `sources` are named in `document`.
    pub fn statement(&self, device: Option<&str>, sources: &[String]) -> Statement {
        let mut private_uids = BTreeMap::new();
        let mut uidref = |u: &str, what: &str| -> UidRef {
            if uid::lookup(u).is_some() {
                UidRef::standard(u)
            } else {
                private_uids
                    .entry(u.to_owned())
                    .or_insert_with(|| PrivateUid {
                        private: true,
                        name: Some(format!(
                            "seen on the wire as {what}; not in the DICOM registry"
                        )),
                    });
                UidRef {
                    uid: u.to_owned(),
                    keyword: None,
                    private: true,
                }
            }
        };
        let mut capability = Vec::new();
        for ((sop, role), o) in &self.caps {
            let ts: Vec<UidRef> =
                o.ts.iter()
                    .filter(|t| uid::is_valid(t))
                    .map(|t| uidref(t, "a transfer syntax"))
                    .collect();
            if ts.is_empty() || !uid::is_valid(sop) {
                continue;
            }
            capability.push(Capability {
                line: 0,
                sop_class: uidref(sop, "an abstract syntax"),
                role: *role,
                transfer_syntaxes: ts,
                preferred_transfer_syntaxes: Vec::new(),
                role_selection: o
                    .role_selection
                    .map(|(scu, scp)| RoleSelection { scu, scp }),
                extended_negotiation: o.ext_neg.as_deref().and_then(|b| ext_neg(sop, b)),
                common_extended_negotiation: o.common.as_ref().map(|(service, related)| {
                    CommonExtendedNegotiation {
                        service_class: service.clone(),
                        related_general_sop_classes: related
                            .iter()
                            .filter(|u| uid::is_valid(u))
                            .map(|u| uidref(u, "a related general SOP class"))
                            .collect(),
                    }
                }),
                statuses: (!o.statuses.is_empty())
                    .then(|| o.statuses.iter().map(|&c| StatusRange::single(c)).collect()),
                storage_commitment: None,
            });
        }
        let most =
            |m: &BTreeMap<String, u64>| m.iter().max_by_key(|(_, n)| **n).map(|(k, _)| k.clone());
        let ae = Ae {
            title: self.title.clone(),
            line: 0,
            hosts: self.hosts.iter().cloned().collect(),
            port: (self.ports.len() == 1)
                .then(|| self.ports.first().copied())
                .flatten(),
            initiator: self.as_requestor > 0,
            acceptor: self.as_acceptor > 0,
            character_sets: self
                .charsets
                .iter()
                .filter(|c| super::load::is_character_set(c))
                .cloned()
                .collect(),
            implementation_class_uid: most(&self.impl_class).filter(|u| uid::is_valid(u)),
            implementation_version_name: most(&self.impl_version)
                .filter(|v| !v.is_empty() && v.len() <= 16 && v.is_ascii()),
            max_pdu_receive: self
                .max_length
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(l, _)| *l),
            // Limits are not claimed from what some associations happened to show:
            // the largest PDU sent, the most contexts and the most simultaneous
            // associations seen go under [x.inferred] as observations.
            max_pdu_send: None,
            max_presentation_contexts: None,
            max_associations: MaxAssociations {
                initiator: None,
                acceptor: None,
            },
            async_window: self
                .async_window
                .map(|(invoked, performed)| AsyncWindow { invoked, performed }),
            timeouts_s: Timeouts::default(),
            accept_calling_ae_titles: None,
            user_identity: self
                .user_identity
                .iter()
                .filter_map(|&c| UserIdentityType::from_code(c))
                .collect(),
            tls: None,
            private_creators: self
                .private_creators
                .iter()
                .filter(|p| !p.trim().is_empty() && p.len() <= 64 && !p.contains('\\'))
                .cloned()
                .collect(),
            statuses: (!self.statuses.is_empty()).then(|| {
                self.statuses
                    .iter()
                    .map(|&c| StatusRange::single(c))
                    .collect()
            }),
            capability,
        };
        Statement {
            path: None,
            device: Device {
                name: device.map_or_else(|| format!("INFERRED_{}", self.title), str::to_owned),
                manufacturer: None,
                model: None,
                software_versions: Vec::new(),
                document: Some(format!(
                    "Inferred by dicomtap from {} association(s) of AE {} in {}",
                    self.associations(),
                    self.title,
                    sources.join(", ")
                )),
            },
            device_line: 0,
            ae: vec![ae],
            private_uids,
        }
    }

    /// Evidence for the `[x]` section: what the statement cannot say.
    pub fn evidence_toml(&self) -> String {
        let mut o = String::from("[x.inferred]\n");
        let _ = writeln!(o, "associations_as_requestor = {}", self.as_requestor);
        let _ = writeln!(o, "associations_as_acceptor = {}", self.as_acceptor);
        if let Some(f) = self.first_ts_us {
            let _ = writeln!(o, "first_seen_unix_us = {f}");
            let _ = writeln!(o, "last_seen_unix_us = {}", self.last_ts_us);
        }
        let list = |s: &BTreeSet<String>| s.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(o, "called_ae_titles = [{}]", list(&self.peers_called));
        let _ = writeln!(
            o,
            "accepted_calling_ae_titles = [{}]",
            list(&self.peers_calling)
        );
        if !self.rejected_calling.is_empty() {
            let _ = writeln!(
                o,
                "rejected_calling_ae_titles = [{}]",
                list(&self.rejected_calling)
            );
        }
        let refused: BTreeSet<String> = self
            .refused
            .iter()
            .map(|u| uid::keyword(u).map_or_else(|| u.clone(), str::to_owned))
            .collect();
        let _ = writeln!(o, "refused_abstract_syntaxes = [{}]", list(&refused));
        // Observed, not limits: the traffic shows what happened, not what the AE allows.
        if self.largest_pdu > 0 {
            let _ = writeln!(o, "largest_pdu_sent = {}", self.largest_pdu);
        }
        if self.max_contexts > 0 {
            let _ = writeln!(o, "most_presentation_contexts_seen = {}", self.max_contexts);
        }
        for (k, n) in [
            (
                "most_simultaneous_associations_as_requestor",
                self.max_open[0],
            ),
            (
                "most_simultaneous_associations_as_acceptor",
                self.max_open[1],
            ),
        ] {
            if n > 0 {
                let _ = writeln!(o, "{k} = {n}");
            }
        }
        if self.role_selections_answered > 0 {
            let _ = writeln!(
                o,
                "role_selections_answered = {}",
                self.role_selections_answered
            );
        }
        if self.relayed_data_sets > 0 {
            let _ = writeln!(
                o,
                "relayed_data_sets_not_counted = {}",
                self.relayed_data_sets
            );
        }
        if self.max_length.len() > 1 {
            let v: Vec<String> = self
                .max_length
                .iter()
                .map(|(l, n)| format!("{l} ({n}x)"))
                .collect();
            let _ = writeln!(
                o,
                "max_length_values = [{}]",
                v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", ")
            );
        }
        for (k, m) in [
            ("implementation_class_uids", &self.impl_class),
            ("implementation_version_names", &self.impl_version),
        ] {
            if m.len() > 1 {
                let v: Vec<String> = m
                    .iter()
                    .map(|(l, n)| quote(&format!("{l} ({n}x)")))
                    .collect();
                let _ = writeln!(o, "{k} = [{}]", v.join(", "));
            }
        }
        let used: Vec<String> = self
            .caps
            .iter()
            .filter(|(_, c)| c.requests > 0)
            .map(|((s, r), c)| {
                quote(&format!(
                    "{} {r}: {} request(s), data in {}",
                    uid::keyword(s).unwrap_or(s),
                    c.requests,
                    c.used
                        .iter()
                        .map(|t| uid::keyword(t).unwrap_or(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
            .collect();
        let _ = writeln!(o, "used = [{}]", used.join(", "));
        o
    }
}

/// The AE's roles from a role selection item's SCU/SCP fields (which name the
/// requestor's roles).
fn roles_of(side: Side, scu: bool, scp: bool) -> Vec<Role> {
    let mut v = Vec::new();
    match side {
        Side::Requestor => {
            if scu {
                v.push(Role::Scu);
            }
            if scp {
                v.push(Role::Scp);
            }
        }
        Side::Acceptor => {
            if scu {
                v.push(Role::Scp);
            }
            if scp {
                v.push(Role::Scu);
            }
        }
    }
    if v.is_empty() {
        v.push(if side == Side::Requestor {
            Role::Scu
        } else {
            Role::Scp
        });
    }
    v
}

/// Decodes the service-class application information of a 0x56 item.
fn ext_neg(sop: &str, b: &[u8]) -> Option<ExtendedNegotiation> {
    let kw = uid::keyword(sop)?;
    let byte = |i: usize| b.get(i).copied();
    let flag = |i: usize| byte(i).map(|v| v == 1);
    if kw.contains("Find") || kw.contains("Worklist") {
        Some(ExtendedNegotiation {
            find: Some(FindExtNeg {
                relational: flag(0),
                combined_date_time: flag(1),
                fuzzy_person_name: flag(2),
                timezone_adjust: flag(3),
            }),
            ..Default::default()
        })
    } else if kw.contains("Move") || kw.contains("Get") {
        Some(ExtendedNegotiation {
            retrieve: Some(RetrieveExtNeg {
                relational: flag(0),
            }),
            ..Default::default()
        })
    } else if kw.ends_with("Storage") || kw.contains("Storage") && !kw.contains("Commitment") {
        Some(ExtendedNegotiation {
            storage: Some(StorageExtNeg {
                level_of_support: byte(0).filter(|v| *v <= 3),
                digital_signature: byte(2).filter(|v| *v <= 2),
                element_coercion: byte(4).filter(|v| *v <= 2),
            }),
            ..Default::default()
        })
    } else {
        None
    }
}

impl AnalysisSink for Inference {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        let id = conn.id;
        match &event.kind {
            EventKind::AssociateRq(rq) => {
                self.on_rq(conn, id, rq);
            }
            EventKind::AssociateAc(ac) => self.on_ac(id, ac),
            EventKind::AssociateRj(_) => {
                if let Some(c) = self.conns.get(&id)
                    && c.side == Some(Side::Acceptor)
                    && let Some(rq) = &c.rq
                {
                    self.rejected_calling
                        .insert(trim_title(&rq.calling_ae).to_owned());
                }
            }
            _ => {}
        }
        let Some(side) = self.conns.get(&id).and_then(|c| c.side) else {
            return;
        };
        self.first_ts_us.get_or_insert(event.ts_us);
        self.last_ts_us = self.last_ts_us.max(event.ts_us);
        let ours = event.from == side;
        match &event.kind {
            EventKind::PData(p) if ours => self.largest_pdu = self.largest_pdu.max(p.pdu_length),
            EventKind::Command(cmd) => {
                let sop = cmd
                    .command
                    .affected_sop_class
                    .clone()
                    .or_else(|| cmd.command.requested_sop_class.clone())
                    .or_else(|| cmd.abstract_syntax.clone());
                let abstract_syntax = self
                    .conns
                    .get(&id)
                    .and_then(|c| c.contexts.get(&cmd.pc_id))
                    .map(|(a, _)| a.clone())
                    .or_else(|| cmd.abstract_syntax.clone())
                    .or(sop);
                let Some(abs) = abstract_syntax else {
                    return;
                };
                let ts = self
                    .conns
                    .get(&id)
                    .and_then(|c| c.contexts.get(&cmd.pc_id))
                    .and_then(|(_, t)| t.clone());
                if cmd.command.is_request() {
                    if cmd.command.command_field == 0x0FFF {
                        return; // C-CANCEL
                    }
                    if let Some(c) = self.conns.get_mut(&id) {
                        if !ours && cmd.command.command_field == 0x0010 {
                            c.peer_get = true;
                        }
                        if ours
                            && cmd.command.command_field == 0x0001
                            && (c.peer_get || cmd.command.move_originator_ae.is_some())
                            && let Some(m) = cmd.command.message_id
                        {
                            c.relayed.insert(m);
                        }
                    }
                    // The sender of a request is the SCU of the context's SOP class,
                    // except for N-EVENT-REPORT, which the SCP sends.
                    let event_report = cmd.command.command_field == 0x0100;
                    let role = if ours != event_report {
                        Role::Scu
                    } else {
                        Role::Scp
                    };
                    let o = self.cap(&abs, role);
                    o.requests += 1;
                    if let Some(t) = ts
                        && !o.ts.contains(&t)
                    {
                        o.ts.push(t);
                    }
                } else if ours && let Some(st) = &cmd.command.status {
                    self.statuses.insert(st.value);
                    // The responder is the SCP of the service, except for N-EVENT-REPORT
                    // (storage commitment): there the SCU of the SOP class answers.
                    let role = if self.caps.contains_key(&(abs.clone(), Role::Scp)) {
                        Role::Scp
                    } else if self.caps.contains_key(&(abs.clone(), Role::Scu)) {
                        Role::Scu
                    } else {
                        Role::Scp
                    };
                    self.cap(&abs, role).statuses.insert(st.value);
                }
            }
            EventKind::DatasetPeek(p) => {
                if let Some(abs) = self
                    .conns
                    .get(&id)
                    .and_then(|c| c.contexts.get(&p.pc_id))
                    .map(|(a, _)| a.clone())
                    && let Some(t) = &p.transfer_syntax
                {
                    // Whoever sends a data set on a context uses its transfer syntax.
                    for role in [Role::Scu, Role::Scp] {
                        if let Some(o) = self.caps.get_mut(&(abs.clone(), role)) {
                            o.used.insert(t.clone());
                        }
                    }
                }
                let relayed = ours
                    && p.message_id.is_some_and(|m| {
                        self.conns.get(&id).is_some_and(|c| c.relayed.contains(&m))
                    });
                if relayed {
                    self.relayed_data_sets += 1;
                } else if ours {
                    for cs in &p.peek.specific_character_set {
                        let cs = cs.trim();
                        if !cs.is_empty() {
                            self.charsets.insert(cs.to_owned());
                        }
                    }
                    for pc in &p.peek.private_creators {
                        self.private_creators.insert(pc.creator.trim().to_owned());
                    }
                }
            }
            _ => {}
        }
    }

    fn session(&mut self, conn: &ConnectionInfo, _session: Session) {
        if let Some(c) = self.conns.remove(&conn.id)
            && let Some(side) = c.side
        {
            self.open_as[side.index()].remove(&conn.id);
        }
    }
}
