//! Validating statement text.
//!
//! The TOML is parsed with `toml_edit` (which keeps byte spans) into a small spanned tree
//! (`tree`), then walked by a validator that collects *every* problem, each with
//! the file, the line, the key path (`ae[0].capability[2].transfer_syntaxes[1]`) and what
//! was expected. Reading files and directories, and the checks across the statements of
//! one site, are in `files`; the vocabularies, in `values`. Both are
//! re-exported here, where they have always been.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicomtap_wire::uid;
use toml_edit::ImDocument;

use super::error::{Diagnostic, StatementError};
use super::model::*;
use super::tree::{Kind, LineIndex, Node};

pub use super::files::{
    MAX_STATEMENT_BYTES, check_distinguishable_aes, check_unique_devices, load, load_dir,
    load_files,
};
pub use super::values::{ae_title_problem, is_character_set};
/// Validates statement text; `path` names it in diagnostics and is kept in
/// [`Statement::path`].
pub fn parse(text: &str, path: &Path) -> Result<Statement, StatementError> {
    let lines = LineIndex::new(text);
    let doc = match ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let line = e.span().map_or(0, |s| lines.line(s.start));
            let msg = e.message().trim().replace('\n', "; ");
            return Err(StatementError::Invalid(vec![Diagnostic {
                file: path.to_owned(),
                line,
                key: String::new(),
                message: format!("invalid TOML: {msg}"),
            }]));
        }
    };
    let root = Node::from_table(doc.as_table(), 0);
    let mut v = Validator {
        file: path.to_owned(),
        lines,
        diags: Vec::new(),
    };
    let st = v.statement(&root);
    match st {
        Some(mut s) if v.diags.is_empty() => {
            s.path = Some(path.to_owned());
            Ok(s)
        }
        _ => Err(StatementError::Invalid(v.diags)),
    }
}

/// What kind of UID a key expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UidKind {
    SopClass,
    TransferSyntax,
}

impl UidKind {
    fn name(self) -> &'static str {
        match self {
            UidKind::SopClass => "a SOP class",
            UidKind::TransferSyntax => "a transfer syntax",
        }
    }
}

struct Validator {
    file: PathBuf,
    lines: LineIndex,
    diags: Vec<Diagnostic>,
}

/// A table being read: its entries and which were used, for unknown-key errors.
struct Fields<'a> {
    path: String,
    at: usize,
    entries: &'a [(String, usize, Node)],
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, n)| n)
    }

    fn key(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

fn join(path: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if simple {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

impl Validator {
    fn err(&mut self, at: usize, key: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            line: self.lines.line(at),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Opens a table, reporting keys outside `known`.
    fn fields<'a>(&mut self, node: &'a Node, path: &str, known: &[&str]) -> Option<Fields<'a>> {
        let Kind::Table(entries) = &node.kind else {
            self.err(
                node.at,
                path,
                format!("expected a table, found {}", node.type_name()),
            );
            return None;
        };
        for (k, at, _) in entries {
            if !known.contains(&k.as_str()) {
                let msg = match closest(k, known) {
                    Some(s) => format!(
                        "unknown key (did you mean `{s}`?); expected one of: {}",
                        known.join(", ")
                    ),
                    None => format!("unknown key; expected one of: {}", known.join(", ")),
                };
                self.err(*at, join(path, k), msg);
            }
        }
        Some(Fields {
            path: path.to_owned(),
            at: node.at,
            entries,
        })
    }

    fn string(&mut self, f: &Fields, key: &str) -> Option<String> {
        let n = f.get(key)?;
        match &n.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.err(
                    n.at,
                    f.key(key),
                    format!("expected a string, found {}", n.type_name()),
                );
                None
            }
        }
    }

    fn nonempty_string(&mut self, f: &Fields, key: &str) -> Option<String> {
        let s = self.string(f, key)?;
        if s.trim().is_empty() {
            let at = f.get(key).map_or(f.at, |n| n.at);
            self.err(at, f.key(key), "expected a non-empty string");
            return None;
        }
        Some(s)
    }

    fn bool(&mut self, f: &Fields, key: &str) -> Option<bool> {
        let n = f.get(key)?;
        match n.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.err(
                    n.at,
                    f.key(key),
                    format!("expected true or false, found {}", n.type_name()),
                );
                None
            }
        }
    }

    fn int(&mut self, f: &Fields, key: &str, lo: i64, hi: i64) -> Option<i64> {
        let n = f.get(key)?;
        match n.kind {
            Kind::Int(i) if (lo..=hi).contains(&i) => Some(i),
            Kind::Int(i) => {
                self.err(
                    n.at,
                    f.key(key),
                    format!("expected an integer from {lo} to {hi}, found {i}"),
                );
                None
            }
            _ => {
                self.err(
                    n.at,
                    f.key(key),
                    format!(
                        "expected an integer from {lo} to {hi}, found {}",
                        n.type_name()
                    ),
                );
                None
            }
        }
    }

    fn seconds(&mut self, f: &Fields, key: &str) -> Option<f64> {
        let n = f.get(key)?;
        let v = match n.kind {
            Kind::Int(i) => i as f64,
            Kind::Float(x) => x,
            _ => {
                self.err(
                    n.at,
                    f.key(key),
                    format!("expected a number of seconds, found {}", n.type_name()),
                );
                return None;
            }
        };
        if !v.is_finite() || v < 0.0 {
            self.err(
                n.at,
                f.key(key),
                "expected a non-negative number of seconds",
            );
            return None;
        }
        Some(v)
    }

    /// An array of strings, each checked by `check` (returning the problem, if any).
    fn strings(
        &mut self,
        f: &Fields,
        key: &str,
        check: impl Fn(&str) -> Option<String>,
    ) -> Option<Vec<(usize, String)>> {
        let n = f.get(key)?;
        let Kind::Array(items) = &n.kind else {
            self.err(
                n.at,
                f.key(key),
                format!("expected an array of strings, found {}", n.type_name()),
            );
            return None;
        };
        let mut out: Vec<(usize, String)> = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let k = format!("{}[{i}]", f.key(key));
            match &it.kind {
                Kind::Str(s) => {
                    if let Some(problem) = check(s) {
                        self.err(it.at, k, problem);
                    } else if out.iter().any(|(_, o)| o == s) {
                        self.err(it.at, k, format!("duplicate entry {s:?}"));
                    } else {
                        out.push((it.at, s.clone()));
                    }
                }
                _ => self.err(
                    it.at,
                    k,
                    format!("expected a string, found {}", it.type_name()),
                ),
            }
        }
        Some(out)
    }

    fn statement(&mut self, root: &Node) -> Option<Statement> {
        let f = self.fields(root, "", &["schema", "device", "ae", "private_uids", "x"])?;
        match f.get("schema").map(|n| (n.at, &n.kind)) {
            None => self.err(
                0,
                "schema",
                format!("missing; expected schema = \"{SCHEMA}\" at the top of the file"),
            ),
            Some((_, Kind::Str(s))) if s == SCHEMA => {}
            Some((at, _)) => self.err(at, "schema", format!("expected \"{SCHEMA}\"")),
        }
        let private_uids = match f.get("private_uids") {
            Some(n) => self.private_uids(n),
            None => BTreeMap::new(),
        };
        let (device, device_line) = match f.get("device") {
            Some(n) => (self.device(n), self.lines.line(n.at)),
            None => {
                self.err(0, "device", "missing [device] table (with at least `name`)");
                (None, 0)
            }
        };
        let mut aes = Vec::new();
        match f.get("ae").map(|n| (n.at, &n.kind)) {
            Some((_, Kind::Array(items))) if !items.is_empty() => {
                for (i, it) in items.iter().enumerate() {
                    if let Some(a) = self.ae(it, i, &private_uids) {
                        if let Some(prev) =
                            aes.iter().find(|p: &&Ae| ae_title_eq(&p.title, &a.title))
                        {
                            let msg = format!(
                                "duplicate AE title {:?} (first at line {})",
                                a.title, prev.line
                            );
                            self.err(it.at, format!("ae[{i}].title"), msg);
                        }
                        aes.push(a);
                    }
                }
            }
            Some((at, _)) => self.err(at, "ae", "expected one or more [[ae]] tables"),
            None => self.err(0, "ae", "missing; expected at least one [[ae]] table"),
        }
        Some(Statement {
            path: None,
            device: device?,
            device_line,
            ae: aes,
            private_uids,
        })
    }

    fn device(&mut self, n: &Node) -> Option<Device> {
        let f = self.fields(
            n,
            "device",
            &[
                "name",
                "manufacturer",
                "model",
                "software_versions",
                "document",
            ],
        )?;
        let name = self.nonempty_string(&f, "name");
        if f.get("name").is_none() {
            self.err(
                n.at,
                "device.name",
                "missing; expected the device name (unique among loaded statements)",
            );
        }
        let manufacturer = self.string(&f, "manufacturer");
        let model = self.string(&f, "model");
        let document = self.string(&f, "document");
        let software_versions = self
            .strings(&f, "software_versions", |_| None)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        Some(Device {
            name: name?,
            manufacturer,
            model,
            software_versions,
            document,
        })
    }

    fn private_uids(&mut self, n: &Node) -> BTreeMap<String, PrivateUid> {
        let mut out = BTreeMap::new();
        let Kind::Table(entries) = &n.kind else {
            self.err(
                n.at,
                "private_uids",
                format!(
                    "expected a table of UID = {{ private = true, name = \"...\" }}, found {}",
                    n.type_name()
                ),
            );
            return out;
        };
        for (k, at, v) in entries {
            let path = join("private_uids", k);
            if !uid::is_valid(k) {
                self.err(
                    *at,
                    path.clone(),
                    "expected a UID (digits and dots, at most 64 characters) as the key",
                );
                continue;
            }
            if let Some(kw) = uid::keyword(k) {
                self.err(*at, path.clone(), format!("{k} is a registry UID ({kw}), not a private one; remove it from [private_uids]"));
                continue;
            }
            let Some(f) = self.fields(v, &path, &["private", "name"]) else {
                continue;
            };
            match self.bool(&f, "private") {
                Some(true) => {}
                Some(false) => self.err(
                    v.at,
                    f.key("private"),
                    "expected true (entries here declare private UIDs)",
                ),
                None if f.get("private").is_none() => {
                    self.err(v.at, f.key("private"), "missing; expected private = true")
                }
                None => {}
            }
            let name = self.string(&f, "name");
            out.insert(
                k.clone(),
                PrivateUid {
                    private: true,
                    name,
                },
            );
        }
        out
    }

    fn ae(&mut self, n: &Node, i: usize, private: &BTreeMap<String, PrivateUid>) -> Option<Ae> {
        let path = format!("ae[{i}]");
        let f = self.fields(
            n,
            &path,
            &[
                "title",
                "hosts",
                "port",
                "initiator",
                "acceptor",
                "character_sets",
                "implementation_class_uid",
                "implementation_version_name",
                "max_pdu_receive",
                "max_pdu_send",
                "max_presentation_contexts",
                "max_associations",
                "async_window",
                "timeouts_s",
                "accept_calling_ae_titles",
                "user_identity",
                "tls",
                "private_creators",
                "statuses",
                "capability",
            ],
        )?;
        let title = match self.string(&f, "title") {
            Some(t) => match ae_title_problem(&t) {
                Some(p) => {
                    let at = f.get("title").map_or(n.at, |x| x.at);
                    self.err(at, f.key("title"), p);
                    None
                }
                None => Some(t.trim().to_owned()),
            },
            None => {
                if f.get("title").is_none() {
                    self.err(
                        n.at,
                        f.key("title"),
                        "missing; expected the AE title used on the wire",
                    );
                }
                None
            }
        };
        let hosts = self
            .strings(&f, "hosts", |s| {
                (s.trim().is_empty() || s.contains(char::is_whitespace))
                    .then(|| "expected an IP address or host name".to_owned())
            })
            .unwrap_or_default()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let port = self.int(&f, "port", 1, 65535).map(|p| p as u16);
        let initiator = self.bool(&f, "initiator").unwrap_or(false);
        let acceptor = self.bool(&f, "acceptor").unwrap_or(false);
        let character_sets = self
            .strings(&f, "character_sets", |s| {
                (!is_character_set(s)).then(|| {
                    format!("{s:?} is not a Specific Character Set defined term (PS3.3 C.12.1.1.2), e.g. \"ISO_IR 100\", \"ISO_IR 192\", \"ISO 2022 IR 87\"")
                })
            })
            .unwrap_or_default()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let implementation_class_uid = self.string(&f, "implementation_class_uid");
        if let Some(u) = &implementation_class_uid
            && !uid::is_valid(u)
        {
            let at = f.get("implementation_class_uid").map_or(n.at, |x| x.at);
            self.err(
                at,
                f.key("implementation_class_uid"),
                "expected a UID (digits and dots, at most 64 characters)",
            );
        }
        let implementation_version_name = self.string(&f, "implementation_version_name");
        if let Some(v) = &implementation_version_name
            && (v.is_empty() || v.len() > 16 || !v.is_ascii())
        {
            let at = f.get("implementation_version_name").map_or(n.at, |x| x.at);
            self.err(
                at,
                f.key("implementation_version_name"),
                "expected 1 to 16 ASCII characters (PS3.7 D.3.3.2.3)",
            );
        }
        let max_pdu_receive = self
            .int(&f, "max_pdu_receive", 0, u32::MAX.into())
            .map(|v| v as u32);
        let max_pdu_send = self
            .int(&f, "max_pdu_send", 0, u32::MAX.into())
            .map(|v| v as u32);
        let max_presentation_contexts = self
            .int(&f, "max_presentation_contexts", 1, 128)
            .map(|v| v as u32);
        let max_associations = match f.get("max_associations") {
            Some(m) => {
                let p = f.key("max_associations");
                match self.fields(m, &p, &["initiator", "acceptor"]) {
                    Some(g) => MaxAssociations {
                        initiator: self
                            .int(&g, "initiator", 1, u32::MAX.into())
                            .map(|v| v as u32),
                        acceptor: self
                            .int(&g, "acceptor", 1, u32::MAX.into())
                            .map(|v| v as u32),
                    },
                    None => MaxAssociations::default(),
                }
            }
            None => MaxAssociations::default(),
        };
        let async_window = match f.get("async_window") {
            Some(m) => {
                let p = f.key("async_window");
                self.fields(m, &p, &["invoked", "performed"]).and_then(|g| {
                    let inv = self.int(&g, "invoked", 0, 65535);
                    let perf = self.int(&g, "performed", 0, 65535);
                    for (k, v) in [("invoked", inv), ("performed", perf)] {
                        if v.is_none() && g.get(k).is_none() {
                            self.err(
                                m.at,
                                g.key(k),
                                "missing; expected an integer 0-65535 (0 = unlimited)",
                            );
                        }
                    }
                    Some(AsyncWindow {
                        invoked: inv? as u16,
                        performed: perf? as u16,
                    })
                })
            }
            None => None,
        };
        let timeouts_s = match f.get("timeouts_s") {
            Some(m) => {
                let p = f.key("timeouts_s");
                match self.fields(m, &p, &["artim", "dimse", "idle", "connect"]) {
                    Some(g) => Timeouts {
                        artim: self.seconds(&g, "artim"),
                        dimse: self.seconds(&g, "dimse"),
                        idle: self.seconds(&g, "idle"),
                        connect: self.seconds(&g, "connect"),
                    },
                    None => Timeouts::default(),
                }
            }
            None => Timeouts::default(),
        };
        let accept_calling_ae_titles = self
            .strings(&f, "accept_calling_ae_titles", |s| {
                ae_title_problem(s).map(str::to_owned)
            })
            .map(|v| v.into_iter().map(|(_, s)| s.trim().to_owned()).collect());
        let user_identity = self
            .strings(&f, "user_identity", |s| {
                UserIdentityType::parse(s).is_none().then(|| {
                    "expected one of: username, username_passcode, kerberos, saml, jwt".to_owned()
                })
            })
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, s)| UserIdentityType::parse(&s))
            .collect();
        let tls = f.get("tls").and_then(|m| {
            let p = f.key("tls");
            let g = self.fields(m, &p, &["required", "versions", "client_auth"])?;
            let required = self.bool(&g, "required").unwrap_or(false);
            let versions = self
                .strings(&g, "versions", |s| {
                    (!["1.0", "1.1", "1.2", "1.3"].contains(&s))
                        .then(|| "expected \"1.0\", \"1.1\", \"1.2\" or \"1.3\"".to_owned())
                })
                .unwrap_or_default()
                .into_iter()
                .map(|(_, s)| s)
                .collect();
            let client_auth = match self.string(&g, "client_auth").as_deref() {
                None => None,
                Some("none") => Some(ClientAuth::None),
                Some("optional") => Some(ClientAuth::Optional),
                Some("required") => Some(ClientAuth::Required),
                Some(_) => {
                    let at = g.get("client_auth").map_or(m.at, |x| x.at);
                    self.err(
                        at,
                        g.key("client_auth"),
                        "expected \"none\", \"optional\" or \"required\"",
                    );
                    None
                }
            };
            Some(Tls {
                required,
                versions,
                client_auth,
            })
        });
        let private_creators = self
            .strings(&f, "private_creators", |s| {
                (s.trim().is_empty() || s.len() > 64 || s.contains('\\')).then(|| {
                    "expected a private creator code: 1 to 64 characters, no backslash (LO VR)"
                        .to_owned()
                })
            })
            .unwrap_or_default()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let statuses = self.statuses(&f, "statuses");
        let mut capability: Vec<Capability> = Vec::new();
        match f.get("capability").map(|c| (c.at, &c.kind)) {
            Some((_, Kind::Array(items))) => {
                for (j, it) in items.iter().enumerate() {
                    let cpath = format!("{path}.capability[{j}]");
                    if let Some(c) = self.capability(it, &cpath, private) {
                        if let Some(prev) = capability
                            .iter()
                            .find(|p| p.sop_class.uid == c.sop_class.uid && p.role == c.role)
                        {
                            let msg = format!(
                                "duplicate capability {} {} (first at line {}); list all its transfer syntaxes in one entry",
                                c.sop_class, c.role, prev.line
                            );
                            self.err(it.at, format!("{cpath}.sop_class"), msg);
                        }
                        capability.push(c);
                    }
                }
            }
            Some((at, _)) => self.err(at, f.key("capability"), "expected [[ae.capability]] tables"),
            None => {}
        }
        if !initiator && !acceptor && f.get("initiator").is_some() && f.get("acceptor").is_some() {
            self.err(n.at, path.clone(), "an AE that is neither initiator nor acceptor cannot associate; set initiator or acceptor to true");
        }
        Some(Ae {
            title: title?,
            line: self.lines.line(n.at),
            hosts,
            port,
            initiator,
            acceptor,
            character_sets,
            implementation_class_uid,
            implementation_version_name,
            max_pdu_receive,
            max_pdu_send,
            max_presentation_contexts,
            max_associations,
            async_window,
            timeouts_s,
            accept_calling_ae_titles,
            user_identity,
            tls,
            private_creators,
            statuses,
            capability,
        })
    }

    fn statuses(&mut self, f: &Fields, key: &str) -> Option<Vec<StatusRange>> {
        let list = self.strings(f, key, |s| {
            StatusRange::parse(s).is_none().then(|| {
                "expected a status as 4 hex digits (\"0000\") or an inclusive range (\"A700-A7FF\")".to_owned()
            })
        })?;
        Some(
            list.iter()
                .filter_map(|(_, s)| StatusRange::parse(s))
                .collect(),
        )
    }

    /// Resolves a keyword or UID to a registry or declared-private UID of the expected kind.
    fn resolve(
        &mut self,
        at: usize,
        key: &str,
        s: &str,
        kind: UidKind,
        private: &BTreeMap<String, PrivateUid>,
    ) -> Option<UidRef> {
        let Some(u) = uid::from_keyword_or_uid(s) else {
            let hint = match kind {
                UidKind::SopClass => {
                    "a SOP class keyword of PS3.6 (e.g. \"CTImageStorage\") or a UID"
                }
                UidKind::TransferSyntax => {
                    "a transfer syntax keyword of PS3.6 (e.g. \"ExplicitVRLittleEndian\") or a UID"
                }
            };
            self.err(at, key, format!("unknown keyword {s:?}; expected {hint}"));
            return None;
        };
        if let Some(p) = private.get(&u) {
            let _ = p;
            return Some(UidRef {
                uid: u,
                keyword: None,
                private: true,
            });
        }
        let Some(entry) = uid::lookup(&u) else {
            self.err(
                at,
                key,
                format!(
                    "{u} is not in the DICOM registry; expected {}, or declare it under [private_uids] as \"{u}\" = {{ private = true, name = \"...\" }}",
                    kind.name()
                ),
            );
            return None;
        };
        let ok = match kind {
            UidKind::SopClass => uid::is_sop_class(&u),
            UidKind::TransferSyntax => uid::is_transfer_syntax(&u),
        };
        if !ok {
            let what = if uid::is_transfer_syntax(&u) {
                "a transfer syntax"
            } else if uid::is_sop_class(&u) {
                "a SOP class"
            } else {
                "neither a SOP class nor a transfer syntax"
            };
            let named = if s == entry.alias {
                s.to_owned()
            } else {
                format!("{s} ({})", entry.alias)
            };
            self.err(
                at,
                key,
                format!("{named} is {what}; expected {}", kind.name()),
            );
            return None;
        }
        Some(UidRef {
            uid: u,
            keyword: Some(entry.alias.to_owned()),
            private: false,
        })
    }

    fn uid_list(
        &mut self,
        f: &Fields,
        key: &str,
        kind: UidKind,
        private: &BTreeMap<String, PrivateUid>,
    ) -> Option<Vec<UidRef>> {
        let n = f.get(key)?;
        let Kind::Array(items) = &n.kind else {
            self.err(
                n.at,
                f.key(key),
                format!(
                    "expected an array of {} keywords or UIDs, found {}",
                    kind.name(),
                    n.type_name()
                ),
            );
            return None;
        };
        let mut out: Vec<UidRef> = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let k = format!("{}[{i}]", f.key(key));
            let Kind::Str(s) = &it.kind else {
                self.err(
                    it.at,
                    k,
                    format!("expected a string, found {}", it.type_name()),
                );
                continue;
            };
            if let Some(r) = self.resolve(it.at, &k, s, kind, private) {
                if out.iter().any(|o| o.uid == r.uid) {
                    self.err(it.at, k, format!("duplicate entry {s:?}"));
                } else {
                    out.push(r);
                }
            }
        }
        Some(out)
    }

    fn capability(
        &mut self,
        n: &Node,
        path: &str,
        private: &BTreeMap<String, PrivateUid>,
    ) -> Option<Capability> {
        let f = self.fields(
            n,
            path,
            &[
                "sop_class",
                "role",
                "transfer_syntaxes",
                "preferred_transfer_syntaxes",
                "role_selection",
                "extended_negotiation",
                "common_extended_negotiation",
                "statuses",
                "storage_commitment",
            ],
        )?;
        let sop_class = match f.get("sop_class") {
            Some(s) => match &s.kind {
                Kind::Str(v) => {
                    self.resolve(s.at, &f.key("sop_class"), v, UidKind::SopClass, private)
                }
                _ => {
                    self.err(
                        s.at,
                        f.key("sop_class"),
                        format!(
                            "expected a SOP class keyword or UID, found {}",
                            s.type_name()
                        ),
                    );
                    None
                }
            },
            None => {
                self.err(
                    n.at,
                    f.key("sop_class"),
                    "missing; expected a SOP class keyword or UID",
                );
                None
            }
        };
        let role = match self.string(&f, "role").as_deref() {
            Some("SCU") => Some(Role::Scu),
            Some("SCP") => Some(Role::Scp),
            Some(other) => {
                let at = f.get("role").map_or(n.at, |x| x.at);
                self.err(
                    at,
                    f.key("role"),
                    format!(
                        "expected \"SCU\" or \"SCP\", found {other:?} (both roles: two entries)"
                    ),
                );
                None
            }
            None => {
                if f.get("role").is_none() {
                    self.err(n.at, f.key("role"), "missing; expected \"SCU\" or \"SCP\"");
                }
                None
            }
        };
        let transfer_syntaxes =
            self.uid_list(&f, "transfer_syntaxes", UidKind::TransferSyntax, private);
        match &transfer_syntaxes {
            None if f.get("transfer_syntaxes").is_none() => self.err(
                n.at,
                f.key("transfer_syntaxes"),
                "missing; expected a non-empty array of transfer syntax keywords or UIDs",
            ),
            Some(v)
                if v.is_empty()
                    && f.get("transfer_syntaxes")
                        .is_some_and(|t| matches!(&t.kind, Kind::Array(a) if a.is_empty())) =>
            {
                let at = f.get("transfer_syntaxes").map_or(n.at, |x| x.at);
                self.err(
                    at,
                    f.key("transfer_syntaxes"),
                    "expected at least one transfer syntax",
                );
            }
            _ => {}
        }
        let preferred = self
            .uid_list(
                &f,
                "preferred_transfer_syntaxes",
                UidKind::TransferSyntax,
                private,
            )
            .unwrap_or_default();
        if let (Some(ts), Some(pn)) = (&transfer_syntaxes, f.get("preferred_transfer_syntaxes")) {
            for p in &preferred {
                if !ts.iter().any(|t| t.uid == p.uid) {
                    self.err(
                        pn.at,
                        f.key("preferred_transfer_syntaxes"),
                        format!("{p} is not in transfer_syntaxes; expected a subset of them, in choice order"),
                    );
                }
            }
        }
        let role_selection = f.get("role_selection").and_then(|m| {
            let g = self.fields(m, &f.key("role_selection"), &["scu", "scp"])?;
            Some(RoleSelection {
                scu: self.bool(&g, "scu").unwrap_or(false),
                scp: self.bool(&g, "scp").unwrap_or(false),
            })
        });
        let extended_negotiation = f
            .get("extended_negotiation")
            .and_then(|m| self.extended_negotiation(m, &f.key("extended_negotiation")));
        let common_extended_negotiation = f.get("common_extended_negotiation").and_then(|m| {
            let p = f.key("common_extended_negotiation");
            let g = self.fields(m, &p, &["service_class", "related_general_sop_classes"])?;
            let service_class = match g.get("service_class") {
                Some(n) => match &n.kind {
                    Kind::Str(v) if uid::is_valid(v) => Some(v.clone()),
                    _ => {
                        self.err(
                            n.at,
                            g.key("service_class"),
                            "expected a service class UID (e.g. \"1.2.840.10008.4.2\", Storage Service Class)",
                        );
                        None
                    }
                },
                None => {
                    self.err(
                        m.at,
                        g.key("service_class"),
                        "missing; expected a service class UID (e.g. \"1.2.840.10008.4.2\")",
                    );
                    None
                }
            };
            let related = self
                .uid_list(&g, "related_general_sop_classes", UidKind::SopClass, private)
                .unwrap_or_default();
            Some(CommonExtendedNegotiation {
                service_class: service_class?,
                related_general_sop_classes: related,
            })
        });
        let statuses = self.statuses(&f, "statuses");
        let storage_commitment = f.get("storage_commitment").and_then(|m| {
            let p = f.key("storage_commitment");
            let g = self.fields(m, &p, &["report_on", "max_wait_s"])?;
            let report_on = self
                .strings(&g, "report_on", |s| {
                    (!["same_association", "new_association"].contains(&s))
                        .then(|| "expected \"same_association\" or \"new_association\"".to_owned())
                })
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(_, s)| match s.as_str() {
                    "same_association" => Some(ReportOn::SameAssociation),
                    "new_association" => Some(ReportOn::NewAssociation),
                    _ => None,
                })
                .collect();
            let max_wait_s = self.seconds(&g, "max_wait_s");
            if sop_class
                .as_ref()
                .is_some_and(|s| s.uid != uid::STORAGE_COMMITMENT_PUSH_MODEL)
            {
                self.err(
                    m.at,
                    p,
                    "only valid for sop_class = \"StorageCommitmentPushModel\"",
                );
            }
            Some(StorageCommitment {
                report_on,
                max_wait_s,
            })
        });
        Some(Capability {
            line: self.lines.line(n.at),
            sop_class: sop_class?,
            role: role?,
            transfer_syntaxes: transfer_syntaxes?,
            preferred_transfer_syntaxes: preferred,
            role_selection,
            extended_negotiation,
            common_extended_negotiation,
            statuses,
            storage_commitment,
        })
    }

    fn extended_negotiation(&mut self, m: &Node, path: &str) -> Option<ExtendedNegotiation> {
        let g = self.fields(m, path, &["storage", "find", "retrieve"])?;
        let mut out = ExtendedNegotiation::default();
        if let Some(s) = g.get("storage") {
            let h = self.fields(
                s,
                &g.key("storage"),
                &["level_of_support", "digital_signature", "element_coercion"],
            )?;
            out.storage = Some(StorageExtNeg {
                level_of_support: self.int(&h, "level_of_support", 0, 3).map(|v| v as u8),
                digital_signature: self.int(&h, "digital_signature", 0, 2).map(|v| v as u8),
                element_coercion: self.int(&h, "element_coercion", 0, 2).map(|v| v as u8),
            });
        }
        if let Some(s) = g.get("find") {
            let h = self.fields(
                s,
                &g.key("find"),
                &[
                    "relational",
                    "combined_date_time",
                    "fuzzy_person_name",
                    "timezone_adjust",
                ],
            )?;
            out.find = Some(FindExtNeg {
                relational: self.bool(&h, "relational"),
                combined_date_time: self.bool(&h, "combined_date_time"),
                fuzzy_person_name: self.bool(&h, "fuzzy_person_name"),
                timezone_adjust: self.bool(&h, "timezone_adjust"),
            });
        }
        if let Some(s) = g.get("retrieve") {
            let h = self.fields(s, &g.key("retrieve"), &["relational"])?;
            out.retrieve = Some(RetrieveExtNeg {
                relational: self.bool(&h, "relational"),
            });
        }
        Some(out)
    }
}

/// A known key close to a misspelt one (edit distance at most 2).
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let l = LineIndex::new("a\nbb\n\nc");
        assert_eq!(l.line(0), 1);
        assert_eq!(l.line(2), 2);
        assert_eq!(l.line(5), 3);
        assert_eq!(l.line(6), 4);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("tranfer_syntaxes", &["transfer_syntaxes", "role"]),
            Some("transfer_syntaxes")
        );
        assert_eq!(closest("zzz", &["role"]), None);
    }
}
