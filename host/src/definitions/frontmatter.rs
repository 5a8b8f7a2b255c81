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
    ("approvalmode", "approvalMode"),
    ("readonly", "readonly"),
    ("allowedwritedirectories", "allowed_write_directories"),
];

/// Is `key` one of [`KEYS`]?
fn is_known(key: &str) -> bool {
    let norm = normalize_key(key);
    KEYS.iter().any(|(n, _)| *n == norm)
}

pub(super) const VALUE_HELP: &str = "quote the whole value (\"…\"), or start a comment with ` #`";

/// A place in the frontmatter: a 0-based line index and a byte in that line.
#[derive(Clone, Copy, Debug)]
pub(super) struct At {
    pub(super) index: usize,
    pub(super) byte: usize,
}

/// The number of spaces `line` starts with.
fn spaces(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

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
        let spaces = spaces(line);
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
                     and the lines that go on with a value",
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
            let (key, after) = self.key(index, at, fields.last())?;
            self.pos = index + 1;
            let norm = normalize_key(key);
            if let Some(first) = fields.iter().find(|f| f.norm == norm) {
                let mut help = format!(
                    "keep one of them; `{}` is also set on line {}",
                    first.key,
                    first.index + 1
                );
                if matches!(first.value, Value::Skipped) {
                    help.push_str(
                        "; if these lines go on with a text above (as the `user:` lines of an \
                         example in a description do), indent them more than the keys",
                    );
                }
                return Err(self
                    .src
                    .error(index, at, format!("`{key}` is set twice"), help));
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
    /// `at`, and the byte just after its `:`. `above` is the field before
    /// it, to suggest indenting a line that goes on with its value.
    pub(super) fn key(
        &self,
        index: usize,
        at: usize,
        above: Option<&Field>,
    ) -> Result<(&'a str, usize), ManifestError> {
        let line = self.line(index);
        let content = &line[at..];
        let malformed = |byte: usize, message: &str, help: String| {
            Err(self.src.error(index, at + byte, message, help))
        };
        let form = || {
            let mut help = "each frontmatter line is `key: value`; a list item is `- item` under \
                            its key, and a long text is a `>` block"
                .to_owned();
            if let Some(above) = above {
                help.push_str(&format!(
                    "; if this line goes on with the value of `{}` (line {}), indent it, and \
                     every line of that value, more than the key",
                    above.key,
                    above.index + 1
                ));
            }
            help
        };
        if content.starts_with('"') || content.starts_with('\'') {
            return malformed(
                0,
                "quoted keys are not supported",
                "write the key without quotes".to_owned(),
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
                    "write `key: value`, with a space after the colon".to_owned(),
                ),
                None => malformed(0, "expected `key: value`", form()),
            };
        };
        let key = content[..colon].trim_end();
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return malformed(0, &format!("`{key}` is not a key"), form());
        }
        Ok((key, at + colon + 1))
    }

    /// Does line `index`, from byte `at`, read as `key: value` with one of
    /// the keys this module reads, written as keys are (starting with a
    /// lowercase letter)? Such a line is refused where it would go on with a
    /// value: it is a key indented by mistake. (`Model: …` or `Tools: …`
    /// there reads as text, as headings in an example do.)
    fn is_known_key(&self, index: usize, at: usize) -> bool {
        self.key(index, at, None).is_ok_and(|(key, _)| {
            key.starts_with(|c: char| c.is_ascii_lowercase()) && is_known(key)
        })
    }

    fn misindented_key(&self, index: usize, at: usize) -> ManifestError {
        self.src.error(
            index,
            at,
            "unexpected indentation: this looks like a key, but it continues the value above",
            "align the key with the keys above it; to go on with the value on this line, \
             quote it or write it as a `>` block",
        )
    }

    /// Skip the value of an ignored key: its more-indented lines, and list
    /// items at its own indentation.
    pub(super) fn skip(&mut self, indent: usize) {
        while self.pos < self.end {
            let line = self.line(self.pos);
            if !is_blank_or_comment(line) {
                let at = spaces(line);
                if at < indent || (at == indent && !is_item(&line[at..])) {
                    break;
                }
            }
            self.pos += 1;
        }
    }

    /// The value after a key at `indent`: starting at byte `after` of line
    /// `index`, or on the following lines. `pos` is the line after `index`.
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
        match line[start..].chars().next() {
            None | Some('#') => self.below(indent, nested),
            Some(_) => self.node(indent, index, start),
        }
    }

    /// A value that starts at byte `start` of line `index` (the key's line
    /// or the next), for a key at `indent`; `pos` is the line after `index`.
    fn node(&mut self, indent: usize, index: usize, start: usize) -> Result<Value, ManifestError> {
        match self.line(index).as_bytes()[start] {
            b'|' | b'>' => self.block(indent, index, start),
            b'"' | b'\'' => {
                let (text, end) = self.quoted(indent, index, start)?;
                self.after_value(end)?;
                self.pos = end.index + 1;
                Ok(Value::Scalar(Scalar {
                    text,
                    index,
                    byte: start,
                }))
            }
            b'[' => self.flow_list(indent, index, start),
            _ => {
                let text = self.plain(indent, index, start)?;
                if matches!(text.as_str(), "~" | "null" | "Null" | "NULL") {
                    return Ok(Value::Null);
                }
                Ok(Value::Scalar(Scalar {
                    text,
                    index,
                    byte: start,
                }))
            }
        }
    }

    /// A plain value from byte `start` of line `index`, going on over the
    /// following lines indented more than `indent` (YAML folding: a line
    /// break is a space, a blank line a line break). A ` #` ends a line's
    /// text; a comment line ends the value. Unlike YAML, `: ` may appear in
    /// it (Claude Code writes descriptions so); a line that reads as one of
    /// the keys this module reads is refused, as a key indented by mistake.
    fn plain(
        &mut self,
        indent: usize,
        index: usize,
        start: usize,
    ) -> Result<String, ManifestError> {
        self.plain_start(index, start)?;
        let first = &self.line(index)[start..];
        let mut text = strip_comment(first.trim_end()).trim_end().to_owned();
        let mut breaks = 0;
        let mut next = index + 1;
        while next < self.end {
            let line = self.line(next);
            if line.trim().is_empty() {
                breaks += 1;
                next += 1;
                continue;
            }
            if is_blank_or_comment(line) {
                break;
            }
            let at = self.indent(next)?;
            if at <= indent {
                break;
            }
            if self.is_known_key(next, at) {
                return Err(self.misindented_key(next, at));
            }
            if breaks == 0 {
                text.push(' ');
            } else {
                text.push_str(&"\n".repeat(breaks));
            }
            breaks = 0;
            text.push_str(strip_comment(line[at..].trim_end()).trim_end());
            next += 1;
            self.pos = next;
        }
        Ok(text)
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
            Some('%') => refuse(
                "a plain value cannot start with `%`",
                "quote the value: \"…\"",
            ),
            _ if is_item(content) => refuse(
                "a list item on the line of its key",
                "put each `- item` on its own line under the key, or write `[a, b]`",
            ),
            _ => Ok(()),
        }
    }

    /// A value on the lines below its key: a block list, a nested mapping
    /// (for keys with `nested` keys), a value on the next lines, or nothing
    /// (null).
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
            return self.block_list(at);
        }
        if at <= indent {
            return Ok(Value::Null);
        }
        if !nested.is_empty() {
            return Ok(Value::Map(self.map(at, nested)?));
        }
        if self.is_known_key(index, at) {
            return Err(self.misindented_key(index, at));
        }
        self.pos = index + 1;
        self.node(indent, index, at)
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
                    let (text, end) = self.quoted(indent, index, start)?;
                    self.after_value(end)?;
                    self.pos = end.index + 1;
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
                _ => self.plain(indent, index, start)?,
            };
            items.push(Scalar {
                text,
                index,
                byte: start,
            });
        }
        Ok(Value::List(items))
    }

    /// Skip spaces, comments and line breaks inside a flow list, from
    /// `at`; `None` when the frontmatter ends, or a line is indented no
    /// more than `indent` (other than one that closes the list), first.
    fn flow_space(&self, mut at: At, indent: usize) -> Option<At> {
        loop {
            let bytes = self.line(at.index).as_bytes();
            while at.byte < bytes.len() && matches!(bytes[at.byte], b' ' | b'\t') {
                at.byte += 1;
            }
            let comment = bytes.get(at.byte) == Some(&b'#')
                && (at.byte == 0 || matches!(bytes[at.byte - 1], b' ' | b'\t'));
            if at.byte < bytes.len() && !comment {
                return Some(at);
            }
            let next = at.index + 1;
            if next >= self.end {
                return None;
            }
            // The closing `]` may stand at the key's indentation.
            let line = self.line(next);
            if !is_blank_or_comment(line)
                && spaces(line) <= indent
                && !line.trim_start_matches(' ').starts_with(']')
            {
                return None;
            }
            at = At {
                index: next,
                byte: 0,
            };
        }
    }

    /// `[a, "b", c]` starting at byte `start` of line `index`, possibly over
    /// several lines indented more than `indent`.
    pub(super) fn flow_list(
        &mut self,
        indent: usize,
        index: usize,
        start: usize,
    ) -> Result<Value, ManifestError> {
        let unclosed = || {
            self.src.error(
                index,
                start,
                "this list is not closed",
                "close it with `]`; a list may go on over the following lines, indented more \
                 than its key; or write one `- item` per line under the key",
            )
        };
        let mut items = Vec::new();
        let mut at = At {
            index,
            byte: start + 1,
        };
        loop {
            at = self.flow_space(at, indent).ok_or_else(unclosed)?;
            let line = self.line(at.index);
            let bytes = line.as_bytes();
            match bytes[at.byte] {
                b']' => {
                    at.byte += 1;
                    break;
                }
                b',' => {
                    return Err(self.src.error(
                        at.index,
                        at.byte,
                        "an empty list item",
                        "remove the extra comma",
                    ));
                }
                b'[' | b'{' => {
                    return Err(self.src.error(
                        at.index,
                        at.byte,
                        "nested lists and mappings are not supported here",
                        "write plain values: [a, b]",
                    ));
                }
                b'"' | b'\'' => {
                    let (text, end) = self.quoted(indent, at.index, at.byte)?;
                    items.push(Scalar {
                        text,
                        index: at.index,
                        byte: at.byte,
                    });
                    at = end;
                }
                _ => {
                    let from = at.byte;
                    let mut p = from;
                    while p < bytes.len()
                        && !matches!(bytes[p], b',' | b']' | b'[' | b'{' | b'}')
                        && !(bytes[p] == b'#' && matches!(bytes[p - 1], b' ' | b'\t'))
                    {
                        p += 1;
                    }
                    items.push(Scalar {
                        text: line[from..p].trim_end().to_owned(),
                        index: at.index,
                        byte: from,
                    });
                    at.byte = p;
                }
            }
            at = self.flow_space(at, indent).ok_or_else(unclosed)?;
            match self.line(at.index).as_bytes()[at.byte] {
                b',' => at.byte += 1,
                b']' => {
                    at.byte += 1;
                    break;
                }
                _ => {
                    return Err(self.src.error(
                        at.index,
                        at.byte,
                        "expected `,` or `]` in this list",
                        "separate items with commas; quote an item that contains `,`, `[` or `]`",
                    ));
                }
            }
        }
        self.after_value(at)?;
        self.pos = at.index + 1;
        Ok(Value::List(items))
    }

    /// A quoted scalar starting at byte `start` of line `index`, possibly
    /// going on over lines indented more than `indent` (folded as YAML
    /// folds them: a line break is a space, a blank line a line break, a
    /// `\` at the end of a line in double quotes joins the lines): its text,
    /// and where its closing quote ends.
    pub(super) fn quoted(
        &self,
        indent: usize,
        index: usize,
        start: usize,
    ) -> Result<(String, At), ManifestError> {
        let quote = self.line(index).as_bytes()[start];
        let unclosed = || {
            let q = quote as char;
            self.src.error(
                index,
                start,
                "this quoted string is not closed",
                format!(
                    "close it with `{q}`; a quoted value may go on over the following lines, \
                     indented more than its key"
                ),
            )
        };
        let mut out = String::new();
        let (mut li, mut from) = (index, start + 1);
        loop {
            let line = self.line(li);
            // What trailing white space a line break may trim: not escaped.
            let mut kept = out.len();
            let mut joined = false;
            let mut chars = line[from..].char_indices();
            while let Some((i, c)) = chars.next() {
                let byte = from + i;
                if quote == b'\'' {
                    if c == '\'' {
                        if line[byte + 1..].starts_with('\'') {
                            chars.next();
                            out.push('\'');
                            continue;
                        }
                        return Ok((
                            out,
                            At {
                                index: li,
                                byte: byte + 1,
                            },
                        ));
                    }
                    out.push(c);
                    continue;
                }
                match c {
                    '"' => {
                        return Ok((
                            out,
                            At {
                                index: li,
                                byte: byte + 1,
                            },
                        ));
                    }
                    '\\' => {
                        let Some((_, e)) = chars.next() else {
                            joined = true;
                            break;
                        };
                        out.push(self.escape(li, byte, e, &mut chars)?);
                        kept = out.len();
                    }
                    c => out.push(c),
                }
            }
            if !joined {
                let trimmed = out[kept..].trim_end_matches([' ', '\t']).len();
                out.truncate(kept + trimmed);
            }
            let mut breaks = 0;
            let mut next = li + 1;
            loop {
                if next >= self.end {
                    return Err(unclosed());
                }
                let line = self.line(next);
                if !line.trim().is_empty() {
                    if spaces(line) <= indent {
                        return Err(unclosed());
                    }
                    break;
                }
                breaks += 1;
                next += 1;
            }
            if joined || breaks > 0 {
                out.push_str(&"\n".repeat(breaks));
            } else {
                out.push(' ');
            }
            li = next;
            let line = self.line(li);
            from = line.len() - line.trim_start_matches([' ', '\t']).len();
        }
    }

    /// The character a `\e` escape at byte `byte` of line `index` stands
    /// for; `\x`, `\u` and `\U` read their hex digits from `chars`.
    fn escape(
        &self,
        index: usize,
        byte: usize,
        e: char,
        chars: &mut std::str::CharIndices<'_>,
    ) -> Result<char, ManifestError> {
        let bad = |help: &str| {
            Err(self
                .src
                .error(index, byte, "an invalid escape in a quoted string", help))
        };
        let simple = match e {
            '"' => Some('"'),
            '\\' => Some('\\'),
            '/' => Some('/'),
            'n' => Some('\n'),
            't' | '\t' => Some('\t'),
            'r' => Some('\r'),
            '0' => Some('\0'),
            ' ' => Some(' '),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'e' => Some('\u{1b}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            'N' => Some('\u{85}'),
            '_' => Some('\u{a0}'),
            'L' => Some('\u{2028}'),
            'P' => Some('\u{2029}'),
            _ => None,
        };
        if let Some(c) = simple {
            return Ok(c);
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
            Some(c) if hex.len() == digits => Ok(c),
            _ => bad(&format!(
                "`\\{e}` takes {digits} hex digits naming a character"
            )),
        }
    }

    /// After a value only a comment may follow.
    pub(super) fn after_value(&self, end: At) -> Result<(), ManifestError> {
        let rest = &self.line(end.index)[end.byte..];
        let trimmed = rest.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        Err(self.src.error(
            end.index,
            end.byte + (rest.len() - trimmed.len()),
            "unexpected text after the value",
            VALUE_HELP,
        ))
    }

    /// A `|` or `>` block scalar whose indicator is at byte `start` of line
    /// `index`, for a key at `indent`: a header of `|` or `>`, then in any
    /// order at most one chomping indicator (`-` strips the final line
    /// break, `+` keeps every trailing one) and at most one indentation
    /// indicator (`1`–`9`, the content's indentation beyond the key's).
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
        let mut chomp = None;
        let mut explicit = None;
        let header_help = "a block is `|` (keeps line breaks) or `>` (folds lines), optionally \
                           with `-` or `+` and an indentation digit (`|-`, `>2`); its text goes \
                           on the following, indented lines";
        for (i, c) in header.char_indices().skip(1) {
            let set = match c {
                '-' if chomp.is_none() => chomp.replace(Chomp::Strip).is_none(),
                '+' if chomp.is_none() => chomp.replace(Chomp::Keep).is_none(),
                '1'..='9' if explicit.is_none() => explicit
                    .replace(indent + (c as usize - '0' as usize))
                    .is_none(),
                _ => false,
            };
            if !set {
                return Err(self.src.error(
                    index,
                    start + i,
                    format!("unexpected `{c}` after `{}`", &header[..i]),
                    header_help,
                ));
            }
        }
        let chomp = chomp.unwrap_or(Chomp::Clip);
        let mut content_indent = explicit;
        let mut lines: Vec<&str> = Vec::new();
        while self.pos < self.end {
            let line = self.line(self.pos);
            if line.trim().is_empty() {
                lines.push("");
                self.pos += 1;
                continue;
            }
            let at = spaces(line);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of frontmatter `yaml` (without its `---` lines).
    fn fields(yaml: &str) -> Result<Vec<Field>, ManifestError> {
        let text = format!("---\n{yaml}---\nBody\n");
        let src = Source::new(Path::new("agents/x.md"), &text);
        let (close, _) = src.frontmatter()?;
        let mut parser = Parser {
            src: &src,
            pos: 1,
            end: close,
        };
        parser.map(0, KEYS)
    }

    /// The value of `key` in `yaml`.
    fn value(yaml: &str, key: &str) -> Value {
        let fields = fields(yaml).unwrap_or_else(|e| panic!("{yaml}\n{e}"));
        let field = fields
            .into_iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("no `{key}` in {yaml}"));
        field.value
    }

    /// The text of the scalar `key` in `yaml`.
    fn text(yaml: &str, key: &str) -> String {
        match value(yaml, key) {
            Value::Scalar(s) => s.text,
            other => panic!("`{key}` is not a scalar in {yaml}: {other:?}"),
        }
    }

    /// The items of the list `key` in `yaml`.
    fn items(yaml: &str, key: &str) -> Vec<String> {
        match value(yaml, key) {
            Value::List(items) => items.into_iter().map(|s| s.text).collect(),
            other => panic!("`{key}` is not a list in {yaml}: {other:?}"),
        }
    }

    /// The error `yaml` is refused with: (line, column, message, help),
    /// lines counted from the file's opening `---` (line 1).
    fn error(yaml: &str) -> (usize, usize, String, String) {
        let err = match fields(yaml) {
            Ok(fields) => panic!("accepted {yaml}: {fields:#?}"),
            Err(err) => err,
        };
        (
            err.line,
            err.column,
            err.message,
            err.help.unwrap_or_default(),
        )
    }

    #[test]
    fn literal_blocks_keep_line_breaks_and_deeper_indentation() {
        let yaml = "description: |\n  one\n    two\n\n  three\nname: x\n";
        assert_eq!(text(yaml, "description"), "one\n  two\n\nthree\n");
        // A comment after the header; `#` lines inside are text.
        let yaml = "description: | # note\n  # not a comment\n  text\n";
        assert_eq!(text(yaml, "description"), "# not a comment\ntext\n");
    }

    #[test]
    fn folded_blocks_fold_lines() {
        let yaml = "description: >\n  one\n  two\n\n  three\n    kept\n  four\nname: x\n";
        assert_eq!(text(yaml, "description"), "one two\nthree\n  kept\nfour\n");
        let lines: Vec<&str> = vec!["a", "b", "", "c", "  d", "e"];
        assert_eq!(fold(&lines), "a b\nc\n  d\ne");
    }

    #[test]
    fn block_chomping_strips_clips_or_keeps_the_final_line_breaks() {
        let body = "\n  a\n  b\n\n\nname: x\n";
        assert_eq!(
            text(&format!("description: |{body}"), "description"),
            "a\nb\n"
        );
        assert_eq!(
            text(&format!("description: |-{body}"), "description"),
            "a\nb"
        );
        assert_eq!(
            text(&format!("description: |+{body}"), "description"),
            "a\nb\n\n\n"
        );
        assert_eq!(
            text(&format!("description: >-{body}"), "description"),
            "a b"
        );
        assert_eq!(
            text(&format!("description: >+{body}"), "description"),
            "a b\n\n\n"
        );
        // An empty block is empty, whatever the chomping.
        assert_eq!(text("description: |+\nname: x\n", "description"), "");
    }

    #[test]
    fn block_indentation_indicators() {
        // The first line is indented more than the content: `|2` says so.
        let yaml = "description: |2\n     indented\n  normal\n";
        assert_eq!(text(yaml, "description"), "   indented\nnormal\n");
        for header in ["|2-", "|-2"] {
            let yaml = format!("description: {header}\n    a\n  b\n");
            assert_eq!(text(&yaml, "description"), "  a\nb", "{header}");
        }
        // Below the indicated indentation: refused.
        let (line, column, message, _) = error("description: |4\n  a\n");
        assert_eq!((line, column), (3, 3));
        assert!(message.contains("indented less"), "{message}");
    }

    #[test]
    fn bad_block_headers_are_refused() {
        for (header, column) in [
            ("|x", 15),
            ("|--", 16),
            ("|22", 16),
            ("|+-", 16),
            ("|0", 15),
        ] {
            let (line, col, message, help) = error(&format!("description: {header}\n  a\n"));
            assert_eq!((line, col), (2, column), "{header}: {message}");
            assert!(message.starts_with("unexpected `"), "{header}: {message}");
            assert!(help.contains("`|-`"), "{help}");
        }
    }

    #[test]
    fn plain_values_go_on_over_indented_lines() {
        let yaml = "description: one\n  two # c\n  three\nname: x\n";
        assert_eq!(text(yaml, "description"), "one two three");
        // Starting on the line after the key (as prettier and qwen-code write it).
        let yaml = "description:\n  Use this agent to review code. Spawn\n  it after a change.\nmodel: inherit\n";
        assert_eq!(
            text(yaml, "description"),
            "Use this agent to review code. Spawn it after a change."
        );
        assert_eq!(text(yaml, "model"), "inherit");
        // A blank line is a line break; deeper lines fold like the rest.
        let yaml = "description:\n  Use it when the user is:\n\n  - building\n    <example>user: \"hi\"</example>\n";
        assert_eq!(
            text(yaml, "description"),
            "Use it when the user is:\n- building <example>user: \"hi\"</example>"
        );
    }

    #[test]
    fn plain_values_may_hold_colon_space_but_not_a_known_key() {
        // The lenient reading of `: ` (Claude Code's descriptions are so).
        let yaml = "description: Use this agent when: the user asks. Examples: <example>user: \"x\"</example>\n";
        assert_eq!(
            text(yaml, "description"),
            "Use this agent when: the user asks. Examples: <example>user: \"x\"</example>"
        );
        // Example lines that go on with it read as text, capitalized keys too.
        let yaml = "description: Use it when asked. Examples:\n  Context: a review\n  user: \"review this\"\n  Tools: none\n";
        assert_eq!(
            text(yaml, "description"),
            "Use it when asked. Examples: Context: a review user: \"review this\" Tools: none"
        );
        // A key this module reads, indented by mistake: refused.
        let (line, column, message, _) = error("name: x\n  description: d\n");
        assert_eq!((line, column), (3, 3));
        assert!(message.starts_with("unexpected indentation: this looks like a key"));
        let (line, column, message, _) = error("description:\n  tools: Read\n");
        assert_eq!((line, column), (3, 3));
        assert!(message.starts_with("unexpected indentation: this looks like a key"));
    }

    #[test]
    fn comments_end_lines_and_plain_values() {
        let yaml = "# full line\nname: x # trailing\n  # indented comment\nmodel: C#-expert\ndescription: one\n  # ends the value\n";
        assert_eq!(text(yaml, "name"), "x");
        // `#` with no space before it is text.
        assert_eq!(text(yaml, "model"), "C#-expert");
        assert_eq!(text(yaml, "description"), "one");
        // A comment line ends a plain value: a deeper line after it is refused.
        let (line, _, message, _) = error("description: one\n# c\n  two\n");
        assert_eq!(line, 4);
        assert_eq!(message, "unexpected indentation");
        // Quotes keep `#`.
        assert_eq!(text("description: \"a # b\" # c\n", "description"), "a # b");
    }

    #[test]
    fn nulls() {
        for yaml in [
            "model:\nname: x\n",
            "model: ~\n",
            "model: null # none\n",
            "model: # none\n",
        ] {
            assert!(matches!(value(yaml, "model"), Value::Null), "{yaml}");
        }
        assert_eq!(text("model: 'null'\n", "model"), "null");
    }

    #[test]
    fn single_quoted_values_go_on_over_lines() {
        let yaml = "description: 'It''s a\n  long text\n\n  with a break'\nname: x\n";
        assert_eq!(text(yaml, "description"), "It's a long text\nwith a break");
        // Backslashes are text in single quotes.
        assert_eq!(text("description: 'a\\nb'\n", "description"), "a\\nb");
    }

    #[test]
    fn double_quoted_values_go_on_over_lines_with_escapes() {
        let yaml = "description: \"say \\\"hi\\\"   \n    \\u00e9t\\xe9\\t\n\n  joined\\\n  here\\ \n  end\"\n";
        assert_eq!(
            text(yaml, "description"),
            "say \"hi\" \u{e9}t\u{e9}\t\njoinedhere  end"
        );
        assert_eq!(
            text(
                "description: \"\\a\\b\\e\\f\\v\\0\\N\\_\\L\\P\\/\\U0001F600\"\n",
                "description"
            ),
            "\u{7}\u{8}\u{1b}\u{c}\u{b}\0\u{85}\u{a0}\u{2028}\u{2029}/\u{1F600}"
        );
        // Quoted on the line after its key.
        assert_eq!(text("description:\n  \"a: b\"\n", "description"), "a: b");
    }

    #[test]
    fn unclosed_and_bad_quotes_are_located() {
        // The next key comes before the closing quote.
        let (line, column, message, help) = error("description: \"Reviews code\ntools: Read\n");
        assert_eq!((line, column), (2, 14));
        assert_eq!(message, "this quoted string is not closed");
        assert!(help.starts_with("close it with `\"`"), "{help}");
        // The frontmatter ends before it.
        let (line, column, _, help) = error("description: 'Reviews\n  code\n");
        assert_eq!((line, column), (2, 14));
        assert!(help.starts_with("close it with `'`"), "{help}");
        let (line, column, message, help) = error("description: \"a\n  b \\q\"\n");
        assert_eq!((line, column), (3, 5));
        assert_eq!(message, "an invalid escape in a quoted string");
        assert!(help.contains("`\\q` is not an escape"), "{help}");
        let (_, _, _, help) = error("description: \"\\u00\"\n");
        assert!(help.contains("takes 4 hex digits"), "{help}");
        let (line, column, message, _) = error("description: \"a\" b\n");
        assert_eq!(
            (line, column, message.as_str()),
            (2, 18, "unexpected text after the value")
        );
    }

    #[test]
    fn flow_lists_on_one_or_more_lines() {
        assert_eq!(
            items("tools: [Read, \"Grep\", 'Glob', mcp__x__y]\n", "tools"),
            ["Read", "Grep", "Glob", "mcp__x__y"]
        );
        assert_eq!(items("tools: []\n", "tools"), Vec::<String>::new());
        let yaml = "tools: [\n    Read, # the reader\n    \"Write\",\n\n    Edit,\n  ]\nname: x\n";
        assert_eq!(items(yaml, "tools"), ["Read", "Write", "Edit"]);
        let yaml = "tools: [Read,\n  \"a long\n  name\"]\n";
        assert_eq!(items(yaml, "tools"), ["Read", "a long name"]);
        // The closing bracket at the key's indentation.
        assert_eq!(items("tools: [\n  Read,\n]\nname: x\n", "tools"), ["Read"]);
        // On the line after its key.
        assert_eq!(items("tools:\n  [Read, Grep]\n", "tools"), ["Read", "Grep"]);
    }

    #[test]
    fn bad_flow_lists_are_located() {
        let (line, column, message, help) = error("tools: [Read, Grep,\nmodel: x\n");
        assert_eq!((line, column), (2, 8));
        assert_eq!(message, "this list is not closed");
        assert!(help.starts_with("close it with `]`"), "{help}");
        let (line, column, message, _) = error("tools: [Read Grep\n  Glob]\n");
        assert_eq!((line, column), (3, 3));
        assert_eq!(message, "expected `,` or `]` in this list");
        let (_, column, message, _) = error("tools: [Read,, Grep]\n");
        assert_eq!((column, message.as_str()), (14, "an empty list item"));
        let (_, column, message, _) = error("tools: [Read, [Grep]]\n");
        assert_eq!(column, 15);
        assert!(message.starts_with("nested lists"), "{message}");
        let (_, column, message, _) = error("tools: [Read] Grep\n");
        assert_eq!(
            (column, message.as_str()),
            (15, "unexpected text after the value")
        );
    }

    #[test]
    fn block_lists() {
        let yaml = "tools:\n  - Read # reads\n  # a comment\n  - \"Write\"\n  - 'Bash(git diff:*)'\nname: x\n";
        assert_eq!(items(yaml, "tools"), ["Read", "Write", "Bash(git diff:*)"]);
        // At the key's own indentation.
        assert_eq!(
            items("tools:\n- Read\n- Grep\nname: x\n", "tools"),
            ["Read", "Grep"]
        );
        let (line, _, message, _) = error("tools:\n  -\n");
        assert_eq!((line, message.as_str()), (3, "an empty list item"));
        let (_, _, message, _) = error("tools:\n  - [Read]\n");
        assert!(message.starts_with("nested lists"), "{message}");
        let (line, column, message, _) = error("tools:\n\t- Read\n");
        assert_eq!(
            (line, column, message.as_str()),
            (3, 1, "a tab indents this line")
        );
    }

    #[test]
    fn nested_mappings_only_under_model_config() {
        let yaml = "modelConfig:\n  model: qwen3-coder\n  temp: 0.2\n";
        let Value::Map(sub) = value(yaml, "modelConfig") else {
            panic!("not a map");
        };
        assert_eq!(sub.len(), 2);
        assert!(matches!(&sub[0].value, Value::Scalar(s) if s.text == "qwen3-coder"));
        assert!(matches!(sub[1].value, Value::Skipped));
        // Elsewhere an indented `key: value` is text (and then the wrong type).
        assert_eq!(
            text(
                "allowed_write_directories:\n  docs: true\n",
                "allowed_write_directories"
            ),
            "docs: true"
        );
        // Ignored keys are skipped whatever they hold.
        let yaml =
            "hooks:\n  PreToolUse: [{a: b}] [c]\n    - x: &y *z\nargument-hint: [a] [b]\nname: x\n";
        assert!(matches!(value(yaml, "hooks"), Value::Skipped));
        assert_eq!(text(yaml, "name"), "x");
    }

    #[test]
    fn what_yaml_is_not_read_stays_an_error() {
        for (yaml, start) in [
            ("description: &a text\n", "YAML anchors"),
            ("description: *a\n", "YAML anchors"),
            ("description: !!str text\n", "YAML anchors"),
            ("description: {a: b}\n", "flow mappings"),
            ("description: @home\n", "a plain value cannot start"),
            (
                "description: - item\n",
                "a list item on the line of its key",
            ),
            ("\"name\": x\n", "quoted keys"),
            ("model:sonnet\n", "expected a space after `:`"),
            ("  name: x\n", "unexpected indentation"),
            ("- Read\n", "a list item with no key above it"),
        ] {
            let (_, _, message, _) = error(yaml);
            assert!(message.starts_with(start), "{yaml}: {message}");
        }
    }

    #[test]
    fn a_line_that_is_not_a_key_suggests_indenting_it() {
        // Examples written under a description without indentation.
        let yaml = "description: Use it. Examples:\n<example>\nmodel: x\n";
        let (line, column, message, help) = error(yaml);
        assert_eq!(
            (line, column, message.as_str()),
            (3, 1, "expected `key: value`")
        );
        assert!(
            help.ends_with(
                "if this line goes on with the value of `description` (line 2), indent it, and every line of that value, more than the key"
            ),
            "{help}"
        );
        // Their `user:` lines read as keys, set twice.
        let yaml = "description: d\nuser: \"a\"\nassistant: \"b\"\nuser: \"c\"\n";
        let (line, _, message, help) = error(yaml);
        assert_eq!((line, message.as_str()), (5, "`user` is set twice"));
        assert!(help.contains("indent them more than the keys"), "{help}");
        // A known key set twice says nothing of examples.
        let (_, _, _, help) = error("name: a\nname: b\n");
        assert_eq!(help, "keep one of them; `name` is also set on line 2");
    }
}
