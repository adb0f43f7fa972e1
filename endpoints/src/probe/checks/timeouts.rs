//! `timeouts` (disruptive): how long the device waits before giving up on a silent
//! connection (ARTIM), an idle association, and a slow peer (DIMSE: a message sent in
//! parts that stops half-way, and, as the SCU of C-MOVE sub-operations, a C-STORE-RSP
//! that does not come), each measured and set against the statement's `timeouts_s`.
//! Every wait is capped by `timeouts_max`, so the check always ends.

use super::*;

/// One measurement: `Ok(Some((seconds, what the device did)))`, `Ok(None)` when the
/// device still waited at the cap, `Err` when the measurement itself failed.
type Measured = Result<Option<(f64, String)>, String>;

/// A row of the check: a measurement, or why it could not be made (not an error).
enum Outcome {
    Measured(Measured),
    NotApplicable(String),
}

/// Waits until the device releases, aborts or closes `link` (answering a release),
/// at most until `t + cap`.
fn wait_for_give_up(link: &mut Link, t: Instant, cap: Duration) -> Measured {
    loop {
        match link.next(t + cap, "release or close") {
            Ok(Incoming::ReleaseRq) => {
                let _ = link.send_raw(&dicomtap_wire::encode::RELEASE_RP);
                return Ok(Some((t.elapsed().as_secs_f64(), "A-RELEASE-RQ".into())));
            }
            Ok(i @ (Incoming::Abort(_) | Incoming::Closed(_))) => {
                return Ok(Some((t.elapsed().as_secs_f64(), i.describe())));
            }
            Ok(Incoming::Message(m)) if m.command.is_response() => {
                // A response to a message we never finished: note it, keep waiting for
                // the end of the association.
                let status = m
                    .command
                    .status
                    .as_ref()
                    .map(|s| status_text(s.value, m.command.command_field))
                    .unwrap_or_else(|| "no status".into());
                return Ok(Some((
                    t.elapsed().as_secs_f64(),
                    format!("{} {status}", m.command.command),
                )));
            }
            Ok(_) => {}
            Err(LinkError::Timeout(..)) => {
                link.abort();
                return Ok(None);
            }
            Err(e) => return Ok(Some((t.elapsed().as_secs_f64(), e.to_string()))),
        }
    }
}

impl State<'_> {
    pub(super) fn timeouts(&mut self) -> CheckResult {
        let cap = self.cfg.timeouts_max;
        // One measurement at a time: a device serving one connection at a time would
        // otherwise hold the second one back while the first waits.
        let secs = cap.as_secs_f64();
        self.cfg.progress(&format!(
            "timeouts 1/4: ARTIM, connected without A-ASSOCIATE-RQ, waiting up to {secs:.0} s for the device to close"
        ));
        let artim: Measured = (|| {
            let mut link = self.connect().map_err(|e| e.to_string())?;
            let t = Instant::now();
            match link.next(t + cap, "close") {
                Ok(i) => Ok(Some((t.elapsed().as_secs_f64(), i.describe()))),
                Err(LinkError::Timeout(..)) => {
                    link.shutdown_write();
                    Ok(None)
                }
                Err(e) => Ok(Some((t.elapsed().as_secs_f64(), e.to_string()))),
            }
        })();
        self.cfg.progress(&format!(
            "timeouts 2/4: idle association, waiting up to {secs:.0} s for the device to release or abort"
        ));
        let idle: Measured = (|| {
            let rq = self
                .builder()
                .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]));
            let mut link = self.open(&rq).map_err(|e| e.to_string())?;
            wait_for_give_up(&mut link, Instant::now(), cap)
        })();
        self.cfg.progress(&format!(
            "timeouts 3/4: half a C-STORE-RQ sent, waiting up to {secs:.0} s for the device to give up"
        ));
        let partial = self.slow_request(cap);
        self.cfg.progress(&format!(
            "timeouts 4/4: C-MOVE sub-operation held back, waiting up to {secs:.0} s for the device to give up"
        ));
        let sub_op = self.slow_store_response(cap);

        let claims = self.cfg.ae().map(|a| a.timeouts_s).unwrap_or_default();
        let mut r = CheckResult::new(Check::Timeouts, Verdict::Pass, "");
        let mut table = Table {
            headers: vec![
                "timer".into(),
                "measured".into(),
                "peer did".into(),
                "statement".into(),
                "result".into(),
            ],
            rows: Vec::new(),
        };
        let mut summary = Vec::new();
        let rows = [
            (
                "ARTIM (no A-ASSOCIATE-RQ)",
                Outcome::Measured(artim),
                claims.artim,
                "artim",
            ),
            (
                "idle association",
                Outcome::Measured(idle),
                claims.idle,
                "idle",
            ),
            (
                "DIMSE: rest of a message sent in parts",
                partial,
                claims.dimse,
                "dimse",
            ),
            (
                "DIMSE: C-STORE-RSP of a C-MOVE sub-operation",
                sub_op,
                claims.dimse,
                "dimse",
            ),
        ];
        for (name, outcome, claim, key) in rows {
            let m = match outcome {
                Outcome::Measured(m) => m,
                Outcome::NotApplicable(why) => {
                    table.rows.push(vec![
                        name.to_string(),
                        "-".into(),
                        why,
                        claim
                            .map(|c| format!("{key} = {c} s"))
                            .unwrap_or("-".into()),
                        "not measured".into(),
                    ]);
                    continue;
                }
            };
            let (measured, did, secs) = match &m {
                Ok(Some((s, d))) => (format!("{s:.1} s"), d.clone(), Some(*s)),
                Ok(None) => (
                    format!("> {:.0} s", cap.as_secs_f64()),
                    "still waiting".into(),
                    None,
                ),
                Err(e) => {
                    r.verdict = Verdict::Fail;
                    ("-".into(), format!("error: {e}"), None)
                }
            };
            let result = match (claim, secs, &m) {
                (_, _, Err(_)) => "error".to_string(),
                (Some(c), Some(s), _) if (s - c).abs() > (c * 0.1).max(1.5) => {
                    if r.verdict == Verdict::Pass {
                        r.verdict = Verdict::DiffersFromStatement;
                    }
                    format!(
                        "DIFFERS ({} than claimed)",
                        if s < c { "shorter" } else { "longer" }
                    )
                }
                (Some(c), None, Ok(None)) if c < cap.as_secs_f64() => {
                    if r.verdict == Verdict::Pass {
                        r.verdict = Verdict::DiffersFromStatement;
                    }
                    "DIFFERS (no timeout seen)".to_string()
                }
                (Some(_), _, _) => "as claimed".to_string(),
                (None, _, _) => "-".to_string(),
            };
            summary.push(format!("{name}: {measured}"));
            table.rows.push(vec![
                name.to_string(),
                measured,
                did,
                claim
                    .map(|c| format!("{key} = {c} s"))
                    .unwrap_or("-".into()),
                result,
            ]);
        }
        r.summary = summary.join("; ");
        r.details.push(format!(
            "each wait capped at {:.0} s (--timeouts-max); a measurement differs from the statement when more than 10 % (at least 1.5 s) away from the claim",
            cap.as_secs_f64()
        ));
        r.table = Some(table);
        r
    }

    /// A C-STORE-RQ whose data set stops half-way: how long until the device gives up.
    fn slow_request(&self, cap: Duration) -> Outcome {
        let obj = dataset::generate(&ObjectSpec {
            patient_name: format!("{}^SLOW", self.token),
            patient_id: format!("{}W", self.token),
            study_uid: crate::peers::study::new_uid(),
            study_date: today(),
            transfer_syntax: IMPLICIT_LE.to_string(),
        });
        let rq = self
            .builder()
            .context(Proposal::new(&obj.sop_class_uid, &[IMPLICIT_LE]))
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]));
        let mut link = match self.open(&rq) {
            Ok(l) => l,
            Err(e) => return Outcome::Measured(Err(e.to_string())),
        };
        let (pc, what) = match link.context_for(&obj.sop_class_uid, None) {
            Some((pc, _)) => (pc, "store"),
            None => match link.context_for(VERIFICATION, None) {
                Some((pc, _)) => (pc, "echo"),
                None => {
                    link.abort();
                    return Outcome::NotApplicable(
                        "neither Secondary Capture storage nor Verification accepted".into(),
                    );
                }
            },
        };
        let id = link.next_message_id();
        let sent = if what == "store" {
            let mut cmd = request(field::C_STORE_RQ, id, &obj.sop_class_uid);
            cmd.affected_sop_instance = Some(obj.sop_instance_uid.clone());
            cmd.has_dataset = true;
            let bytes = dicomtap_wire::dimse::encode_command(&cmd);
            let half = obj.dataset.get(..obj.dataset.len() / 2).unwrap_or_default();
            link.send_fragments(pc, true, &bytes)
                .and_then(|()| link.send_pdv(pc, false, false, half))
        } else {
            // Only the first half of the command set, in a non-last fragment.
            let bytes =
                dicomtap_wire::dimse::encode_command(&request(field::C_ECHO_RQ, id, VERIFICATION));
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            link.send_pdv(pc, true, false, half)
        };
        if let Err(e) = sent {
            return Outcome::Measured(Err(e.to_string()));
        }
        Outcome::Measured(wait_for_give_up(&mut link, Instant::now(), cap))
    }

    /// C-MOVE of the stored study to the probe's listener, which holds its C-STORE-RSP
    /// back: how long the device (the sub-operations' SCU) waits for it.
    fn slow_store_response(&mut self, cap: Duration) -> Outcome {
        if self.listener.is_none() {
            return Outcome::NotApplicable("needs --listen (the probe's move destination)".into());
        }
        if !self.cfg.allow_writes {
            return Outcome::NotApplicable(
                "needs --allow-writes (moves a study the probe stores)".into(),
            );
        }
        // A study of one instance of its own: one sub-operation to hold back.
        let (name, id) = (
            format!("{}^SLOWMOVE", self.token),
            format!("{}V", self.token),
        );
        let study = crate::peers::study::new_uid();
        let obj = dataset::generate(&ObjectSpec {
            patient_name: name.clone(),
            patient_id: id.clone(),
            study_uid: study.clone(),
            study_date: today(),
            transfer_syntax: self.cfg.store_transfer_syntax.clone(),
        });
        match self.store_objects(std::slice::from_ref(&obj)) {
            Ok(st)
                if st
                    .first()
                    .copied()
                    .flatten()
                    .is_some_and(|s| StatusClass::of(s) != StatusClass::Failure) =>
            {
                self.note_written(Check::Timeouts, &study, &id, &name);
            }
            Ok(_) => {
                return Outcome::NotApplicable(
                    "the Secondary Capture object to move was not stored".into(),
                );
            }
            Err(e) => return Outcome::NotApplicable(format!("storing the object to move: {e}")),
        }
        let mut link = match self.open_qr(&[STUDY_ROOT_MOVE], &[]) {
            Ok(l) => l,
            Err(e) => return Outcome::NotApplicable(format!("no C-MOVE: {e}")),
        };
        let Some((pc, ts)) = link.context_for(STUDY_ROOT_MOVE, None) else {
            link.abort();
            return Outcome::NotApplicable("Study Root MOVE not accepted".into());
        };
        let Some(listener) = self.listener.as_ref() else {
            return Outcome::NotApplicable("needs --listen".into());
        };
        let before = listener.held().len();
        listener.hold_store_responses(Some(cap));
        let mut keys = Dataset::new();
        keys.put_str(tag::QUERY_RETRIEVE_LEVEL, "CS", b"STUDY")
            .put_str(tag::STUDY_INSTANCE_UID, "UI", study.as_bytes());
        let id = link.next_message_id();
        let mut cmd = request(field::C_MOVE_RQ, id, STUDY_ROOT_MOVE);
        cmd.move_destination = Some(self.cfg.move_ae.clone());
        let ex = link.request(
            pc,
            &cmd,
            Some(&keys.encode(ts == EXPLICIT_LE)),
            cap + self.cfg.timeout * 2,
        );
        // The hold ends before anything else can block on the listener.
        listener.hold_store_responses(None);
        let move_end = match &ex {
            Ok(ex) => ex
                .status()
                .map(|s| format!("C-MOVE {}", status_text(s, field::C_MOVE_RSP)))
                .unwrap_or_else(|| "C-MOVE-RSP without status".into()),
            Err(e) => format!("C-MOVE: {e}"),
        };
        if ex.is_ok() {
            self.finish(link);
        } else {
            link.abort();
        }
        // The listener notes the device's reaction on its own thread: give it a moment.
        let until = Instant::now() + Duration::from_secs(2);
        while listener.held().len() <= before && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let held = listener.held();
        let Some(h) = held.get(before) else {
            return Outcome::Measured(Err(format!(
                "no C-STORE sub-operation arrived at the listener ({move_end})"
            )));
        };
        Outcome::Measured(Ok(h.gave_up.as_ref().map(|g| {
            (
                h.waited.as_secs_f64(),
                format!("{g} on the sub-association; {move_end}"),
            )
        })))
    }
}
