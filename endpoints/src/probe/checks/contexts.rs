//! `contexts`: the presentation-context sweep (claimed, extra and common SOP class ×
//! transfer syntax pairs, one context each) and the largest number of contexts the device
//! accepts in one association. Kept apart because it is the one check that reasons about
//! negotiation only, never about DIMSE.

use super::*;

impl State<'_> {
    pub(super) fn contexts(&mut self) -> CheckResult {
        // (sop class, ts) -> claimed?
        let mut pairs: BTreeMap<(String, String), bool> = BTreeMap::new();
        if let Some(ae) = self.cfg.ae() {
            for c in ae.capability.iter().filter(|c| c.role == Role::Scp) {
                for t in &c.transfer_syntaxes {
                    pairs.insert((c.sop_class.uid.clone(), t.uid.clone()), true);
                }
            }
        }
        let mut storage: Vec<&str> = COMMON_STORAGE.to_vec();
        // Every IOD the store check can generate is swept too.
        for iod in crate::peers::iods::IODS {
            if !storage.contains(&iod.sop_class) {
                storage.push(iod.sop_class);
            }
        }
        for s in &self.cfg.sop_classes {
            storage.push(s.as_str());
        }
        for s in storage {
            for t in STANDARD_TS {
                pairs
                    .entry((s.to_string(), (*t).to_string()))
                    .or_insert(false);
            }
        }
        for s in COMMON_SERVICES {
            for t in UNCOMPRESSED {
                pairs
                    .entry(((*s).to_string(), (*t).to_string()))
                    .or_insert(false);
            }
        }
        let list: Vec<((String, String), bool)> = pairs.into_iter().collect();
        let mut results: Vec<String> = vec![String::new(); list.len()];
        let mut errors = Vec::new();
        let mut start = 0;
        let mut batch = 128;
        let mut unreachable = false;
        while start < list.len() {
            let end = (start + batch).min(list.len());
            self.cfg.progress(&format!(
                "contexts: proposing contexts {}-{} of {} (waiting up to {:.0} s for the answer)",
                start + 1,
                end,
                list.len(),
                self.cfg.timeout.as_secs_f64()
            ));
            let mut rq = self.builder();
            for ((s, t), _) in &list[start..end] {
                rq = rq.context(Proposal::new(s, &[t.as_str()]));
            }
            let outcome = self.connect().and_then(|mut l| {
                let ac = l.associate(&rq, self.cfg.timeout)?;
                Ok((l, ac))
            });
            match outcome {
                Ok((link, ac)) => {
                    for (i, slot) in results[start..end].iter_mut().enumerate() {
                        let id = AssociateRqBuilder::id_of(i);
                        let want = &list[start + i].0.1;
                        *slot = match ac.results.iter().find(|r| r.id == id) {
                            Some(r) if r.accepted() => match &r.transfer_syntax {
                                Some(t) if t == want => "accepted".into(),
                                Some(t) => format!("accepted with {} (not proposed)", label(t)),
                                None => "accepted".into(),
                            },
                            Some(r) => r.result_name.to_string(),
                            None => "no result".into(),
                        };
                    }
                    self.finish(link);
                    start = end;
                }
                Err(e @ LinkError::Connect { .. }) => {
                    for slot in &mut results[start..] {
                        *slot = format!("association failed: {e}");
                    }
                    unreachable = true;
                    break;
                }
                Err(e) if batch > 8 => {
                    errors.push(format!(
                        "{} contexts in one association: {e}; retrying in smaller batches",
                        end - start
                    ));
                    batch = 8;
                }
                Err(e) => {
                    for slot in &mut results[start..end] {
                        *slot = format!("association failed: {e}");
                    }
                    start = end;
                }
            }
        }
        let headers = vec![
            "SOP class".into(),
            "transfer syntax".into(),
            "claimed".into(),
            "result".into(),
        ];
        let mut table = Table {
            headers: headers.clone(),
            rows: Vec::new(),
        };
        // What a person reads first: what differs from the statement or failed.
        let mut brief = Table {
            headers,
            rows: Vec::new(),
        };
        let with_statement = self.cfg.statement.is_some();
        let (mut missing, mut undocumented, mut accepted, mut rejected_other) = (0, 0, 0, 0);
        let (mut as_claimed, mut broken) = (0, 0);
        let mut accepted_pairs = Vec::new();
        let mut sweep = BTreeMap::new();
        // Without a statement: per SOP class, the accepted and the rejected syntaxes.
        let mut per_class: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        let mut rejected_list = Vec::new();
        for (((s, t), claimed), res) in list.iter().zip(&results) {
            let ok = res.starts_with("accepted");
            sweep.insert((s.clone(), t.clone()), ok);
            if ok {
                accepted += 1;
                accepted_pairs.push((s.clone(), t.clone()));
            }
            let failed = res.starts_with("association failed") || res == "no result";
            let note = match (with_statement, *claimed, ok) {
                (true, true, false) => {
                    missing += 1;
                    " <- claimed, not accepted"
                }
                (true, false, true) => {
                    undocumented += 1;
                    " <- accepted, not claimed"
                }
                (true, true, true) => {
                    as_claimed += 1;
                    ""
                }
                _ => "",
            };
            if !ok && !*claimed {
                rejected_other += 1;
                if with_statement && !res.starts_with("association failed") {
                    rejected_list.push(format!("{} in {} ({res})", label(s), label(t)));
                }
            }
            if failed {
                broken += 1;
            }
            let row = vec![
                label(s),
                label(t),
                if !with_statement {
                    "-".into()
                } else if *claimed {
                    "yes".into()
                } else {
                    "no".into()
                },
                format!("{res}{note}"),
            ];
            if (with_statement && !note.is_empty()) || failed {
                brief.rows.push(row.clone());
            }
            if !with_statement && !failed {
                let e = per_class.entry(label(s)).or_default();
                if ok { &mut e.0 } else { &mut e.1 }.push(label(t));
            }
            table.rows.push(row);
        }
        let mut nowhere = Vec::new();
        if !with_statement {
            brief.headers = vec![
                "SOP class".into(),
                "accepted transfer syntaxes".into(),
                "not accepted".into(),
            ];
            for (class, (yes, no)) in per_class {
                if yes.is_empty() {
                    nowhere.push(class);
                    continue;
                }
                brief
                    .rows
                    .push(vec![class, yes.join(", "), no.len().to_string()]);
            }
        }
        self.sweep = Some(sweep);
        let max = if unreachable {
            ("max-contexts test not run".to_string(), None)
        } else {
            self.max_contexts(&accepted_pairs)
        };
        let mut r = CheckResult::new(
            Check::Contexts,
            Verdict::Pass,
            format!(
                "{accepted} of {} contexts accepted ({rejected_other} unclaimed ones rejected); {}",
                list.len(),
                max.0
            ),
        );
        r.details.extend(errors);
        if !nowhere.is_empty() {
            r.details.push(format!(
                "{} SOP classes accepted in no transfer syntax: {}",
                nowhere.len(),
                nowhere.join(", ")
            ));
        }
        if broken > 0 {
            r.details.push(format!(
                "{broken} contexts could not be tried (association failed)"
            ));
        }
        if with_statement {
            r.details.push(format!(
                "{missing} claimed contexts not accepted, {undocumented} accepted but not claimed; \
                 {as_claimed} accepted as claimed, {rejected_other} rejected and not claimed"
            ));
            if !rejected_list.is_empty() && rejected_list.len() <= 24 {
                r.details.push(format!(
                    "rejected, not claimed: {}",
                    rejected_list.join("; ")
                ));
            }
            if missing > 0 || undocumented > 0 {
                r.verdict = Verdict::DiffersFromStatement;
            }
            if let Some(claim) = self.cfg.ae().and_then(|a| a.max_presentation_contexts)
                && let Some(observed) = max.1
                && observed < claim
            {
                r.details.push(format!(
                    "the statement claims up to {claim} contexts per association; the device took at most {observed}"
                ));
                r.verdict = Verdict::DiffersFromStatement;
            }
        }
        if accepted == 0 {
            r.verdict = Verdict::Fail;
            r.summary = format!("no presentation context accepted; {}", r.summary);
        }
        r.table = Some(table);
        r.brief = Some(brief);
        r
    }

    /// The largest number of contexts (1..=128) proposed in one association that the
    /// device accepts, and how many of those it accepted.
    pub(super) fn max_contexts(&self, accepted: &[(String, String)]) -> (String, Option<u32>) {
        let pool: Vec<(String, String)> = if accepted.is_empty() {
            vec![(VERIFICATION.to_string(), IMPLICIT_LE.to_string())]
        } else {
            accepted.to_vec()
        };
        let attempt = |n: usize| -> Option<usize> {
            let mut rq = self.builder();
            for i in 0..n {
                let (s, t) = &pool[i % pool.len()];
                rq = rq.context(Proposal::new(s, &[t.as_str()]));
            }
            let mut l = self.connect().ok()?;
            let ac = l.associate(&rq, self.cfg.timeout).ok()?;
            let n = ac.results.iter().filter(|r| r.accepted()).count();
            self.finish(l);
            Some(n)
        };
        if let Some(n) = attempt(128) {
            return (
                format!("128 contexts proposed in one association: {n} accepted"),
                Some(n as u32),
            );
        }
        let (mut lo, mut hi) = (0usize, 128usize);
        let mut best = None;
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            match attempt(mid) {
                Some(n) => {
                    lo = mid;
                    best = Some(n);
                }
                None => hi = mid,
            }
        }
        match best {
            Some(n) => (
                format!(
                    "associations with more than {lo} proposed contexts refused; {lo} proposed: {n} accepted"
                ),
                Some(lo as u32),
            ),
            None => (
                "no association accepted in the max-contexts test".into(),
                Some(0),
            ),
        }
    }
}
