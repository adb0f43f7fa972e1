//! `max-pdu`: what maximum PDU length the device advertises, whether it takes PDUs of
//! exactly that length, and how large the PDUs are that it sends when allowed anything.

use super::*;

impl State<'_> {
    pub(super) fn max_pdu(&mut self) -> CheckResult {
        const HUGE: u32 = u32::MAX;
        let mut rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]))
            .context(Proposal::new(STUDY_ROOT_FIND, &[EXPLICIT_LE, IMPLICIT_LE]))
            .context(Proposal::new(CT_IMAGE_STORAGE, &[EXPLICIT_LE]))
            .context(Proposal::new(STUDY_ROOT_GET, &[EXPLICIT_LE, IMPLICIT_LE]));
        // SCP role for CT, so the C-GET below makes the device send the object back.
        rq.scp_roles.push(CT_IMAGE_STORAGE.to_string());
        rq.max_length = HUGE;
        let mut link = match self.connect() {
            Ok(l) => l,
            Err(e) => return CheckResult::new(Check::MaxPdu, Verdict::Fail, e.to_string()),
        };
        let ac = match link.associate(&rq, self.cfg.timeout) {
            Ok(ac) => ac,
            Err(e) => {
                return CheckResult::new(
                    Check::MaxPdu,
                    Verdict::Fail,
                    format!("association refused when we advertised a max length of {HUGE}: {e}"),
                );
            }
        };
        let mut r = CheckResult::new(Check::MaxPdu, Verdict::Pass, "");
        if let Some((pc, _)) = link.context_for(VERIFICATION, None) {
            let id = link.next_message_id();
            match link.request(
                pc,
                &request(field::C_ECHO_RQ, id, VERIFICATION),
                None,
                self.cfg.timeout,
            ) {
                Ok(ex) if ex.status() == Some(0) => r
                    .details
                    .push("C-ECHO with our huge max length: Success".into()),
                Ok(ex) => {
                    r.verdict = Verdict::Fail;
                    r.details.push(format!(
                        "C-ECHO answered {}",
                        status_or_none(ex.status(), field::C_ECHO_RSP)
                    ));
                }
                Err(e) => {
                    r.verdict = Verdict::Fail;
                    r.details
                        .push(format!("C-ECHO after advertising {HUGE}: {e}"));
                }
            }
        }
        let stored = self
            .stored
            .iter()
            .find(|s| s.success())
            .map(|s| s.study_uid.clone());
        if let (Some(study), Some(_)) = (stored, link.context_for(STUDY_ROOT_FIND, None)) {
            let _ = self.find(&mut link, &Self::study_keys(&study));
        }
        // A C-STORE large enough to be cut into PDUs of exactly the device's max length.
        let advertised_max = ac.user_info.max_length.unwrap_or(0);
        if !self.cfg.allow_writes {
            r.details.push(
                "C-STORE in PDUs of the device's own max length not tried: it writes to the device (--allow-writes)"
                    .into(),
            );
        }
        if !link.closed
            && self.cfg.allow_writes
            && (1..=(1 << 20)).contains(&advertised_max)
            && let Some((pc, _)) = link.context_for(CT_IMAGE_STORAGE, Some(EXPLICIT_LE))
        {
            let side = if advertised_max > 60_000 { 512 } else { 256 };
            let opts = crate::peers::study::StudyOptions {
                patient_name: format!("{}^MAXPDU", self.token),
                patient_id: format!("{}M", self.token),
                ct_slices: 1,
                size: side,
            };
            if let Some((study_uid, obj)) =
                crate::peers::study::generate(&opts).ok().and_then(|st| {
                    let uid = st.study_instance_uid.clone();
                    let marks = self.marks(&opts.patient_name, &opts.patient_id, &uid);
                    st.objects
                        .into_iter()
                        .find(|o| o.sop_class_uid == CT_IMAGE_STORAGE)
                        .and_then(|o| crate::peers::iods::mark(&o, &marks).ok())
                        .map(|o| (uid, o))
                })
            {
                let id = link.next_message_id();
                let mut cmd = request(field::C_STORE_RQ, id, CT_IMAGE_STORAGE);
                cmd.affected_sop_instance = Some(obj.sop_instance_uid.clone());
                match link.request(pc, &cmd, Some(&obj.dataset), self.cfg.timeout) {
                    Ok(ex)
                        if ex
                            .status()
                            .is_some_and(|s| StatusClass::of(s) != StatusClass::Failure) =>
                    {
                        self.note_written(
                            Check::MaxPdu,
                            &study_uid,
                            &opts.patient_id,
                            &opts.patient_name,
                        );
                        r.details.push(format!(
                            "C-STORE of {} bytes in P-DATA-TF PDUs of exactly {advertised_max} bytes (its max length): {}",
                            obj.dataset.len(),
                            status_text(ex.status().unwrap_or(0), field::C_STORE_RSP)
                        ));
                    }
                    Ok(ex) => {
                        r.verdict = Verdict::Fail;
                        r.details.push(format!(
                            "C-STORE in PDUs of its own max length {advertised_max} answered {}",
                            status_or_none(ex.status(), field::C_STORE_RSP)
                        ));
                    }
                    Err(e) => {
                        r.verdict = Verdict::Fail;
                        r.details.push(format!(
                            "C-STORE in PDUs of its own max length {advertised_max}: {e}"
                        ));
                    }
                }
                // What the device sends: C-GET the object back (the device's own PDU size,
                // as we advertised a huge maximum).
                if !link.closed
                    && let Some((gpc, gts)) = link.context_for(STUDY_ROOT_GET, None)
                {
                    let mut keys = Dataset::new();
                    keys.put_str(tag::QUERY_RETRIEVE_LEVEL, "CS", b"STUDY")
                        .put_str(tag::STUDY_INSTANCE_UID, "UI", study_uid.as_bytes());
                    let id = link.next_message_id();
                    match link.request(
                        gpc,
                        &request(field::C_GET_RQ, id, STUDY_ROOT_GET),
                        Some(&keys.encode(gts == EXPLICIT_LE)),
                        self.cfg.timeout,
                    ) {
                        Ok(ex) => r.details.push(format!(
                            "C-GET of it back: {} C-STORE sub-operations, final status {}",
                            ex.peer_requests.len(),
                            ex.status()
                                .map(|s| format!("{s:04X}"))
                                .unwrap_or("none".into())
                        )),
                        Err(e) => r.details.push(format!("C-GET of it back: {e}")),
                    }
                }
            }
        }
        let largest = link.peer_largest_pdu;
        if !link.closed {
            self.finish(link);
        }
        let advertised = ac.user_info.max_length;
        r.summary = format!(
            "device advertises max length {}; largest P-DATA-TF it sent: {largest} bytes",
            advertised
                .map(|m| if m == 0 {
                    "0 (unlimited)".to_string()
                } else {
                    m.to_string()
                })
                .unwrap_or("none".into())
        );
        if let Some(ae) = self.cfg.ae() {
            if let Some(claim) = ae.max_pdu_receive
                && advertised != Some(claim)
            {
                r.details
                    .push(format!("the statement claims max_pdu_receive = {claim}"));
                if r.verdict == Verdict::Pass {
                    r.verdict = Verdict::DiffersFromStatement;
                }
            }
            if let Some(claim) = ae.max_pdu_send
                && claim != 0
                && largest > claim
            {
                r.details
                    .push(format!("the statement claims max_pdu_send = {claim}"));
                if r.verdict == Verdict::Pass {
                    r.verdict = Verdict::DiffersFromStatement;
                }
            }
        }
        if r.verdict == Verdict::Fail {
            r.summary = format!("trouble with a huge max length; {}", r.summary);
        }
        r
    }
}
