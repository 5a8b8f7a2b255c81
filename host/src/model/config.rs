//! The host config (`config.toml`): named model aliases and the default
//! model, and the resolution of a model name to a [`ModelSpec`].
//!
//! ```toml
//! default_model = "fast"
//!
//! [models.fast]
//! provider = "openai"             # "openai", "anthropic" or "replay"
//! base_url = "http://localhost:11434/v1"
//! model = "qwen2.5-coder:7b"
//! api_key_env = "OPENAI_API_KEY"  # the NAME of the variable holding the key
//! timeout = "60s"                 # per request
//! max_retries = 3
//! max_tokens = 4096               # when a request gives none
//! ```
//!
//! Parsing is as strict as the manifest's: unknown fields are errors with a
//! "did you mean" hint, and every error names the file, line and column and
//! says how to fix it. Keys are never in the config: a missing key variable
//! is not a load error but an `auth` error when a call needs it.

use std::collections::BTreeMap;

use crate::diagnostic::{Doc, TomlHelp};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::manifest::did_you_mean;
use crate::units::{format_duration, parse_duration};

/// The file name of the host config inside the config directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest per-request timeout the config may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// The most retries the config may ask for.
pub const MAX_RETRIES: u32 = 10;
/// `max_tokens` sent to Anthropic when neither the request nor the config
/// gives one (the Messages API requires it).
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

/// How the host talks to a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible chat-completions server: OpenAI, vLLM, Ollama,
    /// LiteLLM, …
    OpenAi,
    /// The Anthropic Messages API.
    Anthropic,
    /// Serves the exchanges of a recorded run back.
    Replay,
}

impl ProviderKind {
    pub const ALL: [(&'static str, ProviderKind); 3] = [
        ("openai", ProviderKind::OpenAi),
        ("anthropic", ProviderKind::Anthropic),
        ("replay", ProviderKind::Replay),
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Replay => "replay",
        }
    }

    fn from_name(name: &str) -> Option<ProviderKind> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The hosted API's URL, used when a model gives no `base_url`.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Replay => None,
        }
    }

    /// The variable that conventionally holds the hosted API's key.
    pub fn default_key_env(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
            ProviderKind::Replay => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the host finds a model's API key when it makes a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The server needs no key (a local Ollama or vLLM, say).
    None,
    /// The environment variable of this name, read by the host at call time.
    Env(String),
}

/// How the host reads environment variables: the process environment in
/// production, a map in tests (so they need no `set_var`).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn process_env() -> EnvLookup {
    Arc::new(|name| std::env::var(name).ok())
}

/// Everything needed to call one model: a resolved alias or `provider/model`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name it was resolved from: an alias, or `provider/model`.
    pub name: String,
    pub provider: ProviderKind,
    /// The server's base URL without a trailing `/`; empty for `replay`.
    pub base_url: String,
    /// The model id the server expects; empty for `replay`.
    pub model: String,
    pub api_key: KeySource,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt, on 429, 5xx and connection errors.
    pub max_retries: u32,
    /// `max_tokens` when the request gives none.
    pub max_tokens: Option<u32>,
    /// `replay` only: the recorded exchanges (resolved against the config's
    /// directory).
    pub file: Option<PathBuf>,
}

impl ModelSpec {
    /// `provider/model` with the hosted API's URL and key variable.
    fn direct(name: &str, provider: ProviderKind, model: &str) -> ModelSpec {
        ModelSpec {
            name: name.to_owned(),
            provider,
            base_url: provider.default_base_url().unwrap_or("").to_owned(),
            model: model.to_owned(),
            api_key: match provider.default_key_env() {
                Some(var) => KeySource::Env(var.to_owned()),
                None => KeySource::None,
            },
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            max_tokens: None,
            file: None,
        }
    }
}

/// The host config: model aliases and the default model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// The file this was read from; `None` for the empty config.
    pub path: Option<PathBuf>,
    /// The model of a subagent that names none (an alias or `provider/model`).
    pub default_model: Option<String>,
    pub models: BTreeMap<String, ModelSpec>,
}

/// Read the host config: `path` when given, else `config.toml` in the
/// config directory when it exists, else the empty config.
///
/// # Errors
///
/// [`ConfigError`] naming the file, line and column, when the file cannot be
/// read, is not TOML, or breaks a rule. A `path` that does not exist is an
/// error; a missing default file is not.
pub fn load(path: Option<&Path>) -> Result<HostConfig, ConfigError> {
    match path {
        Some(path) => HostConfig::load(path),
        None => match crate::paths::config_dir().map(|dir| dir.join(CONFIG_FILE)) {
            Some(path) if path.is_file() => HostConfig::load(&path),
            _ => Ok(HostConfig::default()),
        },
    }
}

impl HostConfig {
    /// Read and validate the host config at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file, line and column of the first problem.
    pub fn load(path: &Path) -> Result<HostConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read host config: {err}"),
            source_line: None,
            help: Some(
                "pass an existing file to --config, or omit it to use the config directory's config.toml"
                    .to_owned(),
            ),
        })?;
        HostConfig::parse(path, &text)
    }

    /// Validate config `text`, as if read from `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file, line and column of the first problem.
    pub fn parse(path: &Path, text: &str) -> Result<HostConfig, ConfigError> {
        let fields: Vec<&str> = MODEL_FIELDS.iter().chain(TOP_FIELDS).copied().collect();
        let doc = Doc::new(
            path,
            text,
            TomlHelp {
                fields: &fields,
                missing: missing_field_help,
                invalid_type: "`provider`, `base_url`, `model`, `api_key_env`, `timeout` and `file` are strings; `max_retries` and `max_tokens` are non-negative integers",
            },
        );
        validate(&doc, doc.parse()?)
    }

    /// The model of a subagent that names none.
    pub fn default_model(&self) -> Option<&str> {
        self.default_model.as_deref()
    }

    /// Resolve `name`: an alias of this config, or `provider/model` (which
    /// uses the hosted API's URL and key variable, e.g. `openai/gpt-4o-mini`
    /// → `https://api.openai.com/v1` with `OPENAI_API_KEY`).
    ///
    /// # Errors
    ///
    /// [`ResolveError`] saying why, with the known aliases and a "did you
    /// mean" when `name` looks like a typo of one.
    pub fn resolve(&self, name: &str) -> Result<ModelSpec, ResolveError> {
        if let Some(spec) = self.models.get(name) {
            return Ok(spec.clone());
        }
        let err = |message: String, help: String| ResolveError {
            name: name.to_owned(),
            message,
            help: Some(help),
        };
        if name.trim().is_empty() {
            return Err(err(
                "the model name is empty".into(),
                self.known_models_help(None),
            ));
        }
        if name == "inherit" {
            return Err(err(
                "`inherit` is not a model: it stands for the parent task's model".into(),
                "a top-level task has no parent; name a model, or set `default_model` in the host config".into(),
            ));
        }
        if let Some((provider, model)) = name.split_once('/') {
            let names: Vec<&str> = ProviderKind::ALL.iter().map(|(n, _)| *n).collect();
            let Some(kind) = ProviderKind::from_name(provider) else {
                let guess = match did_you_mean(provider, &["openai", "anthropic"]) {
                    Some(best) => format!("did you mean `{best}/{model}`? "),
                    None => String::new(),
                };
                return Err(err(
                    format!("unknown provider `{provider}` in model `{name}`"),
                    format!(
                        "{guess}write `openai/<model>` or `anthropic/<model>`, or define an alias in the host config (providers: {})",
                        names.join(", ")
                    ),
                ));
            };
            if kind == ProviderKind::Replay {
                return Err(err(
                    format!("`{name}`: a replay model needs a file"),
                    "define an alias in the host config with `provider = \"replay\"` and `file = \"session.jsonl\"`".into(),
                ));
            }
            if model.trim().is_empty() {
                return Err(err(
                    format!("`{name}` names no model after `{provider}/`"),
                    format!(
                        "write the model id, e.g. `{provider}/{}`",
                        example_model(kind)
                    ),
                ));
            }
            return Ok(ModelSpec::direct(name, kind, model));
        }
        let aliases: Vec<&str> = self.models.keys().map(String::as_str).collect();
        Err(err(
            format!("unknown model `{name}`"),
            self.known_models_help(did_you_mean(name, &aliases)),
        ))
    }

    fn known_models_help(&self, guess: Option<&str>) -> String {
        let mut help = match guess {
            Some(best) => format!("did you mean `{best}`? "),
            None => String::new(),
        };
        let file = match &self.path {
            Some(path) => path.display().to_string(),
            None => "the host config".to_owned(),
        };
        if self.models.is_empty() {
            help += &format!("{file} defines no model aliases; ");
        } else {
            let aliases: Vec<String> = self.models.keys().map(|a| format!("`{a}`")).collect();
            help += &format!("the aliases in {file} are {}; ", aliases.join(", "));
        }
        help +=
            "or write `provider/model`, e.g. `openai/gpt-4o-mini` or `anthropic/claude-sonnet-4-5`";
        help
    }
}

fn example_model(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "claude-sonnet-4-5",
        _ => "gpt-4o-mini",
    }
}

/// A model name that does not resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ResolveError {
    /// The name that did not resolve.
    pub name: String,
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// A host config that cannot be used, with where and how to fix it.
pub type ConfigError = crate::diagnostic::SourceError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_model: Option<Spanned<String>>,
    #[serde(default)]
    models: BTreeMap<Spanned<String>, RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    provider: Spanned<String>,
    base_url: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_retries: Option<Spanned<u32>>,
    max_tokens: Option<Spanned<u32>>,
    file: Option<Spanned<String>>,
}

const TOP_FIELDS: &[&str] = &["default_model", "models"];
const MODEL_FIELDS: &[&str] = &[
    "provider",
    "base_url",
    "model",
    "api_key_env",
    "timeout",
    "max_retries",
    "max_tokens",
    "file",
];

/// Check a parsed host config: every model complete and its provider known.
fn validate(doc: &Doc, raw: RawConfig) -> Result<HostConfig, ConfigError> {
    let mut models = BTreeMap::new();
    for (alias, model) in raw.models {
        let spec = model_spec(doc, &alias, model)?;
        models.insert(alias.into_inner(), spec);
    }
    let mut config = HostConfig {
        path: Some(doc.path().to_owned()),
        default_model: None,
        models,
    };
    if let Some(default) = raw.default_model {
        if let Err(err) = config.resolve(default.get_ref()) {
            return Err(doc.error(
                Some(default.span()),
                format!("`default_model`: {}", err.message),
                err.help,
            ));
        }
        config.default_model = Some(default.into_inner());
    }
    Ok(config)
}

fn model_spec(doc: &Doc, alias: &Spanned<String>, raw: RawModel) -> Result<ModelSpec, ConfigError> {
    let name = alias.get_ref();
    if !valid_alias(name) {
        let help = if name.contains('/') {
            "`/` is reserved for the direct form `provider/model`; pick an alias such as `fast` or `gpt-mini`"
        } else {
            "use letters, digits, `-`, `_`, `.` and `:`, such as `fast` or `qwen-7b`"
        };
        return Err(doc.at(alias, format!("invalid model alias `{name}`"), help));
    }
    if name == "inherit" {
        return Err(doc.at(
            alias,
            "`inherit` cannot be an alias",
            "`inherit` means the parent task's model in a manifest; pick another name",
        ));
    }

    let names: Vec<&str> = ProviderKind::ALL.iter().map(|(n, _)| *n).collect();
    let Some(provider) = ProviderKind::from_name(raw.provider.get_ref()) else {
        let given = raw.provider.get_ref();
        let help = match did_you_mean(given, &names) {
            Some(best) => format!(
                "did you mean `{best}`? providers: openai (any OpenAI-compatible server: OpenAI, vLLM, Ollama, LiteLLM), anthropic, replay"
            ),
            None => "providers: openai (any OpenAI-compatible server: OpenAI, vLLM, Ollama, LiteLLM), anthropic, replay".to_owned(),
        };
        return Err(doc.at(&raw.provider, format!("unknown provider `{given}`"), help));
    };

    if provider == ProviderKind::Replay {
        let not_for_replay = [
            ("base_url", raw.base_url.as_ref().map(Spanned::span)),
            ("model", raw.model.as_ref().map(Spanned::span)),
            ("api_key_env", raw.api_key_env.as_ref().map(Spanned::span)),
            ("timeout", raw.timeout.as_ref().map(Spanned::span)),
            ("max_retries", raw.max_retries.as_ref().map(Spanned::span)),
            ("max_tokens", raw.max_tokens.as_ref().map(Spanned::span)),
        ];
        if let Some((field, span)) = not_for_replay
            .into_iter()
            .find_map(|(f, s)| s.map(|s| (f, s)))
        {
            return Err(doc.error(
                Some(span),
                format!("`{field}` does not apply to provider `replay`"),
                Some(format!(
                    "a replay model serves the exchanges recorded in `file`; remove `{field}`"
                )),
            ));
        }
        let Some(file) = raw.file else {
            return Err(doc.at(
                alias,
                format!("model `{name}` has provider `replay` but no `file`"),
                "add `file = \"session.jsonl\"`: a file written by `subagent run --record`",
            ));
        };
        if file.get_ref().trim().is_empty() {
            return Err(doc.at(
                &file,
                "`file` is empty",
                "name a file written by `subagent run --record`, relative to this config",
            ));
        }
        let dir = doc.path().parent().unwrap_or(Path::new("."));
        return Ok(ModelSpec {
            name: name.clone(),
            provider,
            base_url: String::new(),
            model: String::new(),
            api_key: KeySource::None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: 0,
            max_tokens: None,
            file: Some(dir.join(file.get_ref())),
        });
    }

    if let Some(file) = &raw.file {
        return Err(doc.at(
            file,
            format!("`file` does not apply to provider `{provider}`"),
            "`file` names the recording a `replay` model serves; remove it, or set `provider = \"replay\"`",
        ));
    }
    let Some(model) = raw.model else {
        return Err(doc.at(
            alias,
            format!("model `{name}` has no `model`"),
            format!(
                "add `model = \"{}\"`: the model id the server expects",
                example_model(provider)
            ),
        ));
    };
    if model.get_ref().trim().is_empty() {
        return Err(doc.at(
            &model,
            "`model` is empty",
            "give the model id the server expects",
        ));
    }

    let base_url = match &raw.base_url {
        Some(url) => {
            let text = url.get_ref().trim();
            let rest = text
                .strip_prefix("http://")
                .or_else(|| text.strip_prefix("https://"));
            if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
                return Err(doc.at(
                    url,
                    format!("`base_url` `{text}` is not an http(s) URL"),
                    "write the server's API root, such as \"http://localhost:11434/v1\" or \"https://api.openai.com/v1\"",
                ));
            }
            text.trim_end_matches('/').to_owned()
        }
        None => provider.default_base_url().unwrap_or("").to_owned(),
    };

    let api_key = match &raw.api_key_env {
        Some(var) if !valid_env_name(var.get_ref()) => {
            // Never echo the value: it may be a key pasted in by mistake.
            return Err(ConfigError {
                source_line: None,
                ..doc.at(
                    var,
                    format!("`api_key_env` of model `{name}` is not an environment variable name"),
                    "`api_key_env` is the NAME of the environment variable holding the key, such as \"OPENAI_API_KEY\"; never put the key itself in the config",
                )
            });
        }
        Some(var) => KeySource::Env(var.get_ref().clone()),
        // The hosted API needs its key; a server of your own may not.
        None if raw.base_url.is_none() || provider == ProviderKind::Anthropic => {
            match provider.default_key_env() {
                Some(var) => KeySource::Env(var.to_owned()),
                None => KeySource::None,
            }
        }
        None => KeySource::None,
    };

    let timeout = match &raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(timeout) => {
            let value = parse_duration(timeout.get_ref()).map_err(|e| {
                doc.at(
                    timeout,
                    format!("invalid `timeout`: {e}"),
                    "write a duration such as \"60s\" or \"5m\"",
                )
            })?;
            if value.is_zero() || value > MAX_TIMEOUT {
                return Err(doc.at(
                    timeout,
                    format!(
                        "`timeout` must be between 1ms and {}",
                        format_duration(MAX_TIMEOUT)
                    ),
                    "pick a per-request timeout such as \"60s\"",
                ));
            }
            value
        }
    };

    let max_retries = match &raw.max_retries {
        None => DEFAULT_MAX_RETRIES,
        Some(retries) if *retries.get_ref() > MAX_RETRIES => {
            return Err(doc.at(
                retries,
                format!("`max_retries` must be at most {MAX_RETRIES}"),
                "pick a small number such as 3",
            ));
        }
        Some(retries) => *retries.get_ref(),
    };

    let max_tokens = match &raw.max_tokens {
        Some(tokens) if *tokens.get_ref() == 0 => {
            return Err(doc.at(
                tokens,
                "`max_tokens` must be positive",
                "remove it to let the server decide, or give a limit such as 4096",
            ));
        }
        other => other.as_ref().map(|t| *t.get_ref()),
    };

    Ok(ModelSpec {
        name: name.clone(),
        provider,
        base_url,
        model: model.into_inner(),
        api_key,
        timeout,
        max_retries,
        max_tokens,
        file: None,
    })
}

fn valid_alias(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostConfig, ConfigError> {
        HostConfig::parse(Path::new("/etc/subagent/config.toml"), text)
    }

    #[test]
    fn local_server_needs_no_key_and_hosted_api_gets_its_variable() {
        let config = parse(
            "[models.local]\nprovider = \"openai\"\nbase_url = \"http://localhost:11434/v1/\"\nmodel = \"qwen\"\n\
             [models.gpt]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\n\
             [models.claude]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n",
        )
        .unwrap();
        let local = config.resolve("local").unwrap();
        assert_eq!(local.base_url, "http://localhost:11434/v1");
        assert_eq!(local.api_key, KeySource::None);
        let gpt = config.resolve("gpt").unwrap();
        assert_eq!(gpt.base_url, "https://api.openai.com/v1");
        assert_eq!(gpt.api_key, KeySource::Env("OPENAI_API_KEY".into()));
        let claude = config.resolve("claude").unwrap();
        assert_eq!(claude.api_key, KeySource::Env("ANTHROPIC_API_KEY".into()));
    }

    #[test]
    fn a_pasted_key_is_not_echoed() {
        let err = parse(
            "[models.x]\nprovider = \"openai\"\nmodel = \"m\"\napi_key_env = \"sk-secret123\"\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 4);
        assert!(!err.to_string().contains("sk-secret123"), "{err}");
    }

    #[test]
    fn replay_file_resolves_against_the_config() {
        let config = parse("[models.r]\nprovider = \"replay\"\nfile = \"s.jsonl\"\n").unwrap();
        assert_eq!(
            config.resolve("r").unwrap().file.as_deref(),
            Some(Path::new("/etc/subagent/s.jsonl"))
        );
    }
}

fn missing_field_help(field: &str) -> String {
    match field {
        "provider" => "add `provider = \"openai\"` (any OpenAI-compatible server), \"anthropic\" or \"replay\"".to_owned(),
        other => format!("add `{other}`"),
    }
}
