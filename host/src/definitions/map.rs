//! From frontmatter fields to manifest terms: tools, permissions, model.

use super::frontmatter::*;
use super::*;

/// Tools a prompt-agent run offers as `list_dir`, `read_file` and `search`
/// (normalized: lowercase, no `_` or `-`).
pub(super) const READ_TOOLS: &[&str] = &[
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
pub(super) const WRITE_TOOLS: &[&str] = &[
    // Claude Code
    "write",
    "edit",
    "multiedit",
    "notebookedit",
    // qwen-code
    "writefile",
    "replace",
];

pub(super) const WRITE_TOOL_NAMES: &str =
    "Write, Edit, MultiEdit, NotebookEdit (Claude Code) or write_file, edit, replace (qwen-code)";

/// `Bash(git diff:*)` → `bash`; `write_file` → `writefile`.
pub(super) fn tool_key(tool: &str) -> String {
    let name = tool.split('(').next().unwrap_or(tool).trim();
    normalize_key(name)
}

/// Split `Read, Grep, Bash(git log:*, git diff:*)` at the commas outside parentheses.
pub(super) fn split_tools(text: &str) -> Vec<String> {
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
pub(super) fn slug(name: &str) -> String {
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
pub(super) enum Mode {
    Plan,
    /// Known, but grants nothing here.
    Nothing,
    Unknown,
}

pub(super) fn mode(value: &str) -> Mode {
    match normalize_key(value).as_str() {
        "plan" => Mode::Plan,
        "default" | "acceptedits" | "auto" | "dontask" | "bypasspermissions" | "autoedit"
        | "yolo" => Mode::Nothing,
        _ => Mode::Unknown,
    }
}

pub(super) const MODES: &[&str] = &[
    "default",
    "acceptEdits",
    "auto",
    "dontAsk",
    "bypassPermissions",
    "plan",
    "auto-edit",
    "yolo",
];

/// The tools a definition lists, its write tools, and the line of its
/// `tools` key.
pub(super) struct WriteTools {
    /// `tools` less `disallowedTools`, as written; `None` without `tools`.
    listed: Option<Vec<String>>,
    names: Vec<String>,
    line: usize,
}

/// The field with normalized key `norm`.
fn field<'f>(fields: &'f [Field], norm: &str) -> Option<&'f Field> {
    fields.iter().find(|f| f.norm == norm)
}

pub(super) struct Mapper<'s, 'a> {
    pub(super) src: &'s Source<'a>,
    /// The closing `---` line, where missing keys are reported.
    pub(super) close: usize,
    pub(super) warnings: Vec<Warning>,
}

impl Mapper<'_, '_> {
    pub(super) fn at_key(
        &self,
        field: &Field,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        self.src.error(field.index, field.byte, message, help)
    }

    pub(super) fn at(
        &self,
        scalar: &Scalar,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        self.src.error(scalar.index, scalar.byte, message, help)
    }

    pub(super) fn warn(&mut self, index: usize, message: impl Into<String>) {
        let warning = self.src.warning(index, message);
        self.warnings.push(warning);
    }

    /// A field that must be one value (or absent / null).
    pub(super) fn scalar<'f>(
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
    pub(super) fn list(
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

    pub(super) fn map(
        mut self,
        fields: Vec<Field>,
        body: &str,
    ) -> Result<Definition, ManifestError> {
        self.ignored(&fields);
        let name = self.name(&fields)?;
        let description = self.description(&fields)?;
        let model = self.model(&fields)?;
        let tools = self.tools(&fields)?;
        let dirs = self.write_dirs(&fields)?;
        let (permission_mode, allowed_write_directories) =
            self.permissions(&fields, &tools, dirs)?;

        self.warnings.sort_by_key(|w| w.line);
        let body = body.trim();
        Ok(Definition {
            path: self.src.path.to_owned(),
            name,
            description,
            prompt: (!body.is_empty()).then(|| body.to_owned()),
            model,
            tools: tools.listed,
            permission_mode,
            allowed_write_directories,
            warnings: self.warnings,
        })
    }

    /// Keys that have no effect on a sandboxed run: a warning each.
    fn ignored(&mut self, fields: &[Field]) {
        for field in fields.iter().filter(|f| matches!(f.value, Value::Skipped)) {
            let names: Vec<&str> = KEYS.iter().map(|(n, _)| *n).collect();
            let hint = match did_you_mean(&field.norm, &names) {
                // Close to `disallowedTools` in spelling, to `tools` in meaning.
                _ if field.norm == "allowedtools" => {
                    "; a subagent's tools are its `tools` (`allowed-tools` is a key of Claude Code's skills and commands)".to_owned()
                }
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
    }

    /// `name`: required, a valid subagent name.
    fn name(&self, fields: &[Field]) -> Result<String, ManifestError> {
        let get = |norm: &str| field(fields, norm);
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
        Ok(name_text.to_owned())
    }

    /// `description`: required, one line (whitespace folded).
    fn description(&self, fields: &[Field]) -> Result<String, ManifestError> {
        let get = |norm: &str| field(fields, norm);
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
        Ok(description)
    }

    /// `model`, or `modelConfig.model` (qwen-code).
    fn model(&mut self, fields: &[Field]) -> Result<Option<String>, ManifestError> {
        let get = |norm: &str| field(fields, norm);
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
        Ok(model)
    }

    /// `tools` less `disallowedTools`: the write tools among them, and the
    /// line they are on (for warnings).
    fn tools(&mut self, fields: &[Field]) -> Result<WriteTools, ManifestError> {
        let get = |norm: &str| field(fields, norm);
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
        let listed = tools.is_some();
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
        Ok(WriteTools {
            listed: listed.then(|| tools.iter().map(|(t, _)| t.clone()).collect()),
            names: write_tools.into_iter().map(str::to_owned).collect(),
            line: tools_line,
        })
    }

    /// `allowed_write_directories`, normalized, with its line.
    fn write_dirs(&self, fields: &[Field]) -> Result<Option<(Vec<String>, usize)>, ManifestError> {
        let get = |norm: &str| field(fields, norm);
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
        Ok(dirs)
    }

    /// `readonly` and `permissionMode`, with the write tools and directories:
    /// the permission mode and the write set.
    fn permissions(
        &mut self,
        fields: &[Field],
        tools: &WriteTools,
        dirs: Option<(Vec<String>, usize)>,
    ) -> Result<(PermissionMode, Option<Vec<String>>), ManifestError> {
        let get = |norm: &str| field(fields, norm);
        let (write_tools, tools_line) = (&tools.names, tools.line);
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
        // Claude Code's `permissionMode`, qwen-code's `approvalMode`.
        for field in ["permissionmode", "approvalmode"]
            .into_iter()
            .filter_map(get)
        {
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
        Ok((permission_mode, allowed_write_directories))
    }
}
