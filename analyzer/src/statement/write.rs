//! Writing statements out as TOML (import and inference produce files with this). The
//! output uses registry keywords where there are some, keeps the key order of the format
//! page, and loads back to the same statement.

use std::fmt::Write as _;

use super::model::*;

/// Extras written around the statement.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Comment lines at the top of the file (without the `# `).
    pub header: Vec<String>,
    /// Raw TOML placed under `[x]` (free for local use), e.g. evidence of an inference.
    pub x: Option<String>,
}

/// The statement as TOML.
pub fn to_toml(s: &Statement) -> String {
    to_toml_with(s, &WriteOptions::default())
}

/// The statement as TOML, with a header comment and an `[x]` section.
pub fn to_toml_with(s: &Statement, opts: &WriteOptions) -> String {
    let mut o = String::new();
    for h in &opts.header {
        if h.is_empty() {
            o.push_str("#\n");
        } else {
            // A comment ends at the line's end: no newline nor other control in it.
            let _ = writeln!(o, "# {}", crate::text::escape_controls(h));
        }
    }
    if !opts.header.is_empty() {
        o.push('\n');
    }
    let _ = writeln!(o, "schema = {}", quote(SCHEMA));
    o.push_str("\n[device]\n");
    let d = &s.device;
    kv_str(&mut o, "name", Some(&d.name));
    kv_str(&mut o, "manufacturer", d.manufacturer.as_deref());
    kv_str(&mut o, "model", d.model.as_deref());
    if !d.software_versions.is_empty() {
        kv_list(&mut o, "software_versions", &d.software_versions);
    }
    kv_str(&mut o, "document", d.document.as_deref());
    if !s.private_uids.is_empty() {
        o.push_str("\n[private_uids]\n");
        for (uid, p) in &s.private_uids {
            let _ = match &p.name {
                Some(n) => writeln!(
                    o,
                    "{} = {{ private = true, name = {} }}",
                    quote(uid),
                    quote(n)
                ),
                None => writeln!(o, "{} = {{ private = true }}", quote(uid)),
            };
        }
    }
    for ae in &s.ae {
        write_ae(&mut o, ae);
    }
    if let Some(x) = &opts.x {
        o.push_str("\n[x]\n");
        o.push_str(x);
        if !x.ends_with('\n') {
            o.push('\n');
        }
    }
    o
}

fn write_ae(o: &mut String, a: &Ae) {
    o.push_str("\n[[ae]]\n");
    kv_str(o, "title", Some(&a.title));
    if !a.hosts.is_empty() {
        kv_list(o, "hosts", &a.hosts);
    }
    if let Some(p) = a.port {
        let _ = writeln!(o, "port = {p}");
    }
    // Neither stated loads as both false; writing both as false would not load back.
    if a.initiator || a.acceptor {
        let _ = writeln!(o, "initiator = {}", a.initiator);
        let _ = writeln!(o, "acceptor = {}", a.acceptor);
    }
    if !a.character_sets.is_empty() {
        kv_list(o, "character_sets", &a.character_sets);
    }
    kv_str(
        o,
        "implementation_class_uid",
        a.implementation_class_uid.as_deref(),
    );
    kv_str(
        o,
        "implementation_version_name",
        a.implementation_version_name.as_deref(),
    );
    for (k, v) in [
        ("max_pdu_receive", a.max_pdu_receive),
        ("max_pdu_send", a.max_pdu_send),
        ("max_presentation_contexts", a.max_presentation_contexts),
    ] {
        if let Some(v) = v {
            let _ = writeln!(o, "{k} = {v}");
        }
    }
    let m = &a.max_associations;
    let parts: Vec<String> = [("initiator", m.initiator), ("acceptor", m.acceptor)]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
        .collect();
    inline(o, "max_associations", &parts);
    if let Some(w) = a.async_window {
        let _ = writeln!(
            o,
            "async_window = {{ invoked = {}, performed = {} }}",
            w.invoked, w.performed
        );
    }
    let t = &a.timeouts_s;
    let parts: Vec<String> = [
        ("artim", t.artim),
        ("dimse", t.dimse),
        ("idle", t.idle),
        ("connect", t.connect),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} = {}", num(v))))
    .collect();
    inline(o, "timeouts_s", &parts);
    if let Some(l) = &a.accept_calling_ae_titles {
        kv_list(o, "accept_calling_ae_titles", l);
    }
    if !a.user_identity.is_empty() {
        let l: Vec<String> = a
            .user_identity
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect();
        kv_list(o, "user_identity", &l);
    }
    if let Some(tls) = &a.tls {
        let mut parts = vec![format!("required = {}", tls.required)];
        if !tls.versions.is_empty() {
            parts.push(format!("versions = {}", list(&tls.versions)));
        }
        if let Some(c) = tls.client_auth {
            parts.push(format!("client_auth = {}", quote(c.as_str())));
        }
        inline(o, "tls", &parts);
    }
    if !a.private_creators.is_empty() {
        kv_list(o, "private_creators", &a.private_creators);
    }
    if let Some(st) = &a.statuses {
        kv_list(o, "statuses", &status_strings(st));
    }
    for c in &a.capability {
        write_capability(o, c);
    }
}

fn write_capability(o: &mut String, c: &Capability) {
    o.push_str("\n[[ae.capability]]\n");
    kv_str(o, "sop_class", Some(c.sop_class.label()));
    kv_str(o, "role", Some(c.role.as_str()));
    kv_list(o, "transfer_syntaxes", &labels(&c.transfer_syntaxes));
    if !c.preferred_transfer_syntaxes.is_empty() {
        kv_list(
            o,
            "preferred_transfer_syntaxes",
            &labels(&c.preferred_transfer_syntaxes),
        );
    }
    if let Some(r) = c.role_selection {
        let _ = writeln!(o, "role_selection = {{ scu = {}, scp = {} }}", r.scu, r.scp);
    }
    if let Some(e) = &c.extended_negotiation {
        let mut parts = Vec::new();
        if let Some(s) = &e.storage {
            let p: Vec<String> = [
                ("level_of_support", s.level_of_support),
                ("digital_signature", s.digital_signature),
                ("element_coercion", s.element_coercion),
            ]
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
            .collect();
            parts.push(format!("storage = {{ {} }}", p.join(", ")));
        }
        if let Some(f) = &e.find {
            let p: Vec<String> = [
                ("relational", f.relational),
                ("combined_date_time", f.combined_date_time),
                ("fuzzy_person_name", f.fuzzy_person_name),
                ("timezone_adjust", f.timezone_adjust),
            ]
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
            .collect();
            parts.push(format!("find = {{ {} }}", p.join(", ")));
        }
        if let Some(r) = &e.retrieve {
            let p: Vec<String> = r
                .relational
                .iter()
                .map(|v| format!("relational = {v}"))
                .collect();
            parts.push(format!("retrieve = {{ {} }}", p.join(", ")));
        }
        let _ = writeln!(o, "extended_negotiation = {{ {} }}", parts.join(", "));
    }
    if let Some(e) = &c.common_extended_negotiation {
        let _ = writeln!(
            o,
            "common_extended_negotiation = {{ service_class = {}, related_general_sop_classes = {} }}",
            quote(&e.service_class),
            list(&labels(&e.related_general_sop_classes))
        );
    }
    if let Some(st) = &c.statuses {
        kv_list(o, "statuses", &status_strings(st));
    }
    if let Some(sc) = &c.storage_commitment {
        let mut parts = Vec::new();
        let l: Vec<String> = sc.report_on.iter().map(|r| r.as_str().to_owned()).collect();
        parts.push(format!("report_on = {}", list(&l)));
        if let Some(w) = sc.max_wait_s {
            parts.push(format!("max_wait_s = {}", num(w)));
        }
        inline(o, "storage_commitment", &parts);
    }
}

fn labels(l: &[UidRef]) -> Vec<String> {
    l.iter().map(|u| u.label().to_owned()).collect()
}

fn status_strings(l: &[StatusRange]) -> Vec<String> {
    l.iter().map(ToString::to_string).collect()
}

fn inline(o: &mut String, k: &str, parts: &[String]) {
    if !parts.is_empty() {
        let _ = writeln!(o, "{k} = {{ {} }}", parts.join(", "));
    }
}

fn kv_str(o: &mut String, k: &str, v: Option<&str>) {
    if let Some(v) = v {
        let _ = writeln!(o, "{k} = {}", quote(v));
    }
}

fn kv_list(o: &mut String, k: &str, l: &[String]) {
    let one = list(l);
    if one.len() + k.len() + 3 <= 100 {
        let _ = writeln!(o, "{k} = {one}");
    } else {
        let _ = writeln!(o, "{k} = [");
        for v in l {
            let _ = writeln!(o, "    {},", quote(v));
        }
        o.push_str("]\n");
    }
}

fn list(l: &[String]) -> String {
    let items: Vec<String> = l.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            // C0, DEL, C1 and the bidirectional controls: nothing a terminal acts on.
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
