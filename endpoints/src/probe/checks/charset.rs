//! `charset`: multilingual objects stored, queried and retrieved back, the names compared
//! byte for byte (or decoded when the device answered in another character set), so
//! mangling is found rather than assumed.

use super::*;

impl State<'_> {
    pub(super) fn charset(&mut self) -> CheckResult {
        let Some(dir) = &self.cfg.charset_files else {
            return CheckResult::new(
                Check::Charset,
                Verdict::Skipped,
                "no --charset-files DIR given",
            );
        };
        let mut files: Vec<_> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
                .collect(),
            Err(e) => {
                return CheckResult::new(
                    Check::Charset,
                    Verdict::Fail,
                    format!("reading {}: {e}", dir.display()),
                );
            }
        };
        files.sort();
        struct F {
            name: String,
            charset: String,
            pn: Vec<u8>,
            study: String,
            obj: EncodedObject,
        }
        let mut list = Vec::new();
        for p in &files {
            let Some(f) = std::fs::read(p).ok().and_then(|b| dataset::read_part10(&b)) else {
                continue;
            };
            if f.transfer_syntax != EXPLICIT_LE && f.transfer_syntax != IMPLICIT_LE {
                continue;
            }
            let ds = Dataset::decode(&f.dataset, f.transfer_syntax == EXPLICIT_LE);
            let (Some(pn), Some(study)) = (
                ds.raw_trimmed(tag::PATIENT_NAME),
                ds.text(tag::STUDY_INSTANCE_UID),
            ) else {
                continue;
            };
            if f.sop_class_uid.is_empty() || pn.is_empty() {
                continue;
            }
            list.push(F {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                charset: ds.text(tag::SPECIFIC_CHARACTER_SET).unwrap_or_default(),
                pn: pn.to_vec(),
                study,
                obj: EncodedObject {
                    sop_class_uid: f.sop_class_uid,
                    sop_instance_uid: f.sop_instance_uid,
                    transfer_syntax: f.transfer_syntax,
                    dataset: f.dataset,
                },
            });
        }
        if list.is_empty() {
            return CheckResult::new(
                Check::Charset,
                Verdict::Skipped,
                format!("no usable Part-10 files in {}", dir.display()),
            );
        }
        if let Some(r) = self.not_offered(
            Check::Charset,
            &[STUDY_ROOT_FIND, PATIENT_ROOT_FIND],
            "Q/R FIND",
        ) {
            return r;
        }
        if let Err(r) = self.find_offered(Check::Charset) {
            return *r;
        }
        let objs: Vec<EncodedObject> = list.iter().map(|f| f.obj.clone()).collect();
        let statuses = match self.store_objects(&objs) {
            Ok(s) => {
                for (f, st) in list.iter().zip(&s) {
                    if st.is_some_and(|c| StatusClass::of(c) != StatusClass::Failure) {
                        let ds =
                            Dataset::decode(&f.obj.dataset, f.obj.transfer_syntax == EXPLICIT_LE);
                        self.note_written(
                            Check::Charset,
                            &f.study,
                            &ds.text(tag::PATIENT_ID).unwrap_or_default(),
                            &String::from_utf8_lossy(&f.pn),
                        );
                    }
                }
                s
            }
            Err(e) => {
                return CheckResult::new(
                    Check::Charset,
                    Verdict::Fail,
                    format!("storing the files: {e}"),
                );
            }
        };
        let claimed: Option<Vec<String>> = self.cfg.ae().map(|a| a.effective_character_sets());
        let mut table = Table {
            headers: vec![
                "file".into(),
                "charset".into(),
                "store".into(),
                "C-FIND name".into(),
                "retrieved name".into(),
            ],
            rows: Vec::new(),
        };
        let mut link = self
            .open_qr(&[STUDY_ROOT_FIND, PATIENT_ROOT_FIND], &[])
            .ok();
        let storage: Vec<(String, String)> = {
            let mut v: Vec<(String, String)> = list
                .iter()
                .map(|f| (f.obj.sop_class_uid.clone(), f.obj.transfer_syntax.clone()))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let (mut mangled, mut mangled_unclaimed) = (0, 0);
        let mut retrieved_cache: BTreeMap<
            String,
            Result<Vec<crate::probe::link::Message>, String>,
        > = BTreeMap::new();
        for (f, st) in list.iter().zip(&statuses) {
            let store = match st {
                Some(s) if StatusClass::of(*s) != StatusClass::Failure => format!("{s:04X}"),
                Some(s) => format!("failed {s:04X}"),
                None => "context rejected".into(),
            };
            let stored_ok = st.is_some_and(|s| StatusClass::of(s) != StatusClass::Failure);
            let same_study: Vec<&F> = list.iter().filter(|g| g.study == f.study).collect();
            let compare = |name: &[u8], cs: &str| -> String {
                if same_study
                    .iter()
                    .any(|g| g.pn == name && (cs == g.charset || cs.is_empty()))
                {
                    "identical".into()
                } else if same_study.iter().any(|g| g.pn == name) {
                    format!("same bytes, charset now {cs:?}")
                } else if !cs.is_empty() && cs != f.charset {
                    match (decode_text(&f.charset, &f.pn), decode_text(cs, name)) {
                        (Some(a), Some(b)) if a == b => format!("same text re-encoded as {cs:?}"),
                        (Some(_), Some(b)) => format!("MANGLED: re-encoded as {cs:?}: {b}"),
                        _ => format!("re-encoded as {cs:?} (cannot decode to compare)"),
                    }
                } else {
                    format!("MANGLED: {}", String::from_utf8_lossy(name))
                }
            };
            let find_res = if !stored_ok {
                "-".to_string()
            } else if let Some(l) = link.as_mut() {
                match self.find(l, &Self::study_keys(&f.study)) {
                    Ok((m, _)) => match m.iter().find(|d| {
                        d.text(tag::STUDY_INSTANCE_UID).as_deref() == Some(f.study.as_str())
                    }) {
                        Some(d) => compare(
                            d.raw_trimmed(tag::PATIENT_NAME).unwrap_or_default(),
                            &d.text(tag::SPECIFIC_CHARACTER_SET).unwrap_or_default(),
                        ),
                        None => "not found".into(),
                    },
                    Err(e) => format!("error: {e}"),
                }
            } else {
                "no FIND context".into()
            };
            let get_res = if !stored_ok {
                "-".to_string()
            } else {
                let got = retrieved_cache
                    .entry(f.study.clone())
                    .or_insert_with(|| self.get_study(&f.study, &storage).map(|(_, m)| m));
                match got {
                    Ok(msgs) => match msgs.iter().find(|m| {
                        m.command.affected_sop_instance.as_deref()
                            == Some(f.obj.sop_instance_uid.as_str())
                    }) {
                        Some(m) => {
                            let d = Dataset::decode(m.dataset.as_deref().unwrap_or_default(), true);
                            let d = if d.raw(tag::PATIENT_NAME).is_some() {
                                d
                            } else {
                                Dataset::decode(m.dataset.as_deref().unwrap_or_default(), false)
                            };
                            compare(
                                d.raw_trimmed(tag::PATIENT_NAME).unwrap_or_default(),
                                &d.text(tag::SPECIFIC_CHARACTER_SET).unwrap_or_default(),
                            )
                        }
                        None => "not retrieved".into(),
                    },
                    Err(e) => format!("C-GET: {e}"),
                }
            };
            if find_res.starts_with("MANGLED") || get_res.starts_with("MANGLED") {
                let is_claimed = claimed.as_ref().is_none_or(|c| {
                    f.charset.split('\\').filter(|s| !s.is_empty()).all(|s| {
                        c.iter().any(|x| {
                            x == s
                                || x.replace("ISO 2022 ", "ISO_") == s.replace("ISO 2022 ", "ISO_")
                        })
                    })
                });
                if is_claimed {
                    mangled += 1;
                } else {
                    mangled_unclaimed += 1;
                }
            }
            table.rows.push(vec![
                f.name.clone(),
                f.charset.clone(),
                store,
                find_res,
                get_res,
            ]);
        }
        if let Some(l) = link {
            self.finish(l);
        }
        let verdict = if mangled > 0 {
            Verdict::Fail
        } else if mangled_unclaimed > 0 {
            Verdict::DiffersFromStatement
        } else {
            Verdict::Pass
        };
        let mut r = CheckResult::new(
            Check::Charset,
            verdict,
            format!(
                "{} files: {} names mangled in a claimed character set, {} in unclaimed ones",
                list.len(),
                mangled,
                mangled_unclaimed
            ),
        );
        r.table = Some(table);
        r
    }
}
