//! `find-move`: the Q/R round trip on what was stored (C-FIND, C-MOVE to the probe's own
//! listener, C-GET with the SCP role), plus the Q/R helpers (`open_qr`, `find`,
//! `move_study`, `get_study`) the matching, charset and timeouts checks reuse.

use super::*;

impl State<'_> {
    /// Opens an association for Q/R with the given models; returns the link.
    pub(super) fn open_qr(
        &self,
        models: &[&str],
        storage_scp: &[(String, String)],
    ) -> Result<Link, LinkError> {
        let mut rq = self.builder();
        for m in models {
            rq = rq.context(Proposal::new(m, &[EXPLICIT_LE, IMPLICIT_LE]));
        }
        for (s, t) in storage_scp {
            rq = rq.context(Proposal::new(s, &[t.as_str()]));
            if !rq.scp_roles.contains(s) {
                rq.scp_roles.push(s.clone());
            }
        }
        self.open(&rq)
    }

    /// C-FIND at STUDY level; returns the matches' data sets (decoded).
    pub(super) fn find(
        &self,
        link: &mut Link,
        keys: &Dataset,
    ) -> Result<(Vec<Dataset>, Exchange), String> {
        let (pc, ts) = link
            .context_for(STUDY_ROOT_FIND, None)
            .or_else(|| link.context_for(PATIENT_ROOT_FIND, None))
            .ok_or("no Q/R FIND context accepted")?;
        let sop = link
            .accepted
            .get(&pc)
            .map(|(a, _)| a.clone())
            .unwrap_or_default();
        let explicit = ts == EXPLICIT_LE;
        let mut keys = keys.clone();
        keys.put_str(tag::QUERY_RETRIEVE_LEVEL, "CS", b"STUDY");
        let id = link.next_message_id();
        let ex = link
            .request(
                pc,
                &request(field::C_FIND_RQ, id, &sop),
                Some(&keys.encode(explicit)),
                self.cfg.timeout,
            )
            .map_err(|e| e.to_string())?;
        if ex.status() != Some(0) {
            return Err(format!(
                "C-FIND answered {}",
                status_or_none(ex.status(), field::C_FIND_RSP)
            ));
        }
        let matches = ex
            .pending_datasets()
            .map(|d| Dataset::decode(d, explicit))
            .collect();
        Ok((matches, ex))
    }

    pub(super) fn study_keys(study_uid: &str) -> Dataset {
        let mut k = Dataset::new();
        k.put_str(tag::STUDY_INSTANCE_UID, "UI", study_uid.as_bytes())
            .put_str(tag::PATIENT_NAME, "PN", b"")
            .put_str(tag::PATIENT_ID, "LO", b"")
            .put_str(tag::STUDY_DATE, "DA", b"")
            .put_str(tag::SPECIFIC_CHARACTER_SET, "CS", b"")
            .put_str(tag::NUMBER_OF_STUDY_RELATED_INSTANCES, "IS", b"");
        k
    }

    /// C-MOVE of a study to the probe's listener; returns (final status, sub-ops, received instance UIDs).
    pub(super) fn move_study(
        &self,
        study_uid: &str,
        expect: &[String],
    ) -> Result<(u16, String, Vec<String>), String> {
        let listener = self
            .listener
            .as_ref()
            .ok_or("no --listen given: the probe runs no move destination")?;
        let mut link = self
            .open_qr(&[STUDY_ROOT_FIND, STUDY_ROOT_MOVE], &[])
            .map_err(|e| e.to_string())?;
        let (pc, ts) = link
            .context_for(STUDY_ROOT_MOVE, None)
            .ok_or("Study Root MOVE not accepted")?;
        let mut keys = Dataset::new();
        keys.put_str(tag::QUERY_RETRIEVE_LEVEL, "CS", b"STUDY")
            .put_str(tag::STUDY_INSTANCE_UID, "UI", study_uid.as_bytes());
        let id = link.next_message_id();
        let mut cmd = request(field::C_MOVE_RQ, id, STUDY_ROOT_MOVE);
        cmd.move_destination = Some(self.cfg.move_ae.clone());
        let ex = link
            .request(
                pc,
                &cmd,
                Some(&keys.encode(ts == EXPLICIT_LE)),
                self.cfg.timeout * 3,
            )
            .map_err(|e| e.to_string())?;
        self.finish(link);
        let status = ex.status().ok_or("C-MOVE-RSP without status")?;
        let sub = ex
            .last()
            .and_then(|m| m.command.sub_operations)
            .map(|s| {
                format!(
                    "completed {}, failed {}, warning {}",
                    s.completed.unwrap_or(0),
                    s.failed.unwrap_or(0),
                    s.warning.unwrap_or(0)
                )
            })
            .unwrap_or_else(|| "no sub-operation counts".into());
        listener.wait_for(Duration::from_secs(5), |r| {
            expect.iter().all(|u| {
                r.iter()
                    .any(|x| x.message.command.affected_sop_instance.as_deref() == Some(u))
            })
        });
        let got = listener
            .received()
            .into_iter()
            .filter(|r| r.message.command.command_field == field::C_STORE_RQ)
            .filter_map(|r| r.message.command.affected_sop_instance)
            .collect();
        Ok((status, sub, got))
    }

    /// C-GET of a study; returns (final status, the C-STORE sub-operations received).
    pub(super) fn get_study(
        &self,
        study_uid: &str,
        storage: &[(String, String)],
    ) -> Result<(u16, Vec<crate::probe::link::Message>), String> {
        let mut link = self
            .open_qr(&[STUDY_ROOT_FIND, STUDY_ROOT_GET], storage)
            .map_err(|e| e.to_string())?;
        let Some((pc, ts)) = link.context_for(STUDY_ROOT_GET, None) else {
            link.abort();
            return Err("Study Root GET not accepted".into());
        };
        let mut keys = Dataset::new();
        keys.put_str(tag::QUERY_RETRIEVE_LEVEL, "CS", b"STUDY")
            .put_str(tag::STUDY_INSTANCE_UID, "UI", study_uid.as_bytes());
        let id = link.next_message_id();
        let ex = link
            .request(
                pc,
                &request(field::C_GET_RQ, id, STUDY_ROOT_GET),
                Some(&keys.encode(ts == EXPLICIT_LE)),
                self.cfg.timeout * 3,
            )
            .map_err(|e| e.to_string())?;
        self.finish(link);
        let status = ex.status().ok_or("C-GET-RSP without status")?;
        Ok((
            status,
            ex.peer_requests
                .into_iter()
                .filter(|m| m.command.command_field == field::C_STORE_RQ)
                .collect(),
        ))
    }

    /// Whether the device accepts a Q/R FIND context at all (one association). `Err` is
    /// the result of `check` when it does not: skipped, or failed when the statement
    /// claims Q/R FIND.
    pub(super) fn find_offered(&self, check: Check) -> Result<(), Box<CheckResult>> {
        let link = self.open_qr(&[STUDY_ROOT_FIND, PATIENT_ROOT_FIND], &[]);
        match link {
            Ok(l) => {
                let ok = l.context_for(STUDY_ROOT_FIND, None).is_some()
                    || l.context_for(PATIENT_ROOT_FIND, None).is_some();
                self.finish(l);
                if ok {
                    return Ok(());
                }
                let claimed = self.cfg.ae().is_some_and(|a| {
                    has_scp_claim(a, STUDY_ROOT_FIND) || has_scp_claim(a, PATIENT_ROOT_FIND)
                });
                Err(Box::new(if claimed {
                    CheckResult::new(
                        check,
                        Verdict::Fail,
                        "the statement claims Q/R FIND SCP, but no Q/R FIND context was accepted",
                    )
                } else {
                    CheckResult::new(
                        check,
                        Verdict::Skipped,
                        "the device accepts no Q/R FIND context (Study or Patient Root)",
                    )
                }))
            }
            Err(e) => Err(Box::new(CheckResult::new(
                check,
                Verdict::Fail,
                format!("association for Q/R FIND: {e}{}", self.hint(&e.to_string())),
            ))),
        }
    }

    pub(super) fn find_move(&mut self) -> CheckResult {
        if let Some(r) = self.not_offered(
            Check::FindMove,
            &[
                STUDY_ROOT_FIND,
                PATIENT_ROOT_FIND,
                STUDY_ROOT_MOVE,
                PATIENT_ROOT_MOVE,
                STUDY_ROOT_GET,
                PATIENT_ROOT_GET,
            ],
            "Query/Retrieve",
        ) {
            return r;
        }
        if let Err(r) = self.find_offered(Check::FindMove) {
            return *r;
        }
        let stored = self.ensure_stored();
        let Some(first) = stored.first().cloned() else {
            return CheckResult::new(
                Check::FindMove,
                Verdict::Skipped,
                "nothing was stored successfully to find",
            );
        };
        let mut r = CheckResult::new(Check::FindMove, Verdict::Pass, "");
        let mut parts = Vec::new();
        // C-FIND
        match self
            .open_qr(&[STUDY_ROOT_FIND, PATIENT_ROOT_FIND], &[])
            .map_err(|e| e.to_string())
            .and_then(|mut l| {
                let out = self.find(&mut l, &Self::study_keys(&first.study_uid));
                self.finish(l);
                out
            }) {
            Ok((matches, ex)) => {
                let ours: Vec<&Dataset> = matches
                    .iter()
                    .filter(|d| {
                        d.text(tag::STUDY_INSTANCE_UID).as_deref() == Some(first.study_uid.as_str())
                    })
                    .collect();
                let pid_ok = ours
                    .iter()
                    .any(|d| d.text(tag::PATIENT_ID).as_deref() == Some(first.patient_id.as_str()));
                if ours.len() == 1 && pid_ok {
                    parts.push("C-FIND found the study".to_string());
                } else {
                    r.verdict = Verdict::Fail;
                    parts.push(format!(
                        "C-FIND returned {} matches for the stored study ({} in total)",
                        ours.len(),
                        matches.len()
                    ));
                }
                r.details.push(format!(
                    "C-FIND: {} matches in {:.1} ms",
                    matches.len(),
                    ex.latency_us as f64 / 1000.0
                ));
            }
            Err(e) => {
                r.verdict = Verdict::Fail;
                parts.push(format!("C-FIND failed: {e}{}", self.hint(&e)));
            }
        }
        let expect: Vec<String> = stored
            .iter()
            .filter(|s| s.study_uid == first.study_uid)
            .map(|s| s.object.sop_instance_uid.clone())
            .collect();
        // C-MOVE
        if self.listener.is_some() {
            match self.move_study(&first.study_uid, &expect) {
                Ok((status, sub, got)) => {
                    let all = expect.iter().all(|u| got.contains(u));
                    r.details.push(format!(
                        "C-MOVE to {}: {} ({sub})",
                        self.cfg.move_ae,
                        status_text(status, field::C_MOVE_RSP)
                    ));
                    if let Some(l) = &self.listener {
                        r.details.extend(l.transport_report(&expect));
                    }
                    if status == 0 && all {
                        parts.push("C-MOVE delivered it".into());
                    } else {
                        r.verdict = Verdict::Fail;
                        parts.push(format!(
                            "C-MOVE {}",
                            if all {
                                "status not Success"
                            } else {
                                "did not deliver the stored instance"
                            }
                        ));
                        if let Some(l) = &self.listener
                            && let Some(f) = l.handshake_failures().last()
                        {
                            parts.push(format!("the move destination's listener: {}", f.reason));
                        }
                    }
                }
                Err(e) => {
                    r.verdict = Verdict::Fail;
                    parts.push(format!("C-MOVE failed: {e}{}", self.hint(&e)));
                }
            }
        } else {
            r.details.push(
                "C-MOVE not tried: give --listen (and register --move-ae at the device)".into(),
            );
        }
        // C-GET: the storage SCP role for every (SOP class, syntax) stored in the study.
        let mut storage: Vec<(String, String)> = Vec::new();
        for s in stored.iter().filter(|s| s.study_uid == first.study_uid) {
            for ts in crate::peers::iods::TRANSFER_SYNTAXES {
                let pair = (s.object.sop_class_uid.clone(), ts.to_string());
                if !storage.contains(&pair) {
                    storage.push(pair);
                }
            }
        }
        match self.get_study(&first.study_uid, &storage) {
            Ok((status, stores)) => {
                let got: Vec<String> = stores
                    .iter()
                    .filter_map(|m| m.command.affected_sop_instance.clone())
                    .collect();
                let all = expect.iter().all(|u| got.contains(u));
                r.details.push(format!(
                    "C-GET: {} with {} C-STORE sub-operations",
                    status_text(status, field::C_GET_RSP),
                    stores.len()
                ));
                if status == 0 && all {
                    parts.push("C-GET returned it".into());
                } else {
                    r.verdict = Verdict::Fail;
                    parts.push("C-GET did not return the stored instance".into());
                }
            }
            Err(e) if e.contains("not accepted") => {
                parts.push("C-GET not offered".into());
                if self
                    .cfg
                    .ae()
                    .is_some_and(|a| has_scp_claim(a, STUDY_ROOT_GET))
                    && r.verdict == Verdict::Pass
                {
                    r.verdict = Verdict::DiffersFromStatement;
                    r.details
                        .push("the statement claims Study Root GET SCP".into());
                }
            }
            Err(e) => {
                r.verdict = Verdict::Fail;
                parts.push(format!("C-GET failed: {e}{}", self.hint(&e)));
            }
        }
        r.summary = parts.join("; ");
        r
    }
}
