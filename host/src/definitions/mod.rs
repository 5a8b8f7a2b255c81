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
//! body means no prompt). The frontmatter is read by a subset of YAML that
//! covers what these tools write: `key: value` lines; plain scalars, also
//! starting on the line after the key and going on over more-indented lines
//! (folded as YAML folds them); `'single'` and `"double"` quoted scalars
//! (with YAML's escapes), also over several lines; `|` and `>` block scalars
//! with `-` / `+` chomping and an indentation digit; flow lists `[a, b]`,
//! also over several lines; block lists (`- item` lines under the key);
//! full-line and trailing ` #` comments; a BOM and CRLF line endings. A
//! plain value may contain `: ` (the descriptions Claude Code generates do),
//! on its first line and on the lines that go on with it, but a line there
//! that reads as one of the keys this module reads is refused as a key
//! indented by mistake. Anchors, aliases, tags and flow mappings are
//! refused with an error that says how to write the value instead; nested
//! mappings are read only under `modelConfig`, and the values of keys this
//! module does not read are skipped unread. Keys match case-insensitively
//! and ignoring `_` and `-`, so `permissionMode`, `permission_mode` and
//! `PermissionMode` are the same key; a key given twice is an error.
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
//! | `permissionMode` (Claude Code), `approvalMode` (qwen-code) | `plan` → readonly; `default`, `acceptEdits`, `auto`, `dontAsk`, `bypassPermissions` (Claude Code), `auto-edit`, `yolo` (qwen-code) grant nothing extra; an unknown mode → readonly, with a warning |
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
    /// The tools the frontmatter lists (`tools` less `disallowedTools`), as
    /// written; `None` when it has no `tools` (all tools, in Claude Code
    /// and Cursor). They only decide whether writing is possible.
    pub tools: Option<Vec<String>>,
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

mod frontmatter;
mod map;

use frontmatter::{KEYS, Parser, Source};
use map::Mapper;

#[cfg(test)]
mod tests {
    use super::frontmatter::fold;
    use super::map::{slug, split_tools};
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
    fn approval_mode_and_auto_mode_and_allowed_tools() {
        let front = |extra: &str| {
            parse(&format!(
                "---\nname: x\ndescription: d\ntools: Write\nallowed_write_directories: [out]\n{extra}---\n"
            ))
            .unwrap()
        };
        // qwen-code's approvalMode narrows like permissionMode.
        assert_eq!(
            front("approvalMode: plan\n").permission_mode,
            PermissionMode::Readonly
        );
        let d = front("approvalMode: yolo\n");
        assert_eq!(d.permission_mode, PermissionMode::Default);
        assert!(
            d.warnings[0]
                .message
                .contains("`approvalMode: yolo` grants nothing")
        );
        // Claude Code's `auto` mode is known, and grants nothing.
        let d = front("permissionMode: auto\n");
        assert_eq!(d.permission_mode, PermissionMode::Default);
        assert!(
            d.warnings[0]
                .message
                .contains("`permissionMode: auto` grants nothing")
        );
        assert_eq!(d.tools, Some(vec!["Write".to_owned()]));
        // `allowed-tools` points to `tools`, not to `disallowedTools`.
        let d = front("allowed-tools: Read\n");
        assert!(
            d.warnings[0].message.ends_with(
                "a subagent's tools are its `tools` (`allowed-tools` is a key of Claude Code's skills and commands)"
            ),
            "{:#?}",
            d.warnings
        );
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let d = parse("\u{feff}---\r\nname: x\r\ndescription: d\r\n---\r\nBody\r\n").unwrap();
        assert_eq!(d.prompt.as_deref(), Some("Body"));
    }
}
