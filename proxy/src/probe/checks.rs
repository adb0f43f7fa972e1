//! The probe's checks. Each opens its own associations, so one failing check never
//! leaves the next one on a broken association. Checks share what they stored (so
//! commitment and find-move work on the object the store check sent).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dicomtap_analyzer::statement::{Ae, ReportOn, Role};
use dicomtap_wire::dimse::{Command, field};
use dicomtap_wire::status::{StatusClass, classify};

use super::dataset::{self, Dataset, EXPLICIT_LE, IMPLICIT_LE, ObjectSpec, tag};
use super::link::{AssociateRqBuilder, Exchange, Incoming, Link, LinkError, Proposal};
use super::listener::Listener;
use super::{Check, CheckResult, ProbeConfig, Table, Verdict};
use crate::peers::EncodedObject;

pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const STORAGE_COMMITMENT: &str = "1.2.840.10008.1.20.1";
pub const STORAGE_COMMITMENT_INSTANCE: &str = "1.2.840.10008.1.20.1.1";
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";
pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";

/// Storage SOP classes the sweep tries whether claimed or not.
pub const COMMON_STORAGE: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.2",     // CT
    "1.2.840.10008.5.1.4.1.1.2.1",   // Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",     // MR
    "1.2.840.10008.5.1.4.1.1.4.1",   // Enhanced MR
    "1.2.840.10008.5.1.4.1.1.1",     // CR
    "1.2.840.10008.5.1.4.1.1.1.1",   // DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.2",   // MG for presentation
    "1.2.840.10008.5.1.4.1.1.6.1",   // US
    "1.2.840.10008.5.1.4.1.1.3.1",   // US multi-frame
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture
    "1.2.840.10008.5.1.4.1.1.20",    // NM
    "1.2.840.10008.5.1.4.1.1.128",   // PET
    "1.2.840.10008.5.1.4.1.1.481.1", // RT Image
    "1.2.840.10008.5.1.4.1.1.12.1",  // XA
    "1.2.840.10008.5.1.4.1.1.104.1", // Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.88.11", // Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.59", // Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",  // Grayscale Softcopy Presentation State
];

/// Non-storage SOP classes the sweep tries (uncompressed syntaxes only).
pub const COMMON_SERVICES: &[&str] = &[
    VERIFICATION,
    STORAGE_COMMITMENT,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_MOVE,
    PATIENT_ROOT_GET,
    STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
    STUDY_ROOT_GET,
    "1.2.840.10008.5.1.4.31",  // Modality Worklist FIND
    "1.2.840.10008.3.1.2.3.3", // MPPS
];

pub const UNCOMPRESSED: &[&str] = &[IMPLICIT_LE, EXPLICIT_LE, "1.2.840.10008.1.2.2"];

pub const STANDARD_TS: &[&str] = &[
    IMPLICIT_LE,
    EXPLICIT_LE,
    "1.2.840.10008.1.2.2",    // Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.1.99", // Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.4.70", // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
    "1.2.840.10008.1.2.5",    // RLE Lossless
];

fn label(uid: &str) -> String {
    dicomtap_wire::uid::keyword(uid)
        .map(str::to_string)
        .unwrap_or_else(|| uid.to_string())
}

fn status_text(code: u16, command_field: u16) -> String {
    let s = classify(code, command_field);
    format!("{:04X} ({})", code, s.meaning)
}

/// One malformed-data case: sends it and returns the device's reaction.
type MalformedCase = fn(&State<'_>) -> Result<String, String>;

/// An object the probe stored and how the device answered.
#[derive(Debug, Clone)]
pub struct Stored {
    pub object: EncodedObject,
    pub study_uid: String,
    pub patient_id: String,
    pub status: Option<u16>,
}

impl Stored {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| {
            matches!(
                StatusClass::of(s),
                StatusClass::Success | StatusClass::Warning
            )
        })
    }
}

/// State shared by the checks of one run.
pub struct State<'a> {
    cfg: &'a ProbeConfig,
    listener: Option<Listener>,
    stored: Vec<Stored>,
    store_result: Option<CheckResult>,
    /// Letters that make this run's patient names and IDs unique.
    token: String,
}

fn run_token() -> String {
    let uid = crate::peers::study::new_uid();
    let digits: Vec<u8> = uid.bytes().filter(u8::is_ascii_digit).collect();
    let tail = digits
        .iter()
        .rev()
        .take(5)
        .map(|d| char::from(b'A' + (d - b'0') * 2))
        .collect::<String>();
    format!("DTP{tail}")
}

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}")
}

fn request(field_: u16, id: u16, sop_class: &str) -> Command {
    let mut c = Command::new(field_);
    c.message_id = Some(id);
    c.affected_sop_class = Some(sop_class.to_string());
    if matches!(
        field_,
        field::C_STORE_RQ | field::C_FIND_RQ | field::C_MOVE_RQ | field::C_GET_RQ
    ) {
        c.priority = Some(0);
    }
    c
}

/// Decodes a text value in a Specific Character Set value (the last term when code
/// extensions are in use); `None` when it cannot be decoded faithfully.
fn decode_text(charset: &str, bytes: &[u8]) -> Option<String> {
    use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
    let terms: Vec<&str> = charset.split('\\').map(str::trim).collect();
    let term = if bytes.contains(&0x1B) {
        terms
            .iter()
            .rev()
            .find(|t| !t.is_empty())
            .copied()
            .unwrap_or("ISO_IR 6")
    } else {
        terms
            .first()
            .copied()
            .filter(|t| !t.is_empty())
            .unwrap_or("ISO_IR 6")
    };
    let cs = SpecificCharacterSet::from_code(term)?;
    let text = cs.decode(bytes).ok()?;
    (!text.contains(['\u{1b}', '\u{fffd}'])).then_some(text)
}

fn has_scp_claim(ae: &Ae, uid: &str) -> bool {
    ae.capability(uid, Role::Scp).is_some()
}

impl<'a> State<'a> {
    pub fn new(cfg: &'a ProbeConfig, listener: Option<Listener>) -> Self {
        State {
            cfg,
            listener,
            stored: Vec::new(),
            store_result: None,
            token: run_token(),
        }
    }

    pub fn run(&mut self, c: Check) -> CheckResult {
        match c {
            Check::Echo => self.echo(),
            Check::Contexts => self.contexts(),
            Check::Store => self.store_check(),
            Check::Commitment => self.commitment(),
            Check::FindMove => self.find_move(),
            Check::Matching => self.matching(),
            Check::Charset => self.charset(),
            Check::MaxPdu => self.max_pdu(),
            Check::Timeouts => self.timeouts(),
            Check::Malformed => self.malformed(),
        }
    }

    fn builder(&self) -> AssociateRqBuilder {
        AssociateRqBuilder::new(&self.cfg.calling_ae, &self.cfg.called_ae)
    }

    fn open(&self, rq: &AssociateRqBuilder) -> Result<Link, LinkError> {
        let mut link = Link::connect(self.cfg.target, self.cfg.timeout)?;
        link.associate(rq, self.cfg.timeout)?;
        Ok(link)
    }

    fn finish(&self, mut link: Link) {
        let _ = link.release(self.cfg.timeout);
    }

    /// A hint for errors that usually mean the device does not know the probe's AE.
    fn hint(&self, e: &str) -> String {
        if e.contains("aborted") || e.contains("rejected") {
            format!(
                " (many archives refuse queries and retrieves from unknown AE titles: is {} configured at the device?)",
                self.cfg.calling_ae
            )
        } else {
            String::new()
        }
    }

    // ---------------------------------------------------------------------------- echo

    /// One C-ECHO on a fresh association: `Ok(latency_us)` or why not.
    fn echo_once(&self) -> Result<u64, String> {
        let rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE, EXPLICIT_LE]));
        let mut link = self.open(&rq).map_err(|e| e.to_string())?;
        let Some((pc, _)) = link.context_for(VERIFICATION, None) else {
            link.abort();
            return Err("Verification context rejected".into());
        };
        let id = link.next_message_id();
        let ex = link
            .request(
                pc,
                &request(field::C_ECHO_RQ, id, VERIFICATION),
                None,
                self.cfg.timeout,
            )
            .map_err(|e| e.to_string())?;
        self.finish(link);
        match ex.status() {
            Some(0) => Ok(ex.latency_us),
            Some(s) => Err(format!(
                "C-ECHO status {}",
                status_text(s, field::C_ECHO_RSP)
            )),
            None => Err("C-ECHO-RSP without status".into()),
        }
    }

    fn echo(&self) -> CheckResult {
        match self.echo_once() {
            Ok(us) => {
                let r = CheckResult::new(
                    Check::Echo,
                    Verdict::Pass,
                    format!("C-ECHO Success in {:.1} ms", us as f64 / 1000.0),
                );
                match self.cfg.ae() {
                    Some(ae) if !ae.capability.is_empty() && !has_scp_claim(ae, VERIFICATION) => {
                        let mut r = r.detail("the statement does not claim Verification SCP");
                        r.verdict = Verdict::DiffersFromStatement;
                        r
                    }
                    _ => r,
                }
            }
            Err(e) => CheckResult::new(Check::Echo, Verdict::Fail, format!("C-ECHO failed: {e}")),
        }
    }

    // ------------------------------------------------------------------------ contexts

    fn contexts(&self) -> CheckResult {
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
        while start < list.len() {
            let end = (start + batch).min(list.len());
            let mut rq = self.builder();
            for ((s, t), _) in &list[start..end] {
                rq = rq.context(Proposal::new(s, &[t.as_str()]));
            }
            let outcome = Link::connect(self.cfg.target, self.cfg.timeout).and_then(|mut l| {
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
        let mut table = Table {
            headers: vec![
                "SOP class".into(),
                "transfer syntax".into(),
                "claimed".into(),
                "result".into(),
            ],
            rows: Vec::new(),
        };
        let with_statement = self.cfg.statement.is_some();
        let (mut missing, mut undocumented, mut accepted, mut rejected_other) = (0, 0, 0, 0);
        let mut accepted_pairs = Vec::new();
        for (((s, t), claimed), res) in list.iter().zip(&results) {
            let ok = res.starts_with("accepted");
            if ok {
                accepted += 1;
                accepted_pairs.push((s.clone(), t.clone()));
            }
            let note = match (with_statement, *claimed, ok) {
                (true, true, false) => {
                    missing += 1;
                    " <- claimed, not accepted"
                }
                (true, false, true) => {
                    undocumented += 1;
                    " <- accepted, not claimed"
                }
                _ => "",
            };
            if ok || *claimed {
                table.rows.push(vec![
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
                ]);
            } else {
                rejected_other += 1;
            }
        }
        let max = self.max_contexts(&accepted_pairs);
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
        if with_statement {
            r.details.push(format!(
                "{missing} claimed contexts not accepted, {undocumented} accepted but not claimed"
            ));
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
        r
    }

    /// The largest number of contexts (1..=128) proposed in one association that the
    /// device accepts, and how many of those it accepted.
    fn max_contexts(&self, accepted: &[(String, String)]) -> (String, Option<u32>) {
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
            let mut l = Link::connect(self.cfg.target, self.cfg.timeout).ok()?;
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

    // --------------------------------------------------------------------------- store

    fn store_objects(&self, objects: &[EncodedObject]) -> Result<Vec<Option<u16>>, String> {
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

    fn store_check(&mut self) -> CheckResult {
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
    fn store_full_study(&mut self, mut r: CheckResult) -> CheckResult {
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
    fn ensure_stored(&mut self) -> Vec<Stored> {
        if self.store_result.is_none() {
            let _ = self.store_check();
        }
        self.stored
            .iter()
            .filter(|s| s.success())
            .cloned()
            .collect()
    }

    // ---------------------------------------------------------------------- commitment

    fn commitment(&mut self) -> CheckResult {
        let stored = self.ensure_stored();
        if stored.is_empty() {
            return CheckResult::new(
                Check::Commitment,
                Verdict::Skipped,
                "nothing was stored successfully to commit",
            );
        }
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
                        ex.status()
                            .map(|s| status_text(s, field::N_ACTION_RSP))
                            .unwrap_or("without status".into())
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
                None => r.details.push(format!(
                    "{uid} was stored with Success but is not in the report"
                )),
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
                    "the statement says reports come on {:?}",
                    sc.report_on.iter().map(|o| o.as_str()).collect::<Vec<_>>()
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

    // ----------------------------------------------------------------------- find-move

    /// Opens an association for Q/R with the given models; returns the link.
    fn open_qr(
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
    fn find(&self, link: &mut Link, keys: &Dataset) -> Result<(Vec<Dataset>, Exchange), String> {
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
                ex.status()
                    .map(|s| status_text(s, field::C_FIND_RSP))
                    .unwrap_or("without status".into())
            ));
        }
        let matches = ex
            .pending_datasets()
            .map(|d| Dataset::decode(d, explicit))
            .collect();
        Ok((matches, ex))
    }

    fn study_keys(study_uid: &str) -> Dataset {
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
    fn move_study(
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
    fn get_study(
        &self,
        study_uid: &str,
        storage: &[(String, String)],
    ) -> Result<(u16, Vec<super::link::Message>), String> {
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

    fn find_move(&mut self) -> CheckResult {
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
        // C-GET
        let storage = vec![(
            first.object.sop_class_uid.clone(),
            first.object.transfer_syntax.clone(),
        )];
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

    // ------------------------------------------------------------------------ matching

    fn matching(&mut self) -> CheckResult {
        let t = self.token.clone();
        let people = [
            ("A", format!("{t}ALPHA^JOHN"), "20200101"),
            ("B", format!("{t}ALPHABET^MARY"), "20210615"),
            ("C", format!("{t}BETA^ALPHA"), "20221231"),
        ];
        let mut objs = Vec::new();
        let mut studies: BTreeMap<String, &str> = BTreeMap::new();
        for (k, name, date) in &people {
            let spec = ObjectSpec {
                patient_name: name.clone(),
                patient_id: format!("{t}{k}"),
                study_uid: crate::peers::study::new_uid(),
                study_date: (*date).to_string(),
                transfer_syntax: self.cfg.store_transfer_syntax.clone(),
            };
            studies.insert(spec.study_uid.clone(), k);
            objs.push(dataset::generate(&spec));
        }
        match self.store_objects(&objs) {
            Ok(st)
                if st
                    .iter()
                    .all(|s| s.is_some_and(|s| StatusClass::of(s) != StatusClass::Failure)) => {}
            Ok(st) => {
                return CheckResult::new(
                    Check::Matching,
                    Verdict::Fail,
                    format!("storing the test patients failed: {st:?}"),
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
        let lower = t.to_lowercase();
        // (key, value, expected, required by the standard)
        let queries: Vec<(&str, String, &str, bool)> = vec![
            ("PatientName", format!("{t}ALPHA^JOHN"), "A", true),
            ("PatientName", format!("{t}ALPHA*"), "AB", true),
            ("PatientName", format!("{t}AL*A^JOHN"), "A", true),
            ("PatientName", "*ALPHA".to_string(), "C", true),
            ("PatientName", "*ALPHA*".to_string(), "ABC", true),
            ("PatientName", format!("{t}ALPH?^JOHN"), "A", true),
            ("PatientName", format!("{t}ALPHA^J*"), "A", true),
            ("PatientName", "*^MARY".to_string(), "B", true),
            ("PatientName", format!("{lower}alpha^john"), "", false),
            ("PatientName", "*".to_string(), "ABC", true),
            ("PatientName", String::new(), "ABC", true),
            ("StudyDate", "20210615".to_string(), "B", true),
            ("StudyDate", "20210101-20211231".to_string(), "B", true),
            ("StudyDate", "-20201231".to_string(), "A", true),
            ("StudyDate", "20220101-".to_string(), "C", true),
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
        let mut differ = 0;
        for (key, value, expected, required) in &queries {
            let mut keys = Dataset::new();
            keys.put_str(tag::STUDY_INSTANCE_UID, "UI", b"")
                .put_str(
                    tag::PATIENT_NAME,
                    "PN",
                    if *key == "PatientName" {
                        value.as_bytes()
                    } else {
                        b""
                    },
                )
                .put_str(
                    tag::STUDY_DATE,
                    "DA",
                    if *key == "StudyDate" {
                        value.as_bytes()
                    } else {
                        b""
                    },
                );
            // Keep date and universal queries to this run's patients.
            let pid = if *key == "StudyDate" || value.is_empty() {
                format!("{t}*")
            } else {
                String::new()
            };
            keys.put_str(tag::PATIENT_ID, "LO", pid.as_bytes());
            let matched = match self.find(&mut link, &keys) {
                Ok((m, _)) => {
                    let mut set: Vec<&str> = m
                        .iter()
                        .filter_map(|d| d.text(tag::STUDY_INSTANCE_UID))
                        .filter_map(|u| studies.get(&u).copied())
                        .collect();
                    set.sort();
                    set.dedup();
                    Ok(set.concat())
                }
                Err(e) => Err(e),
            };
            let (shown, result) = match &matched {
                Ok(m) if !required => (
                    m.clone(),
                    if m.is_empty() {
                        "case-sensitive".into()
                    } else {
                        "case-insensitive (allowed for PN)".into()
                    },
                ),
                Ok(m) if m == expected => (m.clone(), "ok".to_string()),
                Ok(m) => {
                    differ += 1;
                    (m.clone(), "DIFFERS".into())
                }
                Err(e) => {
                    differ += 1;
                    ("-".into(), format!("error: {e}"))
                }
            };
            let q = if value.is_empty() {
                "(empty)".to_string()
            } else {
                value.replace(&t, "<T>").replace(&lower, "<t>")
            };
            table.rows.push(vec![
                (*key).to_string(),
                q,
                if expected.is_empty() {
                    "-".into()
                } else {
                    (*expected).to_string()
                },
                if shown.is_empty() { "-".into() } else { shown },
                result,
            ]);
        }
        self.finish(link);
        let mut r = CheckResult::new(
            Check::Matching,
            if differ == 0 {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            if differ == 0 {
                format!(
                    "all {} queries matched as PS3.4 C.2.2.2 requires",
                    queries.len()
                )
            } else {
                format!(
                    "{differ} of {} queries matched differently from PS3.4 C.2.2.2",
                    queries.len()
                )
            },
        );
        r.details.push(format!(
            "test patients (<T> = {t}): A = <T>ALPHA^JOHN 20200101, B = <T>ALPHABET^MARY 20210615, C = <T>BETA^ALPHA 20221231"
        ));
        if let Some(fuzzy) = self
            .cfg
            .ae()
            .and_then(|a| a.capability(STUDY_ROOT_FIND, Role::Scp))
            .and_then(|c| c.extended_negotiation.as_ref())
            .and_then(|e| e.find.as_ref())
            .and_then(|f| f.fuzzy_person_name)
        {
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
        r.table = Some(table);
        r
    }

    // ------------------------------------------------------------------------- charset

    fn charset(&mut self) -> CheckResult {
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
        let objs: Vec<EncodedObject> = list.iter().map(|f| f.obj.clone()).collect();
        let statuses = match self.store_objects(&objs) {
            Ok(s) => s,
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
        let mut retrieved_cache: BTreeMap<String, Result<Vec<super::link::Message>, String>> =
            BTreeMap::new();
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

    // ------------------------------------------------------------------------- max-pdu

    fn max_pdu(&mut self) -> CheckResult {
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
        let mut link = match Link::connect(self.cfg.target, self.cfg.timeout) {
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
                    r.details.push(format!("C-ECHO answered {:?}", ex.status()));
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
        if !link.closed
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
                    st.objects
                        .into_iter()
                        .find(|o| o.sop_class_uid == CT_IMAGE_STORAGE)
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
                            ex.status()
                                .map(|s| status_text(s, field::C_STORE_RSP))
                                .unwrap_or("without status".into())
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

    // ------------------------------------------------------------------------ timeouts

    fn timeouts(&mut self) -> CheckResult {
        let cap = self.cfg.timeouts_max;
        let target = self.cfg.target;
        let ctimeout = self.cfg.timeout;
        // ARTIM: connect, send nothing.
        let artim = std::thread::spawn(move || -> Result<Option<(f64, String)>, String> {
            let mut link = Link::connect(target, ctimeout).map_err(|e| e.to_string())?;
            let t = Instant::now();
            match link.next(t + cap, "close") {
                Ok(i) => Ok(Some((t.elapsed().as_secs_f64(), i.describe()))),
                Err(LinkError::Timeout(..)) => Ok(None),
                Err(e) => Ok(Some((t.elapsed().as_secs_f64(), e.to_string()))),
            }
        });
        // Idle association.
        let idle: Result<Option<(f64, String)>, String> = (|| {
            let rq = self
                .builder()
                .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]));
            let mut link = self.open(&rq).map_err(|e| e.to_string())?;
            let t = Instant::now();
            loop {
                match link.next(t + cap, "release or close") {
                    Ok(Incoming::ReleaseRq) => {
                        let _ = link.send_raw(&super::link::RELEASE_RP);
                        return Ok(Some((t.elapsed().as_secs_f64(), "A-RELEASE-RQ".into())));
                    }
                    Ok(i @ (Incoming::Abort(_) | Incoming::Closed(_))) => {
                        return Ok(Some((t.elapsed().as_secs_f64(), i.describe())));
                    }
                    Ok(_) => {}
                    Err(LinkError::Timeout(..)) => {
                        link.abort();
                        return Ok(None);
                    }
                    Err(e) => return Ok(Some((t.elapsed().as_secs_f64(), e.to_string()))),
                }
            }
        })();
        let artim = artim
            .join()
            .unwrap_or_else(|_| Err("ARTIM measurement thread panicked".into()));
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
        for (name, m, claim) in [
            ("ARTIM (no A-ASSOCIATE-RQ)", &artim, claims.artim),
            ("idle association", &idle, claims.idle),
        ] {
            let (measured, did, secs) = match m {
                Ok(Some((s, d))) => (format!("{s:.1} s"), d.clone(), Some(*s)),
                Ok(None) => (
                    format!("> {:.0} s", cap.as_secs_f64()),
                    "held the connection".into(),
                    None,
                ),
                Err(e) => {
                    r.verdict = Verdict::Fail;
                    ("-".into(), format!("error: {e}"), None)
                }
            };
            let result = match (claim, secs, m) {
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
                claim.map(|c| format!("{c} s")).unwrap_or("-".into()),
                result,
            ]);
        }
        r.summary = summary.join("; ");
        r.table = Some(table);
        r
    }

    // ----------------------------------------------------------------------- malformed

    fn malformed(&mut self) -> CheckResult {
        let mut table = Table {
            headers: vec![
                "case".into(),
                "device reaction".into(),
                "C-ECHO after".into(),
            ],
            rows: Vec::new(),
        };
        let mut down = 0;
        let cases: [(&str, MalformedCase); 7] = [
            ("truncated PDU (P-DATA-TF cut short, then close)", |s| {
                s.case_truncated()
            }),
            ("A-ASSOCIATE-RQ item length past the PDU end", |s| {
                s.case_bad_item_length()
            }),
            ("PDV item length larger than its PDU", |s| {
                s.case_bad_pdv_length()
            }),
            ("oversized PDU (beyond the device's max length)", |s| {
                s.case_oversized()
            }),
            ("unknown PDU type 0x0A", |s| s.case_unknown_pdu()),
            ("command element length past the command set", |s| {
                s.case_bad_command_length()
            }),
            ("unexpected VR/value (Command Field as text)", |s| {
                s.case_bad_command_value()
            }),
        ];
        for (name, f) in cases {
            let reaction = f(self).unwrap_or_else(|e| format!("error: {e}"));
            std::thread::sleep(Duration::from_millis(200));
            let echo = match self.echo_once() {
                Ok(_) => "Success".to_string(),
                Err(e) => {
                    // One retry after a pause: a restarting service counts as down.
                    std::thread::sleep(Duration::from_secs(1));
                    match self.echo_once() {
                        Ok(_) => format!("Success after a retry (first: {e})"),
                        Err(e) => {
                            down += 1;
                            format!("FAILED: {e}")
                        }
                    }
                }
            };
            table.rows.push(vec![name.to_string(), reaction, echo]);
        }
        let mut r = CheckResult::new(
            Check::Malformed,
            if down == 0 {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            if down == 0 {
                format!(
                    "the device answered C-ECHO after each of {} malformed inputs",
                    table.rows.len()
                )
            } else {
                format!(
                    "the device did not answer C-ECHO after {down} of {} malformed inputs",
                    table.rows.len()
                )
            },
        );
        r.table = Some(table);
        r
    }

    fn echo_link(&self) -> Result<(Link, u8), String> {
        let rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]));
        let link = self.open(&rq).map_err(|e| e.to_string())?;
        let pc = link
            .context_for(VERIFICATION, None)
            .map(|c| c.0)
            .ok_or("Verification not accepted")?;
        Ok((link, pc))
    }

    fn reaction(link: &mut Link) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        match link.next(deadline, "a reaction") {
            Ok(i) => i.describe(),
            Err(LinkError::Timeout(..)) => "nothing within 5 s".into(),
            Err(e) => e.to_string(),
        }
    }

    fn case_truncated(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut bytes = super::link::pdata(pc, true, true, &[0u8; 100]);
        bytes.truncate(30);
        link.send_raw(&bytes).map_err(|e| e.to_string())?;
        link.shutdown_write();
        Ok(Self::reaction(&mut link))
    }

    fn case_bad_item_length(&self) -> Result<String, String> {
        let rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]))
            .encode();
        let mut bytes = rq;
        // First item (application context) starts at 6 + 68; its length is at +2..+4.
        if let Some(l) = bytes.get_mut(76..78) {
            l.copy_from_slice(&0xFFF0u16.to_be_bytes());
        }
        let mut link =
            Link::connect(self.cfg.target, self.cfg.timeout).map_err(|e| e.to_string())?;
        link.send_raw(&bytes).map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    fn case_bad_pdv_length(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut body = Vec::new();
        body.extend_from_slice(&1000u32.to_be_bytes());
        body.push(pc);
        body.push(0x03);
        body.extend_from_slice(&[0u8; 14]);
        link.send_raw(&super::link::pdu(0x04, &body))
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    fn case_oversized(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let max = match link.peer_max_length {
            Some(0) | None => 4 << 20,
            Some(m) => (m as usize).min(64 << 20) + 4096,
        };
        let mut cmd = request(field::C_ECHO_RQ, 1, VERIFICATION);
        cmd.error_comment = Some("A".repeat(max));
        let bytes = dicomtap_wire::dimse::encode_command(&cmd);
        link.send_raw(&super::link::pdata(pc, true, true, &bytes))
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(format!("{} bytes in one PDU: {r}", bytes.len() + 12))
    }

    fn case_unknown_pdu(&self) -> Result<String, String> {
        let (mut link, _) = self.echo_link()?;
        link.send_raw(&super::link::pdu(0x0A, &[0, 0, 0, 0]))
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    fn case_bad_command_length(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut bytes =
            dicomtap_wire::dimse::encode_command(&request(field::C_ECHO_RQ, 1, VERIFICATION));
        // (0000,0100) header: 00 00 00 01, then the 4-byte length.
        if let Some(pos) = bytes.windows(8).position(|w| w == [0, 0, 0, 1, 2, 0, 0, 0]) {
            if let Some(l) = bytes.get_mut(pos + 4..pos + 8) {
                l.copy_from_slice(&0x0001_0000u32.to_le_bytes());
            }
        }
        link.send_raw(&super::link::pdata(pc, true, true, &bytes))
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    fn case_bad_command_value(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut bytes =
            dicomtap_wire::dimse::encode_command(&request(field::C_ECHO_RQ, 1, VERIFICATION));
        if let Some(pos) = bytes.windows(8).position(|w| w == [0, 0, 0, 1, 2, 0, 0, 0]) {
            // Command Field value replaced by "ZZ".
            if let Some(v) = bytes.get_mut(pos + 8..pos + 10) {
                v.copy_from_slice(b"ZZ");
            }
        }
        link.send_raw(&super::link::pdata(pc, true, true, &bytes))
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }
}
