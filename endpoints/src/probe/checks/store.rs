//! `store`: C-STORE of the probe's generated instances ([`crate::peers::iods`]): one per
//! storage SOP class and uncompressed transfer syntax the device accepts (or its statement
//! claims). What it stores is kept in [`State`] so commitment and find-move work on
//! objects the device really accepted.

use super::*;
use crate::peers::iods::{IODS, Iod};

/// A storage SOP class (PS3.4 Annex B: under 1.2.840.10008.5.1.4.1.1).
fn is_storage(uid: &str) -> bool {
    uid.starts_with("1.2.840.10008.5.1.4.1.1.")
}

impl State<'_> {
    pub(super) fn store_objects(
        &self,
        objects: &[EncodedObject],
    ) -> Result<Vec<Option<u16>>, String> {
        let mut rq = self.builder();
        let mut seen = BTreeSet::new();
        for o in objects {
            if seen.insert((o.sop_class_uid.clone(), o.transfer_syntax.clone())) {
                rq = rq.context(Proposal::new(
                    &o.sop_class_uid,
                    &[o.transfer_syntax.as_str()],
                ));
            }
        }
        let mut link = self.open(&rq).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for o in objects {
            let Some((pc, _)) = link.context_for(&o.sop_class_uid, Some(&o.transfer_syntax)) else {
                out.push(None);
                continue;
            };
            let id = link.next_message_id();
            let mut cmd = request(field::C_STORE_RQ, id, &o.sop_class_uid);
            cmd.affected_sop_instance = Some(o.sop_instance_uid.clone());
            match link.request(pc, &cmd, Some(&o.dataset), self.cfg.timeout) {
                Ok(ex) => out.push(ex.status()),
                Err(e) => {
                    link.abort();
                    return Err(format!("C-STORE of {}: {e}", o.sop_instance_uid));
                }
            }
        }
        self.finish(link);
        Ok(out)
    }

    pub(super) fn store_check(&mut self) -> CheckResult {
        if let Some(r) = &self.store_result {
            return r.clone();
        }
        let r = self.store_generated();
        self.store_result = Some(r.clone());
        r
    }

    /// The (SOP class, transfer syntax) pairs to store: every IOD the probe generates in
    /// Implicit and Explicit VR Little Endian and Explicit VR Big Endian
    /// (`--transfer-syntax` first), narrowed to what
    /// the statement claims or, without one, to what the contexts sweep saw accepted.
    /// `Err` = a skipped result saying why there is nothing to store.
    fn store_candidates(&self) -> Result<Vec<(&'static Iod, String)>, Box<CheckResult>> {
        // `--transfer-syntax` first, then the others the generator encodes.
        let first = self.cfg.store_transfer_syntax.clone();
        let mut syntaxes = vec![first.as_str()];
        syntaxes.extend(
            crate::peers::iods::TRANSFER_SYNTAXES
                .iter()
                .copied()
                .filter(|t| *t != first),
        );
        let ae = self.claims();
        if let Some(ae) = ae
            && !ae
                .capability
                .iter()
                .any(|c| c.role == Role::Scp && is_storage(&c.sop_class.uid))
        {
            return Err(Box::new(CheckResult::new(
                Check::Store,
                Verdict::Skipped,
                "the statement claims no storage SCP",
            )));
        }
        let mut out = Vec::new();
        for iod in IODS {
            for &ts in &syntaxes {
                let keep = match (ae, &self.sweep) {
                    (Some(ae), _) => ae.capability(iod.sop_class, Role::Scp).is_some_and(|c| {
                        c.transfer_syntaxes.is_empty()
                            || c.transfer_syntaxes.iter().any(|t| t.uid == ts)
                    }),
                    (None, Some(sweep)) => sweep
                        .get(&(iod.sop_class.to_string(), ts.to_string()))
                        .copied()
                        .unwrap_or(true),
                    (None, None) => true,
                };
                if keep {
                    out.push((iod, ts.to_string()));
                }
            }
        }
        if out.is_empty() {
            let why = if ae.is_some() {
                format!(
                    "the statement claims none of the {} storage SOP classes the probe generates in an uncompressed transfer syntax",
                    IODS.len()
                )
            } else {
                format!(
                    "the device accepted none of the {} storage SOP classes the probe generates in the contexts sweep",
                    IODS.len()
                )
            };
            return Err(Box::new(CheckResult::new(
                Check::Store,
                Verdict::Skipped,
                why,
            )));
        }
        Ok(out)
    }

    /// C-STORE of one generated instance per accepted (SOP class, transfer syntax), all in
    /// one study of this run's `^STORE` patient.
    fn store_generated(&mut self) -> CheckResult {
        let candidates = match self.store_candidates() {
            Ok(c) => c,
            Err(r) => return *r,
        };
        let patient_name = format!("{}^STORE", self.token);
        let patient_id = format!("{}S", self.token);
        let study_uid = crate::peers::study::new_uid();
        let marks = self.marks(&patient_name, &patient_id, &study_uid);
        let mut objects = Vec::new();
        let mut names = Vec::new();
        let mut r = CheckResult::new(Check::Store, Verdict::Pass, "");
        for (iod, ts) in &candidates {
            match crate::peers::iods::generate(iod.sop_class, &marks, ts) {
                Ok(o) => {
                    objects.push(o);
                    names.push(*iod);
                }
                Err(e) => r.details.push(format!("{} not generated: {e}", iod.name)),
            }
        }
        self.cfg.progress(&format!(
            "store: {} C-STOREs on one association (each answer waited for up to {:.0} s)",
            objects.len(),
            self.cfg.timeout.as_secs_f64()
        ));
        let statuses = match self.store_objects(&objects) {
            Ok(s) => s,
            Err(e) => {
                return CheckResult::new(
                    Check::Store,
                    Verdict::Fail,
                    format!("C-STORE failed: {e}"),
                );
            }
        };
        let mut table = Table {
            headers: vec![
                "IOD".into(),
                "transfer syntax".into(),
                "result".into(),
                "SOP instance".into(),
            ],
            rows: Vec::new(),
        };
        let (mut ok, mut failed, mut refused) = (0, 0, 0);
        let mut classes = BTreeSet::new();
        let mut syntaxes = BTreeSet::new();
        let mut refused_claimed = Vec::new();
        for ((o, iod), st) in objects.iter().zip(&names).zip(&statuses) {
            let result = match st {
                None => {
                    refused += 1;
                    if self.claims().is_some() {
                        refused_claimed.push(format!(
                            "{} in {}",
                            iod.name,
                            label(&o.transfer_syntax)
                        ));
                    }
                    "presentation context not accepted".to_string()
                }
                Some(code) => {
                    let s = Stored {
                        object: o.clone(),
                        study_uid: study_uid.clone(),
                        patient_id: patient_id.clone(),
                        status: Some(*code),
                    };
                    if s.success() {
                        ok += 1;
                        classes.insert(iod.name);
                        syntaxes.insert(o.transfer_syntax.clone());
                        self.note_written(Check::Store, &study_uid, &patient_id, &patient_name);
                    } else {
                        failed += 1;
                        r.verdict = Verdict::Fail;
                    }
                    self.stored.push(s);
                    status_text(*code, field::C_STORE_RSP)
                }
            };
            table.rows.push(vec![
                iod.name.to_string(),
                label(&o.transfer_syntax),
                result,
                o.sop_instance_uid.clone(),
            ]);
        }
        let sent = ok + failed;
        r.summary = if sent == 0 {
            r.verdict = Verdict::Fail;
            format!(
                "no storage context accepted for any of the {} instances offered ({})",
                objects.len(),
                names
                    .iter()
                    .map(|i| i.name)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else if failed > 0 {
            format!("{failed} of {sent} C-STOREs failed ({ok} stored)")
        } else {
            format!(
                "{ok} instances stored with Success: {} in {}",
                classes.into_iter().collect::<Vec<_>>().join(", "),
                syntaxes
                    .iter()
                    .map(|t| label(t))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        if refused > 0 {
            r.details.push(format!(
                "{refused} of {} offered (SOP class, transfer syntax) pairs not accepted",
                objects.len()
            ));
        }
        if !refused_claimed.is_empty() && r.verdict == Verdict::Pass {
            r.verdict = Verdict::DiffersFromStatement;
            r.details.push(format!(
                "claimed in the statement but not accepted: {}",
                refused_claimed.join(", ")
            ));
        }
        r.details.push(format!(
            "study {study_uid}, patient {patient_name} (ID {patient_id})"
        ));
        r.brief = Some(Table {
            headers: table.headers.clone(),
            rows: table
                .rows
                .iter()
                .filter(|row| !row.get(2).is_some_and(|c| c.starts_with("0000")))
                .cloned()
                .collect(),
        });
        r.table = Some(table);
        r
    }

    /// The objects stored with Success, storing one first if nothing was stored yet.
    pub(super) fn ensure_stored(&mut self) -> Vec<Stored> {
        if self.store_result.is_none() {
            let _ = self.store_check();
        }
        self.stored
            .iter()
            .filter(|s| s.success())
            .cloned()
            .collect()
    }
}
