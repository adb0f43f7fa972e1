//! Positioned words to a [`Document`]'s blocks: lines (words grouped by baseline,
//! ordered by x), segments (words split at wide gaps and ruling lines), page headers and
//! footers removed, tables (consecutive lines whose segments align to shared column
//! starts; rows split at horizontal rules or wider line gaps; continuation lines joined
//! into their row's cells), tables continued over pages merged, captions attached, and
//! headings recognised by their numbering or size.

use std::collections::HashMap;

use crate::document::{Block, Loc, Row, Table};

use super::extract::{Page, Rule, Word};

/// A line of text on a page.
#[derive(Debug, Clone)]
pub struct Line {
    pub page: u32,
    /// 1-based line on the page, counting every line printed on it (headers too).
    pub number: u32,
    pub y: f32,
    pub size: f32,
    pub words: Vec<Word>,
    /// Word index ranges, one per segment (words separated by a wide gap or a rule).
    pub segments: Vec<(usize, usize)>,
}

impl Line {
    pub fn text(&self) -> String {
        join_words(&self.words)
    }
    fn seg_x0(&self, s: usize) -> f32 {
        self.words[self.segments[s].0].x0
    }
    fn top(&self) -> f32 {
        self.y - self.size * 0.85
    }
}

fn join_words(words: &[Word]) -> String {
    let mut s = String::new();
    for w in words {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&w.text);
    }
    s
}

/// Groups a page's words into lines top to bottom, each ordered by x.
pub fn lines(page: &Page) -> Vec<Line> {
    let mut words: Vec<&Word> = page.words.iter().collect();
    words.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x0.total_cmp(&b.x0)));
    let mut groups: Vec<Vec<Word>> = Vec::new();
    let mut group_y = f32::NEG_INFINITY;
    for w in words {
        let tol = (w.size * 0.35).max(1.0);
        match groups.last_mut() {
            Some(g) if (w.y - group_y).abs() <= tol => g.push(w.clone()),
            _ => {
                group_y = w.y;
                groups.push(vec![w.clone()]);
            }
        }
    }
    let vertical: Vec<&Rule> = page.rules.iter().filter(|r| r.is_vertical()).collect();
    let mut out = Vec::with_capacity(groups.len());
    for (i, mut g) in groups.into_iter().enumerate() {
        g.sort_by(|a, b| a.x0.total_cmp(&b.x0));
        let y = g.iter().map(|w| w.y).fold(f32::NEG_INFINITY, f32::max);
        let size = g.iter().map(|w| w.size).fold(0.0, f32::max);
        let mut segments = Vec::new();
        let mut start = 0;
        for k in 1..g.len() {
            let (a, b) = (&g[k - 1], &g[k]);
            let gap = b.x0 - a.x1;
            let em = a.size.max(b.size);
            let ruled = vertical.iter().any(|r| {
                r.x0 >= a.x1 - 0.5 && r.x1 <= b.x0 + 0.5 && r.y0 <= y && r.y1 >= y - em * 0.5
            });
            if gap > em * 0.9 || ruled {
                segments.push((start, k));
                start = k;
            }
        }
        segments.push((start, g.len()));
        out.push(Line {
            page: page.number,
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            y,
            size,
            words: g,
            segments,
        });
    }
    out
}

/// The text of a line with digits folded, to recognise running headers and footers.
fn shape(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect::<String>()
        .split('#')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("#")
}

/// "Page 3 of 120", "3/120", "- 3 -", "3", "iii".
pub fn is_page_number(text: &str) -> bool {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let num = |s: &str| !s.is_empty() && s.len() <= 5 && s.chars().all(|c| c.is_ascii_digit());
    let roman = |s: &str| !s.is_empty() && s.len() <= 6 && s.chars().all(|c| "ivxlc".contains(c));
    match words.as_slice() {
        [n] => num(n) || roman(n) || n.split_once('/').is_some_and(|(a, b)| num(a) && num(b)),
        ["page", n] => num(n) || roman(n),
        ["page", n, "of", m] | [n, "of", m] => num(n) && num(m),
        ["-", n, "-"] => num(n),
        _ => false,
    }
}

/// Removes running headers and footers: lines in the top or bottom margin that repeat,
/// digits aside, at the same height on most pages, and page numbers there.
///
/// Lines inside a ruled box (a table's header row repeated on every page) are not
/// running headers: the table reader drops repeated header rows itself.
pub fn strip_margins(pages: &mut [(f32, Vec<Line>, Vec<Rule>)]) -> usize {
    let counted = pages.iter().filter(|(_, l, _)| !l.is_empty()).count();
    let mut seen: HashMap<(String, i32), usize> = HashMap::new();
    for (h, lines, rules) in pages.iter() {
        let mut keys: Vec<(String, i32)> = lines
            .iter()
            .filter(|l| in_margin(l, *h) && !boxed(l, rules))
            .map(|l| (shape(&l.text()), (l.y / 3.0).round() as i32))
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            *seen.entry(k).or_default() += 1;
        }
    }
    let threshold = (counted / 2).max(2);
    let mut removed = 0;
    for (h, lines, rules) in pages.iter_mut() {
        let before = lines.len();
        let h = *h;
        let rules: &[Rule] = rules;
        lines.retain(|l| {
            if !in_margin(l, h) || boxed(l, rules) {
                return true;
            }
            let text = l.text();
            let yk = (l.y / 3.0).round() as i32;
            let repeated = (-1..=1).any(|d| {
                seen.get(&(shape(&text), yk + d))
                    .is_some_and(|&n| n >= threshold)
            });
            let numbered = l.segments.len() <= 3
                && l.segments
                    .iter()
                    .any(|&(a, b)| is_page_number(&join_words(&l.words[a..b])))
                && (l.segments.len() == 1 || repeated || counted <= 2);
            !(repeated || numbered)
        });
        removed += before - lines.len();
    }
    removed
}

/// A vertical rule runs past the line on its left or right.
fn boxed(l: &Line, rules: &[Rule]) -> bool {
    let (Some(first), Some(last)) = (l.words.first(), l.words.last()) else {
        return false;
    };
    let top = l.y - l.size * 0.7;
    rules.iter().any(|r| {
        r.is_vertical()
            && r.y0 <= top
            && r.y1 >= l.y
            && (r.x0 <= first.x0 + 0.5 || r.x1 >= last.x1 - 0.5)
            && (first.x0 - r.x0 < 40.0 || r.x0 - last.x1 < 40.0)
    })
}

fn in_margin(l: &Line, page_height: f32) -> bool {
    let h = if page_height > 0.0 {
        page_height
    } else {
        842.0
    };
    l.y < h * 0.09 || l.y > h * 0.91
}

/// Words the header row of a conformance statement table uses.
const HEADER_WORDS: &[&str] = &[
    "sop class",
    "uid",
    "transfer syntax",
    "role",
    "abstract syntax",
    "extended negotiation",
    "negotiation",
    "name",
    "description",
    "service",
    "presentation context",
    "attribute",
    "tag",
    "type",
    "value",
    "comment",
    "remark",
    "matching",
    "level",
    "scu",
    "scp",
];

fn has_uid(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .any(|t| {
            t.starts_with("1.2.")
                && t.len() > 6
                && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

fn looks_like_header(cells: &[String]) -> bool {
    let all = cells.join(" ").to_lowercase();
    if has_uid(&all) || all.len() > 300 {
        return false;
    }
    let hits = cells
        .iter()
        .filter(|c| {
            let c = c.to_lowercase();
            HEADER_WORDS.iter().any(|w| c.contains(w))
        })
        .count();
    hits >= 1 && (hits * 2 >= cells.iter().filter(|c| !c.is_empty()).count() || hits >= 2)
}

/// A table row while tables are assembled: each cell's lines.
#[derive(Debug, Clone)]
struct PRow {
    cells: Vec<Vec<String>>,
    page: u32,
    line: u32,
    /// The first column is empty: the row continues the one before (a row split by a
    /// page break).
    continues: bool,
}

#[derive(Debug, Clone)]
struct PTable {
    page: u32,
    /// The last page the table is on so far.
    last_page: u32,
    line: u32,
    columns: Vec<f32>,
    header: Vec<String>,
    rows: Vec<PRow>,
}

/// Intermediate blocks of one page.
#[derive(Debug, Clone)]
enum PBlock {
    Line(Line),
    Table(PTable),
}

fn matches_column(x: f32, columns: &[f32]) -> Option<usize> {
    columns.iter().position(|&c| (c - x).abs() <= 4.0)
}

/// The column a word starting at `x` falls in.
fn column_of(x: f32, columns: &[f32]) -> usize {
    let mut col = 0;
    for (i, &c) in columns.iter().enumerate() {
        if x >= c - 4.0 {
            col = i;
        }
    }
    col
}

/// Does the line fit a table with these column starts?
fn fits(line: &Line, columns: &[f32]) -> bool {
    (0..line.segments.len()).all(|s| matches_column(line.seg_x0(s), columns).is_some())
}

/// Finds tables among a page's lines; the other lines stay lines.
fn page_blocks(lines: Vec<Line>, rules: &[Rule]) -> Vec<PBlock> {
    let horizontal: Vec<&Rule> = rules.iter().filter(|r| r.is_horizontal()).collect();
    let mut blocks: Vec<PBlock> = Vec::new();
    let mut i = 0;
    let n = lines.len();
    while i < n {
        let first = &lines[i];
        if first.segments.len() < 2 {
            blocks.push(PBlock::Line(first.clone()));
            i += 1;
            continue;
        }
        // Grow a table from this line: column starts from multi-segment lines.
        let mut columns: Vec<f32> = (0..first.segments.len()).map(|s| first.seg_x0(s)).collect();
        let mut end = i + 1;
        let mut last_y = first.y;
        let pitch_limit = first.size * 3.2;
        while end < n {
            let l = &lines[end];
            if l.y - last_y > pitch_limit.max(l.size * 3.2) {
                break;
            }
            if fits(l, &columns) {
                // A lone line at the first column is part of the table only if the
                // table goes on after it.
                if l.segments.len() == 1 && matches_column(l.seg_x0(0), &columns) == Some(0) {
                    let next_fits = lines.get(end + 1).is_some_and(|m| {
                        m.segments.len() >= 2 && fits(m, &columns) && m.y - l.y <= pitch_limit
                    });
                    if !next_fits {
                        break;
                    }
                }
            } else if l.segments.len() >= 2 {
                let starts: Vec<f32> = (0..l.segments.len()).map(|s| l.seg_x0(s)).collect();
                let matched = starts
                    .iter()
                    .filter(|&&x| matches_column(x, &columns).is_some())
                    .count();
                if matched >= 2 && l.seg_x0(0) >= columns[0] - 4.0 {
                    for x in starts {
                        if matches_column(x, &columns).is_none() {
                            columns.push(x);
                        }
                    }
                    columns.sort_by(f32::total_cmp);
                } else {
                    break;
                }
            } else {
                break;
            }
            last_y = l.y;
            end += 1;
        }
        if end - i < 2 {
            blocks.push(PBlock::Line(first.clone()));
            i += 1;
            continue;
        }
        blocks.push(PBlock::Table(build_table(
            &lines[i..end],
            columns,
            &horizontal,
        )));
        i = end;
    }
    blocks
}

fn build_table(lines: &[Line], columns: Vec<f32>, horizontal: &[&Rule]) -> PTable {
    let ncol = columns.len();
    let x_probe = columns[0] + 1.0;
    let ruled = lines.windows(2).any(|w| {
        horizontal
            .iter()
            .any(|r| r.y0 > w[0].y && r.y1 < w[1].top() && r.x0 <= x_probe && r.x1 >= x_probe)
    });
    let mut pitch = f32::INFINITY;
    for w in lines.windows(2) {
        let d = w[1].y - w[0].y;
        if d > 0.5 {
            pitch = pitch.min(d);
        }
    }
    let mut rows: Vec<PRow> = Vec::new();
    let mut prev: Option<&Line> = None;
    for l in lines {
        let mut cells: Vec<Vec<Word>> = vec![Vec::new(); ncol];
        for w in &l.words {
            cells[column_of(w.x0, &columns)].push(w.clone());
        }
        let first_empty = cells[0].is_empty();
        let new_row = match prev {
            None => true,
            Some(p) if ruled => horizontal
                .iter()
                .any(|r| r.y0 > p.y && r.y1 < l.top() + 1.0 && r.x0 <= x_probe && r.x1 >= x_probe),
            Some(p) => !first_empty && l.y - p.y > pitch * 1.25,
        };
        let texts: Vec<String> = cells.iter().map(|c| join_words(c)).collect();
        if new_row || rows.is_empty() {
            rows.push(PRow {
                cells: texts
                    .into_iter()
                    .map(|t| if t.is_empty() { Vec::new() } else { vec![t] })
                    .collect(),
                page: l.page,
                line: l.number,
                continues: first_empty,
            });
        } else if let Some(row) = rows.last_mut() {
            for (c, t) in texts.into_iter().enumerate() {
                if !t.is_empty() {
                    row.cells[c].push(t);
                }
            }
        }
        prev = Some(l);
    }
    let mut header = Vec::new();
    if let Some(first) = rows.first() {
        let joined: Vec<String> = first.cells.iter().map(|c| c.join(" ")).collect();
        if !first.continues && looks_like_header(&joined) {
            header = joined;
            rows.remove(0);
        }
    }
    // A row whose first column is empty continues the row before it.
    let mut folded: Vec<PRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match folded.last_mut() {
            Some(last) if row.continues => {
                for (c, lines) in row.cells.into_iter().enumerate() {
                    if let Some(cell) = last.cells.get_mut(c) {
                        cell.extend(lines);
                    }
                }
            }
            _ => folded.push(row),
        }
    }
    let rows = folded;
    PTable {
        page: lines[0].page,
        last_page: lines[0].page,
        line: lines[0].number,
        columns,
        header,
        rows,
    }
}

fn same_columns(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 6.0)
}

/// A numbered heading: "4.2.1 Storage SCP" -> (3, text).
fn numbered_heading(text: &str) -> Option<u8> {
    let (num, rest) = text.split_once(' ')?;
    let num = num.trim_end_matches('.');
    let parts: Vec<&str> = num.split('.').collect();
    if parts.is_empty() || parts.len() > 7 {
        return None;
    }
    let ok_parts = parts.iter().enumerate().all(|(i, p)| {
        !p.is_empty()
            && p.len() <= 3
            && (p.chars().all(|c| c.is_ascii_digit())
                || (i == 0 && p.len() == 1 && p.chars().all(|c| c.is_ascii_uppercase())))
    });
    let rest = rest.trim();
    let starts_word = rest
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() && c.is_uppercase());
    if !ok_parts || !starts_word || rest.len() > 120 || rest.ends_with(['.', ',', ';', ':']) {
        return None;
    }
    if parts
        .first()
        .is_some_and(|p| p.parse::<u32>().is_ok_and(|n| n > 40))
    {
        return None;
    }
    u8::try_from(parts.len()).ok()
}

/// "Table 4.2-3 Storage SOP Classes" -> "Table 4.2-3".
pub fn caption_label(text: &str) -> Option<String> {
    let mut it = text.split_whitespace();
    let word = it.next()?;
    if !word.eq_ignore_ascii_case("table") {
        return None;
    }
    let num = it.next()?.trim_end_matches([':', '.']);
    if num.is_empty()
        || !num
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    if !num.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if !num
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-.–".contains(c))
    {
        return None;
    }
    Some(format!("Table {num}"))
}

/// Lays out every page's lines into the document's blocks.
pub struct Layout {
    pub blocks: Vec<Block>,
    pub problems: Vec<String>,
    pub first_heading: Option<String>,
}

pub fn layout(pages: Vec<(Vec<Line>, Vec<Rule>)>) -> Layout {
    let mut problems = Vec::new();
    // Body font size: the size most characters are printed in.
    let mut sizes: HashMap<i32, usize> = HashMap::new();
    for (lines, _) in &pages {
        for l in lines {
            for w in &l.words {
                *sizes.entry((w.size * 4.0).round() as i32).or_default() += w.text.len();
            }
        }
    }
    let body = sizes
        .iter()
        .max_by_key(|(k, n)| (**n, -**k))
        .map(|(k, _)| *k as f32 / 4.0)
        .unwrap_or(10.0);

    // Tables per page, then tables continued over pages merged.
    let mut pblocks: Vec<PBlock> = Vec::new();
    for (lines, rules) in pages {
        let page_blocks = page_blocks(lines, &rules);
        for b in page_blocks {
            if let PBlock::Table(t) = &b {
                if let Some(PBlock::Table(open)) = pblocks.last_mut() {
                    if t.page == open.last_page + 1 && continues(open, t) {
                        merge(open, t.clone());
                        continue;
                    }
                }
            }
            pblocks.push(b);
        }
    }

    let mut blocks: Vec<Block> = Vec::new();
    let mut section: Option<String> = None;
    let mut first_heading: Option<(f32, String)> = None;
    let mut table_count = 0usize;
    let mut pending_caption: Option<(usize, String)> = None;
    let mut prev_y: Option<(u32, f32)> = None;
    for b in pblocks {
        match b {
            PBlock::Line(l) => {
                let text = l.text();
                let gap_above = match prev_y {
                    Some((p, y)) if p == l.page => l.y - y,
                    _ => f32::INFINITY,
                };
                prev_y = Some((l.page, l.y));
                let at = Loc {
                    page: Some(l.page),
                    line: l.number,
                    section: section.clone(),
                    table: None,
                };
                let numbered = if l.segments.len() == 1 {
                    numbered_heading(&text)
                } else {
                    None
                };
                let big = l.size >= body * 1.25 && text.len() <= 120 && l.segments.len() == 1;
                let level = match numbered {
                    Some(level)
                        if l.size >= body * 1.03
                            || (l.size >= body * 0.97 && gap_above >= body * 2.2) =>
                    {
                        Some(level)
                    }
                    _ if big => Some(1),
                    _ => None,
                };
                if let Some(level) = level {
                    if first_heading
                        .as_ref()
                        .is_none_or(|(s, _)| l.size > *s + 0.5)
                        && big
                    {
                        first_heading = Some((l.size, text.clone()));
                    }
                    section = Some(text.clone());
                    blocks.push(Block::Heading {
                        level,
                        text,
                        at: Loc {
                            section: section.clone(),
                            ..at
                        },
                    });
                    pending_caption = None;
                    continue;
                }
                if caption_label(&text).is_some() {
                    pending_caption = Some((blocks.len(), text.clone()));
                }
                blocks.push(Block::Line { text, at });
            }
            PBlock::Table(t) => {
                table_count += 1;
                let mut caption = None;
                if let Some((idx, text)) = pending_caption.take() {
                    if idx + 1 == blocks.len() {
                        blocks.pop();
                        caption = Some(text);
                    }
                }
                if t.rows.iter().any(|r| r.cells.len() != t.columns.len()) {
                    problems.push(format!("page {}: a table with uneven rows", t.page));
                }
                let label = caption
                    .as_deref()
                    .and_then(caption_label)
                    .unwrap_or_else(|| format!("table {table_count}"));
                let at = Loc {
                    page: Some(t.page),
                    line: t.line,
                    section: section.clone(),
                    table: Some(label.clone()),
                };
                let rows = t
                    .rows
                    .into_iter()
                    .map(|r| Row {
                        cells: r.cells.into_iter().map(|c| c.join("\n")).collect(),
                        at: Loc {
                            page: Some(r.page),
                            line: r.line,
                            section: section.clone(),
                            table: Some(label.clone()),
                        },
                    })
                    .collect();
                blocks.push(Block::Table(Table {
                    caption,
                    header: t.header,
                    rows,
                    at,
                }));
                prev_y = None;
            }
        }
    }
    // A caption printed after its table.
    let mut i = 0;
    while i + 1 < blocks.len() {
        let take = match (&blocks[i], &blocks[i + 1]) {
            (Block::Table(t), Block::Line { text, .. }) if t.caption.is_none() => {
                caption_label(text).map(|label| (text.clone(), label))
            }
            _ => None,
        };
        if let Some((text, label)) = take {
            if let Block::Table(t) = &mut blocks[i] {
                t.caption = Some(text);
                t.at.table = Some(label.clone());
                for r in &mut t.rows {
                    r.at.table = Some(label.clone());
                }
            }
            blocks.remove(i + 1);
        }
        i += 1;
    }
    Layout {
        blocks,
        problems,
        first_heading: first_heading.map(|(_, t)| t),
    }
}

/// Does `next` (first table of a page) continue `open` (last block of the page before)?
fn continues(open: &PTable, next: &PTable) -> bool {
    let header_repeated =
        !next.header.is_empty() && normalise(&next.header) == normalise(&open.header);
    header_repeated || (next.header.is_empty() && same_columns(&open.columns, &next.columns))
}

fn normalise(cells: &[String]) -> Vec<String> {
    cells
        .iter()
        .map(|c| {
            c.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .collect()
}

fn merge(open: &mut PTable, next: PTable) {
    open.last_page = next.last_page;
    let mut rows = next.rows.into_iter();
    if let Some(first) = rows.next() {
        if first.continues {
            if let Some(last) = open.rows.last_mut() {
                for (c, lines) in first.cells.into_iter().enumerate() {
                    if let Some(cell) = last.cells.get_mut(c) {
                        cell.extend(lines);
                    }
                }
            }
        } else {
            open.rows.push(first);
        }
    }
    open.rows.extend(rows);
}
