//! Markdown subagent definitions: `.md` files with YAML frontmatter, as
//! written for Claude Code, Cursor and qwen-code, loaded as prompt-only
//! subagents that the `prompt-agent` component runs.
//!
//! This module parses a definition and maps it to the fields of a
//! [`Manifest`]; finding the `prompt-agent` bundle that supplies the
//! component and the limits is the registries' job ([`crate::bundle`]).
//!
//! # Format
//!
//! ```text
//! ---
//! name: code-reviewer
//! description: Reviews changed code for bugs and missing tests.
//! tools: Read, Grep, Glob
//! model: inherit
//! ---
//! You are a senior reviewer. …            ← the system prompt (trimmed)
//! ```
//!
//! The file starts with a `---` line; the frontmatter ends at the next `---`
//! line, and the rest of the file, trimmed, is the system prompt (an empty
//! body means no prompt). The frontmatter is read by a small, strict subset
//! of YAML: `key: value` lines with plain, `'single'` or `"double"` quoted
//! scalars, `true` / `false`, inline lists `[a, b]`, block lists (`- item`
//! lines under the key), `|` and `>` block scalars (with `-` / `+`
//! chomping), comments, and a plain value continued on more-indented lines.
//! A plain value may contain `: ` (the descriptions Claude Code generates
//! do). Anchors, aliases, tags, flow mappings and multi-line quoted strings
//! are refused with an error that says how to write the value instead. Keys
//! match case-insensitively and ignoring `_` and `-`, so `permissionMode`,
//! `permission_mode` and `PermissionMode` are the same key; a key given
//! twice is an error.
//!
//! Every error is a [`ManifestError`] naming the file, line and column and
//! saying how to fix it. Things that are not errors but change what runs
//! (an ignored key, a tool with no sandboxed equivalent, a write that is not
//! granted) are returned as [`Warning`]s with the definition.
//!
//! # Mapping
//!
//! | frontmatter | effect |
//! |---|---|
//! | `name` (required) | the subagent's name; same rule as `subagent.toml` |
//! | `description` (required) | the description; a multi-line value is joined into one line |
//! | body | `prompt` (inline); empty → no prompt |
//! | `model` | `model`, kept as written: `inherit` is the parent's model, anything else an alias the host config resolves at launch |
//! | `modelConfig.model` (qwen-code) | `model`, when `model` is not set; other `modelConfig` keys are ignored with a warning |
//! | `tools` | list, inline list or comma-separated string (`Read, Grep, Glob`); decides only whether the subagent *may* write, see below. Read tools are always offered; tools without a sandboxed equivalent are ignored with a warning |
//! | `disallowedTools` | removed from `tools` before anything else |
//! | `permissionMode` | `plan` → readonly; `default`, `acceptEdits`, `dontAsk`, `bypassPermissions` (Claude Code), `auto-edit`, `yolo` (qwen-code) grant nothing extra; an unknown mode → readonly, with a warning |
//! | `readonly` (Cursor) | `true` → readonly; `false` grants nothing |
//! | `allowed_write_directories` (ours) | list of workspace-relative directories; normalized like `subagent.toml`'s, an invalid one is an error |
//! | any other key (`color`, `is_background`, `maxTurns`, `hooks`, …) | ignored, with a warning |
//!
//! The other manifest fields are fixed: `tools = ["model"]` (the agent loop
//! needs the model; never `subagents`), and `component`, `sha256` and
//! `[limits]` are those of the `prompt-agent` bundle ([`Definition::to_manifest`]).
//!
//! # Permissions
//!
//! Whatever a source tool would grant more widely maps to the narrower
//! choice here. A definition is **readonly** unless *both*
//!
//! - its `tools` (after `disallowedTools`) include a write tool — Claude
//!   Code's `Write`, `Edit`, `MultiEdit`, `NotebookEdit` or qwen-code's
//!   `write_file`, `edit`, `replace` (case-insensitive) — and
//! - it lists `allowed_write_directories`;
//!
//! and neither `readonly: true` nor `permissionMode: plan` (nor an unknown
//! mode) says otherwise. Then it runs with `permission_mode = "default"`
//! and exactly those directories; it never gets the whole workspace.
//! Omitting `tools` (which means "all tools" in Claude Code and Cursor)
//! therefore means readonly. Write tools without directories, or
//! directories without a write tool, run readonly with a warning saying
//! how to allow writes.
//!
//! Reading is not a grant: every subagent sees the workspace read-only, so
//! the read tools (`Read`, `Grep`, `Glob`, `LS`, `read_file`, `glob`,
//! `grep_search`, `list_directory`, …) map to prompt-agent's `list_dir`,
//! `read_file` and `search` and are always offered. Every other tool
//! (`Bash`, `WebFetch`, `WebSearch`, `Task`, `TodoWrite`, MCP tools, …) has
//! no sandboxed equivalent and is ignored with a warning naming it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::manifest::{
    Manifest, ManifestError, PermissionMode, PromptSource, Tool, did_you_mean, normalize_write_dir,
    valid_name,
};

/// The name of the bundle whose component runs Markdown definitions.
pub const RUNNER: &str = "prompt-agent";

/// Is `path` named like a Markdown definition (`*.md`, any case)?
pub fn is_definition_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("md"))
}

/// Something in a definition that is not an error but changes what runs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub path: PathBuf,
    /// 1-based; 0 when not tied to a line.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

/// A parsed Markdown definition, mapped to manifest terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// The `.md` file this was read from.
    pub path: PathBuf,
    pub name: String,
    /// One line.
    pub description: String,
    /// The body, trimmed; `None` when empty.
    pub prompt: Option<String>,
    /// As written (`inherit`, or an alias the host config resolves).
    pub model: Option<String>,
    /// [`PermissionMode::Default`] only with a write tool and write directories.
    pub permission_mode: PermissionMode,
    /// Normalized; `Some` exactly when the mode is `Default`.
    pub allowed_write_directories: Option<Vec<String>>,
    pub warnings: Vec<Warning>,
}

impl Definition {
    /// Read and parse the definition at `path`.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] when the file cannot be read or is not a valid
    /// definition, naming the line and column and how to fix it.
    pub fn load(path: &Path) -> Result<Definition, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|err| ManifestError {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read subagent definition: {err}"),
            source_line: None,
            help: Some(
                "a Markdown definition is a `.md` file: `---`, its frontmatter, `---`, then the system prompt"
                    .to_owned(),
            ),
        })?;
        Definition::parse(path, &text)
    }

    /// Parse definition `text`, as if read from `path`.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] naming the file, line and column of the first problem.
    pub fn parse(path: &Path, text: &str) -> Result<Definition, ManifestError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let src = Source::new(path, text);
        let (close, body) = src.frontmatter()?;
        let mut parser = Parser {
            src: &src,
            pos: 1,
            end: close,
        };
        let fields = parser.map(0, KEYS)?;
        Mapper {
            src: &src,
            close,
            warnings: Vec::new(),
        }
        .map(fields, body)
    }

    /// The manifest that runs this definition with `runner`, the manifest of
    /// the `prompt-agent` bundle: its component, digest pin and limits, and
    /// `tools = ["model"]`.
    pub fn to_manifest(&self, runner: &Manifest) -> Manifest {
        Manifest {
            path: self.path.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            component: runner.component.clone(),
            prompt: self.prompt.clone().map(PromptSource::Inline),
            model: self.model.clone(),
            tools: vec![Tool::Model],
            permission_mode: self.permission_mode,
            allowed_write_directories: self.allowed_write_directories.clone(),
            limits: runner.limits.clone(),
            build_command: None,
            sha256: runner.sha256.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// The frontmatter, as lines.

/// The lines of one definition file, for parsing and for locating errors.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    /// Without their line ending; `lines[0]` is line 1.
    lines: Vec<&'a str>,
    /// Byte offset of each line in `text`.
    offsets: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(path: &'a Path, text: &'a str) -> Source<'a> {
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
    fn error(
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

    fn warning(&self, index: usize, message: impl Into<String>) -> Warning {
        Warning {
            path: self.path.to_owned(),
            line: index + 1,
            message: message.into(),
        }
    }

    /// The index of the closing `---` line, and the body after it.
    fn frontmatter(&self) -> Result<(usize, &'a str), ManifestError> {
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

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

fn is_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

/// Cut a ` #` comment off a plain value.
fn strip_comment(text: &str) -> &str {
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
fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

// ---------------------------------------------------------------------------
// The YAML subset.

/// A scalar and where it starts (0-based line index, byte in the line).
#[derive(Debug)]
struct Scalar {
    text: String,
    index: usize,
    byte: usize,
}

#[derive(Debug)]
enum Value {
    /// Nothing after the key (YAML null), or `~` / `null`.
    Null,
    Scalar(Scalar),
    List(Vec<Scalar>),
    Map(Vec<Field>),
    /// The value of a key this module does not read; not interpreted.
    Skipped,
}

#[derive(Debug)]
struct Field {
    key: String,
    /// [`normalize_key`] of `key`.
    norm: String,
    index: usize,
    byte: usize,
    value: Value,
}

/// The keys whose values are read (normalized, and as shown in messages);
/// the rest are skipped and warned about.
const KEYS: &[(&str, &str)] = &[
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

const VALUE_HELP: &str = "quote the whole value (\"…\"), or start a comment with ` #`";

struct Parser<'s, 'a> {
    src: &'s Source<'a>,
    /// The next line to read (0-based).
    pos: usize,
    /// The closing `---` line.
    end: usize,
}

impl<'a> Parser<'_, 'a> {
    fn line(&self, index: usize) -> &'a str {
        self.src.lines[index]
    }

    /// The next line at or after `pos` that is not blank or a comment.
    fn peek_content(&self) -> Option<usize> {
        (self.pos..self.end).find(|&i| !is_blank_or_comment(self.line(i)))
    }

    /// The indentation of a content line, refusing tabs.
    fn indent(&self, index: usize) -> Result<usize, ManifestError> {
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
    fn map(&mut self, indent: usize, known: &[(&str, &str)]) -> Result<Vec<Field>, ManifestError> {
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
    fn key(&self, index: usize, at: usize) -> Result<(&'a str, usize), ManifestError> {
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
    fn skip(&mut self, indent: usize) {
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
    fn value(
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
    fn plain_start(&self, index: usize, start: usize) -> Result<(), ManifestError> {
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
    fn below(&mut self, indent: usize, nested: &[(&str, &str)]) -> Result<Value, ManifestError> {
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
    fn block_list(&mut self, indent: usize) -> Result<Value, ManifestError> {
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
    fn flow_list(&mut self, index: usize, start: usize) -> Result<Value, ManifestError> {
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
    fn quoted(&self, index: usize, start: usize) -> Result<(String, usize), ManifestError> {
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
    fn after_value(&self, index: usize, end: usize) -> Result<(), ManifestError> {
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
    fn block(&mut self, indent: usize, index: usize, start: usize) -> Result<Value, ManifestError> {
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
fn fold(lines: &[&str]) -> String {
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

// ---------------------------------------------------------------------------
// From frontmatter fields to manifest terms.

/// Tools a prompt-agent run offers as `list_dir`, `read_file` and `search`
/// (normalized: lowercase, no `_` or `-`).
const READ_TOOLS: &[&str] = &[
    // Claude Code
    "read",
    "glob",
    "grep",
    "ls",
    "notebookread",
    // qwen-code (and the Gemini CLI names it grew from)
    "readfile",
    "readmanyfiles",
    "listdirectory",
    "listfiles",
    "grepsearch",
    "searchfilecontent",
    "searchtext",
];

/// Tools that write files, offered as `write_file` when writes are granted.
const WRITE_TOOLS: &[&str] = &[
    // Claude Code
    "write",
    "edit",
    "multiedit",
    "notebookedit",
    // qwen-code
    "writefile",
    "replace",
];

const WRITE_TOOL_NAMES: &str =
    "Write, Edit, MultiEdit, NotebookEdit (Claude Code) or write_file, edit, replace (qwen-code)";

/// `Bash(git diff:*)` → `bash`; `write_file` → `writefile`.
fn tool_key(tool: &str) -> String {
    let name = tool.split('(').next().unwrap_or(tool).trim();
    normalize_key(name)
}

/// Split `Read, Grep, Bash(git log:*, git diff:*)` at the commas outside parentheses.
fn split_tools(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// `code reviewer` → `code-reviewer`, to suggest a valid name.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// A `permissionMode` value, as far as permissions go.
enum Mode {
    Plan,
    /// Known, but grants nothing here.
    Nothing,
    Unknown,
}

fn mode(value: &str) -> Mode {
    match normalize_key(value).as_str() {
        "plan" => Mode::Plan,
        "default" | "acceptedits" | "dontask" | "bypasspermissions" | "autoedit" | "yolo" => {
            Mode::Nothing
        }
        _ => Mode::Unknown,
    }
}

const MODES: &[&str] = &[
    "default",
    "acceptEdits",
    "dontAsk",
    "bypassPermissions",
    "plan",
    "auto-edit",
    "yolo",
];

struct Mapper<'s, 'a> {
    src: &'s Source<'a>,
    /// The closing `---` line, where missing keys are reported.
    close: usize,
    warnings: Vec<Warning>,
}

impl Mapper<'_, '_> {
    fn at_key(
        &self,
        field: &Field,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        self.src.error(field.index, field.byte, message, help)
    }

    fn at(
        &self,
        scalar: &Scalar,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        self.src.error(scalar.index, scalar.byte, message, help)
    }

    fn warn(&mut self, index: usize, message: impl Into<String>) {
        let warning = self.src.warning(index, message);
        self.warnings.push(warning);
    }

    /// A field that must be one value (or absent / null).
    fn scalar<'f>(
        &self,
        field: &'f Field,
        help: &str,
    ) -> Result<Option<&'f Scalar>, ManifestError> {
        match &field.value {
            Value::Scalar(s) => Ok(Some(s)),
            Value::Null => Ok(None),
            Value::List(_) | Value::Map(_) | Value::Skipped => Err(self.at_key(
                field,
                format!("`{}` must be a single value", field.key),
                help,
            )),
        }
    }

    /// A field holding a list (a comma-separated string too, with `split`).
    fn list(
        &self,
        field: &Field,
        split: bool,
        help: &str,
    ) -> Result<Option<Vec<(String, usize)>>, ManifestError> {
        match &field.value {
            Value::Null => Ok(None),
            Value::List(items) => Ok(Some(
                items
                    .iter()
                    .flat_map(|s| {
                        let parts = if split {
                            split_tools(&s.text)
                        } else {
                            vec![s.text.clone()]
                        };
                        parts.into_iter().map(move |p| (p, s.index))
                    })
                    .collect(),
            )),
            Value::Scalar(s) if split => Ok(Some(
                split_tools(&s.text)
                    .into_iter()
                    .map(|p| (p, s.index))
                    .collect(),
            )),
            _ => Err(self.at_key(field, format!("`{}` must be a list", field.key), help)),
        }
    }

    fn map(mut self, fields: Vec<Field>, body: &str) -> Result<Definition, ManifestError> {
        let get = |norm: &str| fields.iter().find(|f| f.norm == norm);

        for field in fields.iter().filter(|f| matches!(f.value, Value::Skipped)) {
            let names: Vec<&str> = KEYS.iter().map(|(n, _)| *n).collect();
            let hint = match did_you_mean(&field.norm, &names) {
                Some(best) => {
                    let shown = KEYS
                        .iter()
                        .find(|(n, _)| *n == best)
                        .map_or(best, |(_, s)| s);
                    format!("; did you mean `{shown}`?")
                }
                None => String::new(),
            };
            self.warn(
                field.index,
                format!(
                    "`{}` is ignored: it has no effect on a sandboxed run{hint}",
                    field.key
                ),
            );
        }

        // name
        let name_help = "add `name: my-agent` (lowercase letters, digits and `-`) before this line";
        let Some(name_field) = get("name") else {
            return Err(self.src.error(
                self.close,
                0,
                "missing `name` in the frontmatter",
                name_help,
            ));
        };
        let Some(name) =
            self.scalar(name_field, "write one name, such as `name: code-reviewer`")?
        else {
            return Err(self.at_key(
                name_field,
                "`name` is empty",
                "write a name, such as `name: code-reviewer`",
            ));
        };
        let name_text = name.text.trim();
        if !valid_name(name_text) {
            let suggestion = slug(name_text);
            let example = if valid_name(&suggestion) {
                format!(", such as `{suggestion}`")
            } else {
                String::new()
            };
            return Err(self.at(
                name,
                format!("invalid subagent name `{name_text}`"),
                format!(
                    "use 1 to 64 characters: lowercase letters, digits and `-`, starting with a letter or digit{example}"
                ),
            ));
        }

        // description
        let description_help =
            "say in one line when a parent agent should delegate to this subagent";
        let Some(description_field) = get("description") else {
            return Err(self.src.error(
                self.close,
                0,
                "missing `description` in the frontmatter",
                "add `description: …` before this line: one line saying when a parent agent should delegate to this subagent",
            ));
        };
        let description = self
            .scalar(description_field, description_help)?
            .map(|s| s.text.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        if description.is_empty() {
            return Err(self.at_key(
                description_field,
                "`description` is empty",
                description_help,
            ));
        }

        // model
        let model_help =
            "name a model alias (as in the host config) or `inherit`; or remove the line";
        let mut model = None;
        if let Some(field) = get("model")
            && let Some(s) = self.scalar(field, model_help)?
        {
            if s.text.trim().is_empty() {
                return Err(self.at(s, "`model` is empty", model_help));
            }
            model = Some(s.text.trim().to_owned());
        }
        if let Some(field) = get("modelconfig") {
            let Value::Map(sub) = &field.value else {
                return Err(self.at_key(
                    field,
                    "`modelConfig` must be a mapping",
                    "write `modelConfig:` and, indented below it, `model: …`; or use `model: …`",
                ));
            };
            for entry in sub {
                if entry.norm == "model" {
                    let Some(s) = self.scalar(entry, model_help)? else {
                        continue;
                    };
                    if model.is_some() {
                        self.warn(
                            entry.index,
                            "`modelConfig.model` is ignored: `model` is set",
                        );
                    } else if !s.text.trim().is_empty() {
                        model = Some(s.text.trim().to_owned());
                    }
                } else {
                    self.warn(
                        entry.index,
                        format!(
                            "`modelConfig.{}` is ignored: it has no effect on a sandboxed run",
                            entry.key
                        ),
                    );
                }
            }
        }

        // tools
        let tools_help =
            "write `tools: Read, Grep, Glob`, `tools: [Read, Grep]`, or one `- Read` line per tool";
        let tools_field = get("tools");
        let tools = match tools_field {
            Some(field) => self.list(field, true, tools_help)?,
            None => None,
        };
        let disallowed: Vec<String> = match get("disallowedtools") {
            Some(field) => self
                .list(field, true, tools_help)?
                .unwrap_or_default()
                .into_iter()
                .map(|(t, _)| tool_key(&t))
                .collect(),
            None => Vec::new(),
        };
        let tools: Vec<(String, usize)> = tools
            .unwrap_or_default()
            .into_iter()
            .filter(|(t, _)| !disallowed.contains(&tool_key(t)))
            .collect();
        let write_tools: Vec<&str> = tools
            .iter()
            .filter(|(t, _)| WRITE_TOOLS.contains(&tool_key(t).as_str()))
            .map(|(t, _)| t.as_str())
            .collect();
        let unsupported: Vec<&str> = tools
            .iter()
            .filter(|(t, _)| {
                let key = tool_key(t);
                !READ_TOOLS.contains(&key.as_str()) && !WRITE_TOOLS.contains(&key.as_str())
            })
            .map(|(t, _)| t.as_str())
            .collect();
        let tools_line = tools_field.map_or(0, |f| f.index);
        if !unsupported.is_empty() {
            self.warn(
                tools_line,
                format!(
                    "{} ignored: no sandboxed equivalent (a prompt-agent run has list_dir, read_file, search and, when writes are granted, write_file)",
                    match unsupported.as_slice() {
                        [one] => format!("tool `{one}` is"),
                        many => format!("tools `{}` are", many.join("`, `")),
                    }
                ),
            );
        }

        // allowed_write_directories
        let dirs_field = get("allowedwritedirectories");
        let dirs = match dirs_field {
            None => None,
            Some(field) => match &field.value {
                Value::Null => None,
                Value::List(items) => {
                    let mut dirs = Vec::new();
                    for item in items {
                        let normalized = normalize_write_dir(&item.text).map_err(|problem| {
                            self.at(
                                item,
                                format!("invalid write directory `{}`: {problem}", item.text),
                                "write a path relative to the workspace, such as `reports` or `docs/generated`",
                            )
                        })?;
                        dirs.push(normalized);
                    }
                    Some((dirs, field.index))
                }
                _ => {
                    return Err(self.at_key(
                        field,
                        format!("`{}` must be a list", field.key),
                        "write `allowed_write_directories: [reports]`, or one `- reports` line per directory",
                    ));
                }
            },
        };

        // readonly and permissionMode
        let mut narrowed: Option<(String, usize)> = None;
        if let Some(field) = get("readonly") {
            let help = "write `readonly: true` or `readonly: false`";
            if let Some(s) = self.scalar(field, help)? {
                match s.text.trim().to_ascii_lowercase().as_str() {
                    "true" => narrowed = Some((format!("`{}: true`", field.key), field.index)),
                    "false" => {}
                    _ => {
                        return Err(self.at(
                            s,
                            format!("`{}` must be true or false", field.key),
                            help,
                        ));
                    }
                }
            }
        }
        if let Some(field) = get("permissionmode") {
            let help = format!("use one of: {}", MODES.join(", "));
            if let Some(s) = self.scalar(field, &help)? {
                let value = s.text.trim();
                match mode(value) {
                    Mode::Plan => {
                        if narrowed.is_none() {
                            narrowed = Some((format!("`{}: {value}`", field.key), field.index));
                        }
                    }
                    Mode::Nothing if normalize_key(value) == "default" => {}
                    Mode::Nothing => self.warn(
                        field.index,
                        format!(
                            "`{}: {value}` grants nothing here: writes need a write tool in `tools` and `allowed_write_directories`",
                            field.key
                        ),
                    ),
                    Mode::Unknown => {
                        let hint = match did_you_mean(value, MODES) {
                            Some(best) => format!("did you mean `{best}`? "),
                            None => String::new(),
                        };
                        self.warn(
                            field.index,
                            format!(
                                "unknown {} `{value}`: the subagent runs readonly; {hint}the modes are {}",
                                field.key,
                                MODES.join(", ")
                            ),
                        );
                        narrowed.get_or_insert((String::new(), field.index));
                    }
                }
            }
        }

        let (permission_mode, allowed_write_directories) = match (&narrowed, dirs) {
            (Some((why, index)), dirs) => {
                if !why.is_empty() && (!write_tools.is_empty() || dirs.is_some()) {
                    let what = if write_tools.is_empty() {
                        "`allowed_write_directories` is".to_owned()
                    } else {
                        format!(
                            "`{}` {}",
                            write_tools.join("`, `"),
                            if write_tools.len() == 1 { "is" } else { "are" }
                        )
                    };
                    self.warn(
                        *index,
                        format!("{why} makes the subagent readonly: {what} ignored"),
                    );
                }
                (PermissionMode::Readonly, None)
            }
            (None, Some((_, index))) if write_tools.is_empty() => {
                self.warn(
                    index,
                    format!(
                        "`allowed_write_directories` has no effect: `tools` lists no write tool, so the subagent runs readonly; add `Write` to `tools` to let it write there (write tools: {WRITE_TOOL_NAMES})"
                    ),
                );
                (PermissionMode::Readonly, None)
            }
            (None, None) if !write_tools.is_empty() => {
                self.warn(
                    tools_line,
                    format!(
                        "`{}` may write nowhere: without `allowed_write_directories` the subagent runs readonly; add `allowed_write_directories: [reports]` (workspace-relative) to let it write there",
                        write_tools.join("`, `")
                    ),
                );
                (PermissionMode::Readonly, None)
            }
            (None, Some((dirs, index))) if dirs.is_empty() => {
                self.warn(
                    index,
                    "`allowed_write_directories` is empty: the subagent runs readonly",
                );
                (PermissionMode::Readonly, None)
            }
            (None, Some((dirs, _))) => (PermissionMode::Default, Some(dirs)),
            (None, None) => (PermissionMode::Readonly, None),
        };

        self.warnings.sort_by_key(|w| w.line);
        let body = body.trim();
        Ok(Definition {
            path: self.src.path.to_owned(),
            name: name_text.to_owned(),
            description,
            prompt: (!body.is_empty()).then(|| body.to_owned()),
            model,
            permission_mode,
            allowed_write_directories,
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Definition, ManifestError> {
        Definition::parse(Path::new("agents/x.md"), text)
    }

    #[test]
    fn block_scalars_keep_or_fold_lines() {
        let d = parse("---\nname: x\ndescription: |\n  one\n  two\n---\n").unwrap();
        assert_eq!(d.description, "one two");
        let lines: Vec<&str> = vec!["a", "b", "", "c", "  d", "e"];
        assert_eq!(fold(&lines), "a b\nc\n  d\ne");
    }

    #[test]
    fn quoted_scalars_unescape() {
        let d =
            parse("---\nname: 'x'\ndescription: \"say \\\"hi\\\" \\u00e9\" # c\n---\n").unwrap();
        assert_eq!(d.name, "x");
        assert_eq!(d.description, "say \"hi\" é");
        let d = parse("---\nname: x\ndescription: 'it''s'\n---\n").unwrap();
        assert_eq!(d.description, "it's");
    }

    #[test]
    fn tools_split_outside_parentheses() {
        assert_eq!(
            split_tools("Read, Bash(git log:*, git diff:*),Grep,"),
            ["Read", "Bash(git log:*, git diff:*)", "Grep"]
        );
    }

    #[test]
    fn slug_suggests_a_valid_name() {
        assert_eq!(slug("Code Reviewer!"), "code-reviewer");
    }

    #[test]
    fn real_world_shapes_are_accepted() {
        let text = "---\n# comment\n\nname : reviewer\ndescription: Use this agent when: reviewing. Examples: <example>user: \"hi\"</example> # note\n\
            tools:\nmodel: ~\nhooks:\n  PreToolUse:\n    - matcher: Bash\n      hooks: [{type: command}]\nmcpServers:\n- github\ncolor: blue\n---\nBody\n\n---\n\nMore body\n";
        let d = parse(text).unwrap();
        assert_eq!(d.name, "reviewer");
        assert_eq!(
            d.description,
            "Use this agent when: reviewing. Examples: <example>user: \"hi\"</example>"
        );
        assert_eq!(d.model, None);
        assert_eq!(d.prompt.as_deref(), Some("Body\n\n---\n\nMore body"));
        let ignored: Vec<usize> = d.warnings.iter().map(|w| w.line).collect();
        assert_eq!(ignored, [8, 12, 14], "{:#?}", d.warnings);
    }

    #[test]
    fn plain_values_continue_on_indented_lines() {
        let d = parse("---\nname: x\ndescription: one\n  two # c\n  three\n---\n").unwrap();
        assert_eq!(d.description, "one two three");
    }

    #[test]
    fn flow_lists_take_quoted_items() {
        let d = parse(
            "---\nname: x\ndescription: d\ntools: [\"Read\", 'Write', \"Bash(a, b)\"]\nallowed_write_directories: [\"out, here\"]\n---\n",
        )
        .unwrap();
        assert_eq!(
            d.allowed_write_directories,
            Some(vec!["out, here".to_owned()])
        );
        assert_eq!(d.permission_mode, PermissionMode::Default);
        assert!(
            d.warnings[0].message.contains("`Bash(a, b)`"),
            "{:#?}",
            d.warnings
        );
    }

    #[test]
    fn block_scalar_chomping() {
        let keep = "---\nname: x\ndescription: |+\n  a\n\n---\n";
        assert_eq!(parse(keep).unwrap().description, "a");
        let err = parse("---\nname: x\ndescription: |x\n  a\n---\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 15));
        let err = parse("---\nname: x\ndescription: |\n    a\n  b\n---\n").unwrap_err();
        assert_eq!((err.line, err.column), (5, 3));
    }

    #[test]
    fn null_name_is_empty() {
        let err = parse("---\nname: ~\ndescription: d\n---\n").unwrap_err();
        assert_eq!(err.message, "`name` is empty");
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let d = parse("\u{feff}---\r\nname: x\r\ndescription: d\r\n---\r\nBody\r\n").unwrap();
        assert_eq!(d.prompt.as_deref(), Some("Body"));
    }
}
