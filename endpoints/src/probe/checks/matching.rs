//! `matching`: Q/R match-key behaviour (PS3.4 C.2.2.2) on studies stored for this run's
//! unique patients: person names (wildcards, components, case, component groups), dates,
//! times and combined date-time ranges, universal matching. Set out as a table of
//! expected against matched; what the standard requires fails, what the statement claims
//! differs from it, what is left to the implementation is shown as observed.

use super::*;

/// How a row's result counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Required by PS3.4 C.2.2.2: a different match fails the check.
    Required,
    /// Case sensitivity of PN matching (either is allowed; compared with the statement's
    /// `fuzzy_person_name`).
    Case,
    /// Required when the statement claims what it needs (`true`); else shown as observed.
    Claimed(bool),
    /// Left to the implementation: shown as `yes` when the expected studies matched, else
    /// as `no`.
    Observed(&'static str, &'static str),
}

/// One query of the table.
struct Query {
    /// Column label.
    key: &'static str,
    name: Option<String>,
    date: Option<String>,
    time: Option<String>,
    /// Studies expected to match (letters of the test patients).
    expected: &'static str,
    kind: Kind,
    /// Identifier carries Specific Character Set ISO_IR 192.
    utf8: bool,
    /// Restrict to this run's patients with a Patient ID wildcard.
    scoped: bool,
}

impl Query {
    fn new(key: &'static str, expected: &'static str, kind: Kind) -> Self {
        Query {
            key,
            name: None,
            date: None,
            time: None,
            expected,
            kind,
            utf8: false,
            scoped: false,
        }
    }
    fn name(mut self, v: String) -> Self {
        self.scoped = v.is_empty();
        self.name = Some(v);
        self
    }
    fn date(mut self, v: &str) -> Self {
        self.date = Some(v.to_string());
        self.scoped = true;
        self
    }
    fn time(mut self, v: &str) -> Self {
        self.time = Some(v.to_string());
        self.scoped = true;
        self
    }
    fn utf8(mut self) -> Self {
        self.utf8 = true;
        self
    }
    fn scoped(mut self) -> Self {
        self.scoped = true;
        self
    }

    /// The C-FIND identifier (without Query/Retrieve Level).
    fn keys(&self, token: &str) -> Dataset {
        let mut keys = Dataset::new();
        let v = |o: &Option<String>| o.clone().unwrap_or_default().into_bytes();
        if self.utf8 {
            keys.put_str(tag::SPECIFIC_CHARACTER_SET, "CS", b"ISO_IR 192");
        }
        keys.put_str(tag::STUDY_INSTANCE_UID, "UI", b"")
            .put_str(tag::PATIENT_NAME, "PN", &v(&self.name))
            .put_str(tag::STUDY_DATE, "DA", &v(&self.date))
            .put_str(tag::STUDY_TIME, "TM", &v(&self.time));
        let pid = if self.scoped {
            format!("{token}*")
        } else {
            String::new()
        };
        keys.put_str(tag::PATIENT_ID, "LO", pid.as_bytes());
        keys
    }

    fn shown(&self, token: &str, lower: &str) -> String {
        let parts: Vec<String> = [&self.name, &self.date, &self.time]
            .into_iter()
            .flatten()
            .map(|v| {
                if v.is_empty() {
                    "(empty)".to_string()
                } else {
                    v.replace(token, "<T>").replace(lower, "<t>")
                }
            })
            .collect();
        parts.join(" ")
    }
}

/// Sorted, deduplicated letters of this run's studies among C-FIND matches.
fn letters(matches: &[Dataset], studies: &BTreeMap<String, &str>) -> String {
    let mut set: Vec<&str> = matches
        .iter()
        .filter_map(|d| d.text(tag::STUDY_INSTANCE_UID))
        .filter_map(|u| studies.get(&u).copied())
        .collect();
    set.sort();
    set.dedup();
    set.concat()
}

impl State<'_> {
    pub(super) fn matching(&mut self) -> CheckResult {
        if let Some(r) = self.not_offered(
            Check::Matching,
            &[STUDY_ROOT_FIND, PATIENT_ROOT_FIND],
            "Q/R FIND",
        ) {
            return r;
        }
        if let Err(r) = self.find_offered(Check::Matching) {
            return *r;
        }
        let t = self.token.clone();
        let yamada = format!("{t}YAMADA^TAROU=山田^太郎=やまだ^たろう");
        let people = [
            ("A", format!("{t}ALPHA^JOHN"), "20200101", "080000"),
            ("B", format!("{t}ALPHABET^MARY"), "20210615", "143000"),
            ("C", format!("{t}BETA^ALPHA"), "20221231", "090000"),
            ("D", yamada.clone(), "20230301", "200000"),
        ];
        let mut objs = Vec::new();
        let mut studies: BTreeMap<String, &str> = BTreeMap::new();
        for (k, name, date, time) in &people {
            let spec = ObjectSpec {
                patient_name: name.clone(),
                patient_id: format!("{t}{k}"),
                study_uid: crate::peers::study::new_uid(),
                study_date: (*date).to_string(),
                transfer_syntax: self.cfg.store_transfer_syntax.clone(),
            };
            studies.insert(spec.study_uid.clone(), k);
            objs.push(dataset::generate_with(&spec, |ds| {
                ds.put_str(tag::STUDY_TIME, "TM", time.as_bytes());
            }));
        }
        self.cfg.progress("matching: storing the 4 test patients");
        let stored = self.store_objects(&objs);
        if let Ok(st) = &stored {
            for ((o, (_, name, _, _)), s) in objs.iter().zip(&people).zip(st) {
                if s.is_some_and(|s| StatusClass::of(s) != StatusClass::Failure) {
                    let ds = Dataset::decode(&o.dataset, o.transfer_syntax == EXPLICIT_LE);
                    let study = ds.text(tag::STUDY_INSTANCE_UID).unwrap_or_default();
                    let id = ds.text(tag::PATIENT_ID).unwrap_or_default();
                    self.note_written(Check::Matching, &study, &id, name);
                }
            }
        }
        match stored {
            Ok(st)
                if st
                    .iter()
                    .all(|s| s.is_some_and(|s| StatusClass::of(s) != StatusClass::Failure)) => {}
            Ok(st) => {
                let answers: Vec<String> = st
                    .iter()
                    .map(|s| match s {
                        Some(code) => status_text(*code, field::C_STORE_RSP),
                        None => "context not accepted".into(),
                    })
                    .collect();
                return CheckResult::new(
                    Check::Matching,
                    Verdict::Fail,
                    format!("storing the test patients failed: {}", answers.join(", ")),
                );
            }
            Err(e) => {
                return CheckResult::new(
                    Check::Matching,
                    Verdict::Fail,
                    format!("storing the test patients: {e}"),
                );
            }
        }
        let ae = self.cfg.ae();
        let claims_utf8 = ae.is_some_and(|a| a.character_sets.iter().any(|c| c == "ISO_IR 192"));
        let find_claims = ae
            .and_then(|a| a.capability(STUDY_ROOT_FIND, Role::Scp))
            .and_then(|c| c.extended_negotiation.as_ref())
            .and_then(|e| e.find.as_ref());
        let claims_combined = find_claims
            .and_then(|f| f.combined_date_time)
            .unwrap_or(false);
        let lower = t.to_lowercase();
        use Kind::*;
        let pn = |v: String, expected, kind| Query::new("PatientName", expected, kind).name(v);
        let queries: Vec<Query> = vec![
            pn(format!("{t}ALPHA^JOHN"), "A", Required),
            pn(format!("{t}ALPHA*"), "AB", Required),
            pn(format!("{t}AL*A^JOHN"), "A", Required),
            pn("*ALPHA".to_string(), "C", Required),
            pn("*ALPHA*".to_string(), "ABC", Required),
            pn(format!("{t}ALPH?^JOHN"), "A", Required),
            pn(format!("{t}ALPHA^J*"), "A", Required),
            pn("*^MARY".to_string(), "B", Required),
            pn(format!("{lower}alpha^john"), "", Case),
            pn("*".to_string(), "ABCD", Required),
            pn(String::new(), "ABCD", Required),
            // Component groups (alphabetic=ideographic=phonetic), ISO_IR 192.
            pn(yamada.clone(), "D", Claimed(claims_utf8)).utf8(),
            pn(format!("{t}YAMADA*"), "D", Claimed(claims_utf8)).utf8(),
            pn(
                format!("{t}YAMADA^TAROU"),
                "D",
                Observed(
                    "the alphabetic group alone matches",
                    "only the whole value matches",
                ),
            )
            .utf8(),
            pn(
                "=山田^太郎".to_string(),
                "D",
                Observed(
                    "the ideographic group alone matches",
                    "only the whole value matches",
                ),
            )
            .utf8()
            .scoped(),
            Query::new("StudyDate", "B", Required).date("20210615"),
            Query::new("StudyDate", "B", Required).date("20210101-20211231"),
            Query::new("StudyDate", "A", Required).date("-20201231"),
            Query::new("StudyDate", "CD", Required).date("20220101-"),
            Query::new("StudyTime", "AC", Required).time("080000-100000"),
            Query::new("StudyTime", "BD", Required).time("140000-"),
            Query::new("StudyTime", "A", Required).time("-083000"),
        ];
        let mut link = match self.open_qr(&[STUDY_ROOT_FIND, PATIENT_ROOT_FIND], &[]) {
            Ok(l) => l,
            Err(e) => {
                return CheckResult::new(
                    Check::Matching,
                    Verdict::Fail,
                    format!("association: {e}"),
                );
            }
        };
        let mut table = Table {
            headers: vec![
                "key".into(),
                "value".into(),
                "expected".into(),
                "matched".into(),
                "result".into(),
            ],
            rows: Vec::new(),
        };
        let mut failed = 0;
        let mut differ = 0;
        let mut rows = Vec::new();
        let n = queries.len() + 1;
        for (i, q) in queries.iter().enumerate() {
            self.cfg.progress(&format!(
                "matching: C-FIND {} of {n} (waiting up to {:.0} s for its answers)",
                i + 1,
                self.cfg.timeout.as_secs_f64()
            ));
            let matched = self
                .find(&mut link, &q.keys(&t))
                .map(|(m, _)| letters(&m, &studies));
            rows.push((q, matched));
        }
        self.finish(link);
        // Combined date-time range (PS3.4 C.2.2.2.5.1), negotiated by extended negotiation.
        let combined = Query::new("StudyDate+StudyTime", "BC", Claimed(claims_combined))
            .date("20210615-20221231")
            .time("140000-100000");
        let combined_matched = self.combined_find(&combined.keys(&t), &studies);
        let combined_note = match &combined_matched {
            Ok((_, true)) => "combined date-time matching negotiated",
            Ok((_, false)) => "combined date-time matching not accepted in negotiation",
            Err(_) => "",
        };
        rows.push((&combined, combined_matched.map(|(m, _)| m)));
        let mut errors = 0;
        for (q, matched) in rows {
            let (shown, result) = match (&matched, q.kind) {
                (Ok(m), Case) => (
                    m.clone(),
                    if m.is_empty() {
                        "case-sensitive".into()
                    } else {
                        "case-insensitive (allowed for PN)".into()
                    },
                ),
                (Ok(m), Observed(yes, no)) => (
                    m.clone(),
                    if m == q.expected { yes } else { no }.to_string(),
                ),
                (Ok(m), _) if m == q.expected => (m.clone(), "ok".to_string()),
                (Ok(m), Required) => {
                    failed += 1;
                    (m.clone(), "DIFFERS".into())
                }
                (Ok(m), Claimed(true)) => {
                    differ += 1;
                    (m.clone(), "DIFFERS from the statement".into())
                }
                (Ok(m), _) => (m.clone(), "differs (not claimed)".into()),
                (Err(e), Required) => {
                    errors += 1;
                    ("-".into(), format!("error: {e}"))
                }
                (Err(e), Claimed(true)) => {
                    errors += 1;
                    ("-".into(), format!("error: {e}"))
                }
                (Err(e), _) => ("-".into(), format!("error: {e}")),
            };
            let result = if q.key == "StudyDate+StudyTime" && !combined_note.is_empty() {
                format!("{result} ({combined_note})")
            } else {
                result
            };
            table.rows.push(vec![
                q.key.to_string(),
                q.shown(&t, &lower),
                if q.expected.is_empty() {
                    "-".into()
                } else {
                    q.expected.to_string()
                },
                if shown.is_empty() { "-".into() } else { shown },
                result,
            ]);
        }
        let total = table.rows.len();
        let mut r = CheckResult::new(
            Check::Matching,
            if failed > 0 || errors > 0 {
                Verdict::Fail
            } else if differ > 0 {
                Verdict::DiffersFromStatement
            } else {
                Verdict::Pass
            },
            if errors > 0 && failed == 0 {
                format!("{errors} of {total} queries ended in an error")
            } else if failed > 0 {
                format!(
                    "{failed} of {total} queries matched differently from PS3.4 C.2.2.2{}",
                    if errors > 0 {
                        format!(", {errors} ended in an error")
                    } else {
                        String::new()
                    }
                )
            } else if differ > 0 {
                format!(
                    "{differ} of {total} queries matched differently from what the statement claims"
                )
            } else {
                format!("all {total} queries matched as PS3.4 C.2.2.2 and the statement require")
            },
        );
        r.details.push(format!(
            "test patients (<T> = {t}): A = <T>ALPHA^JOHN 20200101 080000, B = <T>ALPHABET^MARY 20210615 143000, C = <T>BETA^ALPHA 20221231 090000, D = <T>YAMADA^TAROU=山田^太郎=やまだ^たろう (ISO_IR 192) 20230301 200000"
        ));
        if !claims_utf8 {
            r.details.push(
                "component-group rows are required only when the statement claims ISO_IR 192"
                    .into(),
            );
        }
        if let Some(fuzzy) = find_claims.and_then(|f| f.fuzzy_person_name) {
            let insensitive = table.rows.iter().any(|row| {
                row.get(4)
                    .is_some_and(|c| c.starts_with("case-insensitive"))
            });
            if insensitive != fuzzy && r.verdict == Verdict::Pass {
                r.verdict = Verdict::DiffersFromStatement;
                r.details.push(format!(
                    "the statement says fuzzy person-name matching is {}",
                    if fuzzy { "supported" } else { "not supported" }
                ));
            }
        }
        // What a person reads first: every row not simply `ok`.
        r.brief = Some(Table {
            headers: table.headers.clone(),
            rows: table
                .rows
                .iter()
                .filter(|row| row.get(4).is_none_or(|c| c != "ok"))
                .cloned()
                .collect(),
        });
        r.table = Some(table);
        r
    }

    /// A C-FIND on an association that asks for combined date-time matching (extended
    /// negotiation byte 2); returns the matched letters and whether the device accepted.
    fn combined_find(
        &self,
        keys: &Dataset,
        studies: &BTreeMap<String, &str>,
    ) -> Result<(String, bool), String> {
        let mut rq = self
            .builder()
            .context(Proposal::new(STUDY_ROOT_FIND, &[EXPLICIT_LE, IMPLICIT_LE]));
        rq.extended_negotiation
            .push((STUDY_ROOT_FIND.to_string(), vec![0, 1, 0, 0]));
        let mut link = self.connect().map_err(|e| e.to_string())?;
        let ac = link
            .associate(&rq, self.cfg.timeout)
            .map_err(|e| e.to_string())?;
        let accepted = ac
            .user_info
            .extended_negotiation
            .iter()
            .any(|e| e.sop_class == STUDY_ROOT_FIND && e.info.get(2..4) == Some("01"));
        let r = self.find(&mut link, keys);
        self.finish(link);
        r.map(|(m, _)| (letters(&m, studies), accepted))
    }
}
