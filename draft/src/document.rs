//! The document model every reader produces and the drafter consumes: a conformance
//! statement reduced to headings, lines of running text and tables, in reading order,
//! each with where it came from. Page headers and footers are already gone; a table
//! continued over several pages is one [`Table`], its repeated header rows dropped; a
//! cell that wraps over several lines is one cell whose lines are joined with `\n`.

use std::fmt;

use serde::Serialize;

/// What a document was read as (detected from its content, never from its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Pdf,
    Html,
    Text,
    Markdown,
    Rst,
}

impl Format {
    /// The name shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "PDF",
            Format::Html => "HTML",
            Format::Text => "text",
            Format::Markdown => "Markdown",
            Format::Rst => "reStructuredText",
        }
    }
}

/// Where a piece of a document is: what a reviewer needs to find the sentence again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Loc {
    /// 1-based page (PDF only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// 1-based line: on the page for a PDF, in the file for text, Markdown, RST and HTML
    /// (0 when unknown).
    pub line: u32,
    /// The heading of the enclosing section as printed ("4.2.1 Storage SCP"), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The table's caption or number ("Table 4.2-3") when inside a table, else its
    /// 1-based position among the document's tables ("table 7").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

impl fmt::Display for Loc {
    /// "page 12, line 34", "line 345", "section 4.2 Storage, table 3".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = self.page {
            parts.push(format!("page {p}"));
        }
        if self.line > 0 {
            parts.push(format!("line {}", self.line));
        }
        if let Some(t) = &self.table {
            parts.push(t.clone());
        }
        if parts.is_empty() {
            if let Some(s) = &self.section {
                parts.push(format!("section {s}"));
            }
        }
        if parts.is_empty() {
            f.write_str("unknown place")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// One table row: its cells' texts in column order and where the row starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    pub cells: Vec<String>,
    pub at: Loc,
}

/// A table: the header row (cells of several header lines merged), the body rows, and
/// where the table starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// The caption as printed ("Table 4.2-3 Storage SOP Classes"), when the document
    /// gives one just before or after the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Header cells; empty when the table has no recognisable header.
    pub header: Vec<String>,
    pub rows: Vec<Row>,
    pub at: Loc,
}

impl Table {
    /// A table whose body rows and header all have as many cells as its widest row, so
    /// that a column index means the same in every row (readers pad short rows).
    pub fn squared(
        caption: Option<String>,
        mut header: Vec<String>,
        rows: Vec<(Vec<String>, Loc)>,
        at: Loc,
    ) -> Table {
        let width = rows
            .iter()
            .map(|r| r.0.len())
            .chain(std::iter::once(header.len()))
            .max()
            .unwrap_or(0);
        if !header.is_empty() {
            header.resize(width, String::new());
        }
        let rows = rows
            .into_iter()
            .map(|(mut cells, at)| {
                cells.resize(width, String::new());
                Row { cells, at }
            })
            .collect();
        Table {
            caption,
            header,
            rows,
            at,
        }
    }
}

/// One piece of a document in reading order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Block {
    /// A section heading; `level` 1 is the top (a numbered heading "4.2.1" is level 3).
    Heading {
        level: u8,
        text: String,
        at: Loc,
    },
    /// A line of running text (a paragraph line, a list item, a caption not attached to
    /// a table).
    Line {
        text: String,
        at: Loc,
    },
    Table(Table),
}

impl Block {
    /// Where the block starts.
    pub fn at(&self) -> &Loc {
        match self {
            Block::Heading { at, .. } | Block::Line { at, .. } => at,
            Block::Table(t) => &t.at,
        }
    }
}

/// A whole document as the drafter reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// The input's name as given by the user (file path).
    pub source: String,
    pub format: Format,
    /// Pages (PDF only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// The document's title when it states one (PDF metadata, HTML `<title>`, the first
    /// heading of a text file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub blocks: Vec<Block>,
    /// What the reader could not read, e.g. "page 17: table with 2 columns on some rows
    /// and 5 on others", for the report.
    pub problems: Vec<String>,
}

impl Document {
    /// Every table of the document.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Table(t) => Some(t),
            _ => None,
        })
    }
}
