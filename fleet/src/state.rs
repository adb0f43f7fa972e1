//! The fleet's state at the centre: every event once (de-duplicated by id), counts per
//! site, the findings of every instance, and the checks that need more than one site: a
//! C-STORE answered Success at one instance whose Storage Commitment result, seen at
//! another, says the instance failed (`silent-success`).
//!
//! Bounded: ids remembered for de-duplication, C-STOREs and failed commitments waiting
//! for their counterpart, and findings kept for the report are each capped (oldest
//! forgotten first).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use dicomtap_analyzer::conformance::RuleId;
use dicomtap_analyzer::conformance::commit::failure_reason_name;
use dicomtap_analyzer::statement::Statement;
use serde::Serialize;

use crate::schema::{Body, FleetEvent, Kind};

/// Ids remembered for de-duplication.
pub const MAX_IDS: usize = 2_000_000;
/// C-STOREs (and failed commitments) remembered, waiting for their counterpart.
pub const MAX_STORES: usize = 500_000;
/// Findings kept for the report (the counts go on beyond).
pub const MAX_FINDINGS: usize = 100_000;

/// A finding as the fleet keeps it: the instance's own, or one of the fleet's checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetFinding {
    pub site: String,
    pub instance: String,
    pub ts_us: u64,
    pub rule: String,
    pub severity: String,
    pub device: String,
    pub ae: String,
    pub observed: String,
    /// `instance` (the instance's live checker) or `fleet` (checked across instances).
    pub by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sop_instance: Option<String>,
    /// Ids of the events it rests on.
    pub events: Vec<String>,
}

#[derive(Debug, Clone)]
struct StoreFact {
    id: String,
    site: String,
    instance: String,
    assoc: u64,
    ts_us: u64,
    status: String,
    called_ae: Option<String>,
    message_id: Option<u16>,
}

#[derive(Debug, Clone)]
struct FailedFact {
    id: String,
    site: String,
    instance: String,
    assoc: u64,
    ts_us: u64,
    txn: String,
    reason: Option<u16>,
}

/// Per-site figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SiteFigures {
    pub events: BTreeMap<String, u64>,
    pub associations: BTreeMap<String, u64>,
    pub stores: BTreeMap<String, u64>,
    pub instances: BTreeMap<String, u64>,
    /// Devices (statement names, else `AE <title>`) seen at the site, with associations.
    pub devices: BTreeMap<String, u64>,
    pub last_ts_us: u64,
}

/// What [`FleetState::apply`] made of an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// New; with the findings it produced.
    New(Vec<FleetFinding>),
    Duplicate,
}

/// The fleet's state.
pub struct FleetState {
    devices_by_ae: HashMap<String, String>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    stores: HashMap<String, StoreFact>,
    store_order: VecDeque<String>,
    failed: HashMap<String, FailedFact>,
    failed_order: VecDeque<String>,
    /// (rule, SOP instance) already reported, so the same silent Success found by an
    /// instance and by the fleet counts once.
    reported: HashSet<(String, String)>,
    pub findings: Vec<FleetFinding>,
    /// Findings by (site, device, rule), beyond the kept list too.
    pub finding_counts: BTreeMap<(String, String, String), u64>,
    /// Findings per day (UTC days since the epoch) by rule, for the trend.
    pub trend: BTreeMap<u64, BTreeMap<String, u64>>,
    pub sites: BTreeMap<String, SiteFigures>,
    pub duplicates: u64,
    pub total: u64,
}

impl FleetState {
    /// `statements` name the devices behind AE titles (for findings and the report).
    pub fn new(statements: &[Statement]) -> FleetState {
        let mut devices_by_ae = HashMap::new();
        for s in statements {
            for ae in &s.ae {
                devices_by_ae.insert(ae.title.trim().to_string(), s.device.name.clone());
            }
        }
        FleetState {
            devices_by_ae,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            stores: HashMap::new(),
            store_order: VecDeque::new(),
            failed: HashMap::new(),
            failed_order: VecDeque::new(),
            reported: HashSet::new(),
            findings: Vec::new(),
            finding_counts: BTreeMap::new(),
            trend: BTreeMap::new(),
            sites: BTreeMap::new(),
            duplicates: 0,
            total: 0,
        }
    }

    /// The device name for an AE title: its statement's, else `AE <title>`.
    pub fn device_of(&self, ae: Option<&str>) -> String {
        match ae {
            Some(t) => self
                .devices_by_ae
                .get(t.trim())
                .cloned()
                .unwrap_or_else(|| format!("AE {}", t.trim())),
            None => "unknown".to_string(),
        }
    }

    /// Whether the id was seen (without recording it).
    pub fn is_duplicate(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// Takes one event.
    pub fn apply(&mut self, ev: &FleetEvent) -> Applied {
        if self.seen.contains(&ev.id) {
            self.duplicates += 1;
            return Applied::Duplicate;
        }
        if self.seen_order.len() >= MAX_IDS
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(ev.id.clone());
        self.seen_order.push_back(ev.id.clone());
        self.total += 1;
        let kind = ev.kind();
        {
            let site = self.sites.entry(ev.site.clone()).or_default();
            *site.events.entry(kind.as_str().to_string()).or_default() += 1;
            *site.instances.entry(ev.instance.clone()).or_default() += 1;
            site.last_ts_us = site.last_ts_us.max(ev.ts_us);
        }
        let mut new = Vec::new();
        match &ev.body {
            Body::Association(a) => {
                let devices = [
                    self.device_of(a.parties.calling_ae.as_deref()),
                    self.device_of(a.parties.called_ae.as_deref()),
                ];
                let site = self.sites.entry(ev.site.clone()).or_default();
                *site.associations.entry(a.outcome.clone()).or_default() += 1;
                for d in devices {
                    if d != "unknown" {
                        *site.devices.entry(d).or_default() += 1;
                    }
                }
            }
            Body::Store(s) => {
                let site = self.sites.entry(ev.site.clone()).or_default();
                *site.stores.entry(s.status_class.clone()).or_default() += 1;
                if matches!(s.status_class.as_str(), "success" | "warning") {
                    let fact = StoreFact {
                        id: ev.id.clone(),
                        site: ev.site.clone(),
                        instance: ev.instance.clone(),
                        assoc: s.parties.assoc,
                        ts_us: ev.ts_us,
                        status: s.status.clone(),
                        called_ae: s.parties.called_ae.clone(),
                        message_id: s.message_id,
                    };
                    if let Some(f) = self.failed.remove(&s.sop_instance) {
                        new.extend(self.silent_success(&s.sop_instance, &fact, &f));
                    } else {
                        remember(
                            &mut self.stores,
                            &mut self.store_order,
                            s.sop_instance.clone(),
                            fact,
                        );
                    }
                }
            }
            Body::Commitment(c) if c.phase == "result" => {
                for r in &c.referenced {
                    self.stores.remove(r);
                }
                let txn = c
                    .transaction_uid
                    .clone()
                    .unwrap_or_else(|| "(no transaction UID)".into());
                for f in &c.failed {
                    let fact = FailedFact {
                        id: ev.id.clone(),
                        site: ev.site.clone(),
                        instance: ev.instance.clone(),
                        assoc: c.parties.assoc,
                        ts_us: ev.ts_us,
                        txn: txn.clone(),
                        reason: f.failure_reason,
                    };
                    if let Some(store) = self.stores.remove(&f.sop_instance) {
                        new.extend(self.silent_success(&f.sop_instance, &store, &fact));
                    } else {
                        remember(
                            &mut self.failed,
                            &mut self.failed_order,
                            f.sop_instance.clone(),
                            fact,
                        );
                    }
                }
            }
            Body::Commitment(_) | Body::Health(_) => {}
            Body::Finding(f) => {
                let key = f.sop_instance.clone().map(|i| (f.rule.clone(), i));
                let fresh = key.as_ref().is_none_or(|k| !self.reported.contains(k));
                if let Some(k) = key {
                    self.reported.insert(k);
                }
                if fresh {
                    new.push(FleetFinding {
                        site: ev.site.clone(),
                        instance: ev.instance.clone(),
                        ts_us: ev.ts_us,
                        rule: f.rule.clone(),
                        severity: f.severity.clone(),
                        device: f.device.clone(),
                        ae: f.ae.clone(),
                        observed: f.observed.clone(),
                        by: "instance",
                        sop_instance: f.sop_instance.clone(),
                        events: vec![ev.id.clone()],
                    });
                }
            }
        }
        for f in &new {
            self.count(f);
        }
        Applied::New(new)
    }

    fn count(&mut self, f: &FleetFinding) {
        *self
            .finding_counts
            .entry((f.site.clone(), f.device.clone(), f.rule.clone()))
            .or_default() += 1;
        *self
            .trend
            .entry(f.ts_us / 86_400_000_000)
            .or_default()
            .entry(f.rule.clone())
            .or_default() += 1;
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(f.clone());
        }
    }

    fn silent_success(
        &mut self,
        sop_instance: &str,
        store: &StoreFact,
        failed: &FailedFact,
    ) -> Option<FleetFinding> {
        let rule = RuleId::SilentSuccess;
        let key = (rule.as_str().to_string(), sop_instance.to_string());
        if !self.reported.insert(key) {
            return None;
        }
        let reason = failed.reason.map_or_else(
            || "no failure reason".to_string(),
            |r| format!("failure reason {r:04X} ({})", failure_reason_name(r)),
        );
        let ae = store.called_ae.clone().unwrap_or_default();
        Some(FleetFinding {
            site: store.site.clone(),
            instance: store.instance.clone(),
            ts_us: failed.ts_us,
            rule: rule.as_str().to_string(),
            severity: rule.severity().to_string(),
            device: self.device_of(store.called_ae.as_deref()),
            ae,
            observed: format!(
                "C-STORE of {sop_instance} answered {} at {}/{} (association #{}, message {}), then Storage Commitment transaction {} reported it failed ({reason}) at {}/{} (association #{}), {:.1} s later",
                store.status,
                store.site,
                store.instance,
                store.assoc,
                store
                    .message_id
                    .map_or_else(|| "?".into(), |m| m.to_string()),
                failed.txn,
                failed.site,
                failed.instance,
                failed.assoc,
                failed.ts_us.saturating_sub(store.ts_us) as f64 / 1e6,
            ),
            by: "fleet",
            sop_instance: Some(sop_instance.to_string()),
            events: vec![store.id.clone(), failed.id.clone()],
        })
    }

    /// Events taken, by kind, over all sites.
    pub fn events_by_kind(&self) -> BTreeMap<Kind, u64> {
        let mut out = BTreeMap::new();
        for s in self.sites.values() {
            for k in Kind::ALL {
                *out.entry(k).or_default() += s.events.get(k.as_str()).copied().unwrap_or(0);
            }
        }
        out
    }
}

fn remember<T>(map: &mut HashMap<String, T>, order: &mut VecDeque<String>, key: String, v: T) {
    while map.len() >= MAX_STORES {
        let Some(old) = order.pop_front() else { break };
        map.remove(&old);
    }
    if map.insert(key.clone(), v).is_none() {
        order.push_back(key);
    }
    // Keys matched (and removed) since stay in the order list; drop them now and then.
    if order.len() > 2 * MAX_STORES.max(map.len()) {
        order.retain(|k| map.contains_key(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{CommitmentEvent, FailedInstance, Parties, SCHEMA_VERSION, StoreEvent};

    fn ev(id: &str, site: &str, ts_us: u64, body: Body) -> FleetEvent {
        FleetEvent {
            v: SCHEMA_VERSION,
            id: id.into(),
            site: site.into(),
            instance: "gw".into(),
            ts_us,
            body,
        }
    }

    fn store(inst: &str) -> Body {
        Body::Store(StoreEvent {
            parties: Parties {
                assoc: 1,
                calling_ae: Some("MOD".into()),
                called_ae: Some("ARCHIVE".into()),
                ..Parties::default()
            },
            message_id: Some(1),
            sop_class: None,
            sop_instance: inst.into(),
            status: "0000".into(),
            status_class: "success".into(),
        })
    }

    fn failed(inst: &str) -> Body {
        Body::Commitment(CommitmentEvent {
            parties: Parties {
                assoc: 7,
                ..Parties::default()
            },
            phase: "result".into(),
            from: "requestor".into(),
            transaction_uid: Some("1.2.9".into()),
            referenced: vec![],
            failed: vec![FailedInstance {
                sop_instance: inst.into(),
                failure_reason: Some(0x0110),
            }],
        })
    }

    #[test]
    fn silent_success_across_sites_in_either_order_and_once() {
        let mut s = FleetState::new(&[]);
        assert_eq!(
            s.apply(&ev("a.1", "north", 10, store("1.2.3"))),
            Applied::New(vec![])
        );
        let Applied::New(f) = s.apply(&ev("b.1", "south", 20, failed("1.2.3"))) else {
            panic!("new event");
        };
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].site, "north");
        assert_eq!(f[0].device, "AE ARCHIVE");
        assert!(f[0].observed.contains("at south/gw"), "{}", f[0].observed);
        assert_eq!(
            s.apply(&ev("b.1", "south", 20, failed("1.2.3"))),
            Applied::Duplicate
        );
        assert_eq!(s.duplicates, 1);
        // The report first (its site's events came earlier), then the store.
        let Applied::New(none) = s.apply(&ev("b.2", "south", 30, failed("1.2.4"))) else {
            panic!("new event");
        };
        assert!(none.is_empty());
        let Applied::New(f) = s.apply(&ev("a.2", "north", 25, store("1.2.4"))) else {
            panic!("new event");
        };
        assert_eq!(f.len(), 1);
        assert_eq!(s.finding_counts.values().sum::<u64>(), 2);
        assert_eq!(s.total, 4);
    }
}
