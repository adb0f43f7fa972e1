//! Association parameters stated in sentences or parameter tables: max PDU, maximum
//! associations and presentation contexts, asynchronous window, timeouts, implementation
//! class UID and version name, character sets, TLS, user identity, storage commitment
//! behaviour, extended negotiation, the SCP's preferred transfer syntax.
//!
//! Each matcher reads one sentence (a line of text, or a table row joined with " | ") and
//! also understands a toolkit's option documentation ("--max-pdu ... (default: 16384)"),
//! since man pages and application docs state their defaults that way.

use std::sync::OnceLock;

use regex::Regex;

use super::evidence::Evidence;
use super::scan::{Sentence, uids_in};
use crate::names::{self, Kind};

/// The value of one parameter and where it was read.
#[derive(Debug, Clone)]
pub struct Found<T> {
    pub value: T,
    pub ev: Evidence,
    pub section: usize,
}

/// Everything the parameter matchers found, first occurrence first.
#[derive(Debug, Default)]
pub struct Parameters {
    pub max_pdu_receive: Option<Found<u32>>,
    pub max_pdu_send: Option<Found<u32>>,
    pub max_associations: Option<Found<u32>>,
    pub max_presentation_contexts: Option<Found<u32>>,
    pub async_window: Option<Found<(u16, u16)>>,
    /// The document says asynchronous operations are not supported.
    pub async_not_supported: Option<Found<()>>,
    pub artim: Option<Found<f64>>,
    pub dimse: Option<Found<f64>>,
    pub idle: Option<Found<f64>>,
    pub connect: Option<Found<f64>>,
    pub implementation_class_uid: Option<Found<String>>,
    pub implementation_version_name: Option<Found<String>>,
    pub character_sets: Vec<Found<String>>,
    pub tls: Option<Found<TlsClaim>>,
    pub user_identity: Vec<Found<&'static str>>,
    pub commitment_report: Vec<Found<&'static str>>,
    pub no_extended_negotiation: Option<Found<()>>,
    pub preferred_ts: Vec<Found<String>>,
    pub manufacturer: Option<Found<String>>,
    pub software_version: Option<Found<String>>,
}

/// What the document says of TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsClaim {
    pub versions: Vec<String>,
    pub client_auth_required: bool,
    pub required: bool,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|_| unreachable!("constant regex")))
}

fn set<T>(slot: &mut Option<Found<T>>, value: T, s: &Sentence) {
    if slot.is_none() {
        *slot = Some(Found {
            value,
            ev: Evidence::new(&s.at, &s.text),
            section: s.section,
        });
    }
}

/// The first number in `text` after `from`, with thousands separators allowed.
fn number_after(text: &str, from: usize) -> Option<u64> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(&R, r"\b([0-9]{1,3}(?:[,' ][0-9]{3})+|[0-9]+)\b");
    let tail = text.get(from..)?;
    let m = r.captures(tail)?.get(1)?;
    m.as_str().replace([',', '\'', ' '], "").parse().ok()
}

/// "(default: 16384)", "default 30", "default value is 30".
fn default_value(text: &str) -> Option<u64> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r"(?i)\bdefault(?:\s+value)?(?:\s+is)?\s*[:=]?\s*([0-9]+)\b",
    );
    r.captures(text)?.get(1)?.as_str().parse().ok()
}

/// A duration in seconds from "30 s", "30 seconds", "5 min", "30000 ms", or a bare number
/// (seconds) after `from`.
fn seconds_after(text: &str, from: usize) -> Option<f64> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r"(?i)\b([0-9]+(?:\.[0-9]+)?)\s*(ms|milliseconds?|s|sec|secs|seconds?|min|minutes?|h|hours?)?\b",
    );
    let tail = text.get(from..)?;
    let c = r.captures(tail)?;
    let n: f64 = c.get(1)?.as_str().parse().ok()?;
    let unit = c.get(2).map(|m| m.as_str().to_ascii_lowercase());
    Some(match unit.as_deref() {
        Some(u) if u.starts_with("ms") || u.starts_with("milli") => n / 1000.0,
        Some(u) if u.starts_with("min") => n * 60.0,
        Some(u) if u.starts_with('h') => n * 3600.0,
        _ => n,
    })
}

/// Runs every matcher over every sentence.
pub fn find(sentences: &[Sentence]) -> Parameters {
    let mut p = Parameters::default();
    for s in sentences {
        one(&mut p, s);
    }
    p
}

fn one(p: &mut Parameters, s: &Sentence) {
    let t = s.text.as_str();
    let l = t.to_lowercase();
    // Max PDU.
    if let Some(i) = l.find("pdu") {
        let about_receive = l.contains("receiv") || l.contains("accept");
        let about_send = l.contains("send") || l.contains("transmit");
        let is_max = l.contains("max") || l.contains("largest") || l.contains("limit");
        if is_max && !l.contains("unlimited") {
            let v = default_value(t).or_else(|| number_after(t, i));
            if let Some(v) = v.filter(|&v| (1024..=u64::from(u32::MAX)).contains(&v)) {
                let v = v as u32;
                if about_send && !about_receive {
                    set(&mut p.max_pdu_send, v, s);
                } else {
                    set(&mut p.max_pdu_receive, v, s);
                }
            }
        }
    }
    // Simultaneous associations.
    if (l.contains("association") && (l.contains("simultaneous") || l.contains("concurrent")))
        || l.contains("max-associations")
        || l.contains("maximum number of associations")
    {
        let from = l.find("association").unwrap_or(0);
        if let Some(v) = default_value(t)
            .or_else(|| number_after(t, from))
            .or_else(|| number_after(t, 0))
            .filter(|&v| (1..=100_000).contains(&v))
        {
            set(&mut p.max_associations, v as u32, s);
        }
    }
    if l.contains("presentation context") && (l.contains("max") || l.contains("up to")) {
        if let Some(v) = number_after(t, 0).filter(|&v| (1..=128).contains(&v)) {
            set(&mut p.max_presentation_contexts, v as u32, s);
        }
    }
    // Asynchronous operations.
    if l.contains("asynchronous") {
        if l.contains("not support") || l.contains("does not") || l.contains(" no ") {
            set(&mut p.async_not_supported, (), s);
        } else if let Some(v) = number_after(t, 0).filter(|&v| v <= u64::from(u16::MAX)) {
            set(&mut p.async_window, (v as u16, v as u16), s);
        }
    }
    timeouts(p, s, &l);
    // Implementation identity.
    if l.contains("implementation class") {
        if let Some(u) = uids_in(t).first() {
            set(&mut p.implementation_class_uid, (*u).to_owned(), s);
        }
    }
    if l.contains("implementation version") {
        static R: OnceLock<Regex> = OnceLock::new();
        let r = re(
            &R,
            r#"(?i)implementation\s+version\s+name\s*(?:\(0002,0013\))?\s*(?:is|:|\|)?\s*"?([A-Za-z0-9_.\-]{1,16})"?"#,
        );
        if let Some(m) = r.captures(t).and_then(|c| c.get(1)) {
            let v = m.as_str();
            if !["is", "of", "the", "name"].contains(&v.to_lowercase().as_str()) {
                set(&mut p.implementation_version_name, v.to_owned(), s);
            }
        }
    }
    character_sets(p, s);
    tls(p, s, &l);
    if l.contains("user identity") && !l.contains("not support") && !l.contains("does not") {
        for (w, k) in [
            ("passcode", "username_passcode"),
            ("password", "username_passcode"),
            ("kerberos", "kerberos"),
            ("saml", "saml"),
            ("jwt", "jwt"),
            ("json web token", "jwt"),
            ("username", "username"),
        ] {
            if l.contains(w) && !p.user_identity.iter().any(|f| f.value == k) {
                p.user_identity.push(Found {
                    value: k,
                    ev: Evidence::new(&s.at, t),
                    section: s.section,
                });
            }
        }
    }
    if (l.contains("n-event-report") || l.contains("storage commitment"))
        && l.contains("association")
    {
        for (w, k) in [
            ("same association", "same_association"),
            ("new association", "new_association"),
            ("separate association", "new_association"),
            ("different association", "new_association"),
        ] {
            if l.contains(w) && !p.commitment_report.iter().any(|f| f.value == k) {
                p.commitment_report.push(Found {
                    value: k,
                    ev: Evidence::new(&s.at, t),
                    section: s.section,
                });
            }
        }
    }
    if l.contains("extended negotiation")
        && (l.contains("does not support")
            || l.contains("not supported")
            || l.contains("no extended"))
    {
        set(&mut p.no_extended_negotiation, (), s);
    }
    if has_word_prefer(&l) && (l.contains("transfer syntax") || !uids_in(t).is_empty()) {
        for u in uids_in(t) {
            if names::kind_of_uid(u) == Some(Kind::TransferSyntax)
                && !p.preferred_ts.iter().any(|f| f.value == u)
            {
                p.preferred_ts.push(Found {
                    value: u.to_owned(),
                    ev: Evidence::new(&s.at, t),
                    section: s.section,
                });
            }
        }
    }
    if l.starts_with("manufacturer") {
        if let Some((_, v)) = t.split_once([':', '|']) {
            let v = v.trim();
            if !v.is_empty() && v.len() < 80 {
                set(&mut p.manufacturer, v.to_owned(), s);
            }
        }
    }
    if l.starts_with("software version") || l.starts_with("product version") {
        if let Some((_, v)) = t.split_once([':', '|']) {
            let v = v.trim();
            if !v.is_empty() && v.len() < 40 {
                set(&mut p.software_version, v.to_owned(), s);
            }
        }
    }
}

/// "prefer", "prefers", "preferred" as a word ("JPIPReferenced" contains the letters).
pub fn has_word_prefer(lower: &str) -> bool {
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w.starts_with("prefer"))
}

fn timeouts(p: &mut Parameters, s: &Sentence, l: &str) {
    if !(l.contains("timeout")
        || l.contains("time-out")
        || l.contains("time out")
        || l.contains("artim"))
    {
        return;
    }
    if l.contains("unlimited") && !l.contains("default") {
        return;
    }
    let t = s.text.as_str();
    let value = |from: usize| -> Option<f64> {
        default_value(t)
            .map(|v| v as f64)
            .or_else(|| seconds_after(t, from))
            .filter(|&v| v > 0.0 && v < 1.0e7)
    };
    let at = |w: &str| l.find(w);
    if let Some(i) = at("artim")
        .or_else(|| at("acse"))
        .or_else(|| at("association request"))
    {
        if let Some(v) = value(i) {
            set(&mut p.artim, v, s);
        }
    } else if let Some(i) = at("dimse").or_else(|| at("response timeout")) {
        if let Some(v) = value(i) {
            set(&mut p.dimse, v, s);
        }
    } else if let Some(i) = at("idle").or_else(|| at("inactivity")) {
        if let Some(v) = value(i) {
            set(&mut p.idle, v, s);
        }
    } else if let Some(i) = at("connect") {
        if let Some(v) = value(i) {
            set(&mut p.connect, v, s);
        }
    }
}

/// Specific Character Set defined terms anywhere in a sentence about character sets, or
/// as a cell of their own.
fn character_sets(p: &mut Parameters, s: &Sentence) {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r"\b(ISO[ _]IR[ _]?[0-9]{1,3}|ISO 2022 IR [0-9]{1,3}|GB18030|GBK)\b",
    );
    let t = s.text.as_str();
    for m in r.find_iter(t) {
        let raw = m.as_str();
        let term = normalise_charset(raw);
        if dicomtap_analyzer::statement::load::is_character_set(&term)
            && !p.character_sets.iter().any(|f| f.value == term)
        {
            p.character_sets.push(Found {
                value: term,
                ev: Evidence::new(&s.at, t),
                section: s.section,
            });
        }
    }
}

/// "ISO_IR100", "ISO IR 100" -> "ISO_IR 100"; ISO 2022 terms as written.
fn normalise_charset(raw: &str) -> String {
    if raw.starts_with("ISO 2022") || raw.starts_with("GB") {
        return raw.to_owned();
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    format!("ISO_IR {digits}")
}

fn tls(p: &mut Parameters, s: &Sentence, l: &str) {
    if !(l.contains("tls") || l.contains("transport layer security")) {
        return;
    }
    if l.contains("not support") || l.contains("does not") {
        return;
    }
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(&R, r"(?i)\btls\s*(?:v|version\s*)?\s*(1\.[0-3])\b");
    let versions: Vec<String> = r
        .captures_iter(&s.text)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
        .collect();
    let supported = l.contains("support")
        || l.contains("secure transport connection profile")
        || l.contains("enable")
        || !versions.is_empty();
    if !supported {
        return;
    }
    let client = l.contains("client certificate") && l.contains("requir");
    let required =
        l.contains("only tls") || l.contains("tls only") || l.contains("tls is required");
    match &mut p.tls {
        Some(f) => {
            for v in versions {
                if !f.value.versions.contains(&v) {
                    f.value.versions.push(v);
                }
            }
            f.value.client_auth_required |= client;
            f.value.required |= required;
        }
        None => {
            p.tls = Some(Found {
                value: TlsClaim {
                    versions,
                    client_auth_required: client,
                    required,
                },
                ev: Evidence::new(&s.at, &s.text),
                section: s.section,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Loc;

    fn of(lines: &[&str]) -> Parameters {
        let s: Vec<Sentence> = lines
            .iter()
            .enumerate()
            .map(|(i, t)| Sentence {
                text: (*t).to_owned(),
                section: 0,
                at: Loc {
                    line: i as u32 + 1,
                    ..Loc::default()
                },
            })
            .collect();
        find(&s)
    }

    #[test]
    fn sentences_of_real_statements() {
        let p = of(&[
            "Maximum PDU size the AE can receive | 28672",
            "Maximum number of simultaneous associations | 10",
            "  --max-pdu  [n]umber of bytes: integer (4096..131072) set max receive pdu to n bytes (default: 16384)",
            "  --acse-timeout  [s]econds: integer (default: 30) timeout for ACSE messages",
            "The DIMSE response timeout is 60 seconds.",
            "Implementation Class UID | 1.2.276.0.7230010.3.0.3.6.7",
            "Implementation Version Name | OFFIS_DCMTK_367",
            "Character sets supported: ISO_IR 100, ISO_IR 192 and ISO 2022 IR 87.",
            "TLS 1.2 and TLS 1.3 are supported; a client certificate is required.",
            "The N-EVENT-REPORT is sent on a new association.",
            "Orthanc does not support extended negotiation.",
            "When possible, Orthanc will prefer the LittleEndianExplicitTransferSyntax transfer syntax (1.2.840.10008.1.2.1).",
        ]);
        assert_eq!(p.max_pdu_receive.map(|f| f.value), Some(28672));
        assert_eq!(p.max_associations.map(|f| f.value), Some(10));
        assert_eq!(p.artim.map(|f| f.value), Some(30.0));
        assert_eq!(p.dimse.map(|f| f.value), Some(60.0));
        assert_eq!(
            p.implementation_class_uid.map(|f| f.value).as_deref(),
            Some("1.2.276.0.7230010.3.0.3.6.7")
        );
        assert_eq!(
            p.implementation_version_name.map(|f| f.value).as_deref(),
            Some("OFFIS_DCMTK_367")
        );
        let cs: Vec<String> = p.character_sets.into_iter().map(|f| f.value).collect();
        assert_eq!(cs, ["ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87"]);
        let tls = p.tls.map(|f| f.value).unwrap_or_default();
        assert_eq!(tls.versions, ["1.2", "1.3"]);
        assert!(tls.client_auth_required);
        assert_eq!(
            p.commitment_report.first().map(|f| f.value),
            Some("new_association")
        );
        assert!(p.no_extended_negotiation.is_some());
        assert_eq!(
            p.preferred_ts.first().map(|f| f.value.as_str()),
            Some("1.2.840.10008.1.2.1")
        );
    }

    #[test]
    fn a_pdu_default_from_option_docs() {
        let p = of(&[
            "  --max-pdu  [n]umber of bytes: integer (4096..131072) set max receive pdu to n bytes (default: 16384)",
        ]);
        assert_eq!(p.max_pdu_receive.map(|f| f.value), Some(16384));
    }
}
