//! The host config (`config.toml`): named model aliases, family mappings
//! and the default model, and the resolution of a model name to a
//! [`ModelSpec`] ([`HostConfig::resolve`]) and of what a task asks for to
//! the model it runs on ([`HostConfig::choose`]).
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
//!
//! [families]                      # names as definitions write them
//! sonnet = "fast"                 # an alias, `provider/model` or a full id
//! ```
//!
//! A name resolves by these rules, in order ([`HostConfig::resolve`]):
//!
//! 1. an alias of `[models]`, or the direct form `provider/model`;
//! 2. a family: a name of `[families]`, else a built-in one (`sonnet`,
//!    `opus`, `haiku`: the Anthropic families), which takes the first alias
//!    (in name order) whose model id is of that family, else the family's
//!    current model id on the one configured Anthropic provider;
//! 3. a full model id of a known vendor (`claude-…`, `gpt-…`, `o3-mini`,
//!    `gemini-…`, …), served by the one configured provider of that vendor.
//!
//! A name that still does not resolve runs on `default_model`, with a
//! warning ([`HostConfig::choose`]), unless it looks like a typo of an
//! alias or is malformed: those, and any name when there is no default, are
//! refused.
//!
//! Parsing is as strict as the manifest's: unknown fields are errors with a
//! "did you mean" hint, and every error names the file, line and column and
//! says how to fix it. Keys are never in the config: a missing key variable
//! is not a load error but an `auth` error when a call needs it.

use std::collections::BTreeMap;

use crate::diagnostic::{Doc, TomlHelp};
use crate::model::ModelChoice;
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
    /// `[families]`: names as definitions write them (`sonnet`, …), mapped
    /// to a model name of this config (an alias, `provider/model` or a full
    /// id). They take precedence over the built-in families.
    pub families: BTreeMap<String, String>,
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

    /// Resolve `name` to the model it names, by the rules of the module
    /// documentation: an alias or `provider/model`; a family; a full model
    /// id of a known vendor, on the one provider of that vendor this config
    /// has. The direct form `provider/model` uses the hosted API's URL and
    /// key variable, e.g. `openai/gpt-4o-mini` → `https://api.openai.com/v1`
    /// with `OPENAI_API_KEY`.
    ///
    /// The spec's `name` is the **effective model**: the name calls are
    /// sent to (an alias, `provider/model` or the full id), which resolves
    /// to the same spec again.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] saying why, with the known aliases and a "did you
    /// mean" when `name` looks like a typo of one; its `fallback` says
    /// whether `default_model` may stand in for the name.
    pub fn resolve(&self, name: &str) -> Result<ModelSpec, ResolveError> {
        self.resolve_in(name, true)
    }

    /// [`HostConfig::resolve`]; `mapped`: whether `[families]` applies (not
    /// to its own targets, so a mapping never chains).
    fn resolve_in(&self, name: &str, mapped: bool) -> Result<ModelSpec, ResolveError> {
        if let Some(spec) = self.models.get(name) {
            return Ok(spec.clone());
        }
        if mapped && let Some(target) = self.families.get(name) {
            return self.resolve_in(target, false);
        }
        let err = |message: String, help: String| ResolveError {
            name: name.to_owned(),
            message,
            help: Some(help),
            fallback: false,
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
        if let Some(family) = FAMILIES.iter().find(|f| f.name == name) {
            return self.family(family);
        }
        if let Some(vendor) = VENDORS.iter().find(|v| (v.ids)(name)) {
            return self.inferred(name, vendor);
        }
        let names: Vec<&str> = self
            .models
            .keys()
            .chain(self.families.keys())
            .map(String::as_str)
            .collect();
        // One or two edits from an alias or a mapped name: meant for this
        // host and mistyped, so never run on something else.
        match did_you_mean(name, &names).filter(|best| strsim::damerau_levenshtein(name, best) <= 2)
        {
            Some(best) => Err(err(
                format!("unknown model `{name}`"),
                self.known_models_help(Some(best)),
            )),
            None => Err(ResolveError {
                fallback: true,
                ..err(
                    format!("unknown model `{name}`"),
                    format!(
                        "{}; or map the name in {}: `[families] {name} = \"<alias>\"`",
                        self.known_models_help(None),
                        self.file()
                    ),
                )
            }),
        }
    }

    /// A built-in family: the first alias (in name order) whose model is of
    /// it, else its current model id on the one provider of its vendor.
    fn family(&self, family: &Family) -> Result<ModelSpec, ResolveError> {
        if let Some(spec) = self
            .models
            .values()
            .find(|spec| spec.provider != ProviderKind::Replay && family.has(&spec.model))
        {
            return Ok(spec.clone());
        }
        let vendor = family.vendor;
        match self.endpoints(vendor).as_slice() {
            [one] => Ok(ModelSpec {
                name: family.current.to_owned(),
                model: family.current.to_owned(),
                ..(*one).clone()
            }),
            found => Err(self.no_provider(
                family.name,
                &format!("the {} {} family", vendor.name, family.label),
                vendor,
                found,
                format!(
                    "add an alias whose `model` is a {} model to {}, or map the name: `[families] {} = \"<alias>\"`",
                    family.label,
                    self.file(),
                    family.name
                ),
            )),
        }
    }

    /// A full model id of `vendor`, on the one provider of that vendor.
    fn inferred(&self, name: &str, vendor: &Vendor) -> Result<ModelSpec, ResolveError> {
        match self.endpoints(vendor).as_slice() {
            [one] => Ok(ModelSpec {
                name: name.to_owned(),
                model: name.to_owned(),
                ..(*one).clone()
            }),
            found => {
                let direct = match vendor.kind {
                    Some(kind) => format!(", or write `{kind}/{name}` for the hosted API"),
                    None if vendor.hosts.contains(&"api.openai.com") => {
                        format!(", or write `openai/{name}` for the hosted API")
                    }
                    None => String::new(),
                };
                let article = if vendor.name.starts_with(['A', 'E', 'I', 'O', 'U']) {
                    "an"
                } else {
                    "a"
                };
                Err(self.no_provider(
                    name,
                    &format!("{article} {} model id", vendor.name),
                    vendor,
                    found,
                    format!(
                        "add an alias for it to {} (`[models.\"{name}\"]` with its `provider`, `base_url` and `model = \"{name}\"`){direct}",
                        self.file()
                    ),
                ))
            }
        }
    }

    /// No provider of `vendor`, or more than one, for `name`: the default
    /// may stand in.
    fn no_provider(
        &self,
        name: &str,
        what: &str,
        vendor: &Vendor,
        found: &[&ModelSpec],
        help: String,
    ) -> ResolveError {
        let message = if found.is_empty() {
            format!(
                "model `{name}` is {what}, and no {} provider is configured",
                vendor.name
            )
        } else {
            let aliases: Vec<String> = found.iter().map(|s| format!("`{}`", s.name)).collect();
            format!(
                "model `{name}` is {what}, and {} {} providers are configured ({}): which one to use is not clear",
                found.len(),
                vendor.name,
                aliases.join(", ")
            )
        };
        ResolveError {
            name: name.to_owned(),
            message,
            help: Some(help),
            fallback: true,
        }
    }

    /// The providers of this config that serve `vendor`'s models: one alias
    /// each (the first in name order), told apart by provider, URL and key.
    fn endpoints(&self, vendor: &Vendor) -> Vec<&ModelSpec> {
        let mut found: Vec<&ModelSpec> = Vec::new();
        for spec in self.models.values().filter(|spec| vendor.serves(spec)) {
            let same = |other: &&ModelSpec| {
                other.provider == spec.provider
                    && other.base_url == spec.base_url
                    && other.api_key == spec.api_key
            };
            if !found.iter().any(same) {
                found.push(spec);
            }
        }
        found
    }

    /// The model a task runs on when it asks for `requested` (from the
    /// launch or its manifest). A name that resolves is the effective
    /// model. One that does not, but may be stood in for (it is not a typo
    /// of an alias nor malformed), runs on `default_model`, with a warning
    /// saying so and how to choose.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] when the name does not resolve and the default may
    /// not, or cannot (there is none), stand in.
    pub fn choose(&self, requested: &str) -> Result<ModelChoice, ResolveError> {
        let err = match self.resolve(requested) {
            Ok(spec) => {
                return Ok(ModelChoice {
                    requested: Some(requested.to_owned()),
                    model: spec.name,
                    warning: None,
                });
            }
            Err(err) => err,
        };
        if !err.fallback {
            return Err(err);
        }
        let Some(default) = self.default_choice() else {
            let help = match &err.help {
                Some(help) => format!("{help}; "),
                None => String::new(),
            };
            return Err(ResolveError {
                help: Some(format!(
                    "{help}or set `default_model` in the host config: it stands in, with a warning, for a model this host cannot resolve"
                )),
                ..err
            });
        };
        let how = match &err.help {
            Some(help) => format!(" (to choose its model: {help})"),
            None => String::new(),
        };
        Ok(ModelChoice {
            requested: Some(requested.to_owned()),
            warning: Some(format!(
                "{}; it runs on the default model `{}` instead{how}",
                err.message, default.model
            )),
            model: default.model,
        })
    }

    /// The model of a task that names none: `default_model`, if set.
    pub fn default_choice(&self) -> Option<ModelChoice> {
        let default = self.default_model.as_deref()?;
        Some(ModelChoice {
            requested: None,
            model: self
                .resolve(default)
                .map_or_else(|_| default.to_owned(), |spec| spec.name),
            warning: None,
        })
    }

    fn file(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => "the host config".to_owned(),
        }
    }

    fn known_models_help(&self, guess: Option<&str>) -> String {
        let mut help = match guess {
            Some(best) => format!("did you mean `{best}`? "),
            None => String::new(),
        };
        let file = self.file();
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

/// A model family named by one word, as Claude Code definitions write it.
pub struct Family {
    /// The word: `sonnet`.
    pub name: &'static str,
    /// As people write it: `Sonnet`.
    pub label: &'static str,
    pub vendor: &'static Vendor,
    /// The model id it stands for on a provider with no alias of it.
    pub current: &'static str,
}

impl Family {
    /// Is `model` (a model id as a provider names it) of this family? Any
    /// id naming the vendor's models and the family as a word:
    /// `claude-sonnet-4-5`, `claude-3-5-sonnet-latest`,
    /// `anthropic/claude-sonnet-4`.
    pub fn has(&self, model: &str) -> bool {
        let words: Vec<&str> = model
            .split(['-', '/', '.', ':', '@', '_'])
            .map(str::trim)
            .collect();
        words.contains(&self.name) && model.split('/').any(|part| (self.vendor.ids)(part))
    }
}

/// The built-in families: Claude Code's `sonnet`, `opus` and `haiku`.
/// `[families]` in the host config overrides them.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "sonnet",
        label: "Sonnet",
        vendor: &VENDORS[0],
        current: "claude-sonnet-4-5",
    },
    Family {
        name: "opus",
        label: "Opus",
        vendor: &VENDORS[0],
        current: "claude-opus-4-5",
    },
    Family {
        name: "haiku",
        label: "Haiku",
        vendor: &VENDORS[0],
        current: "claude-haiku-4-5",
    },
];

/// A vendor of models, to infer which configured provider serves a full
/// model id such as `claude-sonnet-4-20250514` or `gpt-4o`.
pub struct Vendor {
    pub name: &'static str,
    /// Does this id name one of its models?
    pub ids: fn(&str) -> bool,
    /// The hosts of its hosted API: an `openai` provider with such a
    /// `base_url` serves its models.
    pub hosts: &'static [&'static str],
    /// The provider kind that always serves its models.
    pub kind: Option<ProviderKind>,
    /// Whether an `openai` provider serves its models when one of its
    /// aliases names one (a LiteLLM or OpenRouter-style proxy). Not for
    /// vendors whose models also run on local servers under the same ids.
    pub by_alias: bool,
}

impl Vendor {
    /// Does the provider of `spec` serve this vendor's models?
    fn serves(&self, spec: &ModelSpec) -> bool {
        if spec.provider == ProviderKind::Replay {
            return false;
        }
        if self.kind == Some(spec.provider) {
            return true;
        }
        spec.provider == ProviderKind::OpenAi
            && (self.hosts.contains(&host(&spec.base_url))
                || self.by_alias && (self.ids)(&spec.model))
    }
}

/// The vendors whose model ids the host recognizes (rule 3 of resolving).
pub const VENDORS: &[Vendor] = &[
    Vendor {
        name: "Anthropic",
        ids: |id| id.starts_with("claude-"),
        hosts: &["api.anthropic.com"],
        kind: Some(ProviderKind::Anthropic),
        by_alias: true,
    },
    Vendor {
        name: "OpenAI",
        ids: |id| {
            // `gpt-oss` is open weights, served locally under that name.
            (id.starts_with("gpt-") && !id.starts_with("gpt-oss"))
                || id.starts_with("chatgpt-")
                || o_series(id)
        },
        hosts: &["api.openai.com"],
        kind: None,
        by_alias: true,
    },
    Vendor {
        name: "Google Gemini",
        ids: |id| id.starts_with("gemini-"),
        hosts: &["generativelanguage.googleapis.com"],
        kind: None,
        by_alias: true,
    },
    Vendor {
        name: "Qwen (DashScope)",
        ids: |id| id.starts_with("qwen"),
        hosts: &["dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com"],
        kind: None,
        by_alias: false,
    },
];

/// `o1`, `o3-mini`, `o4-mini-high`, …: OpenAI's reasoning models.
fn o_series(id: &str) -> bool {
    let Some(rest) = id.strip_prefix('o') else {
        return false;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && (rest.len() == digits || rest[digits..].starts_with('-'))
}

/// The host of a URL: `https://api.openai.com/v1` → `api.openai.com`.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', ':', '?']).unwrap_or(rest.len());
    &rest[..end]
}

/// A model name that does not resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ResolveError {
    /// The name that did not resolve.
    pub name: String,
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Whether `default_model` may stand in: the name is one this host
    /// cannot resolve (a family or a model id without a provider here, an
    /// unknown name), not a typo of an alias nor malformed.
    pub fallback: bool,
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
    #[serde(default)]
    families: BTreeMap<Spanned<String>, Spanned<String>>,
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

const TOP_FIELDS: &[&str] = &["default_model", "models", "families"];
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
        families: BTreeMap::new(),
    };
    for (name, target) in raw.families {
        let key = name.get_ref();
        if !valid_alias(key) {
            return Err(doc.at(
                &name,
                format!("invalid name `{key}` in `[families]`"),
                "write the model name as definitions give it, such as `sonnet` (letters, digits, `-`, `_`, `.` and `:`)",
            ));
        }
        if key == "inherit" {
            return Err(doc.at(
                &name,
                "`inherit` cannot be mapped",
                "`inherit` means the parent task's model; remove it from `[families]`",
            ));
        }
        if config.models.contains_key(key) {
            return Err(doc.at(
                &name,
                format!("`{key}` is both an alias (`[models.{key}]`) and in `[families]`"),
                "the alias would win: remove one of them",
            ));
        }
        if let Err(err) = config.resolve_in(target.get_ref(), false) {
            return Err(doc.error(
                Some(target.span()),
                format!("`[families] {key}`: {}", err.message),
                err.help,
            ));
        }
        config.families.insert(key.clone(), target.into_inner());
    }
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
