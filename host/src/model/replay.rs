//! Record and replay model exchanges, so a run reproduces offline.
//!
//! A recording is JSON Lines, one exchange per line, in the order the calls
//! finished:
//!
//! ```json
//! {"choice":{"requested":"sonnet","model":"fast"}}
//! {"seq":1,"model":"fast","request":{…},"response":{…}}
//! {"seq":2,"model":"fast","request":{…},"error":{"kind":"timeout","message":"…"}}
//! ```
//!
//! A `choice` line is how a model name the run asked for resolved (the
//! effective model, and the warning when the default stood in;
//! `"requested":null` for the default), written when the task was
//! prepared. Replaying takes them from the recording, so a replay needs
//! none of the host config's aliases, families or default.
//!
//! [`Recorder`] writes it around any provider. [`Replay`] serves it back:
//! the n-th call of a run gets the n-th recorded answer (errors included)
//! when its model and request equal the recorded ones, and a clear
//! `bad-request` naming the exchange and the first difference otherwise.
//! Calls of concurrent tasks may finish in another order than when
//! recorded, so a call takes the first not-yet-served exchange that matches
//! it; in a sequential run that is always the next one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::http::snippet;
use super::{BoxFuture, ChatRequest, ChatResponse, Message, ModelChoice, ModelError, Provider};

/// One recorded model call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// 1-based position in the recording; informative only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The model the call named: an alias or `provider/model`.
    pub model: String,
    pub request: ChatRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ChatResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ModelError>,
}

/// How a requested model name resolved, as a line of the recording.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceLine {
    choice: ModelChoice,
}

/// Appends every exchange of the providers it wraps to one file, and the
/// model choices of the run.
pub struct Recorder {
    path: PathBuf,
    file: Mutex<Sink>,
}

struct Sink {
    file: File,
    /// Exchanges written so far.
    exchanges: u64,
    /// The requested names whose choice is written.
    choices: Vec<Option<String>>,
}

impl Recorder {
    /// Start a recording at `path`, replacing any file there.
    ///
    /// # Errors
    ///
    /// When the file cannot be created.
    pub fn create(path: &Path) -> std::io::Result<Arc<Recorder>> {
        let file = File::create(path)?;
        Ok(Arc::new(Recorder {
            path: path.to_owned(),
            file: Mutex::new(Sink {
                file,
                exchanges: 0,
                choices: Vec::new(),
            }),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `inner`, recording each of its exchanges under the name `model`.
    pub fn wrap(self: &Arc<Self>, model: &str, inner: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(Recording {
            recorder: Arc::clone(self),
            model: model.to_owned(),
            inner,
        })
    }

    /// Record how the name `choice.requested` resolved, once per name.
    ///
    /// # Errors
    ///
    /// When the recording cannot be written.
    pub fn note(&self, choice: &ModelChoice) -> Result<(), String> {
        let mut sink = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if sink.choices.contains(&choice.requested) {
            return Ok(());
        }
        let line = ChoiceLine {
            choice: choice.clone(),
        };
        self.write_line(&mut sink.file, &line)?;
        sink.choices.push(choice.requested.clone());
        Ok(())
    }

    fn append(&self, mut exchange: Exchange) -> Result<(), ModelError> {
        let mut sink = self.file.lock().unwrap_or_else(|e| e.into_inner());
        exchange.seq = Some(sink.exchanges + 1);
        self.write_line(&mut sink.file, &exchange)
            .map_err(ModelError::Unavailable)?;
        sink.exchanges += 1;
        Ok(())
    }

    fn write_line(&self, file: &mut File, value: &impl Serialize) -> Result<(), String> {
        let mut line = serde_json::to_vec(value)
            .map_err(|err| format!("cannot encode what to record: {err}"))?;
        line.push(b'\n');
        file.write_all(&line).map_err(|err| {
            format!(
                "cannot append to the recording {}: {err}",
                self.path.display()
            )
        })
    }
}

struct Recording {
    recorder: Arc<Recorder>,
    model: String,
    inner: Arc<dyn Provider>,
}

impl Provider for Recording {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, ModelError>> {
        Box::pin(async move {
            let result = self.inner.complete(request.clone()).await;
            let (response, error) = match &result {
                Ok(response) => (Some(response.clone()), None),
                Err(err) => (None, Some(err.clone())),
            };
            self.recorder.append(Exchange {
                seq: None,
                model: self.model.clone(),
                request,
                response,
                error,
            })?;
            result
        })
    }
}

/// A recording being served back: shared by every replay model that names
/// the same file.
pub struct ReplayLog {
    path: PathBuf,
    exchanges: Vec<Exchange>,
    /// How the run's requested model names resolved.
    choices: Vec<ModelChoice>,
    served: Mutex<Vec<bool>>,
}

impl ReplayLog {
    /// Read the recording at `path`.
    ///
    /// # Errors
    ///
    /// A message naming the file (and line) when it cannot be read or a line
    /// is not a recorded exchange.
    pub fn open(path: &Path) -> Result<Arc<ReplayLog>, String> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            format!(
                "cannot read the recording {}: {err}; write one with `subagent run --record FILE`",
                path.display()
            )
        })?;
        let mut exchanges = Vec::new();
        let mut choices = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let exchange: Exchange = match serde_json::from_str(line) {
                Ok(exchange) => exchange,
                Err(err) => match serde_json::from_str::<ChoiceLine>(line) {
                    Ok(line) => {
                        choices.push(line.choice);
                        continue;
                    }
                    Err(_) => {
                        return Err(format!(
                            "{}:{}: not a recorded exchange: {err}",
                            path.display(),
                            number + 1
                        ));
                    }
                },
            };
            if exchange.response.is_none() == exchange.error.is_none() {
                return Err(format!(
                    "{}:{}: a recorded exchange has either a `response` or an `error`",
                    path.display(),
                    number + 1
                ));
            }
            exchanges.push(exchange);
        }
        Ok(Arc::new(ReplayLog {
            path: path.to_owned(),
            served: Mutex::new(vec![false; exchanges.len()]),
            exchanges,
            choices,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the recorded run resolved the model name `requested` (`None`:
    /// the default), if the recording says.
    pub fn choice(&self, requested: Option<&str>) -> Option<&ModelChoice> {
        self.choices
            .iter()
            .find(|c| c.requested.as_deref() == requested)
    }

    /// Does the recording hold an exchange of `model`?
    pub fn has_model(&self, model: &str) -> bool {
        self.exchanges.iter().any(|e| e.model == model)
    }

    /// The models the recording holds exchanges of, in order of first use.
    pub fn models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = Vec::new();
        for exchange in &self.exchanges {
            if !models.contains(&exchange.model.as_str()) {
                models.push(&exchange.model);
            }
        }
        models
    }

    /// How many exchanges the recording holds.
    pub fn len(&self) -> usize {
        self.exchanges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
    }

    /// The recorded answer to `request` made to `model`.
    ///
    /// # Errors
    ///
    /// The recorded error, or `bad-request` when the call matches no
    /// exchange left (saying which exchange differs and how) or the
    /// recording is used up.
    pub fn serve(&self, model: &str, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.exchanges.len();
        let Some(next) = served.iter().position(|s| !s) else {
            return Err(ModelError::BadRequest(format!(
                "replay of {}: the run makes more model calls than were recorded: all {total} exchanges were served, and model `{model}` was called again; record the run again with `--record`",
                self.path.display()
            )));
        };
        let found = (next..total).find(|&i| {
            !served[i] && self.exchanges[i].model == model && self.exchanges[i].request == *request
        });
        let Some(index) = found else {
            // Compare with the next unserved exchange of this model, else
            // with the next one at all.
            let expected = (next..total)
                .find(|&i| !served[i] && self.exchanges[i].model == model)
                .unwrap_or(next);
            let recorded = &self.exchanges[expected];
            let difference = if recorded.model != model {
                format!(
                    "it was recorded for model `{}`, this call is for model `{model}`",
                    recorded.model
                )
            } else {
                describe_difference(&recorded.request, request)
            };
            return Err(ModelError::BadRequest(format!(
                "replay of {}: this call does not match the recording: exchange {} of {total} differs: {difference}; record the run again with `--record` if the change is intended",
                self.path.display(),
                expected + 1,
            )));
        };
        served[index] = true;
        let exchange = &self.exchanges[index];
        match (&exchange.response, &exchange.error) {
            (Some(response), _) => Ok(response.clone()),
            (None, Some(error)) => Err(error.clone()),
            (None, None) => unreachable!("checked when the recording was read"),
        }
    }
}

/// A model answered from a recording.
pub struct Replay {
    log: Arc<ReplayLog>,
    /// The name calls to this model were recorded under.
    model: String,
}

impl Replay {
    pub fn new(log: Arc<ReplayLog>, model: &str) -> Replay {
        Replay {
            log,
            model: model.to_owned(),
        }
    }
}

impl Provider for Replay {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, ModelError>> {
        Box::pin(async move { self.log.serve(&self.model, &request) })
    }
}

/// The first difference between a recorded request and a new one, in words.
pub fn describe_difference(recorded: &ChatRequest, now: &ChatRequest) -> String {
    for (index, (a, b)) in recorded.messages.iter().zip(&now.messages).enumerate() {
        if a != b {
            return format!("message {index} differs: {}", message_difference(a, b));
        }
    }
    let (r, n) = (recorded.messages.len(), now.messages.len());
    if r != n {
        let (extra, side) = if n > r {
            (&now.messages[r], "this call has")
        } else {
            (&recorded.messages[n], "the recording has")
        };
        return format!(
            "the recording has {} and this call {n}; {side} message {} more: {}",
            plural(r, "message"),
            r.min(n),
            describe_message(extra)
        );
    }
    if recorded.tools != now.tools {
        let names = |r: &ChatRequest| {
            r.tools
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (a, b) = (names(recorded), names(now));
        if a != b {
            return format!("the tools differ: recorded [{a}], now [{b}]");
        }
        let tool = recorded
            .tools
            .iter()
            .zip(&now.tools)
            .find(|(a, b)| a != b)
            .map_or("?", |(a, _)| a.name.as_str());
        return format!("the definition of tool `{tool}` differs");
    }
    if recorded.max_tokens != now.max_tokens {
        return format!(
            "max_tokens differs: recorded {:?}, now {:?}",
            recorded.max_tokens, now.max_tokens
        );
    }
    if recorded.temperature != now.temperature {
        return format!(
            "temperature differs: recorded {:?}, now {:?}",
            recorded.temperature, now.temperature
        );
    }
    "the requests differ".to_owned()
}

fn message_difference(a: &Message, b: &Message) -> String {
    if a.role != b.role {
        return format!("recorded a {} message, now a {} message", role(a), role(b));
    }
    if a.content != b.content {
        let (was, now) = excerpt_at_difference(&a.content, &b.content);
        return format!("the {} content was {was:?}, now {now:?}", role(a));
    }
    if a.tool_calls != b.tool_calls {
        let calls = |m: &Message| {
            m.tool_calls
                .iter()
                .map(|c| format!("{}({})", c.name, snippet(&c.arguments, 60)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return format!("the tool calls were [{}], now [{}]", calls(a), calls(b));
    }
    format!(
        "the tool-call-id was {:?}, now {:?}",
        a.tool_call_id, b.tool_call_id
    )
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn describe_message(m: &Message) -> String {
    format!("a {} message {:?}", role(m), snippet(&m.content, 80))
}

fn role(m: &Message) -> &'static str {
    match m.role {
        super::Role::System => "system",
        super::Role::User => "user",
        super::Role::Assistant => "assistant",
        super::Role::Tool => "tool",
    }
}

/// The two texts from a little before where they first differ.
fn excerpt_at_difference(a: &str, b: &str) -> (String, String) {
    let common = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    // Step back a little, on a character boundary, for context.
    let mut start = common.saturating_sub(20);
    while !a.is_char_boundary(start) {
        start -= 1;
    }
    let prefix = if start > 0 { "…" } else { "" };
    let cut = |s: &str| format!("{prefix}{}", snippet(s.get(start..).unwrap_or(""), 60));
    (cut(a), cut(b))
}
