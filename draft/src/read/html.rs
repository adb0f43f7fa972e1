//! HTML reader: the document parsed by html5ever (the HTML5 parsing algorithm, as a
//! browser does, through the `scraper` crate's DOM), then walked in reading order.
//!
//! - `h1`-`h6` (and a `<p class="...heading...">` or a bold numbered paragraph) are
//!   headings; paragraphs, list items and other blocks are lines, a `<br>` ends a line;
//! - a `<table>` is a [`Table`]: rows from `<thead>`, `<tbody>`, `<tfoot>` or directly
//!   under the table; `rowspan` and `colspan` expanded so that every row has every
//!   column's text; the header is the `<thead>` rows, or the leading rows made of
//!   `<th>` only, merged; `<br>` and block children inside a cell become `\n`; the
//!   `<caption>`, or a "Table N ..." paragraph just before, is the caption; a table
//!   inside a cell is read as a table of its own after the one holding it;
//! - `<pre>` is a literal block: whitespace-aligned columns in it are tables;
//! - `script`, `style`, `nav`, `noscript`, `template`, `head` and navigation bars are
//!   skipped.
//!
//! [`Loc::line`] is the line of the element's start tag in the file, recorded while
//! parsing.

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::collections::HashMap;

use ego_tree::{NodeId, NodeRef};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink, Node};

use crate::document::{Block, Document, Format, Loc, Table};

use super::ReadError;
use super::detect::{self, Decoded};
use super::text::{self, RawTable, columns, markup};

/// Elements deeper than this are read as plain text (a bound on the walk's recursion).
const MAX_DEPTH: usize = 200;
/// `colspan` at most (as the HTML standard clamps it) and columns at most per table.
const MAX_COLSPAN: usize = 1000;
/// `rowspan` at most (as the HTML standard clamps it).
const MAX_ROWSPAN: usize = 65534;
/// Cells at most in one table (rows x columns) before the rest is cut.
const MAX_TABLE_CELLS: usize = 1_000_000;

/// Elements nested deeper than this (estimated before parsing) make the page refused:
/// the parser's time grows with the square of the depth.
const MAX_NESTING: usize = 5000;

const SKIP: &[&str] = &[
    "script", "style", "nav", "noscript", "template", "head", "iframe", "object", "svg", "button",
    "select", "form", "input",
];
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "figure",
    "figcaption",
    "address",
    "center",
    "body",
    "html",
    "hr",
    "caption",
    "details",
    "summary",
    "fieldset",
    "legend",
    "tr",
    "td",
    "th",
];

/// Reads a HTML document.
pub fn read(bytes: &[u8], source: &str) -> Result<Document, ReadError> {
    let decoded = decode_html(bytes)?;
    let text = decoded.text.as_ref();
    if text.trim().is_empty() {
        return Err(ReadError::Empty);
    }
    let depth = nesting_estimate(text);
    if depth > MAX_NESTING {
        return Err(ReadError::Html(format!(
            "elements are nested about {depth} deep (pages nest a few hundred at most; \
             more than {MAX_NESTING} is not a document)"
        )));
    }
    let sink = LineSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        line: Cell::new(1),
        // About one element per 64 bytes of markup: no rehashing on the way.
        lines: RefCell::new(HashMap::with_capacity(text.len() / 64)),
    };
    let (html, lines) = html5ever::driver::parse_document(sink, Default::default()).one(text);
    let mut w = Walker {
        lines: &lines,
        blocks: Vec::new(),
        section: None,
        tables: 0,
        problems: Vec::new(),
        pending: String::new(),
        pending_line: 0,
        cur_line: 0,
        first_heading: None,
    };
    let root = html.tree.root();
    let title = find_title(root, 0);
    w.walk(root, 0);
    w.flush();
    if w.blocks.is_empty() {
        return Err(ReadError::Html(
            "no text found in the page (it may be built by scripts)".into(),
        ));
    }
    Ok(Document {
        source: source.to_string(),
        format: Format::Html,
        pages: None,
        title: title.or(w.first_heading),
        blocks: w.blocks,
        problems: w.problems,
    })
}

/// Elements with an end tag that may be left out, and void elements: they do not
/// nest (the parser closes them), so they do not count towards the depth.
const NOT_NESTING: &[&str] = &[
    "p", "li", "td", "th", "tr", "dt", "dd", "option", "optgroup", "thead", "tbody", "tfoot",
    "colgroup", "caption", "rb", "rt", "rp", "html", "head", "body", "br", "img", "hr", "meta",
    "link", "input", "col", "area", "base", "embed", "param", "source", "track", "wbr",
];

/// How deep the page's elements nest, estimated in one pass over the text: start tags
/// minus end tags, leaving out the tags that do not nest, comments and the contents of
/// `script` and `style`.
fn nesting_estimate(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'<') {
        i += p + 1;
        if b[i..].starts_with(b"!--") {
            match text[i..].find("-->") {
                Some(e) => i += e + 3,
                None => break,
            }
            continue;
        }
        let close = b.get(i) == Some(&b'/');
        let start = i + usize::from(close);
        let len = b[start..]
            .iter()
            .position(|c| !c.is_ascii_alphanumeric())
            .unwrap_or(b.len() - start);
        if len == 0 || !b[start].is_ascii_alphabetic() {
            continue;
        }
        let name = text[start..start + len].to_ascii_lowercase();
        i = start + len;
        if NOT_NESTING.contains(&name.as_str()) {
            continue;
        }
        if close {
            depth = depth.saturating_sub(1);
            continue;
        }
        let end = b[i..]
            .iter()
            .position(|&c| c == b'>')
            .map_or(b.len(), |e| i + e);
        if end > i && b[end - 1] == b'/' {
            continue;
        }
        if name == "script" || name == "style" {
            let closing = format!("</{name}");
            let lower_rest = &b[end.min(b.len())..];
            match lower_rest
                .windows(closing.len())
                .position(|w| w.eq_ignore_ascii_case(closing.as_bytes()))
            {
                Some(e) => i = end + e,
                None => break,
            }
            continue;
        }
        depth += 1;
        max = max.max(depth);
        i = end.min(b.len());
    }
    max
}

/// Decodes a HTML file: a byte order mark, else the `charset` a `<meta>` declares in the
/// first 4 KB, else UTF-8 if it is valid, else Windows-1252.
fn decode_html(bytes: &[u8]) -> Result<Decoded<'_>, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        return detect::decode_with(enc, &bytes[bom_len..], bom_len);
    }
    match declared_charset(&bytes[..bytes.len().min(4096)]) {
        Some(enc) if enc != UTF_8 => detect::decode_with(enc, bytes, 0),
        Some(_) => match std::str::from_utf8(bytes) {
            Ok(_) => detect::decode_with(UTF_8, bytes, 0),
            // Declared UTF-8 but is not: pages saved by old editors are Windows-1252.
            Err(_) => detect::decode_with(WINDOWS_1252, bytes, 0),
        },
        None => detect::decode(bytes),
    }
}

/// The encoding named by `charset=` in the page's start (a `<meta charset>` or
/// `<meta http-equiv content="...; charset=...">`); UTF-16 labels mean UTF-8 here, as
/// the HTML standard says for a declaration read from ASCII bytes.
fn declared_charset(head: &[u8]) -> Option<&'static Encoding> {
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let mut from = 0;
    while let Some(p) = lower[from..].windows(7).position(|w| w == b"charset") {
        let mut i = from + p + 7;
        from = i;
        while i < lower.len() && lower[i].is_ascii_whitespace() {
            i += 1;
        }
        if lower.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < lower.len()
            && (lower[i].is_ascii_whitespace() || lower[i] == b'"' || lower[i] == b'\'')
        {
            i += 1;
        }
        let start = i;
        while i < lower.len() && (lower[i].is_ascii_alphanumeric() || b"-_:.".contains(&lower[i])) {
            i += 1;
        }
        if let Some(enc) = Encoding::for_label(&lower[start..i]) {
            if enc.name().starts_with("UTF-16") {
                return Some(UTF_8);
            }
            return Some(enc);
        }
    }
    None
}

/// html5ever's tree sink for `scraper`'s DOM, recording the line of every element's
/// start tag.
struct LineSink {
    inner: HtmlTreeSink,
    line: Cell<u64>,
    lines: RefCell<HashMap<NodeId, u32>>,
}

impl TreeSink for LineSink {
    type Handle = NodeId;
    type Output = (Html, HashMap<NodeId, u32>);
    type ElemName<'a>
        = Ref<'a, QualName>
    where
        Self: 'a;

    fn finish(self) -> Self::Output {
        (self.inner.finish(), self.lines.into_inner())
    }
    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg)
    }
    fn get_document(&self) -> NodeId {
        self.inner.get_document()
    }
    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Ref<'a, QualName> {
        self.inner.elem_name(target)
    }
    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        let id = self.inner.create_element(name, attrs, flags);
        let line = u32::try_from(self.line.get()).unwrap_or(u32::MAX);
        self.lines.borrow_mut().insert(id, line);
        id
    }
    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.inner.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.inner.create_pi(target, data)
    }
    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        self.inner.append(parent, child)
    }
    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        self.inner.append_based_on_parent_node(element, prev, child)
    }
    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        self.inner
            .append_doctype_to_document(name, public_id, system_id)
    }
    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.inner.get_template_contents(target)
    }
    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.inner.same_node(x, y)
    }
    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode)
    }
    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        self.inner.append_before_sibling(sibling, new_node)
    }
    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs)
    }
    fn remove_from_parent(&self, target: &NodeId) {
        self.inner.remove_from_parent(target)
    }
    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        self.inner.reparent_children(node, new_parent)
    }
    fn set_current_line(&self, line_number: u64) {
        self.line.set(line_number);
    }
}

fn element_name<'a>(n: &NodeRef<'a, Node>) -> Option<&'a str> {
    match n.value() {
        Node::Element(e) => Some(e.name()),
        _ => None,
    }
}

fn find_title(n: NodeRef<'_, Node>, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    if element_name(&n) == Some("title") {
        let t = markup::collapse(&raw_text(n));
        return (!t.is_empty()).then_some(t);
    }
    if element_name(&n) == Some("body") {
        return None;
    }
    n.children().find_map(|c| find_title(c, depth + 1))
}

/// The text under `n` as it is (for `<pre>` and the title).
fn raw_text(n: NodeRef<'_, Node>) -> String {
    let mut out = String::new();
    for d in n.descendants() {
        match d.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) if e.name() == "br" => out.push('\n'),
            _ => {}
        }
    }
    out
}

/// A cell's (or heading's) text: block children and `<br>` become line breaks,
/// whitespace collapsed within lines, empty lines dropped. Tables inside are not part
/// of it: they are returned to be read on their own.
fn block_text<'a>(n: NodeRef<'a, Node>, nested: &mut Vec<NodeRef<'a, Node>>) -> String {
    let mut raw = String::new();
    collect(n, &mut raw, nested, 0);
    raw.split('\n')
        .map(markup::collapse)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn collect<'a>(
    n: NodeRef<'a, Node>,
    out: &mut String,
    nested: &mut Vec<NodeRef<'a, Node>>,
    depth: usize,
) {
    for c in n.children() {
        match c.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                let name = e.name();
                if SKIP.contains(&name) {
                    continue;
                }
                if name == "br" {
                    out.push('\n');
                } else if name == "table" {
                    nested.push(c);
                    out.push('\n');
                } else if depth >= MAX_DEPTH {
                    out.push_str(&raw_text(c));
                } else if BLOCKS.contains(&name) || name == "pre" || is_heading(name).is_some() {
                    out.push('\n');
                    collect(c, out, nested, depth + 1);
                    out.push('\n');
                } else {
                    collect(c, out, nested, depth + 1);
                }
            }
            _ => {}
        }
    }
}

fn is_heading(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// A navigation bar by its class (DocBook's `navheader`/`navfooter`, "breadcrumb").
fn is_navigation(e: &scraper::node::Element) -> bool {
    e.classes().any(|c| {
        let c = c.to_ascii_lowercase();
        c.starts_with("nav") || c.contains("breadcrumb") || c == "toc"
    })
}

/// The level of a paragraph styled as a heading: `<p class="Heading2">`,
/// `<p class="MsoHeading3">`, or a numbered paragraph all in bold.
fn paragraph_heading(n: NodeRef<'_, Node>, e: &scraper::node::Element, text: &str) -> Option<u8> {
    if text.is_empty() || text.len() > 150 || text.contains('\n') {
        return None;
    }
    for c in e.classes() {
        let lc = c.to_ascii_lowercase();
        if lc.contains("heading") || lc == "title" {
            let digit = lc.bytes().rev().find(u8::is_ascii_digit).map(|d| d - b'0');
            return Some(
                digit
                    .filter(|d| (1..=6).contains(d))
                    .or_else(|| text::numbered_heading(text))
                    .unwrap_or(1),
            );
        }
    }
    let mut elements = n
        .children()
        .filter(|c| !matches!(c.value(), Node::Text(t) if t.trim().is_empty()));
    let only = elements.next()?;
    if elements.next().is_none() && matches!(element_name(&only), Some("b" | "strong")) {
        return text::numbered_heading(text);
    }
    None
}

struct Walker<'a> {
    lines: &'a HashMap<NodeId, u32>,
    blocks: Vec<Block>,
    section: Option<String>,
    tables: usize,
    problems: Vec<String>,
    pending: String,
    pending_line: u32,
    cur_line: u32,
    first_heading: Option<String>,
}

impl<'a> Walker<'a> {
    fn line_of(&self, n: &NodeRef<'_, Node>) -> u32 {
        self.lines.get(&n.id()).copied().unwrap_or(0)
    }

    fn walk(&mut self, n: NodeRef<'_, Node>, depth: usize) {
        for c in n.children() {
            self.visit(c, depth + 1);
        }
    }

    fn visit(&mut self, n: NodeRef<'_, Node>, depth: usize) {
        let e = match n.value() {
            Node::Text(t) => {
                self.push_text(t);
                return;
            }
            Node::Element(e) => e,
            _ => return,
        };
        let name = e.name();
        if SKIP.contains(&name) || is_navigation(e) {
            return;
        }
        let line = self.line_of(&n);
        if depth > MAX_DEPTH {
            let t = raw_text(n);
            self.push_text(&t);
            return;
        }
        if let Some(level) = is_heading(name) {
            self.flush();
            let mut nested = Vec::new();
            let text = markup::collapse(&block_text(n, &mut nested));
            self.heading(level, text, line);
            return;
        }
        match name {
            "table" => {
                self.flush();
                self.table(n, depth);
            }
            "br" => self.flush(),
            "pre" => {
                self.flush();
                self.pre(n, line);
            }
            "p" => {
                self.flush();
                let mut nested = Vec::new();
                let text = block_text(n, &mut nested);
                if let Some(level) = paragraph_heading(n, e, &text) {
                    self.heading(level, text, line);
                    return;
                }
                self.cur_line = line;
                self.walk(n, depth);
                self.flush();
            }
            _ if BLOCKS.contains(&name) => {
                self.flush();
                if line > 0 {
                    self.cur_line = line;
                }
                self.walk(n, depth);
                self.flush();
            }
            _ => {
                if line > 0 {
                    self.cur_line = line;
                }
                self.walk(n, depth);
            }
        }
    }

    fn push_text(&mut self, t: &str) {
        if self.pending.trim().is_empty() && !t.trim().is_empty() {
            self.pending_line = self.cur_line;
        }
        self.pending.push_str(t);
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let text = markup::collapse(&self.pending);
        self.pending.clear();
        if !text.is_empty() {
            let at = self.loc(self.pending_line, None);
            self.blocks.push(Block::Line { text, at });
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

    fn heading(&mut self, level: u8, text: String, line: u32) {
        if text.is_empty() {
            return;
        }
        if self.first_heading.is_none() {
            self.first_heading = Some(text.clone());
        }
        self.section = Some(text.clone());
        self.blocks.push(Block::Heading {
            level,
            at: Loc {
                page: None,
                line,
                section: Some(text.clone()),
                table: None,
            },
            text,
        });
    }

    /// `<pre>`: its lines, whitespace-aligned columns as tables.
    fn pre(&mut self, n: NodeRef<'_, Node>, line: u32) {
        let raw = raw_text(n);
        let mut src = text::split_lines(&raw);
        for l in &mut src {
            l.no = l.no.saturating_add(line.saturating_sub(1));
        }
        let only_one = src.iter().filter(|l| !l.text.trim().is_empty()).count() == 1;
        let mut i = 0;
        while i < src.len() {
            let s = src[i].text.trim();
            if s.is_empty() {
                i += 1;
                continue;
            }
            if let Some((t, next)) = columns::take(&src, i, true, only_one, markup::Inline::Plain) {
                self.push_table(t);
                i = next.max(i + 1);
                continue;
            }
            let text = markup::collapse(s);
            let at = self.loc(src[i].no, None);
            self.blocks.push(Block::Line { text, at });
            i += 1;
        }
    }

    fn table(&mut self, t: NodeRef<'_, Node>, depth: usize) {
        let mut nested: Vec<NodeRef<'_, Node>> = Vec::new();
        let mut caption: Option<String> = None;
        // (row element, in thead)
        let mut trs: Vec<(NodeRef<'_, Node>, bool)> = Vec::new();
        for c in t.children() {
            match element_name(&c) {
                Some("caption") => {
                    let text = markup::collapse(&block_text(c, &mut nested));
                    if !text.is_empty() {
                        caption = Some(text);
                    }
                }
                Some(g @ ("thead" | "tbody" | "tfoot")) => {
                    for r in c.children() {
                        if element_name(&r) == Some("tr") {
                            trs.push((r, g == "thead"));
                        }
                    }
                }
                Some("tr") => trs.push((c, false)),
                _ => {}
            }
        }
        let mut rows: Vec<(u32, Vec<String>)> = Vec::with_capacity(trs.len());
        let mut header_rows: Vec<Vec<String>> = Vec::new();
        // Per column: rows still to fill by a rowspan above, and its text.
        let mut spans: Vec<Option<(usize, String)>> = Vec::new();
        let mut cells_total = 0usize;
        let mut cut = false;
        let mut in_header = true;
        for (tr, in_thead) in trs {
            let mut row: Vec<String> = Vec::new();
            let mut all_th = true;
            let mut any_cell = false;
            let mut col = 0usize;
            for cell in tr.children() {
                let Node::Element(e) = cell.value() else {
                    continue;
                };
                let is_th = match e.name() {
                    "th" => true,
                    "td" => false,
                    _ => continue,
                };
                any_cell = true;
                all_th &= is_th;
                fill_spans(&mut spans, &mut row, &mut col);
                let text = block_text(cell, &mut nested);
                let colspan = span_attr(e.attr("colspan"), MAX_COLSPAN).max(1);
                let rowspan = match e.attr("rowspan").map(str::trim) {
                    Some("0") => MAX_ROWSPAN,
                    r => span_attr(r, MAX_ROWSPAN).max(1),
                };
                for _ in 0..colspan {
                    if col >= MAX_COLSPAN {
                        break;
                    }
                    if row.len() <= col {
                        row.resize(col + 1, String::new());
                    }
                    row[col] = text.clone();
                    if rowspan > 1 {
                        if spans.len() <= col {
                            spans.resize(col + 1, None);
                        }
                        spans[col] = Some((rowspan - 1, text.clone()));
                    }
                    col += 1;
                }
            }
            // Rowspans from above reaching past this row's last cell.
            let mut c = col;
            while c < spans.len() {
                if let Some((left, text)) = spans[c].take() {
                    if row.len() <= c {
                        row.resize(c + 1, String::new());
                    }
                    row[c] = text.clone();
                    if left > 1 {
                        spans[c] = Some((left - 1, text));
                    }
                }
                c += 1;
            }
            if !any_cell && row.is_empty() {
                continue;
            }
            cells_total = cells_total.saturating_add(row.len().max(1));
            if cells_total > MAX_TABLE_CELLS {
                cut = true;
                break;
            }
            let header = in_header && (in_thead || (all_th && any_cell));
            if header {
                header_rows.push(row);
            } else {
                in_header = false;
                rows.push((self.line_of(&tr), row));
            }
        }
        let line = self.line_of(&t);
        if cut {
            self.problems.push(format!(
                "line {line}: a table of more than {MAX_TABLE_CELLS} cells; the rest is cut"
            ));
        }
        let raw = RawTable {
            line,
            header: text::merge_header(header_rows),
            rows,
            caption,
        };
        self.push_table(raw);
        for inner in nested {
            if depth < MAX_DEPTH {
                self.table(inner, depth + 1);
            }
        }
    }

    fn push_table(&mut self, raw: RawTable) {
        if raw.rows.is_empty() && raw.header.is_empty() {
            return;
        }
        self.tables += 1;
        let mut caption = raw.caption;
        if caption.is_none() {
            if let Some(Block::Line { text, .. }) = self.blocks.last() {
                if text::is_caption(text) {
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

/// Fills the columns a rowspan from above covers, from `col` on, moving `col` past them.
fn fill_spans(spans: &mut [Option<(usize, String)>], row: &mut Vec<String>, col: &mut usize) {
    while *col < spans.len() {
        let Some((left, text)) = spans[*col].take() else {
            break;
        };
        if row.len() <= *col {
            row.resize(*col + 1, String::new());
        }
        row[*col] = text.clone();
        if left > 1 {
            spans[*col] = Some((left - 1, text));
        }
        *col += 1;
    }
}

/// A `rowspan`/`colspan` value, clamped to `max`; 1 when absent or not a number.
fn span_attr(v: Option<&str>, max: usize) -> usize {
    v.and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .min(max)
}
