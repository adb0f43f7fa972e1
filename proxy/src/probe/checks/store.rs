//! `store`: C-STORE of the probe's generated objects (one Secondary Capture, then a small
//! study). What it stores is kept in [`State`] so commitment, find-move and matching work
//! on objects the device really accepted.

use super::*;

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
        let ts = self.cfg.store_transfer_syntax.clone();
        let spec = ObjectSpec {
            patient_name: format!("{}^STORE", self.token),
            patient_id: format!("{}S", self.token),
            study_uid: crate::peers::study::new_uid(),
            study_date: today(),
            transfer_syntax: ts.clone(),
        };
        let obj = dataset::generate(&spec);
        let r = match self.store_objects(std::slice::from_ref(&obj)) {
            Ok(statuses) => {
                let status = statuses.first().copied().flatten();
                let stored = Stored {
                    object: obj.clone(),
                    study_uid: spec.study_uid.clone(),
                    patient_id: spec.patient_id.clone(),
                    status,
                };
                let ok = stored.success();
                self.stored.push(stored);
                match status {
                    _ if ok => CheckResult::new(
                        Check::Store,
                        Verdict::Pass,
                        format!(
                            "C-STORE of a Secondary Capture object in {} answered {}",
                            label(&ts),
                            status_text(status.unwrap_or(0), field::C_STORE_RSP)
                        ),
                    )
                    .detail(format!("SOP instance {}", obj.sop_instance_uid))
                    .detail(format!(
                        "study {}, patient ID {}",
                        spec.study_uid, spec.patient_id
                    )),
                    Some(s) => CheckResult::new(
                        Check::Store,
                        Verdict::Fail,
                        format!("C-STORE answered {}", status_text(s, field::C_STORE_RSP)),
                    ),
                    None => CheckResult::new(
                        Check::Store,
                        Verdict::Fail,
                        format!(
                            "Secondary Capture in {} was not accepted as a presentation context",
                            label(&ts)
                        ),
                    ),
                }
            }
            Err(e) => CheckResult::new(Check::Store, Verdict::Fail, format!("C-STORE failed: {e}")),
        };
        let r = if r.verdict == Verdict::Pass {
            self.store_full_study(r)
        } else {
            r
        };
        self.store_result = Some(r.clone());
        r
    }

    /// After the single object: a small full study (CT series in Explicit VR LE, a
    /// Secondary Capture in Implicit VR LE) on one association.
    pub(super) fn store_full_study(&mut self, mut r: CheckResult) -> CheckResult {
        let opts = crate::peers::study::StudyOptions {
            patient_name: format!("{}^STUDY", self.token),
            patient_id: format!("{}F", self.token),
            ct_slices: 3,
            size: 64,
        };
        let study = match crate::peers::study::generate(&opts) {
            Ok(s) => s,
            Err(e) => {
                r.details.push(format!("full study not generated: {e}"));
                return r;
            }
        };
        match self.store_objects(&study.objects) {
            Ok(statuses) => {
                let mut ok = 0;
                let mut refused = 0;
                for (o, st) in study.objects.iter().zip(&statuses) {
                    match st {
                        None => refused += 1,
                        Some(code) => {
                            let s = Stored {
                                object: o.clone(),
                                study_uid: study.study_instance_uid.clone(),
                                patient_id: opts.patient_id.clone(),
                                status: Some(*code),
                            };
                            if s.success() {
                                ok += 1;
                            } else {
                                r.verdict = Verdict::Fail;
                                r.details.push(format!(
                                    "full study: {} answered {}",
                                    o.sop_instance_uid,
                                    status_text(*code, field::C_STORE_RSP)
                                ));
                            }
                            self.stored.push(s);
                        }
                    }
                }
                r.details.push(format!(
                    "full study {}: {ok} of {} objects stored with Success{}",
                    study.study_instance_uid,
                    study.objects.len(),
                    if refused > 0 {
                        format!(", {refused} not sent (presentation context refused)")
                    } else {
                        String::new()
                    }
                ));
            }
            Err(e) => {
                r.verdict = Verdict::Fail;
                r.details.push(format!("full study: {e}"));
            }
        }
        if r.verdict == Verdict::Fail {
            r.summary = format!("{}; the full study failed", r.summary);
        }
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
