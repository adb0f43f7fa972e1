//! How close a draft is to a reference statement of the same document: precision and
//! recall of (SOP class, role) pairs, of transfer syntaxes per capability, and whether
//! every private UID was kept. The benchmark and the accuracy tests use it.

use std::collections::BTreeSet;

use dicomtap_analyzer::statement::{Role, Statement};
use serde::Serialize;

/// The figures of one draft against its reference.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// (SOP class, role) pairs in the reference / in the draft / in both.
    pub reference_caps: usize,
    pub drafted_caps: usize,
    pub matched_caps: usize,
    /// (SOP class, role, transfer syntax) triples over the capabilities of both whose
    /// transfer syntaxes the reference scores.
    pub reference_ts: usize,
    pub drafted_ts: usize,
    pub matched_ts: usize,
    /// Private UIDs of the reference / kept in the draft.
    pub reference_private: usize,
    pub kept_private: usize,
    /// What the draft lacks and what it has too much, for a person to look at.
    pub missed: Vec<String>,
    pub extra: Vec<String>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

impl Score {
    pub fn cap_recall(&self) -> f64 {
        ratio(self.matched_caps, self.reference_caps)
    }
    pub fn cap_precision(&self) -> f64 {
        ratio(self.matched_caps, self.drafted_caps)
    }
    pub fn ts_recall(&self) -> f64 {
        ratio(self.matched_ts, self.reference_ts)
    }
    pub fn ts_precision(&self) -> f64 {
        ratio(self.matched_ts, self.drafted_ts)
    }
    pub fn private_kept(&self) -> f64 {
        ratio(self.kept_private, self.reference_private)
    }
}

fn caps(s: &Statement) -> BTreeSet<(String, Role)> {
    s.ae.iter()
        .flat_map(|a| {
            a.capability
                .iter()
                .map(|c| (c.sop_class.uid.clone(), c.role))
        })
        .collect()
}

fn ts_of(s: &Statement, sop: &str, role: Role) -> BTreeSet<String> {
    s.ae.iter()
        .flat_map(|a| a.capability.iter())
        .filter(|c| c.sop_class.uid == sop && c.role == role)
        .flat_map(|c| c.transfer_syntaxes.iter().map(|t| t.uid.clone()))
        .collect()
}

/// Scores `draft` against `reference`; `ts_not_stated` holds "UID/ROLE" of the reference's
/// capabilities whose transfer syntaxes the document does not state (not scored).
pub fn score(draft: &Statement, reference: &Statement, ts_not_stated: &[String]) -> Score {
    let want = caps(reference);
    let got = caps(draft);
    let both: Vec<&(String, Role)> = want.intersection(&got).collect();
    let mut s = Score {
        reference_caps: want.len(),
        drafted_caps: got.len(),
        matched_caps: both.len(),
        reference_ts: 0,
        drafted_ts: 0,
        matched_ts: 0,
        reference_private: reference.private_uids.len(),
        kept_private: reference
            .private_uids
            .keys()
            .filter(|u| draft.private_uids.contains_key(*u))
            .count(),
        missed: want
            .difference(&got)
            .map(|(u, r)| format!("{} {r}", label(u)))
            .collect(),
        extra: got
            .difference(&want)
            .map(|(u, r)| format!("{} {r}", label(u)))
            .collect(),
    };
    for (u, r) in both {
        if ts_not_stated
            .iter()
            .any(|k| k == &format!("{u}/{}", r.as_str()))
        {
            continue;
        }
        let w = ts_of(reference, u, *r);
        let g = ts_of(draft, u, *r);
        s.reference_ts += w.len();
        s.drafted_ts += g.len();
        s.matched_ts += w.intersection(&g).count();
    }
    s
}

fn label(u: &str) -> String {
    dicomtap_wire::uid::keyword(u).map_or_else(|| u.to_owned(), str::to_owned)
}
