//! Host-brokered model access: the request and response types every
//! provider speaks, the typed errors, and the [`Provider`] trait.
//!
//! A guest never holds a key or a URL: it calls `subagent:plugin/model`, and
//! the host sends the request to the task's effective model through a
//! provider configured in the host config.

pub mod anthropic;
pub mod broker;
pub mod config;
mod http;
pub mod openai;
pub mod replay;

pub use broker::{ModelRefusal, Models, RecordError};
pub use config::{ConfigError, HostConfig, KeySource, ModelSpec, ProviderKind, ResolveError};
pub use http::client as http_client;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the `model` capability needs from the host's model configuration:
/// [`Models`] in the host, a fake in the capability's own tests.
pub trait ModelBroker: Send + Sync {
    /// Send `request` to the model known as `model` (an alias or `provider/model`).
    fn complete(
        &self,
        model: String,
        request: ChatRequest,
    ) -> BoxFuture<'_, Result<ChatResponse, ModelError>>;
}

/// The model a task runs on, and the name it asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelChoice {
    /// The name the launch or the manifest gave (`inherit` included);
    /// `None` when neither named one and `default_model` applies.
    pub requested: Option<String>,
    /// The effective model: the name its calls go to (an alias,
    /// `provider/model` or a full model id), and its concurrency key.
    pub model: String,
    /// Set when `requested` does not resolve on this host and the default
    /// model stands in: says so, and how to choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// Arguments as a JSON document.
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolCalls,
    MaxTokens,
    Other,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub stop_reason: StopReason,
    pub usage: TokenUsage,
    /// The model that answered, as the provider names it.
    pub model: String,
}

/// Why a model call failed. Mirrors `model-error` in the WIT.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum ModelError {
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("denied: {0}")]
    Denied(String),
    #[error("token budget exceeded: {0}")]
    BudgetExceeded(String),
}

/// One way of answering chat requests (a provider behind a model alias).
pub trait Provider: Send + Sync {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, ModelError>>;
}
