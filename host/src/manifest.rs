//! Parse and validate `subagent.toml`, the manifest of a subagent bundle.
//!
//! Parsing is strict: unknown fields are errors with a "did you mean" hint,
//! and every error names the file, line and column and says how to fix it.
//! Checks that need a workspace (do the write directories resolve inside
//! it?) happen later, in [`crate::sandbox`]; everything that can be checked
//! from the manifest alone is checked here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnostic::{Doc, TomlHelp};

use serde::Deserialize;
use toml::Spanned;

use crate::units::{format_duration, format_size, parse_duration, parse_size};

/// The file name of a manifest inside a bundle directory.
pub const MANIFEST_FILE: &str = "subagent.toml";

/// Default wall-clock limit of a task.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default memory limit of a task.
pub const DEFAULT_MEMORY: u64 = 512 << 20;
/// Default cap on a task's captured stdout + stderr.
pub const DEFAULT_OUTPUT: u64 = 4 << 20;
/// The largest memory limit a manifest may ask for.
pub const MAX_MEMORY: u64 = 4 << 30;
/// Default bytes a task may write (`limits.disk`).
pub const DEFAULT_DISK: u64 = 1 << 30;
/// The most bytes a manifest may let a task write.
pub const MAX_DISK: u64 = 64 << 30;
/// Default bytes of a task's result, summary and data together (`limits.result`).
pub const DEFAULT_RESULT: u64 = 1 << 20;
/// The largest result a manifest may allow.
pub const MAX_RESULT: u64 = 64 << 20;
/// Default files and directories a task may create (`limits.files`).
pub const DEFAULT_FILES: u64 = 100_000;
/// The most entries a manifest may let a task create.
pub const MAX_FILES: u64 = 10_000_000;
/// Default descriptors a task may hold open at once (`limits.open_files`).
pub const DEFAULT_OPEN_FILES: u64 = 256;
/// The most descriptors a manifest may let a task hold.
pub const MAX_OPEN_FILES: u64 = 4096;
/// The longest timeout a manifest may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What a subagent may do to the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermissionMode {
    /// May write inside its allowed write directories (or the whole workspace
    /// when the manifest lists none).
    Default,
    /// May write nothing. The default: deny unless asked.
    Readonly,
}

impl fmt::Display for PermissionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PermissionMode::Default => "default",
            PermissionMode::Readonly => "readonly",
        })
    }
}

/// A capability beyond the sandboxed filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// Host-brokered model calls (`subagent:plugin/model`).
    Model,
    /// Launching and managing child subagents (`subagent:plugin/subagents`).
    Subagents,
}

impl Tool {
    pub const ALL: [(&'static str, Tool); 2] =
        [("model", Tool::Model), ("subagents", Tool::Subagents)];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Model => "model",
            Tool::Subagents => "subagents",
        }
    }
}

/// Resource limits of one task.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    #[serde(with = "duration_ms", rename = "timeout_ms")]
    pub timeout: Duration,
    /// Bytes of linear memory, across all of the instance's memories.
    pub memory: u64,
    /// Bytes of captured stdout + stderr; the rest is dropped and marked.
    pub output: u64,
    /// Optional fuel (roughly, wasm instructions); `None` = unmetered.
    pub fuel: Option<u64>,
    /// Optional budget of model tokens (input + output); `None` = unlimited.
    pub tokens: Option<u64>,
    /// Bytes the task may write to files, in all.
    pub disk: u64,
    /// Files and directories the task may create.
    pub files: u64,
    /// Descriptors the task may hold open at once (the host may allow fewer
    /// when its own descriptors are scarce).
    pub open_files: u64,
    /// Bytes of the result the task returns: summary and data together.
    pub result: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            output: DEFAULT_OUTPUT,
            fuel: None,
            tokens: None,
            disk: DEFAULT_DISK,
            files: DEFAULT_FILES,
            open_files: DEFAULT_OPEN_FILES,
            result: DEFAULT_RESULT,
        }
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timeout {}, memory {}, output {}, disk {}, files {}, open_files {}",
            format_duration(self.timeout),
            format_size(self.memory),
            format_size(self.output),
            format_size(self.disk),
            self.files,
            self.open_files
        )?;
        match self.fuel {
            Some(fuel) => write!(f, ", fuel {fuel}")?,
            None => write!(f, ", fuel unmetered")?,
        }
        if let Some(tokens) = self.tokens {
            write!(f, ", tokens {tokens}")?;
        }
        write!(f, ", result {}", format_size(self.result))
    }
}

mod duration_ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// Where the system prompt comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptSource {
    Inline(String),
    /// A file, already resolved against the manifest's directory.
    File(PathBuf),
}

/// A validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file this was read from.
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    /// The component, resolved against the manifest's directory.
    pub component: PathBuf,
    pub prompt: Option<PromptSource>,
    pub model: Option<String>,
    pub tools: Vec<Tool>,
    pub permission_mode: PermissionMode,
    /// Workspace-relative directories a `default` subagent may write, with `/`
    /// separators and no trailing slash; `None` means the whole workspace.
    pub allowed_write_directories: Option<Vec<String>>,
    pub limits: Limits,
    /// The `[build] command`, run in the manifest's directory.
    pub build_command: Option<String>,
    /// Optional pin of the component's SHA-256 digest (lowercase hex).
    pub sha256: Option<String>,
}

impl Manifest {
    /// The directory holding the manifest; relative paths resolve against it.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Read and validate the manifest at `path`.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] naming the file, line and column, when the file cannot
    /// be read, is not TOML, or breaks a rule.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|err| ManifestError {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read manifest: {err}"),
            source_line: None,
            help: Some(format!(
                "a bundle is a directory holding `{MANIFEST_FILE}`, or the path of that file"
            )),
        })?;
        Manifest::parse(path, &text)
    }

    /// Validate manifest `text`, as if read from `path`.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] naming the file, line and column of the first problem.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let doc = Doc::new(
            path,
            text,
            TomlHelp {
                fields: FIELDS,
                missing: missing_field_help,
                invalid_type: "see the manifest reference in README.md for each field's type",
            },
        );
        validate(&doc, doc.parse()?)
    }
}

/// A manifest that cannot be used, with where and how to fix it.
pub type ManifestError = crate::diagnostic::SourceError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    description: Spanned<String>,
    component: Spanned<String>,
    prompt: Option<Spanned<String>>,
    prompt_file: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    tools: Option<Vec<Spanned<String>>>,
    permission_mode: Option<Spanned<String>>,
    allowed_write_directories: Option<Spanned<Vec<Spanned<String>>>>,
    limits: Option<RawLimits>,
    build: Option<RawBuild>,
    sha256: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    output: Option<Spanned<String>>,
    fuel: Option<Spanned<u64>>,
    tokens: Option<Spanned<u64>>,
    disk: Option<Spanned<String>>,
    files: Option<Spanned<u64>>,
    open_files: Option<Spanned<u64>>,
    result: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: Spanned<String>,
}

const FIELDS: &[&str] = &[
    "name",
    "description",
    "component",
    "prompt",
    "prompt_file",
    "model",
    "tools",
    "permission_mode",
    "allowed_write_directories",
    "limits",
    "build",
    "sha256",
];

/// Check a parsed manifest: every value in range, every path usable.
fn validate(doc: &Doc, raw: RawManifest) -> Result<Manifest, ManifestError> {
    let name = raw.name.get_ref();
    if !valid_name(name) {
        return Err(doc.at(
            &raw.name,
            format!("invalid subagent name `{name}`"),
            "use 1 to 64 characters: lowercase letters, digits and `-`, starting with a letter or digit",
        ));
    }
    let description = raw.description.get_ref().trim();
    if description.is_empty() || description.contains('\n') {
        return Err(doc.at(
            &raw.description,
            "`description` must be one non-empty line",
            "say in one line when a parent agent should delegate to this subagent",
        ));
    }
    if raw.component.get_ref().trim().is_empty() {
        return Err(doc.at(
            &raw.component,
            "`component` is empty",
            "set it to the path of the .wasm component, relative to this file",
        ));
    }
    let dir = doc.path().parent().unwrap_or(Path::new("."));
    let component = clean_path(&dir.join(raw.component.get_ref()));

    let prompt = match (raw.prompt, raw.prompt_file) {
        (Some(_), Some(file)) => {
            return Err(doc.at(
                &file,
                "both `prompt` and `prompt_file` are set",
                "keep one of them",
            ));
        }
        (Some(prompt), None) => Some(PromptSource::Inline(prompt.into_inner())),
        (None, Some(file)) if file.get_ref().trim().is_empty() => {
            return Err(doc.at(
                &file,
                "`prompt_file` is empty",
                "name a file relative to this manifest, or remove the field",
            ));
        }
        (None, Some(file)) => Some(PromptSource::File(clean_path(&dir.join(file.get_ref())))),
        (None, None) => None,
    };

    let model = match raw.model {
        Some(model) if model.get_ref().trim().is_empty() => {
            return Err(doc.at(
                &model,
                "`model` is empty",
                "name a model alias, `provider/model`, or `inherit`; or remove the field",
            ));
        }
        other => other.map(Spanned::into_inner),
    };

    let mut tools = Vec::new();
    for tool in raw.tools.unwrap_or_default() {
        let names: Vec<&str> = Tool::ALL.iter().map(|(n, _)| *n).collect();
        let Some((_, parsed)) = Tool::ALL.iter().find(|(n, _)| n == tool.get_ref()) else {
            let help = match did_you_mean(tool.get_ref(), &names) {
                Some(best) => {
                    format!("did you mean `{best}`? known tools: {}", names.join(", "))
                }
                None => format!("known tools: {}", names.join(", ")),
            };
            return Err(doc.at(&tool, format!("unknown tool `{}`", tool.get_ref()), help));
        };
        if tools.contains(parsed) {
            return Err(doc.at(
                &tool,
                format!("tool `{}` is listed twice", tool.get_ref()),
                "list each tool once",
            ));
        }
        tools.push(*parsed);
    }

    let permission_mode = match &raw.permission_mode {
        None => PermissionMode::Readonly,
        Some(mode) => match mode.get_ref().as_str() {
            "default" => PermissionMode::Default,
            "readonly" => PermissionMode::Readonly,
            other => {
                let help = match did_you_mean(other, &["default", "readonly"]) {
                    Some(best) => format!(
                        "did you mean `{best}`? use `default` (may write its allowed directories) or `readonly`"
                    ),
                    None => {
                        "use `default` (may write its allowed directories) or `readonly`".to_owned()
                    }
                };
                return Err(doc.at(mode, format!("unknown permission_mode `{other}`"), help));
            }
        },
    };

    let allowed_write_directories = match raw.allowed_write_directories {
        None => None,
        Some(list) => {
            if permission_mode == PermissionMode::Readonly && !list.get_ref().is_empty() {
                let help = if raw.permission_mode.is_none() {
                    "permission_mode defaults to `readonly`; add `permission_mode = \"default\"` to let it write these directories"
                } else {
                    "a readonly subagent writes nothing: set `permission_mode = \"default\"`, or remove allowed_write_directories"
                };
                return Err(doc.at(
                    &list,
                    "`allowed_write_directories` is set but the subagent is readonly",
                    help,
                ));
            }
            let mut dirs = Vec::new();
            for dir in list.get_ref() {
                let normalized = normalize_write_dir(dir.get_ref()).map_err(|problem| {
                    doc.at(dir, format!("invalid write directory `{}`: {problem}", dir.get_ref()), "write a path relative to the workspace, such as \"reports\" or \"docs/generated\"")
                })?;
                dirs.push(normalized);
            }
            Some(dirs)
        }
    };

    let limits = limits(doc, raw.limits)?;

    let build_command = match raw.build {
        Some(build) if build.command.get_ref().trim().is_empty() => {
            return Err(doc.at(
                &build.command,
                "`[build] command` is empty",
                "give the command that produces the component, or remove [build]",
            ));
        }
        other => other.map(|b| b.command.into_inner()),
    };

    let sha256 = match raw.sha256 {
        None => None,
        Some(digest) => {
            let hex = digest.get_ref().trim().to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(doc.at(
                    &digest,
                    "`sha256` is not a SHA-256 digest",
                    "write 64 hex digits, as printed by `sha256sum component.wasm`",
                ));
            }
            Some(hex)
        }
    };

    Ok(Manifest {
        path: doc.path().to_owned(),
        name: raw.name.into_inner(),
        description: description.to_owned(),
        component,
        prompt,
        model,
        tools,
        permission_mode,
        allowed_write_directories,
        limits,
        build_command,
        sha256,
    })
}

fn limits(doc: &Doc, raw: Option<RawLimits>) -> Result<Limits, ManifestError> {
    let mut limits = Limits::default();
    let Some(raw) = raw else { return Ok(limits) };
    if let Some(timeout) = raw.timeout {
        let value = parse_duration(timeout.get_ref()).map_err(|e| {
            doc.at(
                &timeout,
                format!("invalid `limits.timeout`: {e}"),
                "write a duration such as \"30s\", \"10m\" or \"1h\"",
            )
        })?;
        if value.is_zero() || value > MAX_TIMEOUT {
            return Err(doc.at(
                &timeout,
                format!(
                    "`limits.timeout` must be between 1ms and {}",
                    format_duration(MAX_TIMEOUT)
                ),
                "pick a timeout such as \"10m\"",
            ));
        }
        limits.timeout = value;
    }
    if let Some(output) = raw.output {
        let value = parse_size(output.get_ref()).map_err(|e| {
            doc.at(
                &output,
                format!("invalid `limits.output`: {e}"),
                "write a size such as \"4MiB\"",
            )
        })?;
        if value == 0 {
            return Err(doc.at(
                &output,
                "`limits.output` must be at least 1 byte",
                "pick a size such as \"4MiB\"",
            ));
        }
        limits.output = value;
    }
    if let Some(fuel) = raw.fuel {
        if *fuel.get_ref() == 0 {
            return Err(doc.at(
                &fuel,
                "`limits.fuel` must be positive",
                "remove it for unmetered runs, or give a budget such as 1000000000",
            ));
        }
        limits.fuel = Some(fuel.into_inner());
    }
    if let Some(tokens) = raw.tokens {
        if *tokens.get_ref() == 0 {
            return Err(doc.at(
                &tokens,
                "`limits.tokens` must be positive",
                "remove it for no token budget, or give one such as 200000",
            ));
        }
        limits.tokens = Some(tokens.into_inner());
    }
    // (field, floor and how to say it, ceiling, a size to write, a size
    // to pick, the limit)
    for (raw, name, (min, least), max, write, pick, slot) in [
        (
            raw.memory,
            "memory",
            (1 << 20, "1 MiB"),
            MAX_MEMORY,
            "256MiB",
            "512MiB",
            &mut limits.memory,
        ),
        (
            raw.disk,
            "disk",
            (1, "1 byte"),
            MAX_DISK,
            "256MiB",
            "1GiB",
            &mut limits.disk,
        ),
        (
            raw.result,
            "result",
            (1, "1 byte"),
            MAX_RESULT,
            "512KiB",
            "1MiB",
            &mut limits.result,
        ),
    ] {
        if let Some(size) = raw {
            let value = parse_size(size.get_ref()).map_err(|e| {
                doc.at(
                    &size,
                    format!("invalid `limits.{name}`: {e}"),
                    format!("write a size such as \"{write}\""),
                )
            })?;
            if !(min..=max).contains(&value) {
                return Err(doc.at(
                    &size,
                    format!(
                        "`limits.{name}` must be between {least} and {}",
                        format_size(max)
                    ),
                    format!("pick a size such as \"{pick}\""),
                ));
            }
            *slot = value;
        }
    }
    for (raw, name, max, slot) in [
        (raw.files, "files", MAX_FILES, &mut limits.files),
        (
            raw.open_files,
            "open_files",
            MAX_OPEN_FILES,
            &mut limits.open_files,
        ),
    ] {
        if let Some(value) = raw {
            if !(1..=max).contains(value.get_ref()) {
                return Err(doc.at(
                    &value,
                    format!("`limits.{name}` must be between 1 and {max}"),
                    "remove it for the default, or pick a count within the range",
                ));
            }
            *slot = value.into_inner();
        }
    }
    Ok(limits)
}

/// Remove `.` and resolvable `..` components without touching the disk, so
/// `bundle/../target/x.wasm` reads as `target/x.wasm`.
fn clean_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn missing_field_help(field: &str) -> String {
    match field {
        "name" => "add `name = \"my-subagent\"` (lowercase letters, digits and `-`)".to_owned(),
        "description" => {
            "add `description = \"…\"`: one line saying when to delegate to this subagent"
                .to_owned()
        }
        "component" => {
            "add `component = \"path/to/subagent.wasm\"`, relative to this file".to_owned()
        }
        "command" => {
            "add `command = \"cargo build --release --target wasm32-wasip2\"` under [build]"
                .to_owned()
        }
        other => format!("add `{other}`"),
    }
}

/// Is `name` a valid subagent name?
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Check a write directory lexically and normalize it (`./a//b/` → `a/b`).
///
/// # Errors
///
/// Says what is wrong: absolute, `..`, empty, or the workspace root itself.
pub fn normalize_write_dir(dir: &str) -> Result<String, String> {
    if dir.starts_with('/') || dir.starts_with('\\') || Path::new(dir).is_absolute() {
        return Err("it is absolute; write directories are relative to the workspace".into());
    }
    let mut parts = Vec::new();
    for part in dir.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                return Err(
                    "it contains `..`; write directories must stay inside the workspace".into(),
                );
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("it names the workspace root; omit allowed_write_directories to allow the whole workspace".into());
    }
    Ok(parts.join("/"))
}

pub use crate::diagnostic::did_you_mean;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("bundle/subagent.toml"), text)
    }

    const MINIMAL: &str = "name = \"x\"\ndescription = \"d\"\ncomponent = \"x.wasm\"\n";

    #[test]
    fn minimal_manifest_defaults_to_readonly() {
        let m = parse(MINIMAL).unwrap();
        assert_eq!(m.permission_mode, PermissionMode::Readonly);
        assert_eq!(m.component, Path::new("bundle/x.wasm"));
        assert_eq!(m.limits, Limits::default());
        assert_eq!(m.allowed_write_directories, None);
    }

    #[test]
    fn write_dirs_are_normalized() {
        assert_eq!(normalize_write_dir("./a//b/").unwrap(), "a/b");
        assert!(normalize_write_dir("../x").is_err());
        assert!(normalize_write_dir("/etc").is_err());
        assert!(normalize_write_dir(".").is_err());
    }

    #[test]
    fn unknown_field_suggests() {
        let err = parse(&format!("{MINIMAL}permision_mode = \"default\"\n")).unwrap_err();
        assert_eq!(err.line, 4);
        assert_eq!(err.help.as_deref(), Some("did you mean `permission_mode`?"));
    }
}
