//! `commitment`: Storage Commitment after the stores. Separate because it is the one
//! check that waits for the device to call back (same association or the listener) and
//! compares the report with what C-STORE answered (silent Success).

use super::*;

impl State<'_> {
    pub(super) fn commitment(&mut self) -> CheckResult {
        if let Some(r) = self.not_offered(
            Check::Commitment,
            &[STORAGE_COMMITMENT],
            "Storage Commitment Push Model",
        ) {
            return r;
        }
        let stored = self.ensure_stored();
        if stored.is_empty() {
            let why = self
                .store_result
                .as_ref()
                .map(|r| format!(" (store: {})", r.summary))
                .unwrap_or_default();
            return CheckResult::new(
                Check::Commitment,
                Verdict::Skipped,
                format!("nothing was stored successfully to commit{why}"),
            );
        }
        self.cfg.progress(&format!(
            "commitment: asking to commit {} instances; waiting up to {:.0} s for the report",
            stored.len(),
            self.cfg.commit_wait.as_secs_f64()
        ));
        let rq = self
            .builder()
            .context(Proposal::new(STORAGE_COMMITMENT, &[IMPLICIT_LE]));
        let mut link = match self.open(&rq) {
            Ok(l) => l,
            Err(e) => {
                return CheckResult::new(
                    Check::Commitment,
                    Verdict::Fail,
                    format!("association: {e}"),
                );
            }
        };
        let claimed = self
            .cfg
            .ae()
            .is_some_and(|a| has_scp_claim(a, STORAGE_COMMITMENT));
        let Some((pc, _)) = link.context_for(STORAGE_COMMITMENT, None) else {
            link.abort();
            let v = if claimed {
                Verdict::DiffersFromStatement
            } else {
                Verdict::Skipped
            };
            return CheckResult::new(
                Check::Commitment,
                v,
                "Storage Commitment Push Model not accepted",
            );
        };
        let transaction = crate::peers::study::new_uid();
        let mut ds = Dataset::new();
        let items = stored
            .iter()
            .map(|s| {
                let mut it = Dataset::new();
                it.put_str(
                    tag::REFERENCED_SOP_CLASS_UID,
                    "UI",
                    s.object.sop_class_uid.as_bytes(),
                )
                .put_str(
                    tag::REFERENCED_SOP_INSTANCE_UID,
                    "UI",
                    s.object.sop_instance_uid.as_bytes(),
                );
                it
            })
            .collect();
        ds.put_str(tag::TRANSACTION_UID, "UI", transaction.as_bytes())
            .put_seq(tag::REFERENCED_SOP_SEQUENCE, items);
        let id = link.next_message_id();
        let mut cmd = Command::new(field::N_ACTION_RQ);
        cmd.message_id = Some(id);
        cmd.requested_sop_class = Some(STORAGE_COMMITMENT.into());
        cmd.requested_sop_instance = Some(STORAGE_COMMITMENT_INSTANCE.into());
        cmd.action_type_id = Some(1);
        let asked = Instant::now();
        match link.request(pc, &cmd, Some(&ds.encode(false)), self.cfg.timeout) {
            Ok(ex) if ex.status() == Some(0) => {}
            Ok(ex) => {
                link.abort();
                return CheckResult::new(
                    Check::Commitment,
                    Verdict::Fail,
                    format!(
                        "N-ACTION answered {}",
                        status_or_none(ex.status(), field::N_ACTION_RSP)
                    ),
                );
            }
            Err(e) => {
                return CheckResult::new(
                    Check::Commitment,
                    Verdict::Fail,
                    format!("N-ACTION: {e}"),
                );
            }
        }
        // Wait for the report on this association, or on the listener.
        let deadline = Instant::now() + self.cfg.commit_wait;
        let mut report: Option<(Dataset, Option<u16>, ReportOn, Duration)> = None;
        // How the report's new association reached the listener.
        let mut report_transport: Option<String> = None;
        while report.is_none() && Instant::now() < deadline {
            let step = (Instant::now() + Duration::from_millis(200)).min(deadline);
            match link.next(step, "N-EVENT-REPORT") {
                Ok(Incoming::Message(m)) if m.command.command_field == field::N_EVENT_REPORT_RQ => {
                    let _ = link.answer_request(&m);
                    let ds = Dataset::decode(m.dataset.as_deref().unwrap_or_default(), false);
                    report = Some((
                        ds,
                        m.command.event_type_id,
                        ReportOn::SameAssociation,
                        asked.elapsed(),
                    ));
                }
                Ok(Incoming::Message(m)) if m.command.is_request() => {
                    let _ = link.answer_request(&m);
                }
                Ok(Incoming::Closed(_)) | Ok(Incoming::Abort(_)) | Ok(Incoming::ReleaseRq) => {
                    if self.listener.is_none() {
                        break;
                    }
                }
                Ok(_) | Err(LinkError::Timeout(..)) => {}
                Err(_) => {
                    if self.listener.is_none() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            if report.is_none()
                && let Some(l) = &self.listener
            {
                for r in l.received() {
                    if r.message.command.command_field != field::N_EVENT_REPORT_RQ {
                        continue;
                    }
                    let explicit = r.transfer_syntax == EXPLICIT_LE;
                    let ds =
                        Dataset::decode(r.message.dataset.as_deref().unwrap_or_default(), explicit);
                    if ds.text(tag::TRANSACTION_UID).as_deref() == Some(transaction.as_str()) {
                        report_transport = Some(match &r.tls {
                            Some(t) => format!(
                                "the report's association came over TLS ({} {})",
                                t.version, t.cipher_suite
                            ),
                            None => "the report's association came over plain TCP".into(),
                        });
                        report = Some((
                            ds,
                            r.message.command.event_type_id,
                            ReportOn::NewAssociation,
                            asked.elapsed(),
                        ));
                        break;
                    }
                }
            }
        }
        if !link.closed {
            self.finish(link);
        }
        let Some((ds, event_type, on, waited)) = report else {
            let mut r = CheckResult::new(
                Check::Commitment,
                Verdict::Fail,
                format!(
                    "no Storage Commitment N-EVENT-REPORT within {:.0} s",
                    self.cfg.commit_wait.as_secs_f64()
                ),
            );
            if self.listener.is_none() {
                r.details.push("only the same association was watched; give --listen to accept the report on a new association".into());
            }
            return r;
        };
        let committed: BTreeSet<String> = ds
            .items(tag::REFERENCED_SOP_SEQUENCE)
            .iter()
            .filter_map(|i| i.text(tag::REFERENCED_SOP_INSTANCE_UID))
            .collect();
        let failed: BTreeMap<String, Option<u16>> = ds
            .items(tag::FAILED_SOP_SEQUENCE)
            .iter()
            .filter_map(|i| {
                let reason = i
                    .raw(tag::FAILURE_REASON)
                    .and_then(|b| Some(u16::from_le_bytes([*b.first()?, *b.get(1)?])));
                Some((i.text(tag::REFERENCED_SOP_INSTANCE_UID)?, reason))
            })
            .collect();
        let mut r = CheckResult::new(Check::Commitment, Verdict::Pass, "");
        r.details.push(format!(
            "N-EVENT-REPORT (event type {}) on {} after {:.1} s: {} committed, {} failed",
            event_type.map(|e| e.to_string()).unwrap_or("?".into()),
            match on {
                ReportOn::SameAssociation => "the same association",
                ReportOn::NewAssociation => "a new association",
            },
            waited.as_secs_f64(),
            committed.len(),
            failed.len()
        ));
        r.details.extend(report_transport);
        if ds.text(tag::TRANSACTION_UID).as_deref() != Some(transaction.as_str()) {
            r.details
                .push("the report's Transaction UID is not the one asked for".into());
            r.verdict = Verdict::Fail;
        }
        let mut silent = 0;
        for s in &stored {
            let uid = &s.object.sop_instance_uid;
            if committed.contains(uid) {
                continue;
            }
            r.verdict = Verdict::Fail;
            match failed.get(uid) {
                Some(reason) => {
                    silent += 1;
                    r.details.push(format!(
                        "silent Success: {uid} was answered Success by C-STORE but reported failed (reason {})",
                        reason.map(|x| format!("{x:04X}")).unwrap_or("?".into())
                    ));
                }
                None => {
                    silent += 1;
                    r.details.push(format!(
                        "silent Success: {uid} was answered Success by C-STORE but is missing from the report"
                    ));
                }
            }
        }
        if let Some(sc) = self
            .cfg
            .ae()
            .and_then(|a| a.capability(STORAGE_COMMITMENT, Role::Scp))
            .and_then(|c| c.storage_commitment.as_ref())
        {
            if !sc.report_on.is_empty() && !sc.report_on.contains(&on) && r.verdict == Verdict::Pass
            {
                r.verdict = Verdict::DiffersFromStatement;
                r.details.push(format!(
                    "the statement says reports come on: {}",
                    sc.report_on
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(max) = sc.max_wait_s
                && waited.as_secs_f64() > max
                && r.verdict == Verdict::Pass
            {
                r.verdict = Verdict::DiffersFromStatement;
                r.details
                    .push(format!("the statement claims a report within {max} s"));
            }
        }
        r.summary = match r.verdict {
            Verdict::Pass => format!("all {} stored instances committed", stored.len()),
            _ if silent > 0 => format!(
                "{silent} of {} instances stored with Success were not committed (silent Success)",
                stored.len()
            ),
            _ => format!(
                "{} of {} stored instances committed",
                committed.len(),
                stored.len()
            ),
        };
        r
    }
}
