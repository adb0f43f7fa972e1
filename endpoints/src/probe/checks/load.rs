//! `load` (disruptive): N associations opened at the same moment and held together, each
//! doing a C-ECHO (and a C-STORE of the probe's small object when storage is claimed).
//! Kept apart because it is the one check that runs many associations at once: it shows
//! whether the device takes the number of simultaneous associations its statement
//! claims, and whether it refuses the ones beyond with a proper A-ASSOCIATE-RJ
//! (local-limit-exceeded, PS3.8 9.3.4) rather than a hang, an abort or a close.

use std::sync::Barrier;

use super::*;
use crate::probe::link::TlsClient;

/// What one of the simultaneous associations met.
#[derive(Debug, Clone)]
enum Outcome {
    /// Accepted; latencies (µs) of association setup, C-ECHO, C-STORE; and a failure of
    /// an operation on it, if any.
    Accepted {
        setup_us: u64,
        echo_us: Option<u64>,
        store_us: Option<u64>,
        error: Option<String>,
    },
    /// A-ASSOCIATE-RJ with its description.
    Rejected(String),
    /// Anything worse: abort, close, no answer, connection refused.
    Worse(String),
}

/// What every thread needs (no reference to the non-`Sync` [`State`]).
struct Plan<'c> {
    target: std::net::SocketAddr,
    timeout: Duration,
    tls: Option<&'c TlsClient>,
    rq: AssociateRqBuilder,
    /// One object per association (distinct instances: stores of one instance at the
    /// same moment would measure the archive's locking, not its load).
    objects: Vec<EncodedObject>,
    /// The statement claims the object's storage: a refused context is an error.
    store_claimed: bool,
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

fn ms(us: Option<u64>) -> String {
    us.map(|u| format!("{:.1} ms", u as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// One association of the load: associate, wait for the others, operate, wait, release.
fn one(
    plan: &Plan<'_>,
    object: Option<&EncodedObject>,
    all_tried: &Barrier,
    all_done: &Barrier,
) -> Outcome {
    let t = Instant::now();
    let link = Link::connect_with(plan.target, plan.timeout, plan.tls).and_then(|mut l| {
        l.associate(&plan.rq, plan.timeout)?;
        Ok(l)
    });
    let setup_us = t.elapsed().as_micros() as u64;
    all_tried.wait();
    let mut link = match link {
        Ok(l) => l,
        Err(e) => {
            all_done.wait();
            return match e {
                LinkError::Rejected(d) => Outcome::Rejected(d),
                LinkError::Timeout(..) => Outcome::Worse(format!(
                    "no A-ASSOCIATE answer within {:.0} s",
                    plan.timeout.as_secs_f64()
                )),
                other => Outcome::Worse(other.to_string()),
            };
        }
    };
    let mut error = None;
    let mut echo_us = None;
    match link.context_for(VERIFICATION, None) {
        Some((pc, _)) => {
            let id = link.next_message_id();
            match link.request(
                pc,
                &request(field::C_ECHO_RQ, id, VERIFICATION),
                None,
                plan.timeout,
            ) {
                Ok(ex) if ex.status() == Some(0) => echo_us = Some(ex.latency_us),
                Ok(ex) => {
                    error = Some(format!(
                        "C-ECHO {}",
                        status_or_none(ex.status(), field::C_ECHO_RSP)
                    ))
                }
                Err(e) => error = Some(format!("C-ECHO: {e}")),
            }
        }
        None => error = Some("Verification context rejected".into()),
    }
    let mut store_us = None;
    if let (None, Some(o)) = (&error, object) {
        match link.context_for(&o.sop_class_uid, Some(&o.transfer_syntax)) {
            Some((pc, _)) => {
                let id = link.next_message_id();
                let mut cmd = request(field::C_STORE_RQ, id, &o.sop_class_uid);
                cmd.affected_sop_instance = Some(o.sop_instance_uid.clone());
                match link.request(pc, &cmd, Some(&o.dataset), plan.timeout) {
                    Ok(ex)
                        if ex.status().is_some_and(|s| {
                            matches!(
                                StatusClass::of(s),
                                StatusClass::Success | StatusClass::Warning
                            )
                        }) =>
                    {
                        store_us = Some(ex.latency_us)
                    }
                    Ok(ex) => {
                        error = Some(format!(
                            "C-STORE {}",
                            status_or_none(ex.status(), field::C_STORE_RSP)
                        ))
                    }
                    Err(e) => error = Some(format!("C-STORE: {e}")),
                }
            }
            None if plan.store_claimed => error = Some("storage context rejected".into()),
            None => {}
        }
    }
    all_done.wait();
    let _ = link.release(plan.timeout);
    Outcome::Accepted {
        setup_us,
        echo_us,
        store_us,
        error,
    }
}

impl State<'_> {
    pub(super) fn load(&mut self) -> CheckResult {
        let claimed = self.cfg.ae().and_then(|a| a.max_associations.acceptor);
        let n = self
            .cfg
            .load_associations
            .unwrap_or_else(|| claimed.map(|c| c.saturating_add(1)).unwrap_or(10))
            .clamp(1, 1000) as usize;
        // Storage when the statement claims the probe's object class (or, without a
        // statement, when the device accepts it).
        let store_claimed = self
            .cfg
            .ae()
            .is_some_and(|ae| has_scp_claim(ae, dataset::SECONDARY_CAPTURE));
        let store = (store_claimed || self.cfg.ae().is_none()) && self.cfg.allow_writes;
        let ts = self.cfg.store_transfer_syntax.clone();
        let mut rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE, EXPLICIT_LE]));
        let mut objects = Vec::new();
        let mut load_study = None;
        if store {
            rq.contexts
                .push(Proposal::new(dataset::SECONDARY_CAPTURE, &[ts.as_str()]));
            let study_uid = crate::peers::study::new_uid();
            load_study = Some(study_uid.clone());
            objects = (0..n)
                .map(|_| {
                    dataset::generate(&ObjectSpec {
                        patient_name: format!("{}^LOAD", self.token),
                        patient_id: format!("{}L", self.token),
                        study_uid: study_uid.clone(),
                        study_date: today(),
                        transfer_syntax: ts.clone(),
                    })
                })
                .collect();
        }
        let plan = Plan {
            target: self.cfg.target,
            timeout: self.cfg.timeout,
            tls: self.cfg.tls.as_ref(),
            rq,
            objects,
            store_claimed,
        };
        self.cfg.progress(&format!(
            "load: {n} simultaneous associations (each answer waited for up to {:.0} s)",
            self.cfg.timeout.as_secs_f64()
        ));
        let (all_tried, all_done) = (Barrier::new(n), Barrier::new(n));
        let started = Instant::now();
        let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (plan, tried, done) = (&plan, &all_tried, &all_done);
                    scope.spawn(move || one(plan, plan.objects.get(i), tried, done))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Outcome::Worse("probe thread panicked".into()))
                })
                .collect()
        });
        let elapsed = started.elapsed();
        if let Some(study) = &load_study {
            let name = format!("{}^LOAD", self.token);
            let id = format!("{}L", self.token);
            for o in &outcomes {
                if let Outcome::Accepted {
                    store_us: Some(_), ..
                } = o
                {
                    self.note_written(Check::Load, study, &id, &name);
                }
            }
        }
        let mut r = self.load_result(n, claimed, store, outcomes, elapsed);
        if !self.cfg.allow_writes {
            r.details
                .push("C-STORE left out: it writes to the device (--allow-writes)".into());
        }
        r
    }

    fn load_result(
        &self,
        n: usize,
        claimed: Option<u32>,
        store: bool,
        outcomes: Vec<Outcome>,
        elapsed: Duration,
    ) -> CheckResult {
        let mut setup = Vec::new();
        let mut echo = Vec::new();
        let mut stored = Vec::new();
        let mut accepted = 0usize;
        let mut op_errors = Vec::new();
        let mut rejects: BTreeMap<String, usize> = BTreeMap::new();
        let mut worse: BTreeMap<String, usize> = BTreeMap::new();
        for o in &outcomes {
            match o {
                Outcome::Accepted {
                    setup_us,
                    echo_us,
                    store_us,
                    error,
                } => {
                    accepted += 1;
                    setup.push(*setup_us);
                    echo.extend(*echo_us);
                    stored.extend(*store_us);
                    if let Some(e) = error {
                        op_errors.push(e.clone());
                    }
                }
                Outcome::Rejected(d) => *rejects.entry(d.clone()).or_default() += 1,
                Outcome::Worse(d) => *worse.entry(d.clone()).or_default() += 1,
            }
        }
        for v in [&mut setup, &mut echo, &mut stored] {
            v.sort_unstable();
        }
        let rejected: usize = rejects.values().sum();
        let worse_n: usize = worse.values().sum();
        let mut table = Table {
            headers: vec!["outcome".into(), "associations".into(), "detail".into()],
            rows: vec![vec![
                "accepted".into(),
                accepted.to_string(),
                format!(
                    "setup p50 {} p99 {}",
                    ms(quantile(&setup, 0.5)),
                    ms(quantile(&setup, 0.99))
                ),
            ]],
        };
        table.rows.push(vec![
            "C-ECHO Success".into(),
            echo.len().to_string(),
            format!(
                "p50 {} p99 {}",
                ms(quantile(&echo, 0.5)),
                ms(quantile(&echo, 0.99))
            ),
        ]);
        if store {
            table.rows.push(vec![
                "C-STORE Success".into(),
                stored.len().to_string(),
                format!(
                    "p50 {} p99 {}",
                    ms(quantile(&stored, 0.5)),
                    ms(quantile(&stored, 0.99))
                ),
            ]);
        }
        for (d, c) in &rejects {
            table
                .rows
                .push(vec!["rejected".into(), c.to_string(), d.clone()]);
        }
        for (d, c) in &worse {
            table
                .rows
                .push(vec!["WORSE than a reject".into(), c.to_string(), d.clone()]);
        }
        let mut verdict = Verdict::Pass;
        let mut details = vec![format!(
            "{n} associations opened together and held until all had tried ({:.1} s in all){}",
            elapsed.as_secs_f64(),
            claimed
                .map(|c| format!("; the statement claims {c} simultaneous associations"))
                .unwrap_or_default()
        )];
        let proper = |d: &str| d.contains("local-limit-exceeded");
        let improper_rejects: usize = rejects
            .iter()
            .filter(|(d, _)| !proper(d))
            .map(|(_, c)| *c)
            .sum();
        if accepted == 0 {
            verdict = Verdict::Fail;
            details.push("no association was accepted".into());
        }
        if !op_errors.is_empty() {
            verdict = Verdict::Fail;
            details.push(format!(
                "{} accepted associations failed an operation: {}",
                op_errors.len(),
                op_errors.join("; ")
            ));
        }
        let mut differs = Vec::new();
        if let Some(c) = claimed {
            let expected = (c as usize).min(n);
            if accepted < expected {
                differs.push(format!(
                    "accepted {accepted} simultaneous associations, the statement claims {c}"
                ));
            }
        }
        if worse_n > 0 {
            differs.push(format!(
                "{worse_n} associations met something worse than an A-ASSOCIATE-RJ (local-limit-exceeded expected beyond the limit)"
            ));
        }
        if improper_rejects > 0 {
            differs.push(format!(
                "{improper_rejects} rejects give another reason than local-limit-exceeded"
            ));
        }
        if !differs.is_empty() && verdict == Verdict::Pass {
            verdict = if claimed.is_some() || self.cfg.ae().is_some() {
                Verdict::DiffersFromStatement
            } else {
                Verdict::Fail
            };
        }
        details.extend(differs);
        let mut r = CheckResult::new(
            Check::Load,
            verdict,
            format!(
                "{n} simultaneous associations: {accepted} accepted, {rejected} rejected, {worse_n} worse; C-ECHO p50 {} p99 {}",
                ms(quantile(&echo, 0.5)),
                ms(quantile(&echo, 0.99))
            ),
        );
        r.details = details;
        r.table = Some(table);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
