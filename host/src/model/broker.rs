//! [`Models`]: the host's model broker. It decides the model of a task
//! ([`Models::decide`]: what it asks for, resolved through the host config,
//! or read from the recording being replayed), builds the provider once per
//! effective model, optionally records every exchange, and is what the
//! `model` capability calls through [`ModelBroker`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::anthropic::Anthropic;
use super::config::{EnvLookup, HostConfig, ModelSpec, ProviderKind, ResolveError, process_env};
use super::openai::OpenAi;
use super::replay::{Recorder, Replay, ReplayLog};
use super::{BoxFuture, ChatRequest, ChatResponse, ModelBroker, ModelChoice, ModelError, Provider};

/// The host's models, as configured.
pub struct Models {
    config: HostConfig,
    env: EnvLookup,
    recorder: Option<Arc<Recorder>>,
    /// HTTP clients, through the environment's proxies and direct (for
    /// loopback servers), built on first use.
    clients: [OnceLock<Result<reqwest::Client, String>>; 2],
    /// Providers by the name they were asked for.
    providers: Mutex<HashMap<String, Arc<dyn Provider>>>,
    /// Recordings being replayed, by file, shared by the names that use them.
    replays: Mutex<HashMap<PathBuf, Arc<ReplayLog>>>,
    /// Set by [`Models::replaying`]: every model is served from this
    /// recording, whatever the config says.
    replay_all: Option<Arc<ReplayLog>>,
}

/// The recording file of `--record` cannot be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the recording {}: {source}", path.display())]
pub struct RecordError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Why a task cannot have a model: what a launch refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct ModelRefusal {
    /// The name refused; `None` when the task has no model at all.
    pub model: Option<String>,
    /// What is wrong, with how to fix it.
    pub problem: String,
}

impl Models {
    /// The models of `config`; with `record`, every exchange is appended to
    /// that file (which is replaced).
    ///
    /// # Errors
    ///
    /// [`RecordError`] when the recording cannot be created.
    pub fn new(config: HostConfig, record: Option<PathBuf>) -> Result<Models, RecordError> {
        let recorder = match record {
            Some(path) => Some(Recorder::create(&path).map_err(|source| RecordError {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        Ok(Models {
            config,
            env: process_env(),
            recorder,
            clients: [OnceLock::new(), OnceLock::new()],
            providers: Mutex::new(HashMap::new()),
            replays: Mutex::new(HashMap::new()),
            replay_all: None,
        })
    }

    /// Serve every model from the recording at `file`, under the name it
    /// was recorded with, whatever the config says (so a run that named
    /// `openai/gpt-4o-mini` directly replays too, on a machine without that
    /// config). The model a task runs on is the one the recording says its
    /// name resolved to ([`Models::decide`]); the config is consulted only
    /// for a name the recording does not know.
    ///
    /// # Errors
    ///
    /// When the recording cannot be read.
    pub fn replaying(config: HostConfig, file: &Path) -> Result<Models, String> {
        let log = ReplayLog::open(file)?;
        let mut models = Models::new(config, None).map_err(|e| e.to_string())?;
        models.replay_all = Some(log);
        Ok(models)
    }

    /// Read API keys through `lookup` instead of the process environment
    /// (for tests and embedders that keep secrets elsewhere).
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Models {
        self.env = Arc::new(lookup);
        self
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The model of a subagent that names none, from the host config.
    pub fn default_model(&self) -> Option<&str> {
        self.config.default_model()
    }

    /// The recording file, when recording.
    pub fn recording(&self) -> Option<&Path> {
        self.recorder.as_deref().map(Recorder::path)
    }

    /// The model of a task that asks for `requested` (the launch's model,
    /// else its manifest's), under a parent running on `parent`: the one
    /// place a task's model is decided.
    ///
    /// `inherit` takes the parent's model, and at the top level the
    /// default's; no name takes `default_model`; a name resolves by
    /// [`HostConfig::choose`] (the default standing in, with a warning, for
    /// one this host cannot resolve). When replaying, how the recorded run
    /// resolved the name wins; when recording, how it resolved is recorded.
    ///
    /// # Errors
    ///
    /// [`ModelRefusal`] when the name is refused, or there is no model.
    pub fn decide(
        &self,
        requested: Option<&str>,
        parent: Option<&str>,
    ) -> Result<ModelChoice, ModelRefusal> {
        let choice = match (requested, parent) {
            (Some("inherit"), Some(parent)) => {
                return Ok(ModelChoice {
                    requested: Some("inherit".to_owned()),
                    model: parent.to_owned(),
                    warning: None,
                });
            }
            (Some("inherit"), None) => self.choose(None).map_err(|mut refusal| {
                if refusal.model.is_none() {
                    refusal.problem = NO_MODEL_TO_INHERIT.to_owned();
                }
                refusal
            }),
            (name, _) => self.choose(name),
        }?;
        Ok(ModelChoice {
            requested: requested.map(str::to_owned),
            ..choice
        })
    }

    /// How `requested` resolves (`None`: the default), from the recording
    /// being replayed, else from the config; recorded when recording.
    fn choose(&self, requested: Option<&str>) -> Result<ModelChoice, ModelRefusal> {
        if let Some(log) = &self.replay_all {
            if let Some(choice) = log.choice(requested) {
                return Ok(choice.clone());
            }
            // A recording without choices: a name it holds exchanges of.
            if let Some(name) = requested
                && log.has_model(name)
            {
                return Ok(ModelChoice {
                    requested: Some(name.to_owned()),
                    model: name.to_owned(),
                    warning: None,
                });
            }
        }
        let choice = match requested {
            Some(name) => self.config.choose(name).map_err(|err| ModelRefusal {
                model: Some(name.to_owned()),
                problem: err.to_string(),
            })?,
            None => self.config.default_choice().ok_or_else(|| ModelRefusal {
                model: None,
                problem: NO_MODEL.to_owned(),
            })?,
        };
        if let Some(recorder) = &self.recorder {
            recorder.note(&choice).map_err(|problem| ModelRefusal {
                model: Some(choice.model.clone()),
                problem,
            })?;
        }
        Ok(choice)
    }

    /// Resolve `name` without building anything.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] with the known aliases and a "did you mean".
    pub fn resolve(&self, name: &str) -> Result<ModelSpec, ResolveError> {
        self.config.resolve(name)
    }

    /// Can calls to `name` be made? Resolves it and builds its provider (a
    /// replay model reads its recording), so a launch can refuse an unknown
    /// alias before anything runs. Keys are not checked: they are read at
    /// call time.
    ///
    /// # Errors
    ///
    /// What is wrong, with how to fix it.
    pub fn check(&self, name: &str) -> Result<(), String> {
        self.provider(name).map(drop)
    }

    /// The provider of `name`, built on first use.
    ///
    /// # Errors
    ///
    /// What is wrong, with how to fix it.
    pub fn provider(&self, name: &str) -> Result<Arc<dyn Provider>, String> {
        if let Some(provider) = self.lock_providers().get(name) {
            return Ok(Arc::clone(provider));
        }
        let provider: Arc<dyn Provider> = match &self.replay_all {
            Some(log) => {
                if !log.has_model(name) {
                    let held = match log.models() {
                        models if models.is_empty() => "it is empty".to_owned(),
                        models => format!("it holds {}", models.join(", ")),
                    };
                    return Err(format!(
                        "the recording {} holds no exchange of model `{name}` ({held}); replay the run with the model it was recorded with",
                        log.path().display(),
                    ));
                }
                Arc::new(Replay::new(Arc::clone(log), name))
            }
            None => self.build(self.config.resolve(name).map_err(|e| e.to_string())?)?,
        };
        let provider = match &self.recorder {
            Some(recorder) => recorder.wrap(name, provider),
            None => provider,
        };
        // Two first calls may race to build; both builds are equal, keep one.
        let mut providers = self.lock_providers();
        Ok(Arc::clone(
            providers.entry(name.to_owned()).or_insert(provider),
        ))
    }

    fn lock_providers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn Provider>>> {
        self.providers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn build(&self, spec: ModelSpec) -> Result<Arc<dyn Provider>, String> {
        Ok(match spec.provider {
            ProviderKind::OpenAi => {
                let client = self.client(&spec)?;
                Arc::new(OpenAi::new(spec, client, self.env.clone()))
            }
            ProviderKind::Anthropic => {
                let client = self.client(&spec)?;
                Arc::new(Anthropic::new(spec, client, self.env.clone()))
            }
            ProviderKind::Replay => {
                let Some(file) = &spec.file else {
                    return Err(format!("replay model `{}` names no file", spec.name));
                };
                let mut replays = self.replays.lock().unwrap_or_else(|e| e.into_inner());
                let log = match replays.get(file) {
                    Some(log) => Arc::clone(log),
                    None => {
                        let log = ReplayLog::open(file)?;
                        replays.insert(file.clone(), Arc::clone(&log));
                        log
                    }
                };
                Arc::new(Replay::new(log, &spec.name))
            }
        })
    }

    fn client(&self, spec: &ModelSpec) -> Result<reqwest::Client, String> {
        let direct = super::http::is_loopback(&spec.base_url);
        self.clients[usize::from(direct)]
            .get_or_init(|| super::http::client(direct))
            .clone()
    }
}

const NO_MODEL: &str = "no model to use: the manifest names none and the host config has no `default_model`; set `model` in the manifest, pass --model, or set `default_model` in the host config";

const NO_MODEL_TO_INHERIT: &str = "no model to use: the manifest says `inherit`, a top-level task has no parent to inherit from, and the host config has no `default_model`; pass --model, or set `default_model` in the host config";

impl ModelBroker for Models {
    fn complete(
        &self,
        model: String,
        request: ChatRequest,
    ) -> BoxFuture<'_, Result<ChatResponse, ModelError>> {
        Box::pin(async move {
            let provider = self.provider(&model).map_err(ModelError::Unavailable)?;
            provider.complete(request).await
        })
    }
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("config", &self.config.path)
            .field("default_model", &self.config.default_model)
            .field("recording", &self.recording())
            .finish_non_exhaustive()
    }
}
