//! Where an error is: byte offsets to 1-based lines, and to the dotted key path
//! (`ports[1].ipv4`) of whatever is written at that offset.
//!
//! Schema errors from serde carry only a byte span, so the key is recovered from the
//! span-keeping `toml_edit` parse of the same text. A syntax error has no parse to
//! walk; its key comes from the last table header above it and the key on its line.

use std::ops::Range;
use toml_edit::{ImDocument, Item, TableLike, Value};

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].matches('\n').count() + 1
}

/// Joins path segments; index segments are written `[i]` and take no dot.
fn join(segs: &[String]) -> String {
    let mut s = String::new();
    for seg in segs {
        if !seg.starts_with('[') && !s.is_empty() {
            s.push('.');
        }
        s.push_str(seg);
    }
    s
}

fn covers(span: Option<Range<usize>>, off: usize) -> bool {
    span.is_some_and(|r| r.start <= off && (off < r.end || r.start == r.end))
}

/// The dotted path of the innermost key, value or table header at byte `off`.
pub(crate) fn key_at(doc: &ImDocument<String>, off: usize) -> Option<String> {
    let mut path = Vec::new();
    in_table(doc.as_table(), off, &mut path).then(|| join(&path))
}

fn in_table(t: &dyn TableLike, off: usize, path: &mut Vec<String>) -> bool {
    for (k, _) in t.iter() {
        let Some((key, item)) = t.get_key_value(k) else {
            continue;
        };
        path.push(k.to_string());
        if covers(key.span(), off) || in_item(item, off, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn in_item(item: &Item, off: usize, path: &mut Vec<String>) -> bool {
    match item {
        Item::None => false,
        Item::Value(v) => in_value(v, off, path),
        // A table's own span is its header; its keys are searched first.
        Item::Table(t) => in_table(t, off, path) || covers(t.span(), off),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(format!("[{i}]"));
                if in_table(t, off, path) || covers(t.span(), off) {
                    return true;
                }
                path.pop();
            }
            false
        }
    }
}

fn in_value(v: &Value, off: usize, path: &mut Vec<String>) -> bool {
    match v {
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                path.push(format!("[{i}]"));
                if in_value(e, off, path) {
                    return true;
                }
                path.pop();
            }
            covers(a.span(), off)
        }
        Value::InlineTable(t) => in_table(t, off, path) || covers(t.span(), off),
        _ => covers(v.span(), off),
    }
}

/// A table header line (`[a.b]` or `[[a]]`, maybe with a comment): its name and
/// whether it is an array of tables. Array values that start a line (`[1, 2],`) are not.
fn header(line: &str) -> Option<(&str, bool)> {
    let t = line.trim();
    let (body, aot) = match t.strip_prefix("[[") {
        Some(b) => (b.split_once("]]")?, true),
        None => (t.strip_prefix('[')?.split_once(']')?, false),
    };
    let rest = body.1.trim();
    (rest.is_empty() || rest.starts_with('#')).then(|| (body.0.trim(), aot))
}

/// Best guess at the dotted key of a syntax error at byte `off`: the last header
/// above it and the key written on its line.
pub(crate) fn key_near(text: &str, off: usize) -> String {
    let mut off = off.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let start = text[..off].rfind('\n').map_or(0, |i| i + 1);
    let end = text[off..].find('\n').map_or(text.len(), |i| off + i);
    let here = &text[start..end];

    let mut table = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in text[..start].lines() {
        if let Some((name, aot)) = header(line) {
            table = if aot {
                let n = match counts.iter_mut().find(|(k, _)| k == name) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        counts.push((name.to_string(), 0));
                        0
                    }
                };
                format!("{name}[{n}]")
            } else {
                name.to_string()
            };
        }
    }
    if let Some((name, _)) = header(here) {
        return name.to_string();
    }
    // A broken header (`[nat`): what was written.
    if here.trim_start().starts_with('[') && !here.contains('=') {
        return here.trim().trim_matches(['[', ']', ' ']).to_string();
    }
    let key = here
        .split_once('=')
        .map_or("", |(k, _)| k)
        .trim()
        .trim_matches(['"', '\''])
        .chars()
        .take(60)
        .collect::<String>();
    join(
        &[table, key]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>(),
    )
}

/// The 1-based line where dotted key `key` (no indexes) is written in `text`, or the
/// line of the deepest table above it that is written (0 when none is: the file
/// leaves it to its default).
pub(crate) fn line_of_key(text: &str, key: &str) -> usize {
    let Ok(doc) = text.parse::<ImDocument<String>>() else {
        return 0;
    };
    let mut line = 0;
    let mut table: Option<&dyn TableLike> = Some(doc.as_table());
    for seg in key.split('.') {
        let Some((k, item)) = table.and_then(|t| t.get_key_value(seg)) else {
            break;
        };
        let span = match item {
            Item::Table(t) if t.span().is_some() => t.span(),
            Item::ArrayOfTables(a) => a.get(0).and_then(|t| t.span()),
            _ => k.span(),
        };
        if let Some(r) = span {
            line = line_of(text, r.start);
        }
        table = item.as_table_like();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"top = 1
[a]
x = [1, [2, 3]]
t = { u = "v", w = [4] }
b.c = 5
[[p]]
n = 1
[[p]]
n = 2
m = { q = 7 }
[a.deep]
z = true
"#;

    fn key(needle: &str) -> Option<String> {
        let doc: ImDocument<String> = DOC.parse().unwrap();
        key_at(&doc, DOC.find(needle).unwrap())
    }

    #[test]
    fn keys_values_and_headers_have_their_paths() {
        assert_eq!(key("top").as_deref(), Some("top"));
        assert_eq!(key("x =").as_deref(), Some("a.x"));
        assert_eq!(key("3]").as_deref(), Some("a.x[1][1]"));
        assert_eq!(key("\"v\"").as_deref(), Some("a.t.u"));
        assert_eq!(key("4]").as_deref(), Some("a.t.w[0]"));
        assert_eq!(key("5").as_deref(), Some("a.b.c"));
        assert_eq!(key("n = 2").as_deref(), Some("p[1].n"));
        assert_eq!(key("7").as_deref(), Some("p[1].m.q"));
        assert_eq!(key("[[p]]\nn = 2").as_deref(), Some("p[1]"));
        assert_eq!(key("[a.deep]").as_deref(), Some("a.deep"));
        assert_eq!(key("true").as_deref(), Some("a.deep.z"));
    }

    #[test]
    fn syntax_errors_take_the_header_above() {
        let text = "[d]\nx = = 1\n[[p]]\n[[p]]\ny = \"open\n[q] # c\n[r\n";
        assert_eq!(key_near(text, text.find("= 1").unwrap()), "d.x");
        assert_eq!(key_near(text, text.find("\"open").unwrap()), "p[1].y");
        assert_eq!(key_near(text, text.find("[r").unwrap()), "r");
        assert_eq!(key_near(text, text.find("[q]").unwrap()), "q");
        assert_eq!(key_near("v = ]", 4), "v");
    }

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
        assert_eq!(line_of("é\n", 1), 1);
    }
}
