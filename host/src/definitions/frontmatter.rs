//! The frontmatter of a Markdown definition: its lines, for locating
//! errors, and the YAML subset it is written in (see the parent module).

use super::*;

// ---------------------------------------------------------------------------
// The frontmatter, as lines.

/// The lines of one definition file, for parsing and for locating errors.
pub(super) struct Source<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    /// Without their line ending; `lines[0]` is line 1.
    pub(super) lines: Vec<&'a str>,
    /// Byte offset of each line in `text`.
    pub(super) offsets: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        let mut lines = Vec::new();
        let mut offsets = Vec::new();
        let mut offset = 0;
        for raw in text.split_inclusive('\n') {
            offsets.push(offset);
            offset += raw.len();
            let line = raw.strip_suffix('\n').unwrap_or(raw);
            lines.push(line.strip_suffix('\r').unwrap_or(line));
        }
        Source {
            path,
            text,
            lines,
            offsets,
        }
    }

    /// An error at 0-based line `index`, byte `byte` of that line.
    pub(super) fn error(
        &self,
        index: usize,
        byte: usize,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        let line = self.lines.get(index).copied().unwrap_or("");
        let byte = byte.min(line.len());
        ManifestError {
            path: self.path.to_owned(),
            line: index + 1,
            column: line[..byte].chars().count() + 1,
            message: message.into(),
            source_line: Some(line.to_owned()),
            help: Some(help.into()),
        }
    }

    pub(super) fn warning(&self, index: usize, message: impl Into<String>) -> Warning {
        Warning {
            path: self.path.to_owned(),
            line: index + 1,
            message: message.into(),
        }
    }

    /// The index of the closing `---` line, and the body after it.
    pub(super) fn frontmatter(&self) -> Result<(usize, &'a str), ManifestError> {
        let opening = "start the file with the frontmatter: a `---` line, `name: my-agent`, \
             `description: when to delegate to it`, another `---` line; the system prompt follows";
        match self.lines.first() {
            None => {
                return Err(ManifestError {
                    path: self.path.to_owned(),
                    line: 0,
                    column: 0,
                    message: "the subagent definition is empty".to_owned(),
                    source_line: None,
                    help: Some(opening.to_owned()),
                });
            }
            Some(first) if first.trim_end() != "---" => {
                return Err(self.error(
                    0,
                    0,
                    "no frontmatter: a subagent definition starts with a `---` line",
                    opening,
                ));
            }
            Some(_) => {}
        }
        let Some(close) = (1..self.lines.len()).find(|&i| self.lines[i].trim_end() == "---") else {
            return Err(self.error(
                0,
                0,
                "the frontmatter is not closed",
                "end it with a `---` line after its last key; the system prompt follows that line",
            ));
        };
        let body = match self.offsets.get(close + 1) {
            Some(&offset) => &self.text[offset..],
            None => "",
        };
        Ok((close, body))
    }
}

pub(super) fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

pub(super) fn is_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

/// Cut a ` #` comment off a plain value.
pub(super) fn strip_comment(text: &str) -> &str {
    if text.starts_with('#') {
        return "";
    }
    let bytes = text.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b'#' && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
            return &text[..i];
        }
    }
    text
}

/// `Permission_Mode` → `permissionmode`: how keys are compared.
pub(super) fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

// ---------------------------------------------------------------------------
// The YAML subset.

/// A scalar and where it starts (0-based line index, byte in the line).
#[derive(Debug)]
pub(super) struct Scalar {
    pub(super) text: String,
    pub(super) index: usize,
    pub(super) byte: usize,
}

#[derive(Debug)]
pub(super) enum Value {
    /// Nothing after the key (YAML null), or `~` / `null`.
    Null,
    Scalar(Scalar),
    List(Vec<Scalar>),
    Map(Vec<Field>),
    /// The value of a key this module does not read; not interpreted.
    Skipped,
}

#[derive(Debug)]
pub(super) struct Field {
    pub(super) key: String,
    /// [`normalize_key`] of `key`.
    pub(super) norm: String,
    pub(super) index: usize,
    pub(super) byte: usize,
    pub(super) value: Value,
}

/// The keys whose values are read (normalized, and as shown in messages);
/// the rest are skipped and warned about.
pub(super) const KEYS: &[(&str, &str)] = &[
    ("name", "name"),
    ("description", "description"),
    ("tools", "tools"),
    ("disallowedtools", "disallowedTools"),
    ("model", "model"),
    ("modelconfig", "modelConfig"),
    ("permissionmode", "permissionMode"),
    ("readonly", "readonly"),
    ("allowedwritedirectories", "allowed_write_directories"),
];

pub(super) const VALUE_HELP: &str = "quote the whole value (\"…\"), or start a comment with ` #`";

pub(super) struct Parser<'s, 'a> {
    pub(super) src: &'s Source<'a>,
    /// The next line to read (0-based).
    pub(super) pos: usize,
    /// The closing `---` line.
    pub(super) end: usize,
}

impl<'a> Parser<'_, 'a> {
    pub(super) fn line(&self, index: usize) -> &'a str {
        self.src.lines[index]
    }

    /// The next line at or after `pos` that is not blank or a comment.
    pub(super) fn peek_content(&self) -> Option<usize> {
        (self.pos..self.end).find(|&i| !is_blank_or_comment(self.line(i)))
    }

    /// The indentation of a content line, refusing tabs.
    pub(super) fn indent(&self, index: usize) -> Result<usize, ManifestError> {
        let line = self.line(index);
        let spaces = line.len() - line.trim_start_matches(' ').len();
        if line[spaces..].starts_with('\t') {
            return Err(self.src.error(
                index,
                spaces,
                "a tab indents this line",
                "YAML indents with spaces only; replace the tab with spaces",
            ));
        }
        Ok(spaces)
    }

    /// The `key: value` lines indented by exactly `indent`, up to the first
    /// line indented less. Values of keys not in `known` are skipped.
    pub(super) fn map(
        &mut self,
        indent: usize,
        known: &[(&str, &str)],
    ) -> Result<Vec<Field>, ManifestError> {
        let mut fields: Vec<Field> = Vec::new();
        while let Some(index) = self.peek_content() {
            let at = self.indent(index)?;
            if at < indent {
                break;
            }
            if at > indent {
                return Err(self.src.error(
                    index,
                    at,
                    "unexpected indentation",
                    "align this key with the keys above it; indent only list items (`- item`) \
                     and the lines of a `|` or `>` block",
                ));
            }
            let line = self.line(index);
            let content = &line[at..];
            if is_item(content) {
                return Err(self.src.error(
                    index,
                    at,
                    "a list item with no key above it",
                    "put list items under their key: a line `tools:`, then one `  - Read` per item",
                ));
            }
            let (key, after) = self.key(index, at)?;
            self.pos = index + 1;
            let norm = normalize_key(key);
            if let Some(first) = fields.iter().find(|f| f.norm == norm) {
                return Err(self.src.error(
                    index,
                    at,
                    format!("`{key}` is set twice"),
                    format!(
                        "keep one of them; `{}` is also set on line {}",
                        first.key,
                        first.index + 1
                    ),
                ));
            }
            let value = if known.iter().any(|(n, _)| *n == norm) {
                let nested: &[(&str, &str)] = if norm == "modelconfig" {
                    &[("model", "model")]
                } else {
                    &[]
                };
                self.value(indent, index, after, nested)?
            } else {
                self.skip(indent);
                Value::Skipped
            };
            fields.push(Field {
                key: key.to_owned(),
                norm,
                index,
                byte: at,
                value,
            });
        }
        Ok(fields)
    }

    /// The key of the `key: value` line `index` whose key starts at byte
    /// `at`, and the byte just after its `:`.
    pub(super) fn key(&self, index: usize, at: usize) -> Result<(&'a str, usize), ManifestError> {
        let line = self.line(index);
        let content = &line[at..];
        let malformed = |byte: usize, message: &str, help: &str| {
            Err(self.src.error(index, at + byte, message, help))
        };
        let form = "each frontmatter line is `key: value`; a list item is `- item` under its key, \
                    and a long text is a `>` block";
        if content.starts_with('"') || content.starts_with('\'') {
            return malformed(
                0,
                "quoted keys are not supported",
                "write the key without quotes",
            );
        }
        let bytes = content.as_bytes();
        let colon = (0..bytes.len())
            .find(|&i| bytes[i] == b':' && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')));
        let Some(colon) = colon else {
            return match content.find(':') {
                Some(i) => malformed(
                    i + 1,
                    "expected a space after `:`",
                    "write `key: value`, with a space after the colon",
                ),
                None => malformed(0, "expected `key: value`", form),
            };
        };
        let key = content[..colon].trim_end();
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return malformed(0, &format!("`{key}` is not a key"), form);
        }
        Ok((key, at + colon + 1))
    }

    /// Skip the value of an ignored key: its more-indented lines, and list
    /// items at its own indentation.
    pub(super) fn skip(&mut self, indent: usize) {
        while self.pos < self.end {
            let line = self.line(self.pos);
            if !is_blank_or_comment(line) {
                let at = line.len() - line.trim_start_matches(' ').len();
                if at < indent || (at == indent && !is_item(&line[at..])) {
                    break;
                }
            }
            self.pos += 1;
        }
    }

    /// The value after a key at `indent`: starting at byte `after` of line
    /// `index`, or on the following lines.
    pub(super) fn value(
        &mut self,
        indent: usize,
        index: usize,
        after: usize,
        nested: &[(&str, &str)],
    ) -> Result<Value, ManifestError> {
        let line = self.line(index);
        let rest = &line[after..];
        let start = after + (rest.len() - rest.trim_start().len());
        let text = line[start..].trim_end();
        let Some(first) = text.chars().next() else {
            return self.below(indent, nested);
        };
        match first {
            '#' => self.below(indent, nested),
            '|' | '>' => self.block(indent, index, start),
            '"' | '\'' => {
                let (text, end) = self.quoted(index, start)?;
                self.after_value(index, end)?;
                Ok(Value::Scalar(Scalar {
                    text,
                    index,
                    byte: start,
                }))
            }
            '[' => self.flow_list(index, start),
            _ => {
                self.plain_start(index, start)?;
                let mut text = strip_comment(text).trim_end().to_owned();
                if matches!(text.as_str(), "~" | "null" | "Null" | "NULL") {
                    return Ok(Value::Null);
                }
                // A plain value goes on over more-indented lines.
                while self.pos < self.end {
                    let next = self.line(self.pos);
                    if is_blank_or_comment(next) {
                        break;
                    }
                    let at = self.indent(self.pos)?;
                    if at <= indent {
                        break;
                    }
                    if self.key(self.pos, at).is_ok() {
                        return Err(self.src.error(
                            self.pos,
                            at,
                            "unexpected indentation: this looks like a key, but it continues the value above",
                            "align the key with the keys above it; to go on with the value on this line, \
                             quote it or write it as a `>` block",
                        ));
                    }
                    text.push(' ');
                    text.push_str(strip_comment(next[at..].trim_end()).trim_end());
                    self.pos += 1;
                }
                Ok(Value::Scalar(Scalar {
                    text,
                    index,
                    byte: start,
                }))
            }
        }
    }

    /// Refuse what cannot start a plain value.
    pub(super) fn plain_start(&self, index: usize, start: usize) -> Result<(), ManifestError> {
        let content = &self.line(index)[start..];
        let refuse = |message: &str, help: &str| Err(self.src.error(index, start, message, help));
        match content.chars().next() {
            Some('{') => refuse(
                "flow mappings `{…}` are not supported",
                "write one `key: value` per line instead, indented under the key",
            ),
            Some('&' | '*' | '!') => refuse(
                "YAML anchors (`&`), aliases (`*`) and tags (`!`) are not supported",
                "write the value itself; quote it if it starts with one of these characters",
            ),
            Some('@' | '`') => refuse(
                "a plain value cannot start with `@` or `` ` ``",
                "quote the value: \"…\"",
            ),
            _ if is_item(content) => refuse(
                "a list item on the line of its key",
                "put each `- item` on its own line under the key, or write `[a, b]`",
            ),
            _ => Ok(()),
        }
    }

    /// A value on the lines below its key: a block list, a nested mapping,
    /// or nothing (null).
    pub(super) fn below(
        &mut self,
        indent: usize,
        nested: &[(&str, &str)],
    ) -> Result<Value, ManifestError> {
        let Some(index) = self.peek_content() else {
            return Ok(Value::Null);
        };
        let at = self.indent(index)?;
        let content = &self.line(index)[at..];
        if is_item(content) && at >= indent {
            self.block_list(at)
        } else if at > indent {
            Ok(Value::Map(self.map(at, nested)?))
        } else {
            Ok(Value::Null)
        }
    }

    /// `- item` lines at `indent`.
    pub(super) fn block_list(&mut self, indent: usize) -> Result<Value, ManifestError> {
        let mut items = Vec::new();
        while let Some(index) = self.peek_content() {
            let at = self.indent(index)?;
            let line = self.line(index);
            if at != indent || !is_item(&line[at..]) {
                break;
            }
            self.pos = index + 1;
            let rest = &line[at + 1..];
            let start = at + 1 + (rest.len() - rest.trim_start().len());
            let text = strip_comment(line[start..].trim_end()).trim_end();
            if text.is_empty() {
                return Err(self.src.error(
                    index,
                    at,
                    "an empty list item",
                    "write a value after `- `, or remove the line",
                ));
            }
            let text = match text.as_bytes()[0] {
                b'"' | b'\'' => {
                    let (text, end) = self.quoted(index, start)?;
                    self.after_value(index, end)?;
                    text
                }
                b'[' | b'{' => {
                    return Err(self.src.error(
                        index,
                        start,
                        "nested lists and mappings are not supported here",
                        "write one plain value per `- ` line",
                    ));
                }
                _ => {
                    self.plain_start(index, start)?;
                    text.to_owned()
                }
            };
            items.push(Scalar {
                text,
                index,
                byte: start,
            });
        }
        Ok(Value::List(items))
    }

    /// `[a, "b", c]` on one line, starting at byte `start`.
    pub(super) fn flow_list(&mut self, index: usize, start: usize) -> Result<Value, ManifestError> {
        let line = self.line(index);
        let bytes = line.as_bytes();
        let unclosed = || {
            self.src.error(
                index,
                start,
                "this list is not closed on its line",
                "close it with `]` on the same line, or write one `- item` per line under the key",
            )
        };
        let skip_spaces = |mut p: usize| {
            while p < bytes.len() && (bytes[p] == b' ' || bytes[p] == b'\t') {
                p += 1;
            }
            p
        };
        let mut items = Vec::new();
        let mut p = start + 1;
        loop {
            p = skip_spaces(p);
            match bytes.get(p) {
                None => return Err(unclosed()),
                Some(b']') => {
                    p += 1;
                    break;
                }
                Some(b',') => {
                    return Err(self.src.error(
                        index,
                        p,
                        "an empty list item",
                        "remove the extra comma",
                    ));
                }
                Some(b'[' | b'{') => {
                    return Err(self.src.error(
                        index,
                        p,
                        "nested lists and mappings are not supported here",
                        "write plain values: [a, b]",
                    ));
                }
                Some(b'"' | b'\'') => {
                    let (text, end) = self.quoted(index, p)?;
                    items.push(Scalar {
                        text,
                        index,
                        byte: p,
                    });
                    p = end;
                }
                Some(_) => {
                    let from = p;
                    while p < bytes.len() && !matches!(bytes[p], b',' | b']' | b'[' | b'{' | b'}') {
                        p += 1;
                    }
                    items.push(Scalar {
                        text: line[from..p].trim_end().to_owned(),
                        index,
                        byte: from,
                    });
                }
            }
            p = skip_spaces(p);
            match bytes.get(p) {
                Some(b',') => p += 1,
                Some(b']') => {
                    p += 1;
                    break;
                }
                None => return Err(unclosed()),
                Some(_) => {
                    return Err(self.src.error(
                        index,
                        p,
                        "expected `,` or `]` in this list",
                        "separate items with commas; quote an item that contains `,`, `[` or `]`",
                    ));
                }
            }
        }
        self.after_value(index, p)?;
        Ok(Value::List(items))
    }

    /// A quoted scalar starting at byte `start`: its text, and the byte
    /// after its closing quote.
    pub(super) fn quoted(
        &self,
        index: usize,
        start: usize,
    ) -> Result<(String, usize), ManifestError> {
        let line = self.line(index);
        let quote = line.as_bytes()[start];
        let mut out = String::new();
        let mut chars = line[start + 1..].char_indices();
        let offset = |i: usize| start + 1 + i;
        while let Some((i, c)) = chars.next() {
            if quote == b'\'' {
                if c == '\'' {
                    if line[offset(i) + 1..].starts_with('\'') {
                        chars.next();
                        out.push('\'');
                        continue;
                    }
                    return Ok((out, offset(i) + 1));
                }
                out.push(c);
                continue;
            }
            match c {
                '"' => return Ok((out, offset(i) + 1)),
                '\\' => {
                    let bad = |help: &str| {
                        Err(self.src.error(
                            index,
                            offset(i),
                            "an invalid escape in a quoted string",
                            help,
                        ))
                    };
                    let Some((_, e)) = chars.next() else {
                        return bad("a `\\` at the end of the line: write `\\\\` for a backslash");
                    };
                    let simple = match e {
                        '"' => Some('"'),
                        '\\' => Some('\\'),
                        '/' => Some('/'),
                        'n' => Some('\n'),
                        't' => Some('\t'),
                        'r' => Some('\r'),
                        '0' => Some('\0'),
                        ' ' => Some(' '),
                        _ => None,
                    };
                    if let Some(c) = simple {
                        out.push(c);
                        continue;
                    }
                    let digits = match e {
                        'x' => 2,
                        'u' => 4,
                        'U' => 8,
                        _ => {
                            return bad(&format!(
                                "`\\{e}` is not an escape: write `\\\\` for a backslash, or use 'single quotes'"
                            ));
                        }
                    };
                    let hex: String = chars.by_ref().take(digits).map(|(_, c)| c).collect();
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(c) if hex.len() == digits => out.push(c),
                        _ => {
                            return bad(&format!(
                                "`\\{e}` takes {digits} hex digits naming a character"
                            ));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.src.error(
            index,
            start,
            "this quoted string is not closed on its line",
            "close the quote on the same line; for a long text write `key: >` and indent the text \
             on the following lines",
        ))
    }

    /// After a value only a comment may follow.
    pub(super) fn after_value(&self, index: usize, end: usize) -> Result<(), ManifestError> {
        let rest = &self.line(index)[end..];
        let trimmed = rest.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        Err(self.src.error(
            index,
            end + (rest.len() - trimmed.len()),
            "unexpected text after the value",
            VALUE_HELP,
        ))
    }

    /// A `|` or `>` block scalar whose indicator is at byte `start` of line
    /// `index`, for a key at `indent`.
    pub(super) fn block(
        &mut self,
        indent: usize,
        index: usize,
        start: usize,
    ) -> Result<Value, ManifestError> {
        #[derive(Clone, Copy)]
        enum Chomp {
            Clip,
            Strip,
            Keep,
        }
        let header = strip_comment(&self.line(index)[start..]).trim_end();
        let folded = header.starts_with('>');
        let mut chomp = Chomp::Clip;
        let mut explicit = None;
        for (i, c) in header.char_indices().skip(1) {
            match c {
                '-' => chomp = Chomp::Strip,
                '+' => chomp = Chomp::Keep,
                '1'..='9' => explicit = Some(indent + (c as usize - '0' as usize)),
                _ => {
                    return Err(self.src.error(
                        index,
                        start + i,
                        format!("unexpected `{c}` after `{}`", &header[..1]),
                        "a block is `|` (keeps line breaks) or `>` (folds lines), optionally with \
                         `-` or `+`; its text goes on the following, indented lines",
                    ));
                }
            }
        }
        let mut content_indent = explicit;
        let mut lines: Vec<&str> = Vec::new();
        while self.pos < self.end {
            let line = self.line(self.pos);
            if line.trim().is_empty() {
                lines.push("");
                self.pos += 1;
                continue;
            }
            let at = line.len() - line.trim_start_matches(' ').len();
            if at <= indent {
                break;
            }
            let want = *content_indent.get_or_insert(at);
            if at < want {
                return Err(self.src.error(
                    self.pos,
                    at,
                    "this line of the block is indented less than its first line",
                    "indent every line of the block at least as much as its first line",
                ));
            }
            lines.push(&line[want..]);
            self.pos += 1;
        }
        let trailing = lines.iter().rev().take_while(|l| l.is_empty()).count();
        lines.truncate(lines.len() - trailing);
        let mut text = if folded {
            fold(&lines)
        } else {
            lines.join("\n")
        };
        if !lines.is_empty() {
            match chomp {
                Chomp::Strip => {}
                Chomp::Clip => text.push('\n'),
                Chomp::Keep => text.push_str(&"\n".repeat(trailing + 1)),
            }
        }
        Ok(Value::Scalar(Scalar {
            text,
            index,
            byte: start,
        }))
    }
}

/// YAML folding of a `>` block: a line break between two lines becomes a
/// space, blank lines become line breaks, more-indented lines keep theirs.
pub(super) fn fold(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut breaks = 0;
    let mut previous: Option<bool> = None;
    for line in lines {
        if line.is_empty() {
            breaks += 1;
            continue;
        }
        let more = line.starts_with([' ', '\t']);
        match previous {
            None => out.push_str(&"\n".repeat(breaks)),
            Some(prev_more) if !more && !prev_more => {
                if breaks == 0 {
                    out.push(' ');
                } else {
                    out.push_str(&"\n".repeat(breaks));
                }
            }
            Some(_) => out.push_str(&"\n".repeat(breaks + 1)),
        }
        out.push_str(line);
        breaks = 0;
        previous = Some(more);
    }
    out
}
