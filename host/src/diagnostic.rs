//! Errors that point into a file the user wrote (a manifest, the host
//! config, a definition): file, line, column, the offending line, and how to
//! fix it, rendered the way rustc renders its errors.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem at a place in a file, with how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SourceError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem is not tied to a place in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line of the file, for display.
    pub source_line: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        if self.line == 0 {
            write!(f, "  --> {}", self.path.display())?;
        } else {
            write!(
                f,
                "  --> {}:{}:{}",
                self.path.display(),
                self.line,
                self.column
            )?;
        }
        if let Some(line) = &self.source_line {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            let caret = " ".repeat(self.column.saturating_sub(1));
            write!(f, "\n{pad} |\n{number} | {line}\n{pad} | {caret}^")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// An error at byte range `span` of `text` (read from `path`).
pub fn error_at(
    path: &Path,
    text: &str,
    span: Option<Range<usize>>,
    message: impl Into<String>,
    help: Option<String>,
) -> SourceError {
    let (line, column, source_line) = match span {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = text[line_start..start].chars().count() + 1;
            let source = text[line_start..].lines().next().unwrap_or("").to_owned();
            (line, column, Some(source))
        }
        None => (0, 0, None),
    };
    SourceError {
        path: path.to_owned(),
        line,
        column,
        message: message.into(),
        source_line,
        help,
    }
}

/// One TOML file the user wrote (a manifest, the host config), read and
/// checked against it: every error it makes names the file, the line and
/// column of a span, the offending line, and how to fix it.
pub struct Doc<'a> {
    path: &'a Path,
    text: &'a str,
    help: TomlHelp<'a>,
}

impl<'a> Doc<'a> {
    /// `text`, read from `path`; `help` says what its parse errors add.
    pub fn new(path: &'a Path, text: &'a str, help: TomlHelp<'a>) -> Doc<'a> {
        Doc { path, text, help }
    }

    /// Parse the file as `T`, an error saying how to fix it.
    ///
    /// # Errors
    ///
    /// [`SourceError`] at the place TOML or serde objects to.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, SourceError> {
        toml::from_str(self.text).map_err(|err| toml_error(self.path, self.text, &err, &self.help))
    }

    /// An error at `span`, or about the file as a whole.
    pub fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> SourceError {
        error_at(self.path, self.text, span, message, help)
    }

    /// An error at `value`'s place in the file.
    pub fn at<T>(
        &self,
        value: &toml::Spanned<T>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> SourceError {
        self.error(Some(value.span()), message, Some(help.into()))
    }

    /// The file's path.
    pub fn path(&self) -> &'a Path {
        self.path
    }
}

/// What a TOML file's errors should say beyond the common parts.
pub struct TomlHelp<'a> {
    /// The fields, for "did you mean" when serde does not list them.
    pub fields: &'a [&'a str],
    /// The help for a missing field.
    pub missing: fn(&str) -> String,
    /// The help for a value of the wrong type.
    pub invalid_type: &'a str,
}

/// Turn a TOML or serde error into one that says how to fix it.
pub fn toml_error(
    path: &Path,
    text: &str,
    err: &toml::de::Error,
    help: &TomlHelp<'_>,
) -> SourceError {
    let message = err.message().trim().to_owned();
    let span = err.span();
    if let Some(field) = between_backticks(&message, "unknown field `") {
        let expected = expected_fields(&message);
        let candidates: Vec<&str> = if expected.is_empty() {
            help.fields.to_vec()
        } else {
            expected.iter().map(String::as_str).collect()
        };
        let fix = match did_you_mean(field, &candidates) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("remove it; the fields here are: {}", candidates.join(", ")),
        };
        return error_at(
            path,
            text,
            span,
            format!("unknown field `{field}`"),
            Some(fix),
        );
    }
    if let Some(field) = between_backticks(&message, "missing field `") {
        // A missing field has no place of its own; point at the table, or the top.
        let span = span.filter(|s| s.start > 0 || s.end < text.len());
        return error_at(
            path,
            text,
            span,
            format!("missing field `{field}`"),
            Some((help.missing)(field)),
        );
    }
    let fix = if message.contains("invalid type") || message.contains("invalid value") {
        help.invalid_type.to_owned()
    } else {
        "this is not valid TOML; check quotes, brackets and `=` on this line".to_owned()
    };
    error_at(path, text, span, message, Some(fix))
}

/// The candidate closest to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn between_backticks<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('`')?])
}

/// The field names serde lists after "expected one of".
fn expected_fields(message: &str) -> Vec<String> {
    let Some(at) = message.find("expected") else {
        return Vec::new();
    };
    message[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}
