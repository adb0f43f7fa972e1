//! Tables a plain text file draws with nothing but separators and alignment:
//!
//! - pipe-separated cells (`  CTImageStorage     | 1.2.840.10008.5.1.4.1.1.2`, Orthanc);
//! - whitespace-aligned columns, cells at least two spaces apart
//!   (`CTImageStorage        1.2.840.10008.5.1.4.1.1.2`, DCMTK's man pages).
//!
//! Consecutive lines that split into the same number of cells, their gaps lined up
//! (the gutters between the columns have a common stretch on every line), form one
//! table. A blank line does not end the table when the next non-blank line is a row of
//! the same shape: groups of rows separated by blank lines are one table. A line of
//! dashes under the first row makes that row the header.

use super::markup::{self, Inline};
use super::{RawTable, SrcLine};

/// Cells at most this many per row (a 10,000-column line is not a table).
const MAX_CELLS: usize = 64;

#[derive(Debug)]
enum Shape {
    Pipe(usize),
    /// Gutters between cells: char columns `[start, end)`, narrowed to what every row
    /// of the table has in common.
    Space(Vec<(usize, usize)>),
}

/// A table starting at `lines[start]`, and the index of the first line after it.
///
/// `verbatim`: the lines are a literal block (`\verbatim`, `::`, a code fence), where
/// whitespace columns are what the author meant; outside one, a whitespace table needs
/// two rows and no cell that ends a sentence (two spaces after a full stop are prose).
/// `alone`: the block has nothing but this table, so one row is enough.
pub(crate) fn take(
    lines: &[SrcLine<'_>],
    start: usize,
    verbatim: bool,
    alone: bool,
    inline: Inline,
) -> Option<(RawTable, usize)> {
    let first = lines.get(start)?;
    let (mut shape, cells) = classify(&first.text)?;
    let mut rows: Vec<(u32, Vec<String>)> = vec![(first.no, clean(cells, inline))];
    let mut header: Vec<String> = Vec::new();
    let mut j = start + 1;
    if let Some(l) = lines.get(j) {
        if is_rule(&l.text)
            && lines
                .get(j + 1)
                .is_some_and(|n| fits(&mut shape_clone(&shape), &n.text).is_some())
        {
            header = rows.pop().map(|(_, c)| c).unwrap_or_default();
            j += 1;
        }
    }
    let mut end = j;
    while j < lines.len() {
        let t = &lines[j].text;
        if t.trim().is_empty() {
            // Look past the blank lines: the same shape again continues the table.
            let mut k = j;
            while k < lines.len() && lines[k].text.trim().is_empty() {
                k += 1;
            }
            if k < lines.len() && fits(&mut shape_clone(&shape), &lines[k].text).is_some() {
                j = k;
                continue;
            }
            break;
        }
        match fits(&mut shape, t) {
            Some(cells) => {
                rows.push((lines[j].no, clean(cells, inline)));
                j += 1;
                end = j;
            }
            None => break,
        }
    }
    if let Shape::Space(_) = shape {
        let enough = if verbatim {
            rows.len() >= 2 || (alone && !rows.is_empty())
        } else {
            rows.len() >= 2 && !rows.iter().any(|(_, c)| ends_sentence(c))
        };
        if !enough {
            return None;
        }
    }
    if rows.is_empty() {
        return None;
    }
    let line = if header.is_empty() {
        rows[0].0
    } else {
        first.no
    };
    Some((
        RawTable {
            line,
            header,
            rows,
            caption: None,
        },
        end,
    ))
}

fn shape_clone(s: &Shape) -> Shape {
    match s {
        Shape::Pipe(n) => Shape::Pipe(*n),
        Shape::Space(g) => Shape::Space(g.clone()),
    }
}

fn clean(cells: Vec<String>, inline: Inline) -> Vec<String> {
    cells
        .into_iter()
        .map(|c| markup::strip(&c, inline))
        .collect()
}

/// A non-last cell ending like a sentence: the "columns" are two spaces after a full
/// stop in a paragraph.
fn ends_sentence(cells: &[String]) -> bool {
    let n = cells.len();
    cells[..n.saturating_sub(1)]
        .iter()
        .any(|c| c.ends_with(['.', ',', ';', ':']))
}

/// `-----  -----`, `---|---`, `====`: a rule under a header row.
fn is_rule(t: &str) -> bool {
    let s = t.trim();
    s.len() >= 3
        && s.bytes()
            .all(|b| matches!(b, b'-' | b'=' | b'+' | b'|' | b':' | b' '))
        && (s.contains("---") || s.contains("==="))
}

/// The shape and cells of a line that could be a table row.
fn classify(t: &str) -> Option<(Shape, Vec<String>)> {
    if let Some(cells) = pipe_cells(t) {
        return Some((Shape::Pipe(cells.len()), cells));
    }
    let (cells, gaps) = space_cells(t)?;
    Some((Shape::Space(gaps), cells))
}

/// The cells of `t` if it is a row of the table's shape (narrowing the gutters).
fn fits(shape: &mut Shape, t: &str) -> Option<Vec<String>> {
    match shape {
        Shape::Pipe(n) => pipe_cells(t).filter(|c| c.len() == *n),
        Shape::Space(gutters) => {
            if pipe_cells(t).is_some() {
                return None;
            }
            if let Some((cells, gaps)) = space_cells(t) {
                if gaps.len() == gutters.len() {
                    let narrowed: Option<Vec<(usize, usize)>> = gutters
                        .iter()
                        .zip(&gaps)
                        .map(|(g, h)| {
                            let (lo, hi) = (g.0.max(h.0), g.1.min(h.1));
                            (lo < hi).then_some((lo, hi))
                        })
                        .collect();
                    if let Some(n) = narrowed {
                        *gutters = n;
                        return Some(cells);
                    }
                }
            }
            // A cell that fills its column up to one space before the next
            // ("IntravascularOpt.Coh.Tom.ImageStorageForPresentation 1.2.840..."): split
            // at the columns' starts.
            split_at_columns(t, gutters)
        }
    }
}

/// Pipe-separated cells (a leading and a trailing pipe are borders); at least two.
fn pipe_cells(t: &str) -> Option<Vec<String>> {
    let s = t.trim();
    if !s.contains('|') || s.starts_with('+') {
        return None;
    }
    let inner = s.strip_prefix('|').unwrap_or(s);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    if !inner.contains(['\\', '`']) {
        let cells: Vec<String> = inner
            .split('|')
            .take(MAX_CELLS + 2)
            .map(|c| c.trim().to_string())
            .collect();
        if cells.len() < 2 || cells.len() > MAX_CELLS || cells.iter().all(|c| c.is_empty()) {
            return None;
        }
        return Some(cells);
    }
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    let mut in_code = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '`' => {
                in_code = !in_code;
                cur.push(c);
            }
            '|' if !in_code => {
                cells.push(std::mem::take(&mut cur).trim().to_string());
                if cells.len() > MAX_CELLS {
                    return None;
                }
            }
            _ => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    if cells.len() < 2 || cells.iter().all(|c| c.is_empty()) {
        return None;
    }
    Some(cells)
}

/// Char columns `[start, end)` of the gaps between cells.
type Gaps = Vec<(usize, usize)>;

/// Cells at least two spaces apart, with the gaps between them as char columns.
fn space_cells(t: &str) -> Option<(Vec<String>, Gaps)> {
    let mut cells: Vec<String> = Vec::new();
    let mut gaps: Vec<(usize, usize)> = Vec::new();
    let mut cell_start: Option<usize> = None; // byte index
    let mut run_start_col = 0usize;
    let mut run_start_byte = 0usize;
    let mut run = 0usize;
    for (col, (bi, c)) in t.char_indices().enumerate() {
        if c == ' ' {
            if run == 0 {
                run_start_col = col;
                run_start_byte = bi;
            }
            run += 1;
        } else {
            match cell_start {
                None => cell_start = Some(bi),
                Some(s) if run >= 2 => {
                    cells.push(t[s..run_start_byte].to_string());
                    gaps.push((run_start_col, col));
                    if cells.len() > MAX_CELLS {
                        return None;
                    }
                    cell_start = Some(bi);
                }
                Some(_) => {}
            }
            run = 0;
        }
    }
    let s = cell_start?;
    let end = if run > 0 { run_start_byte } else { t.len() };
    cells.push(t[s..end].to_string());
    (cells.len() >= 2).then_some((cells, gaps))
}

/// Splits `t` where the table's columns start, if a space precedes each start and a
/// cell begins there.
fn split_at_columns(t: &str, gutters: &[(usize, usize)]) -> Option<Vec<String>> {
    let starts: Vec<usize> = gutters.iter().map(|g| g.1).collect();
    let chars: Vec<(usize, char)> = t.char_indices().collect();
    let mut cells = Vec::with_capacity(starts.len() + 1);
    let mut from_byte = 0usize;
    let mut prev_col = 0usize;
    for &s in &starts {
        if s == 0 || s >= chars.len() || s <= prev_col {
            return None;
        }
        if chars[s - 1].1 != ' ' || chars[s].1 == ' ' {
            return None;
        }
        let cell = t[from_byte..chars[s].0].trim();
        if cell.is_empty() {
            return None;
        }
        cells.push(cell.to_string());
        from_byte = chars[s].0;
        prev_col = s;
    }
    let last = t[from_byte..].trim();
    if last.is_empty() {
        return None;
    }
    cells.push(last.to_string());
    Some(cells)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn lines(s: &str) -> Vec<SrcLine<'_>> {
        s.lines()
            .enumerate()
            .map(|(i, l)| SrcLine {
                no: i as u32 + 1,
                text: Cow::Borrowed(l),
            })
            .collect()
    }

    #[test]
    fn whitespace_columns_with_a_long_name() {
        let t = "VerificationSOPClass                                 1.2.840.10008.1.1\n\
                 \n\
                 CTImageStorage                                       1.2.840.10008.5.1.4.1.1.2\n\
                 IntravascularOpt.Coh.Tom.ImageStorageForPresentation 1.2.840.10008.5.1.4.1.1.14.1\n\
                 MRImageStorage                                       1.2.840.10008.5.1.4.1.1.4\n";
        let l = lines(t);
        let (table, end) = take(&l, 0, true, false, Inline::Plain).expect("a table");
        assert_eq!(end, 5);
        let names: Vec<&str> = table.rows.iter().map(|r| r.1[0].as_str()).collect();
        assert_eq!(
            names,
            [
                "VerificationSOPClass",
                "CTImageStorage",
                "IntravascularOpt.Coh.Tom.ImageStorageForPresentation",
                "MRImageStorage"
            ]
        );
        assert_eq!(table.rows[2].1[1], "1.2.840.10008.5.1.4.1.1.14.1");
        assert_eq!(
            table.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 3, 4, 5]
        );
    }

    #[test]
    fn header_rule_and_prose() {
        let t = "SOP Class       UID\n---------       ---\nCT Image        1.2.3\nMR Image        1.2.4\n";
        let l = lines(t);
        let (table, _) = take(&l, 0, false, false, Inline::Plain).expect("a table");
        assert_eq!(table.header, ["SOP Class", "UID"]);
        assert_eq!(table.rows.len(), 2);
        let prose = "It manages a number of storage areas.  It also allows\nimages to be queried.  And retrieved\n";
        assert!(take(&lines(prose), 0, false, false, Inline::Plain).is_none());
    }

    #[test]
    fn wide_lines_are_not_tables() {
        let wide = (0..10_000)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join("  ");
        let two = format!("{wide}\n{wide}\n");
        assert!(take(&lines(&two), 0, true, false, Inline::Plain).is_none());
        let pipes = "a|".repeat(10_000);
        assert!(take(&lines(&pipes), 0, true, false, Inline::Plain).is_none());
    }
}
