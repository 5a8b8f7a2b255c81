//! Which markers to look for, and finding them in a line.

use regex::Regex;

/// Every marker the report knows, in report order.
pub const MARKERS: [&str; 4] = ["TODO", "FIXME", "XXX", "HACK"];

/// Marker text is cut to this many characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// The markers `prompt` names as whole uppercase words, or all of them when it
/// names none: "FIXME only" selects FIXME, "write the todo report" selects all.
pub fn selected(prompt: &str) -> Vec<&'static str> {
    let words: Vec<&str> = prompt.split(|c: char| !c.is_alphanumeric()).collect();
    let named: Vec<&'static str> = MARKERS
        .into_iter()
        .filter(|marker| words.contains(marker))
        .collect();
    if named.is_empty() {
        MARKERS.to_vec()
    } else {
        named
    }
}

/// A marker found in a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub marker: &'static str,
    /// What follows the marker: an owner such as `(alice)`, if any, then the
    /// rest of the line after an optional `:`, without trailing comment closers.
    pub text: String,
}

/// Finds the first of some markers in a line.
#[derive(Debug)]
pub struct Scanner {
    markers: Vec<&'static str>,
    pattern: Regex,
}

impl Scanner {
    /// A scanner for `markers`, which must come from [`MARKERS`].
    pub fn new(markers: Vec<&'static str>) -> Scanner {
        let pattern = format!(r"\b({})\b(?:\(([^)]*)\))?:?(.*)", markers.join("|"));
        let pattern = Regex::new(&pattern).expect("marker words make a valid regex");
        Scanner { markers, pattern }
    }

    /// The markers this scanner looks for.
    pub fn markers(&self) -> &[&'static str] {
        &self.markers
    }

    /// The first marker in `line` that stands as a whole word.
    pub fn find(&self, line: &str) -> Option<Mark> {
        let captures = self.pattern.captures(line)?;
        let marker = self
            .markers
            .iter()
            .copied()
            .find(|marker| *marker == &captures[1])?;
        let rest = clean(&captures[3]);
        let text = match captures.get(2) {
            Some(owner) if rest.is_empty() => format!("({})", owner.as_str()),
            Some(owner) => format!("({}) {rest}", owner.as_str()),
            None => rest.to_owned(),
        };
        Some(Mark {
            marker,
            text: clip(&text),
        })
    }
}

/// `text` trimmed, without a trailing `*/` or `-->`.
fn clean(text: &str) -> &str {
    let text = text.trim();
    let text = text
        .strip_suffix("*/")
        .or_else(|| text.strip_suffix("-->"))
        .unwrap_or(text);
    text.trim_end()
}

/// `text` cut to [`MAX_TEXT_CHARS`] characters.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(marker: &'static str, text: &str) -> Option<Mark> {
        Some(Mark {
            marker,
            text: text.into(),
        })
    }

    #[test]
    fn the_prompt_selects_markers_by_uppercase_word() {
        assert_eq!(selected(""), MARKERS);
        assert_eq!(selected("FIXME only"), ["FIXME"]);
        assert_eq!(selected("HACK, and TODO."), ["TODO", "HACK"]);
        assert_eq!(selected("write the todo report"), MARKERS);
        assert_eq!(selected("TODOS and XXXL"), MARKERS);
    }

    #[test]
    fn finds_markers_as_whole_words() {
        let scanner = Scanner::new(MARKERS.to_vec());
        assert_eq!(scanner.find("// TODO: fix this"), mark("TODO", "fix this"));
        assert_eq!(
            scanner.find("# FIXME(alice): later"),
            mark("FIXME", "(alice) later")
        );
        assert_eq!(scanner.find("/* HACK(bob) */"), mark("HACK", "(bob)"));
        assert_eq!(scanner.find("<!-- XXX why -->"), mark("XXX", "why"));
        assert_eq!(scanner.find("x = 1 // TODO"), mark("TODO", ""));
        assert_eq!(
            scanner.find("TODO FIXME: both"),
            mark("TODO", "FIXME: both")
        );
        assert_eq!(scanner.find("MY_TODO TODOs todo 0xXXX"), None);
    }

    #[test]
    fn finds_only_selected_markers() {
        let scanner = Scanner::new(vec!["FIXME"]);
        assert_eq!(scanner.find("TODO: a FIXME: b"), mark("FIXME", "b"));
        assert_eq!(scanner.find("TODO: a"), None);
    }

    #[test]
    fn clips_long_text() {
        let scanner = Scanner::new(MARKERS.to_vec());
        let text = scanner
            .find(&format!("TODO: {}", "a".repeat(300)))
            .unwrap()
            .text;
        assert_eq!(text.chars().count(), MAX_TEXT_CHARS + 1);
    }
}
