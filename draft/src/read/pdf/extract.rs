//! The glue to the extraction library: a PDF's pages as positioned words and ruling
//! lines, in page coordinates with y growing downwards (points from the top edge).
//!
//! `pdf-extract` (on `lopdf`) interprets each page's content stream and reports every
//! glyph with its text rendering matrix; words are built here from glyph positions, so
//! a table cell's x position survives. Both crates have `unwrap`s on malformed input:
//! every call into them runs under `catch_unwind`, a panic becomes a damaged-PDF error
//! (for the whole file) or a problem (for one page).

use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{
    ColorSpace, Document as PdfDoc, LoadOptions, MediaBox, Object, ObjectId, OutputDev,
    OutputError, Path, PathOp, Transform,
};

use super::super::ReadError;

/// A run of glyphs without a space or gap: one word.
#[derive(Debug, Clone)]
pub struct Word {
    pub x0: f32,
    pub x1: f32,
    /// Baseline, from the top of the page.
    pub y: f32,
    /// Font size in points as printed.
    pub size: f32,
    pub text: String,
}

/// An axis-aligned thin rectangle or stroked segment (a table border).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Rule {
    pub fn is_horizontal(&self) -> bool {
        (self.y1 - self.y0) <= 2.5 && (self.x1 - self.x0) >= 4.0
    }
    pub fn is_vertical(&self) -> bool {
        (self.x1 - self.x0) <= 2.5 && (self.y1 - self.y0) >= 4.0
    }
}

/// One page as extracted.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// 1-based.
    pub number: u32,
    pub width: f32,
    pub height: f32,
    pub words: Vec<Word>,
    pub rules: Vec<Rule>,
}

/// The whole PDF as extracted.
#[derive(Debug, Default)]
pub struct Extracted {
    pub title: Option<String>,
    pub pages: Vec<Page>,
    /// Pages that could not be read (damaged content), in words.
    pub problems: Vec<String>,
}

/// Words kept over the whole document: far above a 300-page statement (about 1000 words
/// a page), low enough to bound memory on a pathological file.
const MAX_WORDS: usize = 4_000_000;
/// Characters in one word (a run without spaces): longer runs are cut.
const MAX_WORD_CHARS: usize = 4_096;
/// Ruling lines kept per page.
const MAX_RULES_PER_PAGE: usize = 20_000;
/// Pages read.
pub const MAX_PAGES: usize = 20_000;

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "internal error in the PDF library".to_string()
    }
}

/// Drops the data of image streams while the file is parsed: the reader needs their
/// presence, not their pixels, and a scanned statement's images are most of its bytes.
///
/// lopdf keeps the object as modified here for objects stored on their own (every
/// stream) and keeps the returned copy for objects inside object streams (never a
/// stream), so streams are changed in place and other objects returned as they are.
fn drop_image_data(id: ObjectId, obj: &mut Object) -> Option<(ObjectId, Object)> {
    if let Object::Stream(stream) = obj {
        let is_image = stream
            .dict
            .get(b"Subtype")
            .ok()
            .and_then(|s| s.as_name().ok())
            .is_some_and(|n| n == b"Image");
        if is_image {
            stream.content = Vec::new();
            stream.dict.set("Length", Object::Integer(0));
        }
        return Some((id, Object::Null));
    }
    Some((id, obj.clone()))
}

fn lopdf_error(e: &pdf_extract::Error) -> String {
    let text = e.to_string();
    if text.is_empty() {
        "the file structure could not be parsed".to_string()
    } else {
        text
    }
}

/// Parses the file and extracts every page.
pub fn extract(bytes: &[u8]) -> Result<Extracted, ReadError> {
    let options = LoadOptions {
        filter: Some(drop_image_data),
        ..LoadOptions::default()
    };
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        PdfDoc::load_mem_with_options(bytes, options)
    }));
    let doc = match loaded {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => {
            if looks_encrypted(bytes) {
                return Err(ReadError::Encrypted);
            }
            return Err(ReadError::CorruptPdf(format!(
                "{} (while reading the file structure)",
                lopdf_error(&e)
            )));
        }
        Err(p) => {
            return Err(ReadError::CorruptPdf(format!(
                "the file structure is malformed ({})",
                panic_text(p.as_ref())
            )));
        }
    };
    // lopdf removes /Encrypt from the trailer once it has decrypted the file with the
    // empty user password; still there means a password is needed.
    if doc.trailer.get(b"Encrypt").is_ok() {
        return Err(ReadError::Encrypted);
    }
    let mut doc = doc;
    normalise_cid_widths(&mut doc);
    let page_ids = catch_unwind(AssertUnwindSafe(|| doc.get_pages())).map_err(|p| {
        ReadError::CorruptPdf(format!(
            "the page tree is malformed ({})",
            panic_text(p.as_ref())
        ))
    })?;
    if page_ids.is_empty() {
        return Err(ReadError::CorruptPdf(
            "the file has no pages (page tree missing or empty)".into(),
        ));
    }
    let mut out = Extracted {
        title: title(&doc),
        ..Extracted::default()
    };
    if page_ids.len() > MAX_PAGES {
        out.problems.push(format!(
            "only the first {MAX_PAGES} of {} pages were read",
            page_ids.len()
        ));
    }
    let mut dev = Collector::default();
    for (&number, _) in page_ids.iter().take(MAX_PAGES) {
        dev.start(number);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pdf_extract::output_doc_page(&doc, &mut dev, number)
        }));
        let problem = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(output_error(&e)),
            Err(p) => Some(panic_text(p.as_ref())),
        };
        if let Some(why) = problem {
            out.problems.push(format!(
                "page {number}: its content could not be read completely ({why})"
            ));
        }
        out.pages.push(dev.finish());
        if dev.total_words >= MAX_WORDS {
            out.problems.push(format!(
                "reading stopped after page {number}: more than {MAX_WORDS} words"
            ));
            break;
        }
    }
    Ok(out)
}

/// Rewrites every CID font's /W array into the `cid [w ...]` form only.
///
/// pdf-extract 0.12 misreads the `c_first c_last w` form (it takes all three numbers
/// from the first), so every glyph of such a range gets no width and the glyphs after
/// it are placed too far left. Chromium and Word write digit ranges that way. Arrays
/// that do not parse as /W (odd lengths, wrong types) are dropped, so the library's
/// default width applies instead of a panic.
fn normalise_cid_widths(doc: &mut PdfDoc) {
    let ids: Vec<ObjectId> = doc
        .objects
        .iter()
        .filter_map(|(id, obj)| {
            let dict = obj.as_dict().ok()?;
            let sub = dict.get(b"Subtype").ok()?.as_name().ok()?;
            (sub == b"CIDFontType2" || sub == b"CIDFontType0").then_some(*id)
        })
        .collect();
    for id in ids {
        let w = {
            let Some(dict) = doc.objects.get(&id).and_then(|o| o.as_dict().ok()) else {
                continue;
            };
            match dict.get(b"W") {
                Ok(Object::Array(a)) => Some(a.clone()),
                Ok(Object::Reference(r)) => {
                    doc.objects.get(r).and_then(|o| o.as_array().ok()).cloned()
                }
                _ => None,
            }
        };
        let Some(w) = w else { continue };
        let fixed = rewrite_widths(&w);
        if let Some(Ok(dict)) = doc.objects.get_mut(&id).map(|o| o.as_dict_mut()) {
            match fixed {
                Some(a) => dict.set("W", Object::Array(a)),
                None => {
                    dict.remove(b"W");
                }
            }
        }
    }
}

fn number(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

fn rewrite_widths(w: &[Object]) -> Option<Vec<Object>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut total = 0usize;
    while i < w.len() {
        let first = number(&w[i])? as i64;
        match w.get(i + 1)? {
            Object::Array(list) => {
                out.push(Object::Integer(first));
                out.push(Object::Array(list.clone()));
                total += list.len();
                i += 2;
            }
            last => {
                let last = number(last)? as i64;
                let width = number(w.get(i + 2)?)?;
                if last < first || last - first > 65_535 {
                    return None;
                }
                let n = usize::try_from(last - first + 1).ok()?;
                total += n;
                out.push(Object::Integer(first));
                out.push(Object::Array(vec![Object::Real(width as f32); n]));
                i += 3;
            }
        }
        if total > 1_000_000 {
            return None;
        }
    }
    Some(out)
}

fn output_error(e: &OutputError) -> String {
    match e {
        OutputError::FormatError(_) | OutputError::IoError(_) => e.to_string(),
        OutputError::PdfError(e) => lopdf_error(e),
    }
}

/// A file whose trailer names an /Encrypt dictionary (checked on the raw bytes when
/// the library refused the file).
fn looks_encrypted(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    tail.windows(8).any(|w| w == b"/Encrypt")
}

fn title(doc: &PdfDoc) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let info = match info {
        Object::Reference(id) => doc.get_object(*id).ok()?,
        other => other,
    };
    let dict = info.as_dict().ok()?;
    let t = pdf_extract::decode_text_string(dict.get(b"Title").ok()?).ok()?;
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    (!t.is_empty() && t.len() < 500).then_some(t)
}

/// Appends a glyph's text, ligatures spelt out ("ﬁ" -> "fi") so words read as typed.
fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\u{FB00}' => out.push_str("ff"),
            '\u{FB01}' => out.push_str("fi"),
            '\u{FB02}' => out.push_str("fl"),
            '\u{FB03}' => out.push_str("ffi"),
            '\u{FB04}' => out.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
            '\u{00A0}' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// The output device: glyphs to words, paths to rules.
#[derive(Default)]
struct Collector {
    page: Page,
    flip_h: f64,
    cur: Option<Word>,
    total_words: usize,
}

impl Collector {
    fn start(&mut self, number: u32) {
        self.page = Page {
            number,
            ..Page::default()
        };
        self.cur = None;
    }

    fn finish(&mut self) -> Page {
        self.flush();
        std::mem::take(&mut self.page)
    }

    fn flush(&mut self) {
        if let Some(w) = self.cur.take() {
            if !w.text.is_empty() && self.total_words < MAX_WORDS {
                self.total_words += 1;
                self.page.words.push(w);
            }
        }
    }

    fn to_page(&self, ctm: &Transform, x: f64, y: f64) -> (f32, f32) {
        let px = x * ctm.m11 + y * ctm.m21 + ctm.m31;
        let py = x * ctm.m12 + y * ctm.m22 + ctm.m32;
        (px as f32, (self.flip_h - py) as f32)
    }

    fn add_rule(&mut self, a: (f32, f32), b: (f32, f32)) {
        if self.page.rules.len() >= MAX_RULES_PER_PAGE {
            return;
        }
        let r = Rule {
            x0: a.0.min(b.0),
            y0: a.1.min(b.1),
            x1: a.0.max(b.0),
            y1: a.1.max(b.1),
        };
        if r.is_horizontal() || r.is_vertical() {
            self.page.rules.push(r);
        }
    }

    fn add_path(&mut self, ctm: &Transform, path: &Path) {
        let mut last: Option<(f64, f64)> = None;
        for op in path.ops.iter().take(100_000) {
            match *op {
                PathOp::MoveTo(x, y) => last = Some((x, y)),
                PathOp::LineTo(x, y) => {
                    if let Some((lx, ly)) = last {
                        let a = self.to_page(ctm, lx, ly);
                        let b = self.to_page(ctm, x, y);
                        self.add_rule(a, b);
                    }
                    last = Some((x, y));
                }
                PathOp::Rect(x, y, w, h) => {
                    let a = self.to_page(ctm, x, y);
                    let b = self.to_page(ctm, x + w, y + h);
                    self.add_rule(a, b);
                    last = Some((x, y));
                }
                PathOp::CurveTo(_, _, _, _, x, y) => last = Some((x, y)),
                PathOp::Close => {}
            }
        }
    }
}

impl OutputDev for Collector {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.flip_h = media_box.ury;
        self.page.width = (media_box.urx - media_box.llx) as f32;
        self.page.height = (media_box.ury - media_box.lly) as f32;
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        self.flush();
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        // Rotated text (a vertical margin note) is not part of the reading flow.
        if trm.m12.abs() > trm.m11.abs() * 0.05 || trm.m11 <= 0.0 {
            self.flush();
            return Ok(());
        }
        let vx = font_size * (trm.m11 + trm.m21);
        let vy = font_size * (trm.m12 + trm.m22);
        let size = (vx * vy).abs().sqrt() as f32;
        if !size.is_finite() || size <= 0.1 {
            return Ok(());
        }
        let x = trm.m31 as f32;
        let y = (self.flip_h - trm.m32) as f32;
        let mut advance = (width * f64::from(size)) as f32;
        // Some fonts' widths are not found by the library (0): estimate half an em per
        // character so that the next glyph's gap is still measured sensibly.
        if advance < 0.05 * size {
            advance = 0.6 * size * text.chars().count() as f32;
        }
        if !x.is_finite() || !y.is_finite() {
            return Ok(());
        }
        if text.chars().all(char::is_whitespace) {
            self.flush();
            return Ok(());
        }
        if let Some(w) = &mut self.cur {
            let same_line = (w.y - y).abs() < 0.3 * size.max(w.size);
            let gap = x - w.x1;
            if same_line && gap < 0.25 * size && gap > -0.5 * size {
                if w.text.len() < MAX_WORD_CHARS {
                    push_text(&mut w.text, text);
                }
                w.x1 = w.x1.max(x + advance.max(0.0));
                return Ok(());
            }
        }
        self.flush();
        let mut t = String::new();
        push_text(&mut t, text);
        self.cur = Some(Word {
            x0: x,
            x1: x + advance.max(0.0),
            y,
            size,
            text: t,
        });
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn stroke(
        &mut self,
        ctm: &Transform,
        _colorspace: &ColorSpace,
        _color: &[f64],
        path: &Path,
    ) -> Result<(), OutputError> {
        self.add_path(ctm, path);
        Ok(())
    }

    fn fill(
        &mut self,
        ctm: &Transform,
        _colorspace: &ColorSpace,
        _color: &[f64],
        path: &Path,
    ) -> Result<(), OutputError> {
        self.add_path(ctm, path);
        Ok(())
    }
}
