//! PDF reader: a vendor's conformance statement PDF to a [`Document`].
//!
//! [`extract`] gets every page's words with their positions and the ruling lines
//! (through `pdf-extract`, guarded against its panics); [`layout`] turns them into
//! lines, drops running headers and footers, finds tables by column alignment, joins
//! wrapped cells and rows split by page breaks, merges tables continued over pages and
//! recognises headings and captions.

mod extract;
mod layout;

use crate::document::{Block, Document, Format};

use super::ReadError;

/// Reads a PDF document.
pub fn read(bytes: &[u8], source: &str) -> Result<Document, ReadError> {
    if !bytes.starts_with(b"%PDF-")
        && !bytes[..bytes.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
    {
        return Err(ReadError::CorruptPdf(
            "no %PDF- header at the start of the file".into(),
        ));
    }
    let extracted = extract::extract(bytes)?;
    let page_count = u32::try_from(extracted.pages.len()).unwrap_or(u32::MAX);
    let empty: Vec<u32> = extracted
        .pages
        .iter()
        .filter(|p| p.words.is_empty())
        .map(|p| p.number)
        .collect();
    if empty.len() == extracted.pages.len() {
        return Err(ReadError::NoText {
            pages: ranges(&empty),
        });
    }
    let mut problems = extracted.problems;
    if !empty.is_empty() {
        problems.push(format!(
            "pages {} have no text (images only or blank); run OCR on them if they hold content",
            ranges(&empty)
        ));
    }
    let mut pages: Vec<(f32, Vec<layout::Line>, Vec<extract::Rule>)> =
        Vec::with_capacity(extracted.pages.len());
    for page in extracted.pages {
        let lines = layout::lines(&page);
        pages.push((page.height, lines, page.rules));
    }
    let stripped = layout::strip_margins(&mut pages);
    tracing::debug!(
        pages = page_count,
        stripped,
        "PDF page headers and footers removed"
    );
    let laid = layout::layout(
        pages
            .into_iter()
            .map(|(_, lines, rules)| (lines, rules))
            .collect(),
    );
    problems.extend(laid.problems);
    let title = extracted.title.or(laid.first_heading).or_else(|| {
        laid.blocks.iter().find_map(|b| match b {
            Block::Heading { text, .. } => Some(text.clone()),
            _ => None,
        })
    });
    Ok(Document {
        source: source.to_string(),
        format: Format::Pdf,
        pages: Some(page_count),
        title,
        blocks: laid.blocks,
        problems,
    })
}

/// "1-3, 7, 9-10".
fn ranges(pages: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < pages.len() {
        let start = pages[i];
        let mut end = start;
        while i + 1 < pages.len() && pages[i + 1] == end + 1 {
            i += 1;
            end = pages[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}
