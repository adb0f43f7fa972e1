//! The probe's checks, one module per concept. This module holds the runner ([`State`]:
//! what the checks of one run share, and the dispatch) and the helpers every check uses
//! (constants, request building, association opening). Each check opens its own
//! associations, so one failing check never leaves the next one on a broken association.
//! Checks share what they stored (so commitment and find-move work on the object the
//! store check sent).

mod charset;
mod commitment;
mod contexts;
mod echo;
mod limits;
mod load;
mod malformed;
mod matching;
mod query;
mod store;
mod timeouts;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dicomtap_analyzer::statement::{Ae, ReportOn, Role};
use dicomtap_wire::dimse::{Command, field};
use dicomtap_wire::status::{StatusClass, classify};

use super::listener::Listener;
use super::{Check, CheckResult, ProbeConfig, Table, Verdict};
use crate::peers::EncodedObject;
use crate::probe::dataset::{self, Dataset, EXPLICIT_LE, IMPLICIT_LE, ObjectSpec, tag};
use crate::probe::link::{AssociateRqBuilder, Exchange, Incoming, Link, LinkError, Proposal};

pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub use dicomtap_wire::uid::STORAGE_COMMITMENT_PUSH_MODEL as STORAGE_COMMITMENT;
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

/// [`status_text`] of a response's status, or "without status" when it carried none.
fn status_or_none(code: Option<u16>, command_field: u16) -> String {
    code.map(|s| status_text(s, command_field))
        .unwrap_or_else(|| "without status".into())
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
    /// Prefix and letters that make this run's patient names and IDs unique.
    token: String,
    /// What the first TLS handshake negotiated (TLS targets).
    tls_info: std::cell::OnceCell<crate::probe::link::TlsInfo>,
    /// The contexts sweep's results, once it ran: (SOP class, transfer syntax) -> accepted.
    sweep: Option<BTreeMap<(String, String), bool>>,
    /// Set when a connection to the target could not be made at all.
    unreachable: std::cell::RefCell<Option<String>>,
    /// A connection to the target was made during the current check.
    connected: std::cell::Cell<bool>,
    /// Studies written, in the order they were first written.
    written: std::cell::RefCell<Vec<super::Written>>,
}

/// `prefix` followed by five letters drawn for this run.
pub(crate) fn run_token(prefix: &str) -> String {
    let uid = crate::peers::study::new_uid();
    let digits: Vec<u8> = uid.bytes().filter(u8::is_ascii_digit).collect();
    let tail = digits
        .iter()
        .rev()
        .take(5)
        .map(|d| char::from(b'A' + (d - b'0') * 2))
        .collect::<String>();
    format!("{prefix}{tail}")
}

/// The Study Description of every generated study.
pub const TEST_STUDY_DESCRIPTION: &str = "dicomtap probe test data - safe to delete";
/// The Patient Comments of every generated patient.
pub const TEST_PATIENT_COMMENTS: &str =
    "Test patient written by dicomtap probe; not a real patient; safe to delete.";

/// One line per check in `checks` that writes to the device: what it will store.
pub(crate) fn planned_writes(cfg: &ProbeConfig, checks: &[Check], t: &str) -> Vec<String> {
    let mut out = Vec::new();
    for c in checks {
        let line = match c {
            Check::Store => Some(format!(
                "store: 1 patient {t}^STORE (ID {t}S), 1 study, one instance per storage SOP class the device accepts among the {} the probe generates, in each uncompressed transfer syntax it accepts (at most {} instances)",
                crate::peers::iods::IODS.len(),
                crate::peers::iods::IODS.len() * crate::peers::iods::TRANSFER_SYNTAXES.len()
            )),
            Check::Commitment | Check::FindMove if !checks.contains(&Check::Store) => {
                Some(format!(
                    "{}: runs store first: 1 patient {t}^STORE (ID {t}S), 1 study, at most {} instances",
                    c.name(),
                    crate::peers::iods::IODS.len() * crate::peers::iods::TRANSFER_SYNTAXES.len()
                ))
            }
            Check::Matching => Some(format!(
                "matching: 4 patients ({t}ALPHA^JOHN, {t}ALPHABET^MARY, {t}BETA^ALPHA, {t}YAMADA^TAROU; IDs {t}A to {t}D), 4 studies, 4 Secondary Capture instances"
            )),
            Check::Charset => Some(match &cfg.charset_files {
                Some(d) => format!(
                    "charset: the Part-10 files of {} as they are (their own patients), one study each",
                    d.display()
                ),
                None => "charset: nothing (no --charset-files)".into(),
            }),
            Check::MaxPdu if cfg.allow_writes => Some(format!(
                "max-pdu: 1 patient {t}^MAXPDU (ID {t}M), 1 study, 1 CT instance (256x256 or 512x512)"
            )),
            Check::Load if cfg.allow_writes => Some(format!(
                "load: 1 patient {t}^LOAD (ID {t}L), 1 study, up to one Secondary Capture instance per association"
            )),
            Check::Timeouts if cfg.allow_writes && cfg.listen.is_some() => Some(format!(
                "timeouts: 1 patient {t}^SLOWMOVE (ID {t}V), 1 study, 1 Secondary Capture instance (moved to the probe's listener)"
            )),
            Check::Malformed if cfg.allow_writes => Some(format!(
                "malformed: 1 patient {t}^MALFORMED (ID {t}M), 4 deliberately broken Secondary Capture data sets (a device may keep some)"
            )),
            _ => None,
        };
        out.extend(line);
    }
    out
}

fn today() -> String {
    dicomtap_analyzer::text::UtcTime::now().da()
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
    pub fn new(cfg: &'a ProbeConfig, listener: Option<Listener>, token: String) -> Self {
        State {
            cfg,
            listener,
            stored: Vec::new(),
            store_result: None,
            token,
            tls_info: std::cell::OnceCell::new(),
            sweep: None,
            unreachable: std::cell::RefCell::new(None),
            connected: std::cell::Cell::new(false),
            written: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Why no connection to the target could be made during the last check, if none could
    /// (a refused connection among successful ones, as in a load burst, does not count).
    pub fn unreachable(&self) -> Option<String> {
        if self.connected.get() {
            return None;
        }
        self.unreachable.borrow().clone()
    }

    /// The studies written so far.
    pub fn written(&self) -> Vec<super::Written> {
        self.written.borrow().clone()
    }

    /// Records one instance of a study written by `check` (answered Success or Warning).
    fn note_written(&self, check: Check, study_uid: &str, patient_id: &str, patient_name: &str) {
        let mut w = self.written.borrow_mut();
        match w.iter_mut().find(|x| x.study_uid == study_uid) {
            Some(x) => x.instances += 1,
            None => w.push(super::Written {
                study_uid: study_uid.to_string(),
                patient_id: patient_id.to_string(),
                patient_name: patient_name.to_string(),
                instances: 1,
                check,
            }),
        }
    }

    /// The statement's AE when it lists capabilities (an AE without any says nothing about
    /// services, so nothing is judged against it).
    fn claims(&self) -> Option<&Ae> {
        self.cfg.ae().filter(|a| !a.capability.is_empty())
    }

    /// The test-data marks of a generated study.
    fn marks(&self, name: &str, id: &str, study_uid: &str) -> crate::peers::iods::TestMarks {
        crate::peers::iods::TestMarks {
            patient_name: name.to_string(),
            patient_id: id.to_string(),
            study_uid: study_uid.to_string(),
            study_description: TEST_STUDY_DESCRIPTION.to_string(),
            patient_comments: TEST_PATIENT_COMMENTS.to_string(),
            study_date: today(),
            study_time: dicomtap_analyzer::text::UtcTime::now().tm(),
        }
    }

    /// `Some(skipped)` when the service of `check` (any of `uids`, as SCP) is not offered:
    /// with a statement, when it claims none of them; without one, when the contexts
    /// sweep ran and the device accepted none of them.
    fn not_offered(&self, check: Check, uids: &[&str], what: &str) -> Option<CheckResult> {
        if let Some(ae) = self.claims() {
            if uids.iter().any(|u| has_scp_claim(ae, u)) {
                return None;
            }
            return Some(CheckResult::new(
                check,
                Verdict::Skipped,
                format!("the statement claims no {what} SCP"),
            ));
        }
        let sweep = self.sweep.as_ref()?;
        let accepted = sweep
            .iter()
            .any(|((s, _), ok)| *ok && uids.contains(&s.as_str()));
        (!accepted).then(|| {
            CheckResult::new(
                check,
                Verdict::Skipped,
                format!("the device accepted no {what} context in the contexts sweep"),
            )
        })
    }

    /// The TLS version and cipher suite negotiated with the target, once connected.
    pub fn tls_info(&self) -> Option<crate::probe::link::TlsInfo> {
        self.tls_info.get().cloned()
    }

    /// A connection to the target (TLS when configured), no association yet.
    fn connect(&self) -> Result<Link, LinkError> {
        let link = Link::connect_with(self.cfg.target, self.cfg.timeout, self.cfg.tls.as_ref())
            .inspect_err(|e| {
                if let LinkError::Connect { source, .. } = e {
                    let mut u = self.unreachable.borrow_mut();
                    if u.is_none() {
                        *u = Some(format!("cannot connect to {}: {source}", self.cfg.target));
                    }
                }
            })?;
        self.connected.set(true);
        if let Some(t) = &link.tls {
            let _ = self.tls_info.set(t.clone());
        }
        Ok(link)
    }

    pub fn run(&mut self, c: Check) -> CheckResult {
        self.connected.set(false);
        self.unreachable.borrow_mut().take();
        if c.writes() && !self.cfg.allow_writes {
            return CheckResult::new(
                c,
                Verdict::Skipped,
                "writes to the device; not run without --allow-writes",
            );
        }
        match c {
            Check::Echo => self.echo(),
            Check::Contexts => self.contexts(),
            Check::Store => self.store_check(),
            Check::Commitment => self.commitment(),
            Check::FindMove => self.find_move(),
            Check::Matching => self.matching(),
            Check::Charset => self.charset(),
            Check::MaxPdu => self.max_pdu(),
            Check::Load => self.load(),
            Check::Timeouts => self.timeouts(),
            Check::Malformed => self.malformed(),
        }
    }

    fn builder(&self) -> AssociateRqBuilder {
        AssociateRqBuilder::new(&self.cfg.calling_ae, &self.cfg.called_ae)
    }

    fn open(&self, rq: &AssociateRqBuilder) -> Result<Link, LinkError> {
        let mut link = self.connect()?;
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
}
