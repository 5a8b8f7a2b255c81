//! The OpenAI chat-completions wire format, spoken by OpenAI and by most
//! servers of open models (vLLM, Ollama, LiteLLM, llama.cpp, …):
//! `POST {base_url}/chat/completions` with `Authorization: Bearer <key>`.

use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::{EnvLookup, ModelSpec};
use super::http::{Endpoint, read_key};
use super::{
    BoxFuture, ChatRequest, ChatResponse, ModelError, Provider, Role, StopReason, TokenUsage,
    ToolCall,
};

/// A model behind an OpenAI-compatible chat-completions endpoint.
pub struct OpenAi {
    spec: ModelSpec,
    endpoint: Endpoint,
    env: EnvLookup,
}

impl OpenAi {
    pub fn new(spec: ModelSpec, client: reqwest::Client, env: EnvLookup) -> OpenAi {
        let endpoint = Endpoint {
            client,
            url: format!("{}/chat/completions", spec.base_url),
            provider: "the OpenAI-compatible server",
            model: spec.name.clone(),
            timeout: spec.timeout,
            max_retries: spec.max_retries,
        };
        OpenAi {
            spec,
            endpoint,
            env,
        }
    }

    async fn call(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = request_body(&self.spec, &request)?;
        let key = read_key(&self.spec, &self.env)?;
        let mut headers = Vec::new();
        if let Some(key) = &key {
            headers.push(key.header(AUTHORIZATION, format!("Bearer {}", key.value))?);
        }
        self.endpoint
            .exchange(&headers, &body, key.as_ref(), |answer| {
                parse_response(answer, &self.spec.model)
            })
            .await
    }
}

impl Provider for OpenAi {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, ModelError>> {
        Box::pin(self.call(request))
    }
}

/// The JSON body of a chat-completions request.
///
/// # Errors
///
/// `bad-request` when the request cannot be expressed: a `tool` message
/// without `tool_call_id`, tool parameters that are not JSON.
pub fn request_body(spec: &ModelSpec, request: &ChatRequest) -> Result<Value, ModelError> {
    let mut messages = Vec::with_capacity(request.messages.len());
    for (index, m) in request.messages.iter().enumerate() {
        let mut out = Map::new();
        out.insert("role".into(), json!(role_name(m.role)));
        out.insert("content".into(), json!(m.content));
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                if m.content.is_empty() {
                    out.insert("content".into(), Value::Null);
                }
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": { "name": c.name, "arguments": c.arguments },
                        })
                    })
                    .collect();
                out.insert("tool_calls".into(), Value::Array(calls));
            }
            Role::Tool => {
                let Some(id) = &m.tool_call_id else {
                    return Err(ModelError::BadRequest(format!(
                        "message {index} has role `tool` but no tool-call-id: set it to the id of the call it answers"
                    )));
                };
                out.insert("tool_call_id".into(), json!(id));
            }
            _ => {}
        }
        messages.push(Value::Object(out));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(spec.model));
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let mut tools = Vec::with_capacity(request.tools.len());
        for tool in &request.tools {
            tools.push(json!({
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": parameters(&tool.name, &tool.parameters)?,
                },
            }));
        }
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(max) = request.max_tokens.or(spec.max_tokens) {
        // OpenAI's own API wants the newer name (its reasoning models refuse
        // `max_tokens`); other servers know the classic one.
        let field = if is_openai(&spec.base_url) {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(field.into(), json!(max));
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), float(temperature));
    }
    Ok(Value::Object(body))
}

fn is_openai(base_url: &str) -> bool {
    base_url
        .strip_prefix("https://")
        .is_some_and(|rest| rest.split('/').next() == Some("api.openai.com"))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// A tool's JSON Schema as a JSON value; empty means "no arguments".
pub(crate) fn parameters(tool: &str, schema: &str) -> Result<Value, ModelError> {
    if schema.trim().is_empty() {
        return Ok(json!({ "type": "object", "properties": {} }));
    }
    serde_json::from_str(schema).map_err(|err| {
        ModelError::BadRequest(format!(
            "the parameters of tool `{tool}` are not a JSON Schema document: {err}"
        ))
    })
}

/// An `f32` as the decimal people wrote (0.2, not 0.20000000298023224).
pub(crate) fn float(value: f32) -> Value {
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: AssistantMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<WireCall>>,
}

#[derive(Deserialize)]
struct WireCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// Read a chat-completions answer; `model` stands in when the server does
/// not say which model answered.
///
/// # Errors
///
/// What is wrong with the answer, for a `bad-request` "malformed response".
pub fn parse_response(answer: Value, model: &str) -> Result<ChatResponse, String> {
    if answer.get("choices").is_none()
        && let Some(error) = answer.get("error")
    {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(format!("the server answered with an error: {message}"));
    }
    let completion: Completion = serde_json::from_value(answer).map_err(|e| e.to_string())?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err("`choices` is empty".into());
    };
    let content = match choice.message.content {
        Value::Null => String::new(),
        Value::String(text) => text,
        // Content parts: [{"type": "text", "text": "…"}, …].
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        other => return Err(format!("`content` is neither text nor parts: {other}")),
    };
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, call)| ToolCall {
            id: call.id.unwrap_or_else(|| format!("call_{i}")),
            name: call.function.name,
            arguments: match call.function.arguments {
                Value::String(text) => text,
                Value::Null => "{}".to_owned(),
                // Some servers send the arguments as an object.
                other => other.to_string(),
            },
        })
        .collect();
    let stop_reason = match choice.finish_reason.as_deref() {
        Some("length") => StopReason::MaxTokens,
        // Some servers say "stop" even when the model called tools.
        _ if !tool_calls.is_empty() => StopReason::ToolCalls,
        Some("stop") => StopReason::EndTurn,
        Some("tool_calls" | "function_call") => StopReason::ToolCalls,
        _ => StopReason::Other,
    };
    let usage = completion
        .usage
        .map_or_else(TokenUsage::default, |u| TokenUsage {
            input_tokens: u.prompt_tokens.unwrap_or(0),
            output_tokens: u.completion_tokens.unwrap_or(0),
        });
    Ok(ChatResponse {
        content,
        tool_calls,
        stop_reason,
        usage,
        model: completion
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| model.to_owned()),
    })
}
