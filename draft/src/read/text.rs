//! Plain text, Markdown and reStructuredText reader.
//!
//! The file is read line by line in one pass (every step consumes at least one line, a
//! table as many as it has). What is recognised, in every flavour unless said:
//!
//! - headings: a title under- (and over-) lined with a repeated punctuation character
//!   (`=====`, `-----`, `~~~~~`; levels in the order the styles first appear, as
//!   reStructuredText does; Markdown's `===` is level 1 and `---` level 2), Markdown
//!   `#` headings, DCMTK's doxygen `\page`, `\section`, `\subsection`,
//!   `\subsubsection`, and in plain text numbered headings ("4.2.1 Storage SCP", level =
//!   how many numbers);
//! - literal blocks (doxygen `\verbatim`, reStructuredText `::` and `.. code-block::`,
//!   Markdown code fences): no headings or markup inside, but whitespace-aligned
//!   columns are tables;
//! - tables: reStructuredText grid, simple and list tables, Markdown pipe tables, and
//!   plain column tables ([`columns`]); a "Table N ..." line just before a table (or
//!   `.. table:: caption`) is its caption;
//! - every other non-blank line is a [`Block::Line`], inline markup removed.
//!
//! [`Loc::line`] is the 1-based line in the file (the title's line for a heading, the
//! first line of the row for a table row); [`Loc::section`] the current heading.

pub(crate) mod columns;
pub(crate) mod markup;
mod rst;

pub(crate) use rst::merge_header;

use std::borrow::Cow;

use crate::document::{Block, Document, Format, Loc, Table};

use super::ReadError;
use super::detect;
use markup::Inline;

/// One line of the file: 1-based number and text (tabs expanded to 8-column stops,
/// control characters and man page overstrike removed).
#[derive(Debug, Clone)]
pub(crate) struct SrcLine<'a> {
    pub no: u32,
    pub text: Cow<'a, str>,
}

/// A table as a reader found it, before it gets its [`Loc`].
#[derive(Debug, Clone, Default)]
pub(crate) struct RawTable {
    /// Line of the table's first line.
    pub line: u32,
    pub header: Vec<String>,
    pub rows: Vec<(u32, Vec<String>)>,
    pub caption: Option<String>,
}

/// Reads a text document of the given flavour.
pub fn read(bytes: &[u8], source: &str, format: Format) -> Result<Document, ReadError> {
    let decoded = detect::decode(bytes)?;
    let text = decoded.text.as_ref();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ReadError::Empty);
    }
    let lines = split_lines(text);
    let doxygen = lines.iter().take(200).any(|l| {
        let s = l.text.trim();
        s == "/*!" || s.starts_with("\\page ") || s.starts_with("\\mainpage")
    });
    let mut r = Reader {
        format,
        inline: match format {
            Format::Markdown => Inline::Markdown,
            Format::Rst => Inline::Rst,
            _ if doxygen => Inline::Doxygen,
            _ => Inline::Plain,
        },
        doxygen,
        blocks: Vec::new(),
        section: None,
        title: None,
        styles: Vec::new(),
        tables: 0,
        problems: Vec::new(),
        pending_caption: None,
    };
    r.run(&lines);
    Ok(Document {
        source: source.to_string(),
        format,
        pages: None,
        title: r.title,
        blocks: r.blocks,
        problems: r.problems,
    })
}

/// Splits into lines (`\n`, `\r\n` or lone `\r`), cleaning each.
pub(crate) fn split_lines(text: &str) -> Vec<SrcLine<'_>> {
    let mut out = Vec::new();
    let mut no: u32 = 0;
    let bytes = text.as_bytes();
    let mut start = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                no = no.saturating_add(1);
                out.push(SrcLine {
                    no,
                    text: clean_line(&text[start..i]),
                });
                i += 1;
                start = i;
            }
            b'\r' => {
                no = no.saturating_add(1);
                out.push(SrcLine {
                    no,
                    text: clean_line(&text[start..i]),
                });
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        no = no.saturating_add(1);
        out.push(SrcLine {
            no,
            text: clean_line(&text[start..]),
        });
    }
    out
}

/// Tabs to spaces (8-column stops), `X\bX` overstrike to `X`, other control
/// characters dropped. Borrows when there is nothing to do.
fn clean_line(l: &str) -> Cow<'_, str> {
    if !l.chars().any(|c| c.is_control()) {
        return Cow::Borrowed(l);
    }
    let mut out = String::with_capacity(l.len() + 8);
    let mut col = 0usize;
    for c in l.chars() {
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\u{8}' => {
                if out.pop().is_some() {
                    col = col.saturating_sub(1);
                }
            }
            c if c.is_control() => {}
            c => {
                out.push(c);
                col += 1;
            }
        }
    }
    Cow::Owned(out)
}

struct Reader {
    format: Format,
    inline: Inline,
    doxygen: bool,
    blocks: Vec<Block>,
    section: Option<String>,
    title: Option<String>,
    /// Heading adornment styles in order of first use: (character, overlined).
    styles: Vec<(char, bool)>,
    tables: usize,
    problems: Vec<String>,
    /// A caption given by `.. table:: caption` for the next table.
    pending_caption: Option<String>,
}

impl Reader {
    fn run(&mut self, lines: &[SrcLine<'_>]) {
        let n = lines.len();
        let mut i = 0;
        // Doxygen `\if ... \else ... \endif`: the `\else` branch is skipped.
        let mut skip_else = false;
        while i < n {
            let l = &lines[i];
            let s = l.text.trim();
            if s.is_empty() {
                i += 1;
                continue;
            }
            if self.doxygen {
                if skip_else {
                    if s.starts_with("\\endif") {
                        skip_else = false;
                    }
                    i += 1;
                    continue;
                }
                if let Some(next) = self.doxygen_line(lines, i, &mut skip_else) {
                    i = next;
                    continue;
                }
            }
            if let Some(next) = self.literal_block(lines, i) {
                i = next;
                continue;
            }
            if self.format == Format::Rst {
                if let Some(next) = self.rst_directive(lines, i) {
                    i = next;
                    continue;
                }
            }
            if rst::starts_grid(s) {
                match rst::grid(lines, i, self.inline) {
                    Ok((t, next)) => {
                        self.table(t);
                        i = next;
                        continue;
                    }
                    Err(why) => self.problems.push(format!("{why}; read as text")),
                }
            }
            if detect::is_simple_table_border(s) {
                match rst::simple(lines, i, self.inline) {
                    Ok((t, next)) => {
                        self.table(t);
                        i = next;
                        continue;
                    }
                    Err(why) => self.problems.push(format!("{why}; read as text")),
                }
            }
            if self.format == Format::Markdown {
                if let Some((t, next)) = rst::pipe(lines, i, self.inline) {
                    self.table(t);
                    i = next;
                    continue;
                }
            }
            // A column table with a header rule comes before an underlined heading, a
            // heading before a column table without one.
            let columns = columns::take(lines, i, false, false, self.inline);
            if let Some((t, next)) = columns {
                if !t.header.is_empty() {
                    self.table(t);
                    i = next;
                    continue;
                }
                if let Some(next) = self.heading(lines, i) {
                    i = next;
                    continue;
                }
                self.table(t);
                i = next;
                continue;
            }
            if let Some(next) = self.heading(lines, i) {
                i = next;
                continue;
            }
            self.line(l.no, s);
            i += 1;
        }
    }

    /// A doxygen structural command at `lines[i]`: the index after it.
    fn doxygen_line(
        &mut self,
        lines: &[SrcLine<'_>],
        i: usize,
        skip_else: &mut bool,
    ) -> Option<usize> {
        let l = &lines[i];
        let s = l.text.trim();
        if s == "/*!" || s == "*/" || s.starts_with("\\if ") || s.starts_with("\\endif") {
            return Some(i + 1);
        }
        if s.starts_with("\\else") {
            *skip_else = true;
            return Some(i + 1);
        }
        let cmd = s.split_whitespace().next()?;
        let level = match cmd {
            "\\page" | "\\mainpage" => 1,
            "\\section" => 2,
            "\\subsection" => 3,
            "\\subsubsection" => 4,
            "\\paragraph" => 5,
            "\\verbatim" | "\\code" => {
                let close = if cmd == "\\verbatim" {
                    "\\endverbatim"
                } else {
                    "\\endcode"
                };
                let end = lines[i + 1..]
                    .iter()
                    .position(|x| x.text.trim() == close)
                    .map_or(lines.len(), |p| i + 1 + p);
                self.verbatim(&lines[i + 1..end]);
                return Some((end + 1).min(lines.len()));
            }
            _ => return None,
        };
        // `\section NAME Title` (`\mainpage Title` has no name).
        let mut words = s.split_whitespace().skip(1);
        if cmd != "\\mainpage" {
            words.next();
        }
        let title = markup::strip(&words.collect::<Vec<_>>().join(" "), Inline::Doxygen);
        if level == 1 && self.title.is_none() && !title.is_empty() {
            self.title = Some(title.clone());
        }
        if !title.is_empty() {
            self.heading_block(level, title, l.no);
        }
        Some(i + 1)
    }

    /// A literal block (Markdown code fence, reStructuredText `::` paragraph or code
    /// directive): its lines read as verbatim; the index after it.
    fn literal_block(&mut self, lines: &[SrcLine<'_>], i: usize) -> Option<usize> {
        let l = &lines[i];
        let s = l.text.trim();
        match self.format {
            Format::Markdown => {
                let fence = if s.starts_with("```") {
                    "```"
                } else if s.starts_with("~~~") {
                    "~~~"
                } else {
                    return None;
                };
                let end = lines[i + 1..]
                    .iter()
                    .position(|x| x.text.trim().starts_with(fence))
                    .map_or(lines.len(), |p| i + 1 + p);
                self.verbatim(&lines[i + 1..end]);
                Some((end + 1).min(lines.len()))
            }
            Format::Rst => {
                let code = [
                    ".. code-block::",
                    ".. code::",
                    ".. sourcecode::",
                    ".. parsed-literal::",
                ]
                .iter()
                .any(|d| s.starts_with(d));
                let literal = !code && s.ends_with("::") && !s.starts_with("..");
                if !code && !literal {
                    return None;
                }
                if literal {
                    // "Paragraph::" shows as "Paragraph:"; a lone "::" shows nothing.
                    let shown = s[..s.len() - 1].trim_end();
                    if shown != ":" {
                        self.line(l.no, shown);
                    }
                }
                let indent = rst::indent_of(&l.text);
                let mut j = i + 1;
                // Directive options (":linenos:") belong to the directive.
                while code && j < lines.len() && lines[j].text.trim().starts_with(':') {
                    j += 1;
                }
                let body_start = j;
                let mut end = j;
                while j < lines.len() {
                    let t = &lines[j].text;
                    if t.trim().is_empty() {
                        j += 1;
                        continue;
                    }
                    if rst::indent_of(t) <= indent {
                        break;
                    }
                    j += 1;
                    end = j;
                }
                if end == body_start && literal {
                    return Some(i + 1);
                }
                self.verbatim(&lines[body_start..end]);
                Some(end.max(i + 1))
            }
            _ => None,
        }
    }

    /// reStructuredText directives and comments that are not text; the index after.
    fn rst_directive(&mut self, lines: &[SrcLine<'_>], i: usize) -> Option<usize> {
        let l = &lines[i];
        let s = l.text.trim();
        let rest = s.strip_prefix("..")?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        let rest = rest.trim();
        if rest.starts_with("list-table::") {
            return match rst::list_table(lines, i, self.inline) {
                Ok((t, next)) => {
                    self.table(t);
                    Some(next)
                }
                Err(why) => {
                    self.problems.push(format!("{why}; skipped"));
                    Some(i + 1)
                }
            };
        }
        if let Some(caption) = rest.strip_prefix("table::") {
            let caption = markup::strip(caption, self.inline);
            self.pending_caption = (!caption.is_empty()).then_some(caption);
        } else if rest.contains("::") {
            // Another directive: its own line says nothing; its body is read on.
        } else if rest.starts_with('_') || rest.starts_with('|') || rest.starts_with('[') {
            // A target, substitution or footnote definition.
        } else {
            // A comment: its indented continuation lines too.
            let indent = rst::indent_of(&l.text);
            let mut j = i + 1;
            while j < lines.len()
                && !lines[j].text.trim().is_empty()
                && rst::indent_of(&lines[j].text) > indent
            {
                j += 1;
            }
            return Some(j);
        }
        let mut j = i + 1;
        while j < lines.len() && is_option_line(lines[j].text.trim()) {
            j += 1;
        }
        Some(j)
    }

    /// A heading at `lines[i]`: the index after it.
    fn heading(&mut self, lines: &[SrcLine<'_>], i: usize) -> Option<usize> {
        let l = &lines[i];
        let s = l.text.trim();
        let next = lines.get(i + 1).map(|x| x.text.trim());
        // Overline, title, underline.
        if detect::is_adornment(s) {
            let title = next?;
            let under = lines.get(i + 2).map(|x| x.text.trim())?;
            if !title.is_empty()
                && !detect::is_adornment(title)
                && under.chars().next() == s.chars().next()
                && detect::is_adornment(under)
            {
                let c = s.chars().next().unwrap_or('=');
                let level = self.style_level(c, true);
                let text = markup::strip(title, self.inline);
                self.heading_block(level, text, lines[i + 1].no);
                return Some(i + 3);
            }
            return None;
        }
        // Title, underline.
        if let Some(under) = next {
            if detect::is_adornment(under)
                && rst::indent_of(&l.text) < 4
                && under.chars().count() + 2
                    >= s.chars().count().min(under.chars().count() + 2).max(3)
                && under.chars().count() * 2 >= s.chars().count()
                && !s.contains("  |")
            {
                let c = under.chars().next().unwrap_or('-');
                let level = if self.format == Format::Markdown {
                    if c == '=' { 1 } else { 2 }
                } else {
                    self.style_level(c, false)
                };
                let text = markup::strip(s, self.inline);
                self.heading_block(level, text, l.no);
                return Some(i + 2);
            }
        }
        if self.format == Format::Markdown && s.starts_with('#') {
            let hashes = s.bytes().take_while(|&b| b == b'#').count();
            if hashes <= 6 && (s.len() == hashes || s.as_bytes()[hashes] == b' ') {
                let text = s[hashes..].trim().trim_end_matches('#').trim();
                let text = markup::strip(text, self.inline);
                if !text.is_empty() {
                    self.heading_block(hashes as u8, text, l.no);
                    return Some(i + 1);
                }
            }
        }
        if self.format == Format::Text && !self.doxygen {
            let prev_blank = i == 0 || lines[i - 1].text.trim().is_empty();
            if prev_blank {
                if let Some(level) = numbered_heading(s) {
                    let list_like = lines[i + 1..]
                        .iter()
                        .find(|x| !x.text.trim().is_empty())
                        .and_then(|x| numbered_heading(x.text.trim()))
                        == Some(level)
                        && level == 1;
                    if !list_like {
                        let text = markup::collapse(s);
                        self.heading_block(level, text, l.no);
                        return Some(i + 1);
                    }
                }
            }
        }
        None
    }

    fn style_level(&mut self, c: char, over: bool) -> u8 {
        let idx = match self.styles.iter().position(|&st| st == (c, over)) {
            Some(p) => p,
            None => {
                if self.styles.len() < 16 {
                    self.styles.push((c, over));
                }
                self.styles.len() - 1
            }
        };
        (idx + 1).min(6) as u8
    }

    fn heading_block(&mut self, level: u8, text: String, line: u32) {
        if text.is_empty() {
            return;
        }
        if self.title.is_none() {
            self.title = Some(text.clone());
        }
        self.section = Some(text.clone());
        self.blocks.push(Block::Heading {
            level: level.max(1),
            at: Loc {
                page: None,
                line,
                section: Some(text.clone()),
                table: None,
            },
            text,
        });
    }

    fn line(&mut self, no: u32, s: &str) {
        let s = strip_bullet(s);
        let text = markup::strip(s, self.inline);
        if text.is_empty() {
            return;
        }
        self.blocks.push(Block::Line {
            text,
            at: self.loc(no, None),
        });
    }

    /// A literal block: whitespace-aligned columns are tables, the rest lines as they
    /// are.
    fn verbatim(&mut self, body: &[SrcLine<'_>]) {
        let mut i = 0;
        let only_one = body.iter().filter(|l| !l.text.trim().is_empty()).count() == 1;
        while i < body.len() {
            let l = &body[i];
            let s = l.text.trim();
            if s.is_empty() {
                i += 1;
                continue;
            }
            if let Some((t, next)) = columns::take(body, i, true, only_one, Inline::Plain) {
                self.table(t);
                i = next.max(i + 1);
                continue;
            }
            let text = markup::collapse(s);
            self.blocks.push(Block::Line {
                text,
                at: self.loc(l.no, None),
            });
            i += 1;
        }
    }

    fn loc(&self, line: u32, table: Option<String>) -> Loc {
        Loc {
            page: None,
            line,
            section: self.section.clone(),
            table,
        }
    }

    /// Adds a table, with its caption: `.. table::`, or a "Table N ..." line just
    /// before it (taken out of the running text).
    fn table(&mut self, raw: RawTable) {
        self.tables += 1;
        let mut caption = raw.caption.or_else(|| self.pending_caption.take());
        if caption.is_none() {
            if let Some(Block::Line { text, at }) = self.blocks.last() {
                if is_caption(text) && raw.line.saturating_sub(at.line) <= 2 {
                    caption = Some(text.clone());
                    self.blocks.pop();
                }
            }
        }
        let name = caption
            .clone()
            .unwrap_or_else(|| format!("table {}", self.tables));
        let rows = raw
            .rows
            .into_iter()
            .map(|(line, cells)| (cells, self.loc(line, Some(name.clone()))))
            .collect();
        let at = self.loc(raw.line, Some(name));
        self.blocks
            .push(Block::Table(Table::squared(caption, raw.header, rows, at)));
    }
}

/// `:option: value` lines after a directive.
fn is_option_line(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(':') else {
        return false;
    };
    rest.find(':').is_some_and(|p| {
        p > 0
            && rest[..p]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// "Table 4.2-3 Storage SOP Classes", "Table A.1: ...".
pub(crate) fn is_caption(t: &str) -> bool {
    let Some(rest) = t
        .strip_prefix("Table ")
        .or_else(|| t.strip_prefix("TABLE "))
    else {
        return false;
    };
    let num = rest.split_whitespace().next().unwrap_or("");
    num.bytes().any(|b| b.is_ascii_digit()) && t.len() <= 200
}

/// The level of a numbered heading ("4.2.1 Storage SCP" is 3, "A.4.2 ..." is 3), if the
/// line is one: a short line, a number of one to six parts, a capitalised title that
/// does not end like a sentence.
pub(crate) fn numbered_heading(s: &str) -> Option<u8> {
    if s.len() > 100 {
        return None;
    }
    let (num, title) = s.split_once(' ')?;
    let title = title.trim();
    let num = num.strip_suffix('.').unwrap_or(num);
    let parts: Vec<&str> = num.split('.').collect();
    if parts.is_empty() || parts.len() > 6 {
        return None;
    }
    let annex =
        parts.len() > 1 && parts[0].len() == 1 && parts[0].bytes().all(|b| b.is_ascii_uppercase());
    let numeric = |p: &&str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    if !(parts.iter().all(numeric) || (annex && parts[1..].iter().all(numeric))) {
        return None;
    }
    let first = title.chars().next()?;
    if !(first.is_uppercase() || first == '"') {
        return None;
    }
    if title.ends_with(['.', ',', ';', ':']) || title.split_whitespace().count() > 12 {
        return None;
    }
    Some(parts.len() as u8)
}

/// A list item's text without its bullet.
fn strip_bullet(s: &str) -> &str {
    for b in ["- ", "* ", "+ ", "• ", "\\li "] {
        if let Some(r) = s.strip_prefix(b) {
            return r.trim_start();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(s: &str, f: Format) -> Document {
        read(s.as_bytes(), "test", f).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn numbered_headings() {
        assert_eq!(numbered_heading("4.2.1 Storage SCP"), Some(3));
        assert_eq!(numbered_heading("A.4.2 Association Policies"), Some(3));
        assert_eq!(numbered_heading("1. Introduction"), Some(1));
        assert_eq!(numbered_heading("1. Start the server and wait."), None);
        assert_eq!(numbered_heading("1.2.840.10008.1.1 is the UID"), None);
        assert_eq!(numbered_heading("2017 was a good year"), None);
        let d = read_str(
            "1 Introduction\n\nText.\n\n4.2.1 Storage SCP\n\nCT Image Storage   1.2.840.10008.5.1.4.1.1.2\nMR Image Storage   1.2.840.10008.5.1.4.1.1.4\n",
            Format::Text,
        );
        let t = d.tables().next().expect("a table");
        assert_eq!(t.at.section.as_deref(), Some("4.2.1 Storage SCP"));
        assert_eq!(t.rows[1].at.line, 8);
    }

    #[test]
    fn markdown_table_and_headings() {
        let d = read_str(
            "# DICOM Conformance\n\n## Storage SCP\n\nTable 3: Storage SOP Classes\n\n| SOP Class | UID |\n|:---|---:|\n| **CT Image Storage** | `1.2.840.10008.5.1.4.1.1.2` |\n| MR Image Storage | 1.2.840.10008.5.1.4.1.1.4 | extra |\n",
            Format::Markdown,
        );
        let t = d.tables().next().expect("a table");
        assert_eq!(t.header, ["SOP Class", "UID"]);
        assert_eq!(t.caption.as_deref(), Some("Table 3: Storage SOP Classes"));
        assert_eq!(
            t.rows[0].cells,
            ["CT Image Storage", "1.2.840.10008.5.1.4.1.1.2"]
        );
        assert_eq!(t.rows[1].cells.len(), 2);
        assert_eq!(t.at.section.as_deref(), Some("Storage SCP"));
        assert_eq!(t.at.line, 7);
        assert_eq!(d.title.as_deref(), Some("DICOM Conformance"));
    }

    #[test]
    fn rst_simple_and_list_tables() {
        let d = read_str(
            "Storage\n=======\n\n=====================  ===========================\nSOP Class              UID\n=====================  ===========================\nCT Image Storage       1.2.840.10008.5.1.4.1.1.2\nLegacy Converted CT    1.2.840.10008.5.1.4.1.1.2.2\n                       (since 2014)\nMR Image Storage       1.2.840.10008.5.1.4.1.1.4\n=====================  ===========================\n\n.. list-table:: Transfer Syntaxes\n   :header-rows: 1\n\n   * - Name\n     - UID\n   * - Implicit VR Little Endian\n     - 1.2.840.10008.1.2\n\nAfter.\n",
            Format::Rst,
        );
        let tables: Vec<&Table> = d.tables().collect();
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].header, ["SOP Class", "UID"]);
        assert_eq!(tables[0].rows.len(), 3);
        assert_eq!(
            tables[0].rows[1].cells,
            [
                "Legacy Converted CT",
                "1.2.840.10008.5.1.4.1.1.2.2\n(since 2014)"
            ]
        );
        assert_eq!(tables[0].rows[2].at.line, 10);
        assert_eq!(tables[1].caption.as_deref(), Some("Transfer Syntaxes"));
        assert_eq!(tables[1].header, ["Name", "UID"]);
        assert_eq!(
            tables[1].rows[0].cells,
            ["Implicit VR Little Endian", "1.2.840.10008.1.2"]
        );
        assert!(matches!(d.blocks.last(), Some(Block::Line { text, .. }) if text == "After."));
    }

    #[test]
    fn grid_spans() {
        let d = read_str(
            "+-----------+--------+--------+\n| SOP Class | Transfer Syntax |\n|           +--------+--------+\n|           | Name   | UID    |\n+===========+========+========+\n| CT Image  | ILE    | 1.2    |\n| Storage   +--------+--------+\n|           | ELE    | 1.2.1  |\n+-----------+--------+--------+\n",
            Format::Rst,
        );
        let t = d.tables().next().expect("a table");
        assert_eq!(
            t.header,
            ["SOP Class", "Transfer Syntax\nName", "Transfer Syntax\nUID"]
        );
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].cells, ["CT Image\nStorage", "ILE", "1.2"]);
        assert_eq!(t.rows[1].cells, ["CT Image\nStorage", "ELE", "1.2.1"]);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
    }

    #[test]
    fn broken_grid_is_text_and_a_problem() {
        let d = read_str("+-----+-----+\n| a   | b   |\n| c  d\n", Format::Rst);
        // The pipe lines are still read, as a plain column table without header.
        assert!(d.tables().all(|t| t.header.is_empty()));
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        assert!(d.problems[0].starts_with("line 3:"), "{:?}", d.problems);
    }

    #[test]
    fn line_endings_tabs_and_overstrike() {
        let d = read_str("N\u{8}NA\u{8}AM\u{8}ME\r\nCT\tImage\rlast", Format::Text);
        let lines: Vec<(&str, u32)> = d
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Line { text, at } => Some((text.as_str(), at.line)),
                _ => None,
            })
            .collect();
        assert_eq!(lines, [("NAME", 1), ("CT Image", 2), ("last", 3)]);
    }
}
