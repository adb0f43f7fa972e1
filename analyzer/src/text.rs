//! One-line human descriptions of engine events, shared by `dicomtap pdu`, the analyzer's
//! detail view and `dicomtap demo`.

use std::borrow::Cow;
use std::fmt::Write as _;

use dicomtap_wire::event::{Event, EventKind};
use dicomtap_wire::uid;

/// Should `c` be written escaped in text meant for a terminal: C0 controls (newline and
/// tab included: one field, one line), DEL, C1 controls, and the Unicode bidirectional
/// overrides and isolates (which reorder what the operator reads).
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character written as `\xNN` (C0, DEL) or `\u{NNNN}` (C1, bidi
/// controls), so that text from the wire (AE titles, UIDs, error comments, names) cannot
/// move the cursor, recolour or retitle the terminal it is printed on. Every text output
/// of wire-derived strings goes through this; text without such characters is returned
/// as is. Applying it twice changes nothing more.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// [`escape_controls`] line by line: the newlines of a multi-line text are kept, every
/// other control character is escaped.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let lines: Vec<Cow<'_, str>> = s.split('\n').map(escape_controls).collect();
    Cow::Owned(lines.join("\n"))
}

/// A UID's registry keyword, or the UID marked as not in the registry.
pub fn uid_label(u: &str) -> String {
    match uid::keyword(u) {
        Some(k) => k.to_string(),
        None => format!("{u} (not in the registry)"),
    }
}

/// The keyword of a UID, or the UID itself.
pub fn uid_short(u: &str) -> String {
    uid::keyword(u).map_or_else(|| u.to_string(), str::to_string)
}

/// A UNIX time as a UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian calendar: no
    /// time zone database needed for UTC.
    pub fn from_unix(secs: u64) -> UtcTime {
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// The current time.
    pub fn now() -> UtcTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UtcTime::from_unix(secs)
    }

    /// DICOM DA: `YYYYMMDD`.
    pub fn da(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// DICOM TM: `HHMMSS`.
    pub fn tm(&self) -> String {
        format!("{:02}{:02}{:02}", self.hour, self.minute, self.second)
    }
}

/// Formats a microsecond UNIX timestamp as UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn timestamp(ts_us: u64) -> String {
    let t = UtcTime::from_unix(ts_us / 1_000_000);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        ts_us % 1_000_000
    )
}

/// Contexts listed by [`describe`] per A-ASSOCIATE-RQ or -AC: ids are one byte, and
/// PS3.8 allows 128 an association.
pub const MAX_LISTED_CONTEXTS: usize = crate::session::MAX_CONTEXTS;

/// PDVs listed per P-DATA-TF line (real PDUs carry one or two).
pub const MAX_LISTED_PDVS: usize = 64;

fn more_contexts(n: usize, lines: &mut Vec<String>) {
    if n > MAX_LISTED_CONTEXTS {
        lines.push(format!(
            "    ... and {} more contexts, not listed",
            n - MAX_LISTED_CONTEXTS
        ));
    }
}

/// Lines describing one event: the first is the headline, the rest (indented) are details.
/// Control characters from the wire are escaped ([`escape_controls`]).
pub fn describe(event: &Event) -> Vec<String> {
    describe_raw(event)
        .into_iter()
        .map(|l| match escape_controls(&l) {
            Cow::Borrowed(_) => l,
            Cow::Owned(e) => e,
        })
        .collect()
}

fn describe_raw(event: &Event) -> Vec<String> {
    let mut lines = Vec::new();
    let head = |s: String| format!("@{:<8} {:<9} {s}", event.offset, event.from.to_string());
    match &event.kind {
        EventKind::AssociateRq(rq) => {
            lines.push(head(format!(
                "A-ASSOCIATE-RQ {} -> {} ({} contexts)",
                rq.calling_ae,
                rq.called_ae,
                rq.contexts.len()
            )));
            if let Some(ctx) = &rq.application_context {
                lines.push(format!("    application context {ctx}"));
            }
            for pc in rq.contexts.iter().take(MAX_LISTED_CONTEXTS) {
                let ts: Vec<String> = pc.transfer_syntaxes.iter().map(|t| uid_short(t)).collect();
                lines.push(format!(
                    "    pc {:>3} {}  [{}]",
                    pc.id,
                    uid_label(&pc.abstract_syntax),
                    ts.join(", ")
                ));
            }
            more_contexts(rq.contexts.len(), &mut lines);
            user_info_lines(&rq.user_info, &mut lines);
        }
        EventKind::AssociateAc(ac) => {
            let accepted = ac.results.iter().filter(|r| r.accepted()).count();
            lines.push(head(format!(
                "A-ASSOCIATE-AC {} -> {} ({accepted} of {} contexts accepted)",
                ac.calling_ae,
                ac.called_ae,
                ac.results.len()
            )));
            for r in ac.results.iter().take(MAX_LISTED_CONTEXTS) {
                let ts = r
                    .transfer_syntax
                    .as_deref()
                    .map(uid_short)
                    .unwrap_or_default();
                lines.push(format!("    pc {:>3} {} {ts}", r.id, r.result_name));
            }
            more_contexts(ac.results.len(), &mut lines);
            user_info_lines(&ac.user_info, &mut lines);
        }
        EventKind::AssociateRj(rj) => {
            lines.push(head(format!("A-ASSOCIATE-RJ {}", rj.description)))
        }
        EventKind::ReleaseRq => lines.push(head("A-RELEASE-RQ".into())),
        EventKind::ReleaseRp => lines.push(head("A-RELEASE-RP".into())),
        EventKind::Abort(a) => lines.push(head(format!("A-ABORT {}", a.description))),
        EventKind::PData(p) => {
            let mut pdvs: Vec<String> = p
                .pdvs
                .iter()
                .take(MAX_LISTED_PDVS)
                .map(|v| {
                    format!(
                        "pc {} {}{} {}B",
                        v.pc_id,
                        if v.command { "cmd" } else { "data" },
                        if v.last { " last" } else { "" },
                        v.length
                    )
                })
                .collect();
            if p.pdvs.len() > MAX_LISTED_PDVS {
                pdvs.push(format!(
                    "... and {} more PDVs",
                    p.pdvs.len() - MAX_LISTED_PDVS
                ));
            }
            lines.push(head(format!(
                "P-DATA-TF {} bytes: {}",
                p.pdu_length,
                pdvs.join("; ")
            )));
        }
        EventKind::Command(c) => {
            let cmd = &c.command;
            let mut s = format!("{} pc {}", cmd.command, c.pc_id);
            if let Some(id) = cmd.message_id {
                s.push_str(&format!(" id {id}"));
            }
            if let Some(id) = cmd.responded_to {
                s.push_str(&format!(" re {id}"));
            }
            if let Some(sop) = cmd.sop_class() {
                s.push_str(&format!(" {}", uid_short(sop)));
            }
            if let Some(st) = &cmd.status {
                s.push_str(&format!(" status {st}"));
            }
            if let Some(l) = c.latency_us {
                s.push_str(&format!(" after {:.3} ms", l as f64 / 1000.0));
            }
            lines.push(head(s));
            if let Some(inst) = cmd.sop_instance() {
                lines.push(format!("    instance {inst}"));
            }
            if let Some(dest) = &cmd.move_destination {
                lines.push(format!("    move destination {dest}"));
            }
            if let Some(sub) = &cmd.sub_operations {
                let n = |v: Option<u16>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
                lines.push(format!(
                    "    sub-operations remaining {} completed {} failed {} warning {}",
                    n(sub.remaining),
                    n(sub.completed),
                    n(sub.failed),
                    n(sub.warning)
                ));
            }
            if let Some(e) = &cmd.error_comment {
                lines.push(format!("    error comment \"{e}\""));
            }
            if !cmd.offending_elements.is_empty() {
                lines.push(format!(
                    "    offending elements {}",
                    cmd.offending_elements.join(" ")
                ));
            }
        }
        EventKind::DatasetPeek(p) => {
            let peek = &p.peek;
            let mut s = format!("data set pc {}", p.pc_id);
            if let Some(sop) = &peek.sop_class_uid {
                s.push_str(&format!(" {}", uid_short(sop)));
            }
            if let Some(m) = &peek.modality {
                s.push_str(&format!(" modality {m}"));
            }
            if !peek.specific_character_set.is_empty() {
                s.push_str(&format!(
                    " charset {}",
                    peek.specific_character_set.join("\\")
                ));
            }
            lines.push(head(s));
            if let Some(i) = &peek.sop_instance_uid {
                lines.push(format!("    instance {i}"));
            }
            for pc in &peek.private_creators {
                lines.push(format!(
                    "    private creator ({:04X},00{:02X}) \"{}\"",
                    pc.group, pc.block, pc.creator
                ));
            }
        }
        EventKind::DatasetEnd(d) => lines.push(head(format!(
            "data set end pc {} {} bytes",
            d.pc_id, d.length
        ))),
        EventKind::DataFragment(f) => lines.push(head(format!(
            "data fragment pc {} {} bytes",
            f.pc_id,
            f.bytes.len()
        ))),
        EventKind::UnknownPdu { pdu_type, length } => lines.push(head(format!(
            "unknown PDU type 0x{pdu_type:02X}, {length} bytes"
        ))),
        EventKind::Gap { missing } => lines.push(head(format!("gap: {missing} bytes missing"))),
        EventKind::Omitted { bytes } => lines.push(head(format!(
            "{bytes} data set bytes left out of the recording on purpose"
        ))),
        EventKind::Resync { skipped } => lines.push(head(format!(
            "resynchronised after skipping {skipped} bytes"
        ))),
        EventKind::StreamEnd { how } => lines.push(head(format!("stream end: {}", how.describe()))),
        EventKind::Finding(f) => lines.push(head(format!(
            "{} [{}] {}",
            f.severity,
            f.code.id(),
            f.message
        ))),
    }
    lines
}

fn user_info_lines(ui: &dicomtap_wire::assoc::UserInformation, lines: &mut Vec<String>) {
    if let Some(m) = ui.max_length {
        lines.push(format!(
            "    max length {m}{}",
            if m == 0 { " (unlimited)" } else { "" }
        ));
    }
    if let Some(u) = &ui.implementation_class_uid {
        lines.push(format!("    implementation class {u}"));
    }
    if let Some(v) = &ui.implementation_version_name {
        lines.push(format!("    implementation version \"{v}\""));
    }
    if let Some((i, p)) = ui.async_window {
        lines.push(format!("    async window invoked {i} performed {p}"));
    }
    for r in &ui.role_selections {
        lines.push(format!(
            "    role selection {} scu {} scp {}",
            uid_short(&r.sop_class),
            r.scu as u8,
            r.scp as u8
        ));
    }
    for e in &ui.extended_negotiation {
        lines.push(format!(
            "    extended negotiation {} {}",
            uid_short(&e.sop_class),
            e.info
        ));
    }
    for e in &ui.common_extended_negotiation {
        lines.push(format!(
            "    common extended negotiation {} service class {}",
            uid_short(&e.sop_class),
            uid_short(&e.service_class)
        ));
    }
    if let Some(id) = &ui.user_identity {
        lines.push(format!(
            "    user identity {}{}",
            id.identity_type_name,
            id.username
                .as_deref()
                .map(|u| format!(" \"{u}\""))
                .unwrap_or_default()
        ));
    }
    if let Some(l) = ui.user_identity_response_length {
        lines.push(format!("    user identity response {l} bytes"));
    }
    for u in &ui.unknown {
        lines.push(format!(
            "    unknown sub-item 0x{:02X} {} bytes",
            u.item_type, u.length
        ));
    }
}

/// Human size: 1234567 -> "1.2 MB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// An ending that the other side answered ("..., then A-ABORT (...) from the acceptor").
fn ending_with_answer(first: String, by: dicomtap_wire::Side, answer: &Option<String>) -> String {
    match answer {
        Some(a) => format!("{first}, then {a} from the {}", by.peer()),
        None => first,
    }
}

/// The one-line summary of an association, control characters from the wire escaped
/// ([`escape_controls`]).
pub fn session_line(s: &crate::session::Session) -> String {
    let line = session_line_raw(s);
    match escape_controls(&line) {
        Cow::Borrowed(_) => line,
        Cow::Owned(e) => e,
    }
}

fn session_line_raw(s: &crate::session::Session) -> String {
    use crate::session::{Ending, Outcome};
    let addr =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "?".to_string(), |a| a.to_string());
    let ae = |a: &Option<String>| a.clone().unwrap_or_else(|| "?".to_string());
    let outcome = match &s.outcome {
        Outcome::Accepted => format!(
            "accepted {}/{} ctx",
            s.accepted_contexts(),
            s.proposed_contexts()
        ),
        Outcome::Rejected { description, .. } => format!("REJECTED ({description})"),
        Outcome::NoAnswer => format!("no answer seen to {} proposed ctx", s.proposed_contexts()),
        Outcome::NegotiationNotSeen => match &s.encrypted {
            Some(tls) => format!("encrypted: {tls}"),
            None => "negotiation not captured".to_string(),
        },
    };
    let dimse: Vec<String> = s
        .dimse
        .iter()
        .map(|(svc, c)| {
            let mut parts = Vec::new();
            for (n, label) in [
                (c.success, "ok"),
                (c.warning, "warn"),
                (c.failure, "fail"),
                (c.cancel, "cancel"),
                (c.unanswered, "unanswered"),
                (c.without_request, "without request seen"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {label}"));
                }
            }
            format!("{svc} x{} ({})", c.requests, parts.join(", "))
        })
        .collect();
    let ending = match &s.ending {
        Ending::Released => "released".to_string(),
        Ending::Aborted { by, description } => format!("aborted by {by} ({description})"),
        Ending::Closed {
            by,
            inside_pdu,
            answer,
        } => ending_with_answer(
            format!(
                "closed by {by}{} without release",
                if *inside_pdu { " inside a PDU" } else { "" }
            ),
            *by,
            answer,
        ),
        Ending::Reset {
            by,
            inside_pdu,
            answer,
        } => ending_with_answer(
            format!(
                "reset by {by}{}",
                if *inside_pdu { " inside a PDU" } else { "" }
            ),
            *by,
            answer,
        ),
        Ending::Rejected => "rejected".to_string(),
        Ending::Open => "open at end of capture".to_string(),
    };
    let findings = {
        let errors = s.findings_of(dicomtap_wire::Severity::Error);
        let warnings = s.findings_of(dicomtap_wire::Severity::Warning);
        match (errors, warnings) {
            (0, 0) => String::new(),
            (e, w) => format!(" [{e} errors, {w} warnings]"),
        }
    };
    let missing = s.requestor.gap_bytes + s.acceptor.gap_bytes;
    let incomplete = if missing > 0 {
        format!(" | capture incomplete: {} missing", bytes(missing))
    } else {
        String::new()
    };
    format!(
        "#{:<4} {} {} -> {} {} -> {} {}{}{} | {} {:.3} s, {}{}{}",
        s.id,
        timestamp(s.first_ts_us),
        addr(s.client),
        addr(s.server),
        ae(&s.requestor.ae_title),
        ae(&s.acceptor.ae_title),
        outcome,
        if dimse.is_empty() { "" } else { " | " },
        dimse.join(", "),
        bytes(s.requestor.bytes + s.acceptor.bytes),
        s.duration_us() as f64 / 1e6,
        ending,
        incomplete,
        findings
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        use super::{escape_controls, escape_text};
        let ae = "\x1b[31mRED\x1b]0;T\x07";
        let e = escape_controls(ae);
        assert_eq!(e, "\\x1b[31mRED\\x1b]0;T\\x07");
        assert!(!e.chars().any(char::is_control));
        assert_eq!(escape_controls(&e), e);
        assert_eq!(escape_controls("STORESCU 1.2.840"), "STORESCU 1.2.840");
        assert_eq!(
            escape_controls("a\u{9b}b\u{202e}c\nd"),
            "a\\u{009b}b\\u{202e}c\\x0ad"
        );
        assert_eq!(escape_text("one\x1b\ntwo\n"), "one\\x1b\ntwo\n");
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(super::timestamp(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            super::timestamp(1_795_734_000_123_456),
            "2026-11-26T23:00:00.123456Z"
        );
        assert_eq!(
            super::timestamp(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn dicom_date_and_time_of_a_unix_time() {
        // 2100 is not a leap year: 28 February is followed by 1 March.
        let t = super::UtcTime::from_unix(4_107_542_399);
        assert_eq!((t.da(), t.tm()), ("21000228".into(), "235959".into()));
        assert_eq!(super::UtcTime::from_unix(4_107_542_400).da(), "21000301");
    }
}
