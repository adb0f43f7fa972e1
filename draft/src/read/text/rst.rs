//! reStructuredText tables: grid tables (`+----+` borders, `+====+` under the header,
//! cells over several lines joined with `\n`, row and column spans repeated into every
//! row and column they cover), simple tables (`=====  =====`) and list tables
//! (`.. list-table::`); Markdown pipe tables (`| a | b |` over `|---|---|`).

use super::markup::{self, Inline};
use super::{RawTable, SrcLine};
use crate::read::detect::{is_grid_border, is_pipe_separator, is_simple_table_border};

/// Columns at most (a border with more `+` than this is not a table).
const MAX_COLUMNS: usize = 256;

/// Why a table-looking block was not read as a table.
pub(crate) type Malformed = String;

/// A grid table whose top border is `lines[start]`; the index after it.
pub(crate) fn grid(
    lines: &[SrcLine<'_>],
    start: usize,
    inline: Inline,
) -> Result<(RawTable, usize), Malformed> {
    let top = &lines[start];
    let top_chars: Vec<char> = top.text.chars().collect();
    let bounds: Vec<usize> = top_chars
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == '+')
        .map(|(i, _)| i)
        .collect();
    if bounds.len() < 2 || bounds.len() > MAX_COLUMNS + 1 {
        return Err(format!(
            "line {}: a grid table border with {} columns",
            top.no,
            bounds.len().saturating_sub(1)
        ));
    }
    let ncols = bounds.len() - 1;
    let mut rows: Vec<(u32, Vec<String>)> = Vec::new();
    let mut header_rows: Option<usize> = None;
    // Per column: the lines of the cell being read, and the row its span started in.
    let mut acc: Vec<Vec<String>> = vec![Vec::new(); ncols];
    let mut span_from: Vec<Option<usize>> = vec![None; ncols];
    let mut row_line: Option<u32> = None;
    let mut j = start + 1;
    let mut closed = false;
    while j < lines.len() {
        let l = &lines[j];
        let s = l.text.trim();
        if !(s.starts_with('+') || s.starts_with('|')) {
            break;
        }
        let chars: Vec<char> = l.text.chars().collect();
        let seg = |k: usize| -> &[char] {
            let a = (bounds[k] + 1).min(chars.len());
            let b = bounds[k + 1].min(chars.len());
            &chars[a..b.max(a)]
        };
        let is_border_seg = |k: usize| {
            let s = seg(k);
            !s.is_empty() && (s.iter().all(|&c| c == '-') || s.iter().all(|&c| c == '='))
        };
        let last = *bounds.last().unwrap_or(&0);
        if chars.get(bounds[0]).is_none_or(|c| !matches!(c, '|' | '+'))
            || chars.get(last).is_none_or(|c| !matches!(c, '|' | '+'))
        {
            return Err(format!(
                "line {}: a grid table row does not line up with the table's border (line {})",
                l.no, top.no
            ));
        }
        let borders: Vec<bool> = (0..ncols).map(is_border_seg).collect();
        if borders.iter().any(|&b| b) {
            // The end of a row for the columns with a border here; the others span on.
            let row_idx = rows.len();
            let mut cells = vec![String::new(); ncols];
            for k in 0..ncols {
                if borders[k] {
                    let text = join_cell(&acc[k], inline);
                    acc[k].clear();
                    if let Some(from) = span_from[k].take() {
                        for r in rows.iter_mut().skip(from) {
                            r.1[k] = text.clone();
                        }
                    }
                    cells[k] = text;
                } else {
                    acc[k].push(seg(k).iter().collect());
                    span_from[k].get_or_insert(row_idx);
                }
            }
            if let Some(line) = row_line.take() {
                rows.push((line, cells));
            }
            if borders.iter().all(|&b| b) {
                if (0..ncols).all(|k| seg(k).iter().all(|&c| c == '=')) && header_rows.is_none() {
                    header_rows = Some(rows.len());
                }
                closed = true;
                if lines
                    .get(j + 1)
                    .is_none_or(|n| !n.text.trim().starts_with(['|', '+']))
                {
                    j += 1;
                    break;
                }
            }
        } else {
            closed = false;
            row_line.get_or_insert(l.no);
            // Column spans: a boundary without `|` joins the cells on either side; the
            // text goes to every column it covers.
            let mut k = 0;
            while k < ncols {
                let mut m = k;
                while m + 1 < ncols && chars.get(bounds[m + 1]).is_some_and(|&c| c != '|') {
                    m += 1;
                }
                let a = (bounds[k] + 1).min(chars.len());
                let b = bounds[m + 1].min(chars.len()).max(a);
                let text: String = chars[a..b].iter().collect();
                for col in acc.iter_mut().take(m + 1).skip(k) {
                    col.push(text.clone());
                }
                k = m + 1;
            }
        }
        j += 1;
    }
    if !closed {
        return Err(format!(
            "line {}: the grid table has no closing border",
            top.no
        ));
    }
    let (header, body) = match header_rows {
        Some(h) if h < rows.len() || h == rows.len() => {
            let body = rows.split_off(h);
            (merge_header(rows.into_iter().map(|r| r.1).collect()), body)
        }
        _ => (Vec::new(), rows),
    };
    Ok((
        RawTable {
            line: top.no,
            header,
            rows: body,
            caption: None,
        },
        j,
    ))
}

/// A cell's lines, trimmed, without blank lines at either end, joined with `\n`.
fn join_cell(lines: &[String], inline: Inline) -> String {
    let parts: Vec<String> = lines.iter().map(|l| markup::strip(l, inline)).collect();
    let first = parts.iter().position(|p| !p.is_empty());
    let last = parts.iter().rposition(|p| !p.is_empty());
    match (first, last) {
        (Some(a), Some(b)) => parts[a..=b].join("\n"),
        _ => String::new(),
    }
}

/// Several header rows merged into one: each column's texts joined with `\n`, a text
/// repeated by a span kept once.
pub(crate) fn merge_header(rows: Vec<Vec<String>>) -> Vec<String> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..width)
        .map(|k| {
            let mut parts: Vec<&str> = Vec::new();
            for r in &rows {
                if let Some(t) = r.get(k) {
                    if !t.is_empty() && parts.last() != Some(&t.as_str()) {
                        parts.push(t);
                    }
                }
            }
            parts.join("\n")
        })
        .collect()
}

/// A simple table whose first border is `lines[start]`.
pub(crate) fn simple(
    lines: &[SrcLine<'_>],
    start: usize,
    inline: Inline,
) -> Result<(RawTable, usize), Malformed> {
    let top = &lines[start];
    // Column starts: the runs of `=` in the border.
    let mut cols: Vec<usize> = Vec::new();
    let mut prev = ' ';
    for (i, c) in top.text.chars().enumerate() {
        if c == '=' && prev != '=' {
            cols.push(i);
        }
        prev = c;
    }
    if cols.len() < 2 || cols.len() > MAX_COLUMNS {
        return Err(format!(
            "line {}: a simple table border with {} columns",
            top.no,
            cols.len()
        ));
    }
    let mut rows: Vec<(u32, Vec<String>)> = Vec::new();
    let mut header_end: Option<usize> = None;
    let mut j = start + 1;
    let mut end: Option<usize> = None;
    while j < lines.len() {
        let l = &lines[j];
        let s = l.text.trim();
        if is_simple_table_border(s) {
            if lines.get(j + 1).is_none_or(|n| n.text.trim().is_empty()) {
                end = Some(j + 1);
                break;
            }
            if header_end.is_none() {
                header_end = Some(rows.len());
            }
            j += 1;
            continue;
        }
        if s.is_empty() || s.bytes().all(|b| b == b'-' || b == b' ') {
            j += 1;
            continue;
        }
        let chars: Vec<char> = l.text.chars().collect();
        let cells: Vec<String> = (0..cols.len())
            .map(|k| {
                let a = cols[k].min(chars.len());
                let b = if k + 1 < cols.len() {
                    cols[k + 1].min(chars.len())
                } else {
                    chars.len()
                };
                markup::strip(&chars[a..b.max(a)].iter().collect::<String>(), inline)
            })
            .collect();
        if cells[0].is_empty() && !rows.is_empty() {
            // A continuation line: its text goes to the row above.
            if let Some(last) = rows.last_mut() {
                for (k, c) in cells.into_iter().enumerate() {
                    if !c.is_empty() {
                        let cell = &mut last.1[k];
                        if !cell.is_empty() {
                            cell.push('\n');
                        }
                        cell.push_str(&c);
                    }
                }
            }
        } else {
            rows.push((l.no, cells));
        }
        j += 1;
    }
    let Some(end) = end else {
        return Err(format!(
            "line {}: the simple table has no closing border",
            top.no
        ));
    };
    let (header, body) = match header_end {
        Some(h) => {
            let body = rows.split_off(h.min(rows.len()));
            (merge_header(rows.into_iter().map(|r| r.1).collect()), body)
        }
        None => (Vec::new(), rows),
    };
    Ok((
        RawTable {
            line: top.no,
            header,
            rows: body,
            caption: None,
        },
        end,
    ))
}

/// A `.. list-table:: caption` directive at `lines[start]`.
pub(crate) fn list_table(
    lines: &[SrcLine<'_>],
    start: usize,
    inline: Inline,
) -> Result<(RawTable, usize), Malformed> {
    let d = &lines[start];
    let indent = indent_of(&d.text);
    let caption = d
        .text
        .trim()
        .strip_prefix(".. list-table::")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| markup::strip(c, inline));
    let mut header_rows = 0usize;
    let mut rows: Vec<(u32, Vec<String>)> = Vec::new();
    let mut cell_lines: Vec<String> = Vec::new();
    let mut j = start + 1;
    let flush = |rows: &mut Vec<(u32, Vec<String>)>, cell_lines: &mut Vec<String>| {
        if let Some(r) = rows.last_mut() {
            if !cell_lines.is_empty() {
                r.1.push(join_cell(cell_lines, inline));
                cell_lines.clear();
            }
        }
    };
    while j < lines.len() {
        let l = &lines[j];
        let s = l.text.trim();
        if s.is_empty() {
            j += 1;
            continue;
        }
        if indent_of(&l.text) <= indent {
            break;
        }
        if rows.is_empty() && s.starts_with(':') {
            if let Some(n) = s.strip_prefix(":header-rows:") {
                header_rows = n.trim().parse().unwrap_or(0);
            }
        } else if let Some(rest) = s.strip_prefix("* -").or_else(|| (s == "*").then_some("")) {
            flush(&mut rows, &mut cell_lines);
            rows.push((l.no, Vec::new()));
            cell_lines.push(rest.trim().to_string());
        } else if let Some(rest) = s.strip_prefix("- ").or_else(|| (s == "-").then_some("")) {
            flush(&mut rows, &mut cell_lines);
            cell_lines.push(rest.trim().to_string());
        } else if !rows.is_empty() {
            cell_lines.push(s.to_string());
        }
        j += 1;
    }
    flush(&mut rows, &mut cell_lines);
    if rows.is_empty() {
        return Err(format!("line {}: a list-table without rows", d.no));
    }
    let body = rows.split_off(header_rows.min(rows.len()));
    let header = merge_header(rows.into_iter().map(|r| r.1).collect());
    Ok((
        RawTable {
            line: d.no,
            header,
            rows: body,
            caption,
        },
        j,
    ))
}

/// A Markdown pipe table: `lines[start]` the header row, `lines[start + 1]` the
/// separator row.
pub(crate) fn pipe(
    lines: &[SrcLine<'_>],
    start: usize,
    inline: Inline,
) -> Option<(RawTable, usize)> {
    let head = lines.get(start)?;
    let sep = lines.get(start + 1)?;
    if !is_pipe_separator(sep.text.trim()) || !head.text.contains('|') {
        return None;
    }
    let header: Vec<String> = split_pipe_row(&head.text)
        .into_iter()
        .map(|c| markup::strip(&c, inline))
        .collect();
    let width = header.len();
    if width > MAX_COLUMNS {
        return None;
    }
    let mut rows = Vec::new();
    let mut j = start + 2;
    while j < lines.len() {
        let l = &lines[j];
        if l.text.trim().is_empty() || !l.text.contains('|') {
            break;
        }
        let mut cells: Vec<String> = split_pipe_row(&l.text)
            .into_iter()
            .take(width)
            .map(|c| markup::strip(&c, inline))
            .collect();
        cells.resize(width, String::new());
        rows.push((l.no, cells));
        j += 1;
    }
    Some((
        RawTable {
            line: head.no,
            header,
            rows,
            caption: None,
        },
        j,
    ))
}

/// `| a | b |` -> ["a", "b"] (pipes escaped or inside backticks are text).
fn split_pipe_row(t: &str) -> Vec<String> {
    let s = t.trim();
    let s = s.strip_prefix('|').unwrap_or(s);
    let s = if s.ends_with('|') && !s.ends_with("\\|") {
        &s[..s.len() - 1]
    } else {
        s
    };
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut in_code = false;
    let mut chars = s.chars().peekable();
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
                if cells.len() > MAX_COLUMNS {
                    break;
                }
            }
            _ => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    cells
}

/// Leading spaces.
pub(crate) fn indent_of(t: &str) -> usize {
    t.bytes().take_while(|&b| b == b' ').count()
}

/// Whether a trimmed line starts a grid table.
pub(crate) fn starts_grid(s: &str) -> bool {
    is_grid_border(s) && s.as_bytes().get(1).is_some_and(|&b| b == b'-' || b == b'=')
}
