//! The first pass over a document: every block read in order with its section, and what
//! it says collected raw (capability rows, transfer syntax lists, AE titles, references
//! between sections, parameter sentences), each with its evidence. Nothing is decided
//! here that needs the whole document; [`super::assemble`] does that.

use std::sync::OnceLock;

use dicomtap_analyzer::statement::Role;
use dicomtap_wire::uid;
use regex::Regex;

use super::evidence::Evidence;
use super::report::Note;
use crate::document::{Block, Document, Loc, Table};
use crate::names::{self, Kind, Quality};

/// A section of the document: its heading and where it sits.
#[derive(Debug, Clone)]
pub struct Section {
    pub parent: Option<usize>,
    pub level: u8,
    pub title: String,
    /// Roles its heading names ("Store SCP Conformance").
    pub heading_roles: Option<Roles>,
    /// Roles a sentence in it named ("... the following SOP Classes as an SCU"), for what
    /// follows that sentence.
    pub line_roles: Option<Roles>,
    /// A sentence in it said the transfer syntaxes that follow are accepted (SCP) or
    /// proposed (SCU).
    pub ts_roles: Option<Roles>,
}

/// SCU and/or SCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    pub scu: bool,
    pub scp: bool,
}

impl Roles {
    pub fn list(self) -> Vec<Role> {
        let mut v = Vec::new();
        if self.scu {
            v.push(Role::Scu);
        }
        if self.scp {
            v.push(Role::Scp);
        }
        v
    }
    fn any(self) -> bool {
        self.scu || self.scp
    }
}

/// A UID or name resolved to a SOP class or transfer syntax, or kept as private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: String,
    /// The document's name for a private UID.
    pub private_name: Option<String>,
}

/// One capability row (a table row or a line naming a SOP class).
#[derive(Debug, Clone)]
pub struct RawCap {
    pub sop: Resolved,
    /// Roles from the row itself; `None` = from the section.
    pub roles: Option<Roles>,
    pub section: usize,
    pub ts: Vec<Resolved>,
    /// "Table 4.2-3" when the row refers to another table for its transfer syntaxes.
    pub ts_ref: Option<String>,
    pub ext_neg: Option<String>,
    pub ev: Evidence,
    /// Index of the table it came from (rows of one table share it).
    pub table: Option<usize>,
}

/// A list of transfer syntaxes given once for several SOP classes.
#[derive(Debug, Clone)]
pub struct TsList {
    pub section: usize,
    pub caption: Option<String>,
    pub entries: Vec<Resolved>,
    pub ev: Evidence,
    /// A table's index, or `None` for lines of text.
    pub table: Option<usize>,
    /// The sentence before it makes it depend on an option or a configuration ("Using
    /// option --accept-all any of the following transfer syntaxes is supported"): not a
    /// default claim.
    pub conditional: bool,
}

/// "All the SOP Classes listed in the "Store SCP Conformance" section are available as an
/// SCU": the capabilities of another section (or table), again in another role.
#[derive(Debug, Clone)]
pub struct CopyRef {
    pub target: String,
    pub roles: Roles,
    pub section: usize,
    pub ev: Evidence,
}

/// A presentation context row whose abstract syntax is a group of SOP classes listed in
/// another table ("Storage SOP Classes, see Table 4.2-4"): the row's transfer syntaxes
/// and roles apply to every SOP class of that table.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub target: String,
    pub roles: Option<Roles>,
    pub ts: Vec<Resolved>,
    pub ts_ref: Option<String>,
    pub section: usize,
    pub ev: Evidence,
}

/// An AE title the document gives (with its functional name and port when a table does).
#[derive(Debug, Clone)]
pub struct RawAe {
    pub title: String,
    pub name: Option<String>,
    pub port: Option<u16>,
    pub ev: Evidence,
}

/// A line of running text or a table row joined into one, for the parameter matchers.
#[derive(Debug, Clone)]
pub struct Sentence {
    pub text: String,
    pub section: usize,
    pub at: Loc,
}

/// Everything the first pass found.
#[derive(Debug, Default)]
pub struct Scan {
    pub sections: Vec<Section>,
    pub caps: Vec<RawCap>,
    pub ts_lists: Vec<TsList>,
    pub copies: Vec<CopyRef>,
    pub groups: Vec<GroupRow>,
    pub aes: Vec<RawAe>,
    pub sentences: Vec<Sentence>,
    /// Table captions by table index.
    pub captions: Vec<Option<String>>,
    pub unmatched: Vec<Note>,
    pub inconsistencies: Vec<Note>,
    pub close: Vec<Note>,
    pub unreadable: Vec<Note>,
    /// Claims found per section (for the report).
    pub per_section: Vec<usize>,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|_| unreachable!("constant regex")))
}

/// Dotted numbers that may be UIDs.
fn uid_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"\b[0-2](?:\.(?:0|[1-9][0-9]*)){3,}\b")
}

/// The UIDs in `text`: registry UIDs, and unknown ones that look like real UIDs (not
/// section numbers, versions or IP addresses).
pub fn uids_in(text: &str) -> Vec<&str> {
    uid_re()
        .find_iter(text)
        .map(|m| m.as_str())
        .filter(|u| looks_like_uid(u))
        .collect()
}

/// The UIDs of a table cell in a column of UIDs or transfer syntaxes, where any valid
/// UID of five components or more counts.
fn uids_in_uid_column(text: &str) -> Vec<&str> {
    uid_re()
        .find_iter(text)
        .map(|m| m.as_str())
        .filter(|u| looks_like_uid(u) || (uid::is_valid(u) && u.split('.').count() >= 5))
        .collect()
}

fn looks_like_uid(u: &str) -> bool {
    if !uid::is_valid(u) {
        return false;
    }
    if uid::lookup(u).is_some() {
        return true;
    }
    let parts: Vec<u64> = u.split('.').filter_map(|p| p.parse().ok()).collect();
    // An organisation root always has a component of at least 1000 (1.2.840.10008,
    // 1.2.276.0.7230010, 1.3.6.1.4.1.5962); section numbers and IP addresses have none.
    parts.len() >= 5 && parts.iter().any(|&p| p >= 1000)
}

/// Whether a UID is under the DICOM root: unknown ones there are mistakes (or newer than
/// the registry), never private.
pub fn is_dicom_root(u: &str) -> bool {
    u.starts_with("1.2.840.10008.")
}

/// The roles `text` names as words: "SCU", "SCP", "SCU/SCP", "Both".
pub fn roles_in(text: &str) -> Option<Roles> {
    let mut r = Roles::default();
    for w in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if w.eq_ignore_ascii_case("scu") {
            r.scu = true;
        } else if w.eq_ignore_ascii_case("scp") {
            r.scp = true;
        }
    }
    r.any().then_some(r)
}

/// A role cell: "SCU", "SCP", "SCU/SCP", "Both", "User", "Provider".
fn roles_of_cell(text: &str) -> Option<Roles> {
    let t = text.trim().to_ascii_lowercase();
    if t.contains("both") {
        return Some(Roles {
            scu: true,
            scp: true,
        });
    }
    if let Some(r) = roles_in(&t) {
        return Some(r);
    }
    match t.as_str() {
        "user" => Some(Roles {
            scu: true,
            scp: false,
        }),
        "provider" => Some(Roles {
            scu: false,
            scp: true,
        }),
        _ => None,
    }
}

/// "Yes", "X", "✓", "Supported" in an SCU or SCP column.
fn is_yes(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    matches!(
        t.as_str(),
        "yes" | "y" | "x" | "✓" | "✔" | "supported" | "option" | "optional"
    ) || t.starts_with("yes")
}

/// What a table column holds, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    SopName,
    SopUid,
    TsName,
    TsUid,
    Uid,
    Role,
    ScuFlag,
    ScpFlag,
    ExtNeg,
    AeTitle,
    Port,
    Other,
}

fn col_of_header(h: &str) -> Col {
    let h = h.to_lowercase().replace('\n', " ");
    let has = |w: &str| h.contains(w);
    if has("ae title") || has("ae-title") || has("aetitle") || has("application entity title") {
        return Col::AeTitle;
    }
    if has("port") {
        return Col::Port;
    }
    if has("extended") || has("ext. neg") || has("ext neg") {
        return Col::ExtNeg;
    }
    if has("transfer") || h.split_whitespace().any(|w| w == "ts") {
        return if has("uid") { Col::TsUid } else { Col::TsName };
    }
    if has("role") || has("scu/scp") || has("scp/scu") {
        return Col::Role;
    }
    if h.trim() == "scu" {
        return Col::ScuFlag;
    }
    if h.trim() == "scp" {
        return Col::ScpFlag;
    }
    if has("sop") || has("abstract") || has("iod") || has("name") || has("service") {
        return if has("uid") {
            Col::SopUid
        } else {
            Col::SopName
        };
    }
    if has("uid") {
        return Col::Uid;
    }
    Col::Other
}

/// "Table 4.2-3", "Table 6", "Table A.2-1" at the start of a caption or inside a sentence.
pub fn table_ref(text: &str) -> Option<String> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(&R, r"(?i)\btable\s+([A-Z]?[0-9]+(?:[.\-–][0-9A-Z]+)*)");
    r.captures(text)
        .and_then(|c| c.get(1))
        .map(|m| format!("Table {}", m.as_str().replace('–', "-")))
}

struct Walker<'a> {
    scan: Scan,
    stack: Vec<usize>,
    doc: &'a Document,
    table_index: usize,
    /// The last lines of running text (a sentence often wraps), cleared at a heading.
    recent: Vec<String>,
    /// The text just read makes the next list of transfer syntaxes conditional.
    conditional: bool,
    /// The text just read introduces transfer syntaxes; kept while the lines after it
    /// name transfer syntaxes.
    ts_context: bool,
    /// The lines of the paragraph being read (consecutive lines of running text), for
    /// sentences that wrap.
    paragraph: Vec<(String, Loc)>,
}

/// Reads the document once, in order.
pub fn scan(doc: &Document) -> Scan {
    let mut w = Walker {
        scan: Scan::default(),
        stack: vec![0],
        doc,
        table_index: 0,
        recent: Vec::new(),
        conditional: false,
        ts_context: false,
        paragraph: Vec::new(),
    };
    w.scan.sections.push(Section {
        parent: None,
        level: 0,
        title: doc.title.clone().unwrap_or_default(),
        heading_roles: None,
        line_roles: None,
        ts_roles: None,
    });
    w.scan.per_section.push(0);
    for p in &doc.problems {
        w.scan.unreadable.push(Note {
            at: Loc::default(),
            text: p.clone(),
        });
    }
    for b in &doc.blocks {
        match b {
            Block::Heading { level, text, at } => w.heading(*level, text, at),
            Block::Line { text, at } => w.line(text, at),
            Block::Table(t) => w.table(t),
        }
    }
    w.flush_paragraph();
    let _ = w.doc;
    w.scan
}

impl Walker<'_> {
    fn current(&self) -> usize {
        self.stack.last().copied().unwrap_or(0)
    }

    fn heading(&mut self, level: u8, text: &str, at: &Loc) {
        self.flush_paragraph();
        let level = level.max(1);
        while self.stack.len() > 1 {
            let top = self.current();
            if self
                .scan
                .sections
                .get(top)
                .is_some_and(|s| s.level >= level)
            {
                self.stack.pop();
            } else {
                break;
            }
        }
        let parent = self.current();
        let id = self.scan.sections.len();
        self.scan.sections.push(Section {
            parent: Some(parent),
            level,
            title: text.trim().to_owned(),
            heading_roles: roles_in(text),
            line_roles: None,
            ts_roles: None,
        });
        self.scan.per_section.push(0);
        self.stack.push(id);
        self.recent.clear();
        self.conditional = false;
        self.ts_context = false;
        self.sentence(text, at);
    }

    fn sentence(&mut self, text: &str, at: &Loc) {
        self.scan.sentences.push(Sentence {
            text: text.to_owned(),
            section: self.current(),
            at: at.clone(),
        });
    }

    fn line(&mut self, text: &str, at: &Loc) {
        let sec = self.current();
        self.sentence(text, at);
        let lower = text.to_lowercase();
        if self.recent.len() >= 3 {
            self.recent.remove(0);
        }
        self.recent.push(lower.clone());
        let window = self.recent.join(" ");
        // "supports the following SOP Classes as an SCU", "acts as an SCP".
        if let Some(r) = role_sentence(&lower) {
            if let Some(s) = self.scan.sections.get_mut(sec) {
                s.line_roles = Some(r);
            }
        }
        if lower.contains("transfer syntax") {
            self.ts_context = true;
        }
        if window.contains("transfer syntax") {
            self.conditional = ["option", "if configured", "can be configured", "optionally"]
                .iter()
                .any(|w| window.contains(w));
            let r = if window.contains("accept") || window.contains("receiv") {
                Some(Roles {
                    scu: false,
                    scp: true,
                })
            } else if window.contains("propos") || window.contains("send") {
                Some(Roles {
                    scu: true,
                    scp: false,
                })
            } else {
                None
            };
            if let (Some(r), Some(s)) = (r, self.scan.sections.get_mut(sec)) {
                s.ts_roles = Some(r);
            }
        }
        self.paragraph_line(text, at);
        self.ae_sentence(text, at);
        let uids = uids_in(text);
        if uids.is_empty() {
            self.name_line(text, at, sec);
            return;
        }
        let mut sop = None;
        let mut ts = Vec::new();
        for u in &uids {
            match names::kind_of_uid(u) {
                Some(Kind::SopClass) if sop.is_none() => {
                    sop = Some(Resolved {
                        uid: (*u).to_owned(),
                        private_name: None,
                    })
                }
                Some(Kind::TransferSyntax) => ts.push(Resolved {
                    uid: (*u).to_owned(),
                    private_name: None,
                }),
                Some(_) => {}
                None => {}
            }
        }
        // A line of a name and its UID: check they agree.
        let name_part = uid_re().replace_all(text, " ");
        let name_part = name_part.trim_matches(|c: char| c.is_whitespace() || c == '|' || c == ':');
        if let Some(s) = sop {
            self.check_name(name_part, &s.uid, Kind::SopClass, at);
            self.bump(sec);
            self.scan.caps.push(RawCap {
                sop: s,
                roles: None,
                section: sec,
                ts,
                ts_ref: None,
                ext_neg: None,
                ev: Evidence::new(at, text),
                table: None,
            });
            return;
        }
        // "Orthanc will prefer the LittleEndianExplicitTransferSyntax transfer syntax
        // (1.2.840.10008.1.2.1)": a preference (read by the parameters), not a list.
        if !ts.is_empty() && super::parameters::has_word_prefer(&window) {
            return;
        }
        if !ts.is_empty() {
            if let Some(t) = ts.first() {
                self.check_name(name_part, &t.uid, Kind::TransferSyntax, at);
            }
            self.push_ts(sec, None, ts, at, text, None);
            return;
        }
        // Only unknown UIDs: a private SOP class or transfer syntax, or a DICOM UID the
        // registry does not know.
        for u in uids {
            if is_dicom_root(u) {
                self.scan.unmatched.push(Note {
                    at: at.clone(),
                    text: format!("UID {u} is under the DICOM root but not in the registry"),
                });
                continue;
            }
            let name = (!name_part.is_empty()).then(|| name_part.to_owned());
            let r = Resolved {
                uid: u.to_owned(),
                private_name: name,
            };
            let is_ts = self
                .scan
                .sections
                .get(sec)
                .is_some_and(|s| s.title.to_lowercase().contains("transfer syntax"))
                || lower.contains("transfer syntax");
            if is_ts {
                self.push_ts(sec, None, vec![r], at, text, None);
            } else if private_sop_row(Some(name_part), &[]) {
                self.bump(sec);
                self.scan.caps.push(RawCap {
                    sop: r,
                    roles: None,
                    section: sec,
                    ts: Vec::new(),
                    ts_ref: None,
                    ext_neg: None,
                    ev: Evidence::new(at, text),
                    table: None,
                });
            }
        }
    }

    /// A line that is only a SOP class name ("• CT Image Storage", "- Storage Commitment
    /// Push Model SOP Class (SCU)"): a list of SOP classes in running text.
    fn name_line(&mut self, text: &str, at: &Loc, sec: usize) {
        let t = text
            .trim()
            .trim_start_matches(['•', '-', '*', '–', '·', '◦', '▪'])
            .trim();
        if t.is_empty() || t.len() > 100 {
            return;
        }
        // A role in parentheses or after a dash belongs to the item.
        let (name, roles) = match t.rsplit_once('(') {
            Some((n, r)) if roles_in(r).is_some() => (n.trim(), roles_in(r)),
            _ => (t, None),
        };
        let name = name.trim_end_matches([':', ',', ';', '.']).trim();
        if let Some(m) = names::resolve(name, Kind::SopClass) {
            if m.quality == Quality::Close {
                return;
            }
            self.bump(sec);
            self.scan.caps.push(RawCap {
                sop: Resolved {
                    uid: m.entry.uid.to_owned(),
                    private_name: None,
                },
                roles,
                section: sec,
                ts: Vec::new(),
                ts_ref: None,
                ext_neg: None,
                ev: Evidence::new(at, text),
                table: None,
            });
        } else if let Some(m) = names::resolve(name, Kind::TransferSyntax) {
            if m.quality != Quality::Close && self.ts_context {
                let r = Resolved {
                    uid: m.entry.uid.to_owned(),
                    private_name: None,
                };
                self.push_ts(sec, None, vec![r], at, text, None);
            }
        } else if !t.to_lowercase().contains("transfer syntax") {
            self.ts_context = false;
        }
    }

    /// Adds a line to the paragraph: lines that follow each other on the page or in the
    /// file; anything else ends the paragraph first.
    fn paragraph_line(&mut self, text: &str, at: &Loc) {
        let follows = self.paragraph.last().is_some_and(|(_, l)| {
            l.page == at.page && at.line == l.line + 1 && l.section == at.section
        });
        if !follows {
            self.flush_paragraph();
        }
        if text.trim().is_empty() {
            self.flush_paragraph();
            return;
        }
        self.paragraph.push((text.trim().to_owned(), at.clone()));
    }

    /// A paragraph of several lines becomes one sentence for the parameter matchers, and
    /// is read for references to other sections ("All the SOP Classes listed in the
    /// "Store SCP Conformance" section are available as an SCU").
    fn flush_paragraph(&mut self) {
        let lines = std::mem::take(&mut self.paragraph);
        let Some((_, at)) = lines.first() else {
            return;
        };
        let at = at.clone();
        let text = lines
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let sec = self.current();
        if lines.len() > 1 {
            self.scan.sentences.push(Sentence {
                text: text.clone(),
                section: sec,
                at: at.clone(),
            });
        }
        if let Some(c) = copy_sentence(&text) {
            self.scan.copies.push(CopyRef {
                target: c.0,
                roles: c.1,
                section: sec,
                ev: Evidence::new(&at, &text),
            });
        }
    }

    fn bump(&mut self, sec: usize) {
        if let Some(n) = self.scan.per_section.get_mut(sec) {
            *n += 1;
        }
    }

    /// Adds transfer syntaxes to the list being built: consecutive lines of one section
    /// make one list, a table makes its own.
    fn push_ts(
        &mut self,
        sec: usize,
        table: Option<usize>,
        entries: Vec<Resolved>,
        at: &Loc,
        text: &str,
        caption: Option<String>,
    ) {
        self.bump(sec);
        if let Some(last) = self.scan.ts_lists.last_mut() {
            if last.section == sec && last.table == table && !(table.is_none() && self.conditional)
            {
                for e in entries {
                    if !last.entries.contains(&e) {
                        last.entries.push(e);
                    }
                }
                return;
            }
        }
        let conditional = std::mem::take(&mut self.conditional);
        self.scan.ts_lists.push(TsList {
            section: sec,
            caption,
            entries,
            ev: Evidence::new(at, text),
            table,
            conditional,
        });
    }

    /// A name printed beside a UID that names another registry entry is an inconsistency
    /// for the report (the UID is kept).
    fn check_name(&mut self, name: &str, u: &str, kind: Kind, at: &Loc) {
        if name.chars().filter(|c| c.is_alphabetic()).count() < 4 {
            return;
        }
        let Some(m) = names::resolve(name, kind) else {
            return;
        };
        if m.entry.uid != u && !same_but_retired(m.entry.uid, u) {
            let mine = uid::name(u).unwrap_or(u);
            self.scan.inconsistencies.push(Note {
                at: at.clone(),
                text: format!(
                    "\"{}\" is printed with UID {u} ({mine}), but the name is {} ({}); drafted {mine} from the UID",
                    super::evidence::one_line(name, 80),
                    m.entry.name,
                    m.entry.uid
                ),
            });
        }
    }

    fn ae_sentence(&mut self, text: &str, at: &Loc) {
        static R: OnceLock<Regex> = OnceLock::new();
        // "set my AE title (default: STORESCP)", "my calling AE title (default: X)",
        // "AE Title: ORTHANC", "the default AE title is PACS1".
        let r = re(
            &R,
            r#"(?i)(?:\bmy\s+(?:calling\s+)?ae[ -]?title[^(\n]*\(default:\s*"?([A-Za-z0-9_\-.]{1,16})"?\s*\)|\bdefault\s+ae[ -]?title\s+(?:is\s+|:\s*)"?([A-Za-z0-9_\-.]{1,16})"?|^\s*(?:local\s+|own\s+)?ae[ -]?title\s*[:=]\s*"?([A-Za-z0-9_\-.]{1,16})"?\s*$)"#,
        );
        if let Some(c) = r.captures(text) {
            if let Some(m) = c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)) {
                self.scan.aes.push(RawAe {
                    title: m.as_str().to_owned(),
                    name: None,
                    port: None,
                    ev: Evidence::new(at, text),
                });
            }
        }
    }

    fn table(&mut self, t: &Table) {
        self.flush_paragraph();
        self.recent.clear();
        let ti = self.table_index;
        self.table_index += 1;
        self.scan.captions.push(t.caption.clone());
        let sec = self.current();
        let mut cols: Vec<Col> = t.header.iter().map(|h| col_of_header(h)).collect();
        let width = t.rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
        cols.resize(width.max(cols.len()), Col::Other);
        // Rows joined for the parameter matchers and AE sentences.
        for r in &t.rows {
            let joined = r
                .cells
                .iter()
                .map(|c| c.replace('\n', " "))
                .collect::<Vec<_>>()
                .join(" | ");
            self.sentence(&joined, &r.at);
        }
        if cols.contains(&Col::AeTitle) {
            self.ae_table(t, &cols);
            return;
        }
        let mut any_sop = false;
        let mut ts_only: Vec<(Vec<Resolved>, Loc, String)> = Vec::new();
        let mut last_cap: Option<usize> = None;
        for row in &t.rows {
            let text = row
                .cells
                .iter()
                .map(|c| c.replace('\n', " / "))
                .collect::<Vec<_>>()
                .join(" | ");
            let got = self.row(row.cells.as_slice(), &cols, &row.at, &text);
            match got {
                RowGot::Cap(mut cap) => {
                    any_sop = true;
                    cap.section = sec;
                    cap.table = Some(ti);
                    self.bump(sec);
                    self.scan.caps.push(*cap);
                    last_cap = Some(self.scan.caps.len() - 1);
                }
                RowGot::Ts(ts) => {
                    // A row with only transfer syntaxes continues the capability above it
                    // (a presentation context row the reader could not join), or belongs to
                    // a list of transfer syntaxes.
                    let first_empty = row.cells.first().is_none_or(|c| c.trim().is_empty());
                    match last_cap.and_then(|i| self.scan.caps.get_mut(i)) {
                        Some(c) if first_empty => {
                            for x in ts {
                                if !c.ts.contains(&x) {
                                    c.ts.push(x);
                                }
                            }
                        }
                        _ => ts_only.push((ts, row.at.clone(), text)),
                    }
                }
                RowGot::Group(mut g) => {
                    any_sop = true;
                    g.section = sec;
                    self.bump(sec);
                    self.scan.groups.push(g);
                }
                RowGot::Nothing => {}
            }
        }
        if !ts_only.is_empty() {
            let caption = t.caption.clone();
            for (ts, at, text) in ts_only {
                if any_sop {
                    self.scan.unreadable.push(Note {
                        at: at.clone(),
                        text: format!(
                            "a row with transfer syntaxes but no SOP class in a table of SOP classes: {}",
                            super::evidence::one_line(&text, 100)
                        ),
                    });
                    continue;
                }
                self.push_ts(sec, Some(ti), ts, &at, &text, caption.clone());
            }
        }
    }

    fn ae_table(&mut self, t: &Table, cols: &[Col]) {
        for row in &t.rows {
            let mut title = None;
            let mut port = None;
            let mut name = None;
            for (i, c) in row.cells.iter().enumerate() {
                match cols.get(i) {
                    Some(Col::AeTitle) => {
                        let v = c.trim().trim_matches('"').trim();
                        if !v.is_empty() && v.len() <= 16 && !v.contains(char::is_whitespace) {
                            title = Some(v.to_owned());
                        }
                    }
                    Some(Col::Port) => port = c.trim().parse().ok(),
                    _ if name.is_none() && !c.trim().is_empty() => name = Some(c.trim().to_owned()),
                    _ => {}
                }
            }
            if let Some(title) = title {
                self.scan.aes.push(RawAe {
                    title,
                    name,
                    port,
                    ev: Evidence::new(&row.at, &row.cells.join(" | ")),
                });
            }
        }
    }

    /// One table row: a capability, a list of transfer syntaxes, or nothing.
    fn row(&mut self, cells: &[String], cols: &[Col], at: &Loc, text: &str) -> RowGot {
        let mut sop_uid: Option<String> = None;
        let mut sop_by_name: Option<(String, Quality, String)> = None;
        let mut sop_name_text: Option<String> = None;
        let mut ts: Vec<Resolved> = Vec::new();
        let mut ts_names: Vec<String> = Vec::new();
        let mut unknown: Vec<(String, Col)> = Vec::new();
        let mut roles: Option<Roles> = None;
        let mut ext = None;
        let mut ts_ref = None;
        let mut flag_cols = false;
        for (i, cell) in cells.iter().enumerate() {
            let col = cols.get(i).copied().unwrap_or(Col::Other);
            let c = cell.trim();
            if c.is_empty() {
                continue;
            }
            match col {
                Col::Role => {
                    roles = roles_of_cell(c).or(roles);
                    continue;
                }
                Col::ScuFlag | Col::ScpFlag => {
                    flag_cols = true;
                    if is_yes(c) {
                        let r = roles.get_or_insert_with(Roles::default);
                        if col == Col::ScuFlag {
                            r.scu = true;
                        } else {
                            r.scp = true;
                        }
                    }
                    continue;
                }
                Col::ExtNeg => {
                    ext = Some(c.to_owned());
                    continue;
                }
                _ => {}
            }
            let uids = if matches!(col, Col::SopUid | Col::TsUid | Col::TsName | Col::Uid) {
                uids_in_uid_column(c)
            } else {
                uids_in(c)
            };
            for u in &uids {
                match names::kind_of_uid(u) {
                    Some(Kind::SopClass) if col != Col::TsUid && col != Col::TsName => {
                        if sop_uid.is_none() {
                            sop_uid = Some((*u).to_owned());
                        }
                    }
                    Some(Kind::TransferSyntax) => {
                        let r = Resolved {
                            uid: (*u).to_owned(),
                            private_name: None,
                        };
                        if !ts.contains(&r) {
                            ts.push(r);
                        }
                    }
                    Some(_) => {}
                    None => unknown.push(((*u).to_owned(), col)),
                }
            }
            if table_ref(c).is_some() && matches!(col, Col::TsName | Col::TsUid) {
                ts_ref = table_ref(c);
            }
            // Names: the cell's text without its UIDs.
            let rest = uid_re().replace_all(c, "\n");
            let rest = rest.trim();
            if rest.is_empty() {
                continue;
            }
            match col {
                Col::TsName | Col::TsUid => {
                    let lines: Vec<&str> = rest
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect();
                    ts_names.extend(join_wrapped(&lines, Kind::TransferSyntax));
                }
                Col::SopName | Col::SopUid | Col::Uid | Col::Other
                    if sop_by_name.is_none() && sop_name_text.is_none() =>
                {
                    {
                        let joined = rest.replace('\n', " ");
                        match names::resolve(&joined, Kind::SopClass) {
                            Some(m) => {
                                sop_by_name =
                                    Some((m.entry.uid.to_owned(), m.quality, joined.clone()))
                            }
                            None if col == Col::SopName => sop_name_text = Some(joined),
                            None => {
                                // An unlabelled column may hold transfer syntax names.
                                for l in rest.lines().map(str::trim).filter(|l| !l.is_empty()) {
                                    if names::resolve(l, Kind::TransferSyntax).is_some() {
                                        ts_names.push(l.to_owned());
                                    }
                                }
                                if col == Col::Other && sop_name_text.is_none() {
                                    sop_name_text = Some(joined);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let _ = flag_cols;
        // Transfer syntax names; one that names a private UID of the row is its name.
        let private_in_row = unknown
            .iter()
            .any(|(u, c)| !is_dicom_root(u) && matches!(c, Col::TsName | Col::TsUid));
        let mut ts_by_name = Vec::new();
        for n in &ts_names {
            if n.to_lowercase().starts_with("see ") || table_ref(n).is_some() {
                continue;
            }
            match names::resolve(n, Kind::TransferSyntax) {
                Some(m) => {
                    if m.quality == Quality::Close {
                        self.scan.close.push(Note {
                            at: at.clone(),
                            text: format!(
                                "\"{n}\" read as {} ({}), a close spelling",
                                m.entry.name, m.entry.uid
                            ),
                        });
                    }
                    let r = Resolved {
                        uid: m.entry.uid.to_owned(),
                        private_name: None,
                    };
                    ts_by_name.push(r);
                }
                None if names::resolve(n, Kind::SopClass).is_some() => {
                    self.scan.inconsistencies.push(Note {
                        at: at.clone(),
                        text: format!(
                            "a column headed as transfer syntaxes holds \"{n}\", a SOP class: the table's header is wrong"
                        ),
                    })
                }
                None if !is_none_word(n) && !private_in_row => self.scan.unmatched.push(Note {
                    at: at.clone(),
                    text: format!("transfer syntax \"{n}\" matches no registry entry"),
                }),
                None => {}
            }
        }
        // Private transfer syntaxes in transfer syntax columns.
        let mut private_ts = Vec::new();
        let mut private_sop = None;
        for (u, col) in &unknown {
            if is_dicom_root(u) {
                if sop_by_name.is_some() && !matches!(col, Col::TsName | Col::TsUid) {
                    continue; // reported below as a name/UID mismatch
                }
                self.scan.unmatched.push(Note {
                    at: at.clone(),
                    text: format!("UID {u} is under the DICOM root but not in the registry"),
                });
                continue;
            }
            if matches!(col, Col::TsName | Col::TsUid) {
                let name = ts_names
                    .iter()
                    .find(|n| names::resolve(n, Kind::TransferSyntax).is_none())
                    .cloned();
                private_ts.push(Resolved {
                    uid: u.clone(),
                    private_name: name,
                });
            } else if private_sop.is_none()
                && sop_uid.is_none()
                && private_sop_row(sop_name_text.as_deref(), cols)
            {
                private_sop = Some(Resolved {
                    uid: u.clone(),
                    private_name: sop_name_text.clone(),
                });
            }
        }
        for r in ts_by_name.into_iter().chain(private_ts) {
            if !ts.contains(&r) {
                ts.push(r);
            }
        }
        if sop_uid.is_none() && sop_by_name.is_none() && private_sop.is_none() {
            let target = cells.iter().enumerate().find_map(|(i, c)| {
                let col = cols.get(i).copied().unwrap_or(Col::Other);
                (!matches!(col, Col::TsName | Col::TsUid | Col::Role | Col::ExtNeg))
                    .then(|| table_ref(c))
                    .flatten()
            });
            if let Some(target) = target {
                return RowGot::Group(GroupRow {
                    target,
                    roles,
                    ts,
                    ts_ref,
                    section: 0,
                    ev: Evidence::new(at, text),
                });
            }
        }
        let sop = match (&sop_uid, &sop_by_name) {
            (Some(u), Some((nu, _, name))) => {
                if u != nu && !same_but_retired(u, nu) {
                    let mine = uid::name(u).unwrap_or(u);
                    let theirs = uid::name(nu).unwrap_or(nu);
                    self.scan.inconsistencies.push(Note {
                        at: at.clone(),
                        text: format!(
                            "\"{}\" is printed with UID {u} ({mine}), but the name is {theirs} ({nu}); drafted {mine} from the UID",
                            super::evidence::one_line(name, 80)
                        ),
                    });
                }
                Some(Resolved {
                    uid: u.clone(),
                    private_name: None,
                })
            }
            (Some(u), None) => Some(Resolved {
                uid: u.clone(),
                private_name: None,
            }),
            (None, Some((nu, q, name))) => {
                // A DICOM-root UID printed beside the name that the registry does not know.
                if let Some((bad, _)) = unknown
                    .iter()
                    .find(|(u, c)| is_dicom_root(u) && !matches!(c, Col::TsName | Col::TsUid))
                {
                    self.scan.inconsistencies.push(Note {
                        at: at.clone(),
                        text: format!(
                            "\"{}\" is printed with UID {bad}, which is not in the registry; the name is {} ({nu}): drafted from the name",
                            super::evidence::one_line(name, 80),
                            uid::name(nu).unwrap_or(nu)
                        ),
                    });
                } else if *q == Quality::Close {
                    self.scan.close.push(Note {
                        at: at.clone(),
                        text: format!(
                            "\"{}\" read as {} ({nu}), a close spelling",
                            super::evidence::one_line(name, 80),
                            uid::name(nu).unwrap_or(nu)
                        ),
                    });
                }
                Some(Resolved {
                    uid: nu.clone(),
                    private_name: None,
                })
            }
            (None, None) => private_sop,
        };
        match sop {
            Some(sop) => RowGot::Cap(Box::new(RawCap {
                sop,
                roles,
                section: 0,
                ts,
                ts_ref,
                ext_neg: ext,
                ev: Evidence::new(at, text),
                table: None,
            })),
            None => {
                if let Some(n) = sop_name_text {
                    if cols.contains(&Col::SopName) && !is_none_word(&n) && looks_like_sop_name(&n)
                    {
                        self.scan.unmatched.push(Note {
                            at: at.clone(),
                            text: format!("SOP class \"{n}\" matches no registry entry"),
                        });
                        return RowGot::Nothing;
                    }
                }
                if !ts.is_empty() {
                    return RowGot::Ts(ts);
                }
                RowGot::Nothing
            }
        }
    }
}

enum RowGot {
    Cap(Box<RawCap>),
    Group(GroupRow),
    Ts(Vec<Resolved>),
    Nothing,
}

/// The names in the lines of one cell, where a name may wrap over several lines
/// ("Little Endian Implicit Transfer" / "Syntax"): lines are joined until the registry
/// knows the name, at most four at a time; what never resolves is kept line by line.
pub fn join_wrapped(lines: &[&str], kind: Kind) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut taken = None;
        // The longest run that names an entry exactly wins over a shorter one.
        for n in (1..=4.min(lines.len() - i)).rev() {
            let candidate = lines[i..i + n].join(" ");
            if names::resolve(&candidate, kind).is_some_and(|m| m.quality != Quality::Close) {
                taken = Some((candidate, n));
                break;
            }
        }
        match taken {
            Some((c, n)) => {
                out.push(c);
                i += n;
            }
            None => {
                if let Some(l) = lines.get(i) {
                    out.push((*l).to_owned());
                }
                i += 1;
            }
        }
    }
    out
}

fn is_none_word(s: &str) -> bool {
    let t = s.trim().trim_end_matches('.').to_ascii_lowercase();
    matches!(
        t.as_str(),
        "none" | "n/a" | "na" | "-" | "no" | "not supported" | ""
    )
}

/// A cell worth reporting when no registry entry matches it: it reads like a SOP class.
fn looks_like_sop_name(s: &str) -> bool {
    let l = s.to_lowercase();
    [
        "storage",
        "sop",
        "model",
        "retrieve",
        "query",
        "management",
        "print",
        "worklist",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// Whether an unknown UID in a row is a private SOP class: in a column of SOP classes or
/// UIDs, or beside a name that reads like one; never a parameter ("Implementation Class
/// UID | 1.2.3...").
fn private_sop_row(name: Option<&str>, cols: &[Col]) -> bool {
    let lower = name.unwrap_or("").to_lowercase();
    if lower.contains("implementation") || lower.contains("instance") {
        return false;
    }
    cols.iter().any(|c| matches!(c, Col::SopName | Col::SopUid)) || looks_like_sop_name(&lower)
}

/// A current and a retired entry that share a name (Ultrasound Multi-frame Image Storage).
fn same_but_retired(a: &str, b: &str) -> bool {
    match (uid::name(a), uid::name(b)) {
        (Some(x), Some(y)) => names::normalise(x).0 == names::normalise(y).0,
        _ => false,
    }
}

/// "... as an SCU", "acts as SCP", "in the SCP role": the roles a sentence gives the
/// SOP classes that follow it. Both roles in one sentence say nothing.
fn role_sentence(lower: &str) -> Option<Roles> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(&R, r"\b(?:as\s+(?:an?\s+)?|in\s+the\s+)(scu|scp)\b");
    let mut out = Roles::default();
    for c in r.captures_iter(lower) {
        match c.get(1).map(|m| m.as_str()) {
            Some("scu") => out.scu = true,
            Some("scp") => out.scp = true,
            _ => {}
        }
    }
    (out.any() && !(out.scu && out.scp)).then_some(out)
}

/// "All the SOP Classes that are listed in the "Store SCP Conformance" (see above) section
/// are available as an SCU": the quoted section (or "Table N") and the role.
fn copy_sentence(text: &str) -> Option<(String, Roles)> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r#"(?i)\b(?:listed|given|supported)\s+in\s+(?:the\s+)?(?:"([^"]{3,80})"|“([^”]{3,80})”|(table\s+[A-Z]?[0-9][0-9A-Z.\-–]*))"#,
    );
    let c = r.captures(text)?;
    let target = c
        .get(1)
        .or_else(|| c.get(2))
        .or_else(|| c.get(3))?
        .as_str()
        .to_owned();
    let roles = role_sentence(&text.to_lowercase())?;
    Some((target, roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_told_from_numbers() {
        assert_eq!(
            uids_in("CT | 1.2.840.10008.5.1.4.1.1.2"),
            ["1.2.840.10008.5.1.4.1.1.2"]
        );
        assert!(uids_in("see section 4.2.1.3.1 and 127.0.0.1, version 3.6.7").is_empty());
        assert_eq!(
            uids_in("PrivateShutdownSOPClass 1.2.276.0.7230010.3.4.1915765545.18030.917282194.0"),
            ["1.2.276.0.7230010.3.4.1915765545.18030.917282194.0"]
        );
    }

    #[test]
    fn roles_from_words_and_sentences() {
        assert_eq!(
            roles_in("Store SCP Conformance").map(|r| (r.scu, r.scp)),
            Some((false, true))
        );
        assert_eq!(roles_in("STORESCP Application"), None);
        assert_eq!(
            role_sentence("orthanc supports the following sop classes as an scu for c-echo:")
                .map(|r| (r.scu, r.scp)),
            Some((true, false))
        );
        assert_eq!(role_sentence("as an scu and as an scp"), None);
        let c = copy_sentence(
            "All the SOP Classes that are listed in the \"Store SCP Conformance\" (see above) section are available as an SCU for C-Store.",
        );
        assert_eq!(
            c.map(|(t, r)| (t, r.scu)),
            Some(("Store SCP Conformance".into(), true))
        );
    }

    #[test]
    fn wrapped_names_are_joined() {
        let got = join_wrapped(
            &[
                "Little Endian Implicit Transfer",
                "Syntax",
                "JPEG Baseline (Process 1)",
                "RLE Lossless",
            ],
            Kind::TransferSyntax,
        );
        assert_eq!(
            got,
            [
                "Little Endian Implicit Transfer Syntax",
                "JPEG Baseline (Process 1)",
                "RLE Lossless"
            ]
        );
    }

    #[test]
    fn table_references() {
        assert_eq!(table_ref("See Table 4.2-3").as_deref(), Some("Table 4.2-3"));
        assert_eq!(
            table_ref("Table 6: Transfer Syntaxes").as_deref(),
            Some("Table 6")
        );
        assert_eq!(table_ref("no reference"), None);
    }
}
