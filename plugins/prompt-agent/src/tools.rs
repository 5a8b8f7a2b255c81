//! The tools offered to the model, and running them on the workspace.
//!
//! Every tool answers with text for the model. A failure is an answer too
//! (`error: …`, `permission denied: …`), so the model can correct itself; only
//! `finish` ends the loop.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::RegexBuilder;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use subagent_sdk::model::ToolDefinition;
use subagent_sdk::walk::{self, BINARY_SNIFF, Filter, Walk};

use crate::workspace::{Workspace, guest_path, resolve};

/// `read_file` stops after this many bytes of output.
pub const MAX_READ_BYTES: usize = 64 << 10;
/// `read_file` cuts lines longer than this many bytes.
pub const MAX_LINE_BYTES: usize = 2000;
/// `list_dir` lists at most this many entries.
pub const MAX_LIST_ENTRIES: usize = 500;
/// `search` lists at most this many matching lines.
pub const MAX_SEARCH_MATCHES: usize = 100;
/// `search` cuts matching lines to this many characters.
pub const MAX_SEARCH_LINE_CHARS: usize = 200;

pub const LIST_DIR: &str = "list_dir";
pub const READ_FILE: &str = "read_file";
pub const SEARCH: &str = "search";
pub const WRITE_FILE: &str = "write_file";
pub const FINISH: &str = "finish";

/// The tools offered to the model; `write_file` only when the run may write.
pub fn definitions(read_only: bool) -> Vec<ToolDefinition> {
    let path = |what: &str| {
        json!({
            "type": "string",
            "description": format!("{what}, relative to /workspace (or absolute, under /workspace)"),
        })
    };
    let mut tools = vec![
        ToolDefinition::new(
            LIST_DIR,
            "List a directory of the workspace: subdirectories end in `/`, files show their size.",
            json!({
                "type": "object",
                "properties": {"path": path("The directory; `.` is the workspace root")},
                "required": ["path"],
                "additionalProperties": false,
            }),
        ),
        ToolDefinition::new(
            READ_FILE,
            "Read a text file, with line numbers. Output stops after 64 KiB and says where to read on.",
            json!({
                "type": "object",
                "properties": {
                    "path": path("The file"),
                    "offset": {"type": "integer", "minimum": 1, "description": "First line to read (1-based; default 1)"},
                    "limit": {"type": "integer", "minimum": 1, "description": "Most lines to read (default: as many as fit)"},
                },
                "required": ["path"],
                "additionalProperties": false,
            }),
        ),
        ToolDefinition::new(
            SEARCH,
            "Search the workspace's text files for lines matching a query; answers `path:line: text`, \
             at most 100 lines. Case-insensitive unless the query has an uppercase letter. \
             Directories named .git, target and node_modules are skipped.",
            json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Text to find (or a regex, with `regex`)"},
                    "regex": {"type": "boolean", "description": "Treat `query` as a regular expression (default false)"},
                    "include": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Search only files matching one of these globs, such as `*.rs` or `src/**/*.md`",
                    },
                },
                "required": ["query"],
                "additionalProperties": false,
            }),
        ),
    ];
    if !read_only {
        tools.push(ToolDefinition::new(
            WRITE_FILE,
            "Create or replace a file with `content`, creating its directories. \
             Only the writable directories named in the instructions accept writes.",
            json!({
                "type": "object",
                "properties": {
                    "path": path("The file"),
                    "content": {"type": "string", "description": "The whole new content of the file"},
                },
                "required": ["path", "content"],
                "additionalProperties": false,
            }),
        ));
    }
    tools.push(ToolDefinition::new(
        FINISH,
        "End the task. The summary is your answer: what you found and did, and the files you wrote.",
        json!({
            "type": "object",
            "properties": {"summary": {"type": "string", "description": "Your final answer"}},
            "required": ["summary"],
            "additionalProperties": false,
        }),
    ));
    tools
}

/// What a tool call comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Text for the model, as the call's result.
    Text(String),
    /// `finish` was called with this summary.
    Finish(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDirArgs {
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFileArgs {
    path: String,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Globs {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    regex: Option<bool>,
    #[serde(default)]
    include: Option<Globs>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteFileArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishArgs {
    summary: String,
}

/// The tools, bound to one workspace; remembers the files written.
#[derive(Debug)]
pub struct Tools {
    workspace: Workspace,
    /// Guest paths, in order of first write, without repeats.
    files_written: Vec<String>,
}

impl Tools {
    pub fn new(workspace: Workspace) -> Tools {
        Tools {
            workspace,
            files_written: Vec::new(),
        }
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// Guest paths of the files written so far, in order of first write.
    pub fn files_written(&self) -> &[String] {
        &self.files_written
    }

    /// Run tool `name` with the arguments `args` (a JSON document, as the
    /// model sent it).
    pub fn call(&mut self, name: &str, args: &str) -> Reply {
        let result = match name {
            LIST_DIR => parse::<ListDirArgs>(name, args)
                .and_then(|a| self.list_dir(a.path.as_deref().unwrap_or("."))),
            READ_FILE => parse::<ReadFileArgs>(name, args).and_then(|a| {
                self.read_file(&a.path, a.offset.unwrap_or(1), a.limit.unwrap_or(u64::MAX))
            }),
            SEARCH => parse::<SearchArgs>(name, args).and_then(|a| {
                let include = match a.include {
                    None => Vec::new(),
                    Some(Globs::One(glob)) => vec![glob],
                    Some(Globs::Many(globs)) => globs,
                };
                self.search(&a.query, a.regex.unwrap_or(false), &include)
            }),
            WRITE_FILE => parse::<WriteFileArgs>(name, args)
                .and_then(|a| self.write_file(&a.path, &a.content)),
            FINISH => match parse::<FinishArgs>(name, args) {
                Ok(a) if a.summary.trim().is_empty() => {
                    Err("error: `summary` is empty: give your answer in it".to_owned())
                }
                Ok(a) => return Reply::Finish(a.summary.trim().to_owned()),
                Err(err) => Err(err),
            },
            _ => Err(format!(
                "error: there is no tool `{name}`; the tools are {LIST_DIR}, {READ_FILE}, {SEARCH}, {}{FINISH}",
                if self.workspace.is_read_only() {
                    String::new()
                } else {
                    format!("{WRITE_FILE}, ")
                }
            )),
        };
        Reply::Text(result.unwrap_or_else(|err| err))
    }

    /// The entries of a directory, sorted by name.
    fn list_dir(&self, path: &str) -> Result<String, String> {
        let rel = resolve(path).map_err(|err| format!("error: {err}"))?;
        let guest = guest_path(&rel);
        let dir = fs::read_dir(self.workspace.real(&rel))
            .map_err(|err| io_error("list", &guest, &err))?;
        let mut entries: Vec<(String, String)> = dir
            .filter_map(Result::ok)
            .map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let shown = match fs::symlink_metadata(entry.path()) {
                    Ok(meta) if meta.is_dir() => format!("{name}/"),
                    Ok(meta) if meta.is_file() => format!("{name} ({})", size(meta.len())),
                    Ok(meta) if meta.is_symlink() => format!("{name} (symbolic link)"),
                    _ => name.clone(),
                };
                (name, shown)
            })
            .collect();
        entries.sort_unstable();
        let access = if self.workspace.may_write(&rel) {
            "writable"
        } else {
            "read-only"
        };
        let mut out = format!(
            "{guest} ({}, {access})",
            count(entries.len(), "entry", "entries")
        );
        for (_, shown) in entries.iter().take(MAX_LIST_ENTRIES) {
            out.push('\n');
            out.push_str(shown);
        }
        if entries.len() > MAX_LIST_ENTRIES {
            out.push_str(&format!(
                "\n… and {} more, not shown",
                entries.len() - MAX_LIST_ENTRIES
            ));
        }
        Ok(out)
    }

    /// Lines `offset..offset + limit` of a text file, numbered.
    fn read_file(&self, path: &str, offset: u64, limit: u64) -> Result<String, String> {
        let rel = resolve(path).map_err(|err| format!("error: {err}"))?;
        let guest = guest_path(&rel);
        let real = self.workspace.real(&rel);
        if real.is_dir() {
            return Err(format!("error: {guest} is a directory: use {LIST_DIR}"));
        }
        let file = File::open(&real).map_err(|err| io_error("read", &guest, &err))?;
        let mut reader = BufReader::with_capacity(BINARY_SNIFF, file);
        let read_error = |err: io::Error| io_error("read", &guest, &err);
        if reader.fill_buf().map_err(read_error)?.contains(&0) {
            let bytes = fs::metadata(&real).map(|meta| meta.len()).unwrap_or(0);
            return Err(format!(
                "error: {guest} is a binary file ({}); it is not shown",
                size(bytes)
            ));
        }
        let first = offset.max(1);
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut out = String::new();
        while let Some(clipped) = next_line(&mut reader, &mut line).map_err(read_error)? {
            number += 1;
            if number < first {
                continue;
            }
            let mut text = format!("{number:>6}\t{}", String::from_utf8_lossy(&line));
            if clipped {
                text.push_str(&format!(" … [line cut at {MAX_LINE_BYTES} bytes]"));
            }
            text.push('\n');
            if out.len() + text.len() > MAX_READ_BYTES {
                out.push_str(&format!(
                    "[output cut at {} KiB after line {}: read on with offset {number}]",
                    MAX_READ_BYTES >> 10,
                    number - 1
                ));
                return Ok(out);
            }
            out.push_str(&text);
            if number - first + 1 >= limit {
                if !reader.fill_buf().map_err(read_error)?.is_empty() {
                    out.push_str(&format!(
                        "[more lines follow: read on with offset {}]",
                        number + 1
                    ));
                }
                return Ok(out);
            }
        }
        if number == 0 {
            Ok(format!("({guest} is empty)"))
        } else if number < first {
            Ok(format!(
                "({guest} has only {}; offset {first} is past its end)",
                count(number as usize, "line", "lines")
            ))
        } else {
            Ok(out)
        }
    }

    /// Lines of the workspace's text files that match `query`.
    fn search(&self, query: &str, regex: bool, include: &[String]) -> Result<String, String> {
        if query.is_empty() {
            return Err("error: `query` is empty".to_owned());
        }
        let pattern = if regex {
            query.to_owned()
        } else {
            regex::escape(query)
        };
        let matcher = RegexBuilder::new(&pattern)
            .case_insensitive(!has_uppercase(query, regex))
            .build()
            .map_err(|err| format!("error: invalid regex in `query`: {err}"))?;
        let filter = SearchFilter {
            include: globs(include)?,
        };
        let mut walk = Walk::new(self.workspace.root(), &filter)
            .map_err(|_| format!("error: cannot read {}", guest_path("")))?;
        let mut shown = Vec::new();
        let mut total = 0usize;
        let mut files = 0usize;
        for file in walk.by_ref() {
            let mut matched = false;
            for (index, line) in file.text.lines().enumerate() {
                if !matcher.is_match(line) {
                    continue;
                }
                matched = true;
                total += 1;
                if shown.len() < MAX_SEARCH_MATCHES {
                    shown.push(format!("{}:{}: {}", file.path, index + 1, clip(line)));
                }
            }
            files += usize::from(matched);
        }
        let scanned = count(walk.stats().scanned, "file", "files");
        if total == 0 {
            return Ok(format!("no matches for `{query}` (scanned {scanned})"));
        }
        let mut out = format!(
            "{} in {} (scanned {scanned}); paths are relative to /workspace:",
            count(total, "match", "matches"),
            count(files, "file", "files")
        );
        for line in &shown {
            out.push('\n');
            out.push_str(line);
        }
        if total > shown.len() {
            out.push_str(&format!(
                "\n… {} more not shown: narrow the search with `include` or a more specific query",
                total - shown.len()
            ));
        }
        Ok(out)
    }

    /// Create or replace a file, if this run may write it.
    fn write_file(&mut self, path: &str, content: &str) -> Result<String, String> {
        let rel = resolve(path).map_err(|err| format!("error: {err}"))?;
        let guest = guest_path(&rel);
        if rel.is_empty() {
            return Err(format!("error: {guest} is a directory: name a file"));
        }
        if !self.workspace.may_write(&rel) {
            return Err(self.refusal(format!("{guest} is read-only in this run")));
        }
        let real = self.workspace.real(&rel);
        let write = || {
            if let Some(parent) = real.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&real, content)
        };
        match write() {
            Ok(()) => {
                if !self.files_written.contains(&guest) {
                    self.files_written.push(guest.clone());
                }
                Ok(format!("wrote {} to {guest}", size(content.len() as u64)))
            }
            Err(err) if is_refusal(&err) => {
                Err(self.refusal(format!("the sandbox refused to write {guest} ({err})")))
            }
            Err(err) => Err(io_error("write", &guest, &err)),
        }
    }

    /// `permission denied: {what}; {what this run may write}`.
    fn refusal(&self, what: String) -> String {
        if self.workspace.is_read_only() {
            format!("permission denied: {what}; this run may not write any file")
        } else {
            format!(
                "permission denied: {what}; you may write only in {}",
                self.workspace.writable_description()
            )
        }
    }
}

/// Leaves out the usual build and VCS directories, and files no include glob matches.
struct SearchFilter {
    include: Option<GlobSet>,
}

impl Filter for SearchFilter {
    fn skip_dir(&self, path: &str) -> bool {
        walk::SKIPPED_DIRS.contains(&walk::file_name(path))
    }

    fn skip_file(&self, path: &str) -> bool {
        self.include
            .as_ref()
            .is_some_and(|include| !include.is_match(path))
    }
}

/// Compile include globs; one without a `/` matches a file name at any depth.
fn globs(globs: &[String]) -> Result<Option<GlobSet>, String> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for original in globs {
        let glob = original.strip_prefix("./").unwrap_or(original);
        let glob = if glob.contains('/') {
            glob.to_owned()
        } else {
            format!("**/{glob}")
        };
        let compiled = GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|err| {
                format!(
                    "error: invalid glob `{original}` in `include`: {}",
                    err.kind()
                )
            })?;
        set.add(compiled);
    }
    set.build()
        .map(Some)
        .map_err(|err| format!("error: invalid glob in `include`: {err}"))
}

/// The arguments of tool `name`, or an error for the model naming the problem.
fn parse<T: DeserializeOwned>(name: &str, args: &str) -> Result<T, String> {
    let args = if args.trim().is_empty() { "{}" } else { args };
    let value: Value = serde_json::from_str(args)
        .map_err(|err| format!("error: the arguments of {name} are not valid JSON ({err})"))?;
    serde_json::from_value(value)
        .map_err(|err| format!("error: invalid arguments for {name}: {err}"))
}

/// Whether an I/O error means the sandbox refused the access.
fn is_refusal(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// `error: cannot {verb} {guest}: {err}`, with a hint for a missing path.
fn io_error(verb: &str, guest: &str, err: &io::Error) -> String {
    let hint = if err.kind() == io::ErrorKind::NotFound {
        format!(" (use {LIST_DIR} or {SEARCH} to see what is there)")
    } else {
        String::new()
    };
    format!("error: cannot {verb} {guest}: {err}{hint}")
}

/// Read one line into `buf`, without its line ending, keeping at most
/// [`MAX_LINE_BYTES`] of it. `None` at the end of the file, else whether the
/// line was cut.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let read = reader
        .by_ref()
        .take(MAX_LINE_BYTES as u64)
        .read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Some(false));
    }
    // The line was cut (or the file ends without a newline): drop its rest.
    let mut clipped = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        match available.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                clipped |= end > 0 && !(end == 1 && available[0] == b'\r');
                reader.consume(end + 1);
                break;
            }
            None => {
                clipped = true;
                let len = available.len();
                reader.consume(len);
            }
        }
    }
    Ok(Some(clipped))
}

/// Whether `query` holds an uppercase letter; in a regex, not counting escapes
/// (so `\S` or `\W` keep a search case-insensitive).
fn has_uppercase(query: &str, regex: bool) -> bool {
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        if regex && c == '\\' {
            chars.next();
        } else if c.is_uppercase() {
            return true;
        }
    }
    false
}

/// `line` trimmed, cut to [`MAX_SEARCH_LINE_CHARS`] characters.
fn clip(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(MAX_SEARCH_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// `count` and the noun that agrees with it.
fn count(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// A byte count for people: `812 bytes`, `3.4 KiB`, `1.2 MiB`.
fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => count(bytes as usize, "byte", "bytes"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subagent_sdk::testing::tree;

    fn tools(root: &std::path::Path, writable: &[&str]) -> Tools {
        let dirs: Vec<String> = writable.iter().map(|dir| dir.to_string()).collect();
        Tools::new(Workspace::new(root, &dirs))
    }

    fn text(reply: Reply) -> String {
        match reply {
            Reply::Text(text) => text,
            Reply::Finish(summary) => panic!("unexpected finish: {summary}"),
        }
    }

    #[test]
    fn definitions_are_objects_with_required_fields() {
        let names = |tools: Vec<ToolDefinition>| -> Vec<String> {
            tools.into_iter().map(|tool| tool.name).collect()
        };
        assert_eq!(
            names(definitions(false)),
            [LIST_DIR, READ_FILE, SEARCH, WRITE_FILE, FINISH]
        );
        assert_eq!(
            names(definitions(true)),
            [LIST_DIR, READ_FILE, SEARCH, FINISH]
        );
        for tool in definitions(false) {
            let schema: Value = serde_json::from_str(&tool.parameters).unwrap();
            assert_eq!(schema["type"], "object", "{}", tool.name);
            assert!(schema["required"].is_array(), "{}", tool.name);
        }
    }

    #[test]
    fn list_dir_shows_kinds_sizes_and_access() {
        let root = tree(&[
            ("src/main.rs", "fn main() {}\n"),
            ("README.md", "hi"),
            ("reports/.keep", ""),
        ]);
        let mut tools = tools(root.path(), &["/workspace/reports"]);
        assert_eq!(
            text(tools.call(LIST_DIR, r#"{"path": "."}"#)),
            "/workspace (3 entries, read-only)\nREADME.md (2 bytes)\nreports/\nsrc/"
        );
        assert_eq!(
            text(tools.call(LIST_DIR, r#"{"path": "/workspace/reports"}"#)),
            "/workspace/reports (1 entry, writable)\n.keep (0 bytes)"
        );
        assert_eq!(
            text(tools.call(LIST_DIR, "{}")),
            text(tools.call(LIST_DIR, r#"{"path": null}"#))
        );
        let missing = text(tools.call(LIST_DIR, r#"{"path": "nope"}"#));
        assert!(
            missing.starts_with("error: cannot list /workspace/nope: "),
            "{missing}"
        );
        assert!(missing.ends_with("(use list_dir or search to see what is there)"));
    }

    #[test]
    fn read_file_numbers_lines_and_pages() {
        let root = tree(&[
            ("a.txt", "one\r\ntwo\nthree\n"),
            ("bin", "x\0y"),
            ("empty", ""),
        ]);
        let mut tools = tools(root.path(), &[]);
        assert_eq!(
            text(tools.call(READ_FILE, r#"{"path": "a.txt"}"#)),
            "     1\tone\n     2\ttwo\n     3\tthree\n"
        );
        assert_eq!(
            text(tools.call(
                READ_FILE,
                r#"{"path": "/workspace/a.txt", "offset": 2, "limit": 1}"#
            )),
            "     2\ttwo\n[more lines follow: read on with offset 3]"
        );
        assert_eq!(
            text(tools.call(READ_FILE, r#"{"path": "a.txt", "offset": 3, "limit": 1}"#)),
            "     3\tthree\n"
        );
        assert_eq!(
            text(tools.call(READ_FILE, r#"{"path": "a.txt", "offset": 9}"#)),
            "(/workspace/a.txt has only 3 lines; offset 9 is past its end)"
        );
        assert_eq!(
            text(tools.call(READ_FILE, r#"{"path": "empty"}"#)),
            "(/workspace/empty is empty)"
        );
        assert_eq!(
            text(tools.call(READ_FILE, r#"{"path": "bin"}"#)),
            "error: /workspace/bin is a binary file (3 bytes); it is not shown"
        );
        assert_eq!(
            text(tools.call(READ_FILE, r#"{"path": "."}"#)),
            "error: /workspace is a directory: use list_dir"
        );
    }

    #[test]
    fn read_file_caps_its_output() {
        let long_line = "y".repeat(MAX_LINE_BYTES + 10);
        let body = format!("{long_line}\n{}", "0123456789\n".repeat(10_000));
        let root = tree(&[("big.txt", &body)]);
        let mut tools = tools(root.path(), &[]);
        let out = text(tools.call(READ_FILE, r#"{"path": "big.txt"}"#));
        assert!(out.len() <= MAX_READ_BYTES + 100, "{}", out.len());
        let first = out.lines().next().unwrap();
        assert!(first.ends_with(&format!("y … [line cut at {MAX_LINE_BYTES} bytes]")));
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with("[output cut at 64 KiB after line "),
            "{last}"
        );
        let next: u64 = last
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches(']')
            .parse()
            .unwrap();
        let more = text(tools.call(
            READ_FILE,
            &format!(r#"{{"path": "big.txt", "offset": {next}, "limit": 1}}"#),
        ));
        assert!(
            more.starts_with(&format!("{next:>6}\t0123456789\n")),
            "{more}"
        );
    }

    #[test]
    fn search_finds_lines_with_smart_case_and_globs() {
        let root = tree(&[
            ("src/a.rs", "// TODO: one\nlet todo = 1;\n"),
            ("docs/b.md", "todo in docs\n"),
            ("target/c.rs", "TODO built\n"),
            ("bin", "TODO\0"),
        ]);
        let mut tools = tools(root.path(), &[]);
        assert_eq!(
            text(tools.call(SEARCH, r#"{"query": "todo"}"#)),
            "3 matches in 2 files (scanned 2 files); paths are relative to /workspace:\n\
             docs/b.md:1: todo in docs\nsrc/a.rs:1: // TODO: one\nsrc/a.rs:2: let todo = 1;"
        );
        assert_eq!(
            text(tools.call(SEARCH, r#"{"query": "TODO", "include": "*.rs"}"#)),
            "1 match in 1 file (scanned 1 file); paths are relative to /workspace:\nsrc/a.rs:1: // TODO: one"
        );
        assert_eq!(
            text(tools.call(
                SEARCH,
                r#"{"query": "^let \\w+", "regex": true, "include": ["src/**"]}"#
            )),
            "1 match in 1 file (scanned 1 file); paths are relative to /workspace:\nsrc/a.rs:2: let todo = 1;"
        );
        assert_eq!(
            text(tools.call(SEARCH, r#"{"query": "zzz"}"#)),
            "no matches for `zzz` (scanned 2 files)"
        );
        let bad = text(tools.call(SEARCH, r#"{"query": "a(", "regex": true}"#));
        assert!(bad.starts_with("error: invalid regex in `query`"), "{bad}");
    }

    #[test]
    fn search_caps_its_matches() {
        let body = "hit\n".repeat(MAX_SEARCH_MATCHES + 5);
        let root = tree(&[("a.txt", &body)]);
        let out = text(tools(root.path(), &[]).call(SEARCH, r#"{"query": "hit"}"#));
        assert_eq!(out.lines().count(), MAX_SEARCH_MATCHES + 2);
        assert!(out.ends_with(
            "… 5 more not shown: narrow the search with `include` or a more specific query"
        ));
    }

    #[test]
    fn write_file_writes_only_in_writable_dirs() {
        let root = tree(&[("src/main.rs", "fn main() {}\n")]);
        let mut tools = tools(root.path(), &["/workspace/reports"]);
        assert_eq!(
            text(tools.call(
                WRITE_FILE,
                r##"{"path": "reports/sub/r.md", "content": "# R\n"}"##
            )),
            "wrote 4 bytes to /workspace/reports/sub/r.md"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("reports/sub/r.md")).unwrap(),
            "# R\n"
        );
        assert_eq!(
            text(tools.call(
                WRITE_FILE,
                r#"{"path": "/workspace/src/main.rs", "content": ""}"#
            )),
            "permission denied: /workspace/src/main.rs is read-only in this run; \
             you may write only in /workspace/reports/"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("src/main.rs")).unwrap(),
            "fn main() {}\n"
        );
        assert_eq!(
            text(tools.call(WRITE_FILE, r#"{"path": "reports/../../x", "content": ""}"#)),
            "error: `reports/../../x` leads outside the workspace: paths must stay inside /workspace"
        );
        tools.call(
            WRITE_FILE,
            r#"{"path": "reports/sub/r.md", "content": "again"}"#,
        );
        assert_eq!(tools.files_written(), ["/workspace/reports/sub/r.md"]);
    }

    #[test]
    fn write_file_reports_the_os_error() {
        let root = tree(&[("reports", "a file, not a directory")]);
        let mut tools = tools(root.path(), &["/workspace"]);
        let out = text(tools.call(WRITE_FILE, r#"{"path": "reports/r.md", "content": "x"}"#));
        assert!(
            out.starts_with("error: cannot write /workspace/reports/r.md: "),
            "{out}"
        );
        assert!(tools.files_written().is_empty());
    }

    #[test]
    fn a_read_only_run_may_write_nothing() {
        let root = tree(&[]);
        let mut tools = tools(root.path(), &[]);
        assert_eq!(
            text(tools.call(WRITE_FILE, r#"{"path": "notes.md", "content": "x"}"#)),
            "permission denied: /workspace/notes.md is read-only in this run; this run may not write any file"
        );
        assert!(!root.path().join("notes.md").exists());
    }

    #[test]
    fn bad_calls_are_answered_not_failed() {
        let root = tree(&[]);
        let mut tools = tools(root.path(), &[]);
        assert_eq!(
            text(tools.call("shell", "{}")),
            "error: there is no tool `shell`; the tools are list_dir, read_file, search, finish"
        );
        let typo = text(tools.call(READ_FILE, r#"{"file_path": "a"}"#));
        assert!(
            typo.starts_with("error: invalid arguments for read_file: unknown field `file_path`"),
            "{typo}"
        );
        let broken = text(tools.call(READ_FILE, r#"{"path": "a"#));
        assert!(
            broken.starts_with("error: the arguments of read_file are not valid JSON"),
            "{broken}"
        );
        assert_eq!(
            text(tools.call(FINISH, r#"{"summary": "  "}"#)),
            "error: `summary` is empty: give your answer in it"
        );
        assert_eq!(
            tools.call(FINISH, r#"{"summary": " done \n"}"#),
            Reply::Finish("done".into())
        );
    }
}
