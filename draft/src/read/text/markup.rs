//! Inline markup removed from a line of running text or a table cell, so that the
//! drafter sees the words as a reader of the rendered document would.

/// Which inline syntax a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inline {
    /// Plain text: left as it is.
    Plain,
    /// DCMTK's man page sources: doxygen commands (`\b word`, `\e word`, `\#`) and the
    /// few HTML tags doxygen allows (`<b>`, `<em>`, `<tt>`).
    Doxygen,
    /// Markdown: `**strong**`, `*em*`, `` `code` ``, `[text](url)`.
    Markdown,
    /// reStructuredText: ``` ``literal`` ```, `*em*`, `:role:`text <target>``, `` `ref`_ ``.
    Rst,
}

/// `s` without its inline markup, whitespace runs collapsed to one space.
pub(crate) fn strip(s: &str, inline: Inline) -> String {
    let out = match inline {
        Inline::Plain => return collapse(s),
        Inline::Doxygen => doxygen(s),
        Inline::Markdown => markdown(s),
        Inline::Rst => rst(s),
    };
    collapse(&out)
}

/// Whitespace runs to one space, trimmed.
pub(crate) fn collapse(s: &str) -> String {
    let b = s.as_bytes();
    let clean = b.first().is_none_or(|c| !c.is_ascii_whitespace())
        && b.last().is_none_or(|c| !c.is_ascii_whitespace())
        && !b
            .windows(2)
            .any(|w| w[0].is_ascii_whitespace() && w[1].is_ascii_whitespace())
        && !b
            .iter()
            .any(|&c| matches!(c, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        && s.is_ascii();
    if clean {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Doxygen inline tags that only style the word after them.
const DOXYGEN_STYLE: &[&str] = &[
    "b", "e", "c", "p", "a", "em", "li", "n", "ref", "anchor", "sa", "see", "note", "warning",
    "param", "return", "brief",
];
/// HTML tags allowed in doxygen and Markdown text that carry no words.
const STYLE_TAGS: &[&str] = &[
    "b", "i", "em", "strong", "tt", "code", "br", "u", "kbd", "var", "sup", "sub", "small", "big",
    "span", "a", "p", "pre",
];

fn doxygen(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            let n = b[i + 1];
            if b"#\\&$@<>%\".:|~".contains(&n) {
                out.push(n as char);
                i += 2;
                continue;
            }
            if n.is_ascii_alphabetic() {
                let end = b[i + 1..]
                    .iter()
                    .position(|x| !x.is_ascii_alphanumeric())
                    .map_or(b.len(), |p| i + 1 + p);
                let word = &s[i + 1..end];
                if DOXYGEN_STYLE.contains(&word) {
                    i = end;
                    if b.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    continue;
                }
            }
        }
        if c == b'<' {
            if let Some(len) = style_tag_len(&s[i..]) {
                i += len;
                continue;
            }
        }
        let ch_len = utf8_len(c);
        out.push_str(&s[i..(i + ch_len).min(s.len())]);
        i += ch_len;
    }
    out
}

/// The length of an HTML style tag (`<b>`, `</em>`, `<br/>`, `<a href="..">`) at the
/// start of `s`.
fn style_tag_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('<')?;
    let body = body.strip_prefix('/').unwrap_or(body);
    let name_len = body
        .bytes()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(body.len());
    let name = body[..name_len].to_ascii_lowercase();
    if !STYLE_TAGS.contains(&name.as_str()) {
        return None;
    }
    let close = s.find('>')?;
    // Only a tag on one short stretch of the line.
    if close > 200 || s[..close].contains('<') && s[1..close].contains('<') {
        return None;
    }
    Some(close + 1)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn markdown(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' if i + 1 < b.len() && b[i + 1].is_ascii_punctuation() => {
                out.push(b[i + 1] as char);
                i += 2;
            }
            b'`' => {
                let ticks = b[i..].iter().take_while(|&&x| x == b'`').count();
                let fence = &s[i..i + ticks];
                match s[i + ticks..].find(fence) {
                    Some(end) => {
                        out.push_str(s[i + ticks..i + ticks + end].trim());
                        i += ticks + end + ticks;
                    }
                    None => {
                        out.push_str(fence);
                        i += ticks;
                    }
                }
            }
            b'*' => {
                i += emphasis_marker(b, i);
            }
            b'!' if b.get(i + 1) == Some(&b'[') => i += 1,
            b'[' => {
                // [text](url) -> text
                if let Some(close) = s[i..].find("](") {
                    let after = i + close + 2;
                    if let Some(paren) = s[after..].find(')') {
                        out.push_str(&s[i + 1..i + close]);
                        i = after + paren + 1;
                        continue;
                    }
                }
                out.push('[');
                i += 1;
            }
            b'<' => match style_tag_len(&s[i..]) {
                Some(len) => {
                    out.push(' ');
                    i += len;
                }
                None => {
                    out.push('<');
                    i += 1;
                }
            },
            _ => {
                let n = utf8_len(c);
                out.push_str(&s[i..(i + n).min(s.len())]);
                i += n;
            }
        }
    }
    out
}

/// Skips an emphasis run of `*` at `i` when it opens or closes emphasis (next to a
/// word on one side, space or punctuation on the other); returns how many bytes to
/// skip (1 to keep a lone `*` as the text's own).
fn emphasis_marker(b: &[u8], i: usize) -> usize {
    let run = b[i..].iter().take_while(|&&x| x == b'*').count();
    let before = if i == 0 { b' ' } else { b[i - 1] };
    let after = b.get(i + run).copied().unwrap_or(b' ');
    let opens = !after.is_ascii_whitespace()
        && (before.is_ascii_whitespace() || before.is_ascii_punctuation());
    let closes = !before.is_ascii_whitespace()
        && (after.is_ascii_whitespace() || after.is_ascii_punctuation());
    if run <= 3 && (opens || closes) {
        run
    } else {
        // Keep the stars: they are text (a wildcard, a footnote mark).
        0
    }
}

fn rst(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'`' {
            if b.get(i + 1) == Some(&b'`') {
                // ``literal``
                if let Some(end) = s[i + 2..].find("``") {
                    out.push_str(&s[i + 2..i + 2 + end]);
                    i += 2 + end + 2;
                    continue;
                }
            } else if let Some(end) = s[i + 1..].find('`') {
                // `text <target>`_ , :role:`text <target>`, `interpreted`
                let inner = &s[i + 1..i + 1 + end];
                out.push_str(reference_text(inner));
                i += 1 + end + 1;
                while i < b.len() && b[i] == b'_' {
                    i += 1;
                }
                continue;
            }
        }
        if c == b':' {
            // :role:`...` -> drop ":role:"
            let rest = &s[i + 1..];
            if let Some(end) = rest.find(":`") {
                let role = &rest[..end];
                if !role.is_empty()
                    && role
                        .bytes()
                        .all(|x| x.is_ascii_alphanumeric() || x == b'-' || x == b':' || x == b'_')
                {
                    i += 1 + end + 1;
                    continue;
                }
            }
        }
        if c == b'*' {
            let skip = emphasis_marker(b, i);
            if skip > 0 {
                i += skip;
                continue;
            }
        }
        if c == b'\\' && i + 1 < b.len() {
            i += 1;
            continue;
        }
        let n = utf8_len(c);
        out.push_str(&s[i..(i + n).min(s.len())]);
        i += n;
    }
    out
}

/// `text <target>` -> `text` (or `target` when there is no text).
fn reference_text(inner: &str) -> &str {
    let t = inner.trim();
    if t.ends_with('>') {
        if let Some(open) = t.rfind('<') {
            let text = t[..open].trim();
            if text.is_empty() {
                return t[open + 1..t.len() - 1].trim();
            }
            return text;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doxygen_markup() {
        assert_eq!(
            strip(
                "The Image Central Test Node (\\b dcmqrscp) Application",
                Inline::Doxygen
            ),
            "The Image Central Test Node (dcmqrscp) Application"
        );
        assert_eq!(
            strip(
                "format of <b>dcmqrdb's</b> binary \\e index.dat file",
                Inline::Doxygen
            ),
            "format of dcmqrdb's binary index.dat file"
        );
        assert_eq!(
            strip("\\li \\b \\#p: complete path", Inline::Doxygen),
            "#p: complete path"
        );
        assert_eq!(
            strip(
                "control tables are <em>/etc/hosts.allow</em> and",
                Inline::Doxygen
            ),
            "control tables are /etc/hosts.allow and"
        );
    }

    #[test]
    fn rst_markup() {
        assert_eq!(
            strip(
                "The ``storescp`` application implements a *port* for the :dcm:`Storage<part04/chapter_B.html>` service",
                Inline::Rst
            ),
            "The storescp application implements a port for the Storage service"
        );
        assert_eq!(
            strip("see `the docs <https://x>`_ now", Inline::Rst),
            "see the docs now"
        );
        assert_eq!(
            strip("RETIRED_HardcopyColorImageStorage", Inline::Rst),
            "RETIRED_HardcopyColorImageStorage"
        );
        assert_eq!(
            strip("a * b and *TransferSyntaxAccepted", Inline::Rst),
            "a * b and TransferSyntaxAccepted"
        );
    }

    #[test]
    fn markdown_markup() {
        assert_eq!(
            strip(
                "**CT Image Storage** (`1.2.840.10008.5.1.4.1.1.2`), see [PS3.4](http://x/p4)",
                Inline::Markdown
            ),
            "CT Image Storage (1.2.840.10008.5.1.4.1.1.2), see PS3.4"
        );
        assert_eq!(
            strip("DRAFT_SRTextStorage", Inline::Markdown),
            "DRAFT_SRTextStorage"
        );
    }
}
