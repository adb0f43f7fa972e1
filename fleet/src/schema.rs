//! The event schema of the fleet bus: the contract between every dicomtap instance and
//! whatever reads the fleet's events (the `dicomtap fleet` consumer, or a Kafka or
//! OpenTelemetry pipeline instead). Serialized as one JSON object per message; fields are
//! only ever added, `v` changes if one ever has to change meaning.
//!
//! Events carry AE titles, addresses, SOP class and instance UIDs, statuses and rule ids,
//! never names or other values from a data set (see docs/fleet.md).

use serde::{Deserialize, Serialize};

/// Refused presentation contexts listed in an association event.
pub const MAX_REFUSED_LISTED: usize = 16;
/// Schema version written into every event.
pub const SCHEMA_VERSION: u32 = 1;
/// First token of every subject: `dicomtap.<site>.<kind>.<instance>`.
pub const SUBJECT_ROOT: &str = "dicomtap";
/// Longest site or instance name.
pub const MAX_NAME: usize = 64;

/// Who an instance is: the site it runs at and its own name there. Both are metric
/// labels and subject tokens, so they are short and plain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub site: String,
    pub instance: String,
}

/// Why a site or instance name is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("{what} name {name:?}: use 1 to {MAX_NAME} letters, digits, '-' or '_'")]
    Invalid { what: &'static str, name: String },
}

/// Checks a site or instance name: 1 to 64 of `[A-Za-z0-9_-]` (valid as a Prometheus
/// label value and as a NATS subject token).
pub fn check_name(what: &'static str, name: &str) -> Result<(), IdentityError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(IdentityError::Invalid {
            what,
            name: name.to_string(),
        })
    }
}

impl Identity {
    /// A checked identity.
    pub fn new(site: &str, instance: &str) -> Result<Identity, IdentityError> {
        check_name("site", site)?;
        check_name("instance", instance)?;
        Ok(Identity {
            site: site.to_string(),
            instance: instance.to_string(),
        })
    }

    /// The metric labels every metric of the instance carries.
    pub fn labels(&self) -> Vec<(String, String)> {
        vec![
            ("site".to_string(), self.site.clone()),
            ("instance_name".to_string(), self.instance.clone()),
        ]
    }

    /// The subject an event of `kind` from this instance is published on.
    pub fn subject(&self, kind: Kind) -> String {
        format!(
            "{SUBJECT_ROOT}.{}.{}.{}",
            self.site,
            kind.as_str(),
            self.instance
        )
    }
}

/// The kinds of event, one subject level each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One per association, when it ends: AEs, outcome, contexts, message counts.
    Association,
    /// One C-STORE answered: instance UID and status (for fleet-wide commitment checks
    /// and "every Success of device X").
    Store,
    /// A Storage Commitment request or result: transaction, committed and failed instances.
    Commitment,
    /// A conformance finding of the instance's own live checker.
    Finding,
    /// Recorder, capture or publisher health.
    Health,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Association,
        Kind::Store,
        Kind::Commitment,
        Kind::Finding,
        Kind::Health,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Association => "association",
            Kind::Store => "store",
            Kind::Commitment => "commitment",
            Kind::Finding => "finding",
            Kind::Health => "health",
        }
    }
}

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetEvent {
    pub v: u32,
    /// Unique across the fleet and stable across resends:
    /// `<site>.<instance>.<boot>.<sequence>`. Consumers de-duplicate by it; it is also the
    /// JetStream message id.
    pub id: String,
    pub site: String,
    pub instance: String,
    /// When it happened, microseconds since the UNIX epoch.
    pub ts_us: u64,
    #[serde(flatten)]
    pub body: Body,
}

impl FleetEvent {
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }
}

/// What an event says, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Association(AssociationEvent),
    Store(StoreEvent),
    Commitment(CommitmentEvent),
    Finding(FindingEvent),
    Health(HealthEvent),
}

impl Body {
    pub fn kind(&self) -> Kind {
        match self {
            Body::Association(_) => Kind::Association,
            Body::Store(_) => Kind::Store,
            Body::Commitment(_) => Kind::Commitment,
            Body::Finding(_) => Kind::Finding,
            Body::Health(_) => Kind::Health,
        }
    }
}

/// The AEs and addresses of an association, as every per-association event names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    /// Association id, unique within one run of the instance.
    pub assoc: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_ae: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_ae: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// One association, when it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationEvent {
    #[serde(flatten)]
    pub parties: Parties,
    /// accepted, rejected, proxy_rejected, upstream_failed, no_response.
    pub outcome: String,
    /// How it ended: released, aborted, closed, ...
    #[serde(default)]
    pub ended: String,
    /// The contexts messages were exchanged on, and refused ones (at most
    /// [`MAX_REFUSED_LISTED`] of those), with their results. Senders such as storescu
    /// propose a hundred contexts and use two: the rest are only counted.
    #[serde(default)]
    pub contexts: Vec<ContextOutcome>,
    #[serde(default)]
    pub proposed_contexts: u32,
    #[serde(default)]
    pub accepted_contexts: u32,
    /// DIMSE requests seen, by command name.
    #[serde(default)]
    pub requests: std::collections::BTreeMap<String, u64>,
    /// DIMSE responses by status class (success, warning, failure, cancel, pending).
    #[serde(default)]
    pub responses: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub bytes_from_requestor: u64,
    #[serde(default)]
    pub bytes_from_acceptor: u64,
    #[serde(default)]
    pub duration_us: u64,
}

/// A proposed presentation context and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextOutcome {
    pub abstract_syntax: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<String>,
    /// accepted, or the reason name of the refusal; `unanswered` without an AC.
    pub result: String,
}

/// One C-STORE and its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEvent {
    #[serde(flatten)]
    pub parties: Parties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sop_class: Option<String>,
    pub sop_instance: String,
    /// The status code as four hex digits, e.g. "0000".
    pub status: String,
    /// success, warning, failure, cancel or pending.
    pub status_class: String,
}

/// A Storage Commitment request (N-ACTION) or result (N-EVENT-REPORT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentEvent {
    #[serde(flatten)]
    pub parties: Parties,
    /// `request` or `result`.
    pub phase: String,
    /// Which side sent it: requestor or acceptor of the association.
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_uid: Option<String>,
    /// Instances requested (request) or committed (result).
    #[serde(default)]
    pub referenced: Vec<String>,
    #[serde(default)]
    pub failed: Vec<FailedInstance>,
}

/// An instance in a Failed SOP Sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedInstance {
    pub sop_instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<u16>,
}

/// A conformance finding of the instance's live checker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingEvent {
    #[serde(flatten)]
    pub parties: Parties,
    pub rule: String,
    pub severity: String,
    pub device: String,
    pub ae: String,
    pub claim: String,
    pub observed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sop_instance: Option<String>,
}

/// A health figure of the instance: recorder drops, capture loss, events the publisher
/// could not keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEvent {
    /// What: recorder_dropped, analysis_dropped_bytes, fleet_events_lost, spool_dropped,
    /// started.
    pub what: String,
    /// The running total (for counters) or the value now.
    pub value: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(Identity::new("north-1", "pacs_gw").is_ok());
        for bad in ["", "a.b", "a b", "x>", &"a".repeat(65)] {
            assert!(Identity::new(bad, "i").is_err(), "{bad:?}");
        }
        let id = Identity::new("north", "gw1").unwrap_or_else(|_| unreachable!());
        assert_eq!(id.subject(Kind::Store), "dicomtap.north.store.gw1");
    }

    #[test]
    fn round_trip() {
        let ev = FleetEvent {
            v: SCHEMA_VERSION,
            id: "s.i.1.2".into(),
            site: "s".into(),
            instance: "i".into(),
            ts_us: 5,
            body: Body::Store(StoreEvent {
                parties: Parties {
                    assoc: 3,
                    calling_ae: Some("MOD".into()),
                    ..Parties::default()
                },
                message_id: Some(1),
                sop_class: None,
                sop_instance: "1.2.3".into(),
                status: "0000".into(),
                status_class: "success".into(),
            }),
        };
        let json = serde_json::to_string(&ev).unwrap_or_default();
        assert!(json.contains(r#""kind":"store""#), "{json}");
        let back: FleetEvent = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, ev);
    }
}
