//! The Anthropic Messages API: `POST {base_url}/v1/messages` with
//! `x-api-key` and `anthropic-version: 2023-06-01`. System messages become
//! the top-level `system`; tool calls and results are `tool_use` and
//! `tool_result` content blocks.

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::{ANTHROPIC_DEFAULT_MAX_TOKENS, EnvLookup, ModelSpec};
use super::http::{Endpoint, read_key};
use super::openai::{float, parameters};
use super::{
    BoxFuture, ChatRequest, ChatResponse, ModelError, Provider, Role, StopReason, TokenUsage,
    ToolCall,
};

/// The Messages API version the host speaks.
pub const API_VERSION: &str = "2023-06-01";

/// A model behind the Anthropic Messages API.
pub struct Anthropic {
    spec: ModelSpec,
    endpoint: Endpoint,
    env: EnvLookup,
}

impl Anthropic {
    pub fn new(spec: ModelSpec, client: reqwest::Client, env: EnvLookup) -> Anthropic {
        let url = if spec.base_url.ends_with("/v1") {
            format!("{}/messages", spec.base_url)
        } else {
            format!("{}/v1/messages", spec.base_url)
        };
        let endpoint = Endpoint {
            client,
            url,
            provider: "Anthropic",
            model: spec.name.clone(),
            timeout: spec.timeout,
            max_retries: spec.max_retries,
        };
        Anthropic {
            spec,
            endpoint,
            env,
        }
    }

    async fn call(&self, request: ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = request_body(&self.spec, &request)?;
        let key = read_key(&self.spec, &self.env)?;
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        )];
        if let Some(key) = &key {
            headers.push(key.header(HeaderName::from_static("x-api-key"), key.value.clone())?);
        }
        self.endpoint
            .exchange(&headers, &body, key.as_ref(), |answer| {
                parse_response(answer, &self.spec.model)
            })
            .await
    }
}

impl Provider for Anthropic {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, ModelError>> {
        Box::pin(self.call(request))
    }
}

/// The JSON body of a Messages request.
///
/// Consecutive messages of one role are merged (the API wants user and
/// assistant turns to alternate; tool results travel in a user turn), and
/// empty text blocks are dropped (the API refuses them).
///
/// # Errors
///
/// `bad-request` when the request cannot be expressed: a `tool` message
/// without `tool_call_id`, tool-call arguments that are not a JSON object,
/// tool parameters that are not JSON.
pub fn request_body(spec: &ModelSpec, request: &ChatRequest) -> Result<Value, ModelError> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (index, m) in request.messages.iter().enumerate() {
        let mut blocks = Vec::new();
        let role = match m.role {
            Role::System => {
                if !m.content.is_empty() {
                    system.push(&m.content);
                }
                continue;
            }
            Role::User => {
                if !m.content.is_empty() {
                    blocks.push(json!({ "type": "text", "text": m.content }));
                }
                "user"
            }
            Role::Assistant => {
                if !m.content.is_empty() {
                    blocks.push(json!({ "type": "text", "text": m.content }));
                }
                for call in &m.tool_calls {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": arguments(index, call)?,
                    }));
                }
                "assistant"
            }
            Role::Tool => {
                let Some(id) = &m.tool_call_id else {
                    return Err(ModelError::BadRequest(format!(
                        "message {index} has role `tool` but no tool-call-id: set it to the id of the call it answers"
                    )));
                };
                let mut block = json!({ "type": "tool_result", "tool_use_id": id });
                if !m.content.is_empty() {
                    block["content"] = json!(m.content);
                }
                blocks.push(block);
                "user"
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(spec.model));
    let max_tokens = request
        .max_tokens
        .or(spec.max_tokens)
        .unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS);
    body.insert("max_tokens".into(), json!(max_tokens));
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let mut tools = Vec::with_capacity(request.tools.len());
        for tool in &request.tools {
            tools.push(json!({
                "name": tool.name,
                "description": tool.description,
                "input_schema": parameters(&tool.name, &tool.parameters)?,
            }));
        }
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), float(temperature));
    }
    Ok(Value::Object(body))
}

/// A tool call's arguments as the JSON object `tool_use.input` must be.
fn arguments(index: usize, call: &ToolCall) -> Result<Value, ModelError> {
    if call.arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(ModelError::BadRequest(format!(
            "message {index}: the arguments of tool call `{}` ({}) are not a JSON object",
            call.name, call.id
        ))),
    }
}

#[derive(Deserialize)]
struct MessageResponse {
    #[serde(default)]
    model: Option<String>,
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Thinking, server tools, …: not part of the answer.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// Read a Messages answer; `model` stands in when the answer does not say
/// which model answered.
///
/// # Errors
///
/// What is wrong with the answer, for a `bad-request` "malformed response".
pub fn parse_response(answer: Value, model: &str) -> Result<ChatResponse, String> {
    if answer.get("type").and_then(Value::as_str) == Some("error") {
        let message = answer
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)");
        return Err(format!("the server answered with an error: {message}"));
    }
    let response: MessageResponse = serde_json::from_value(answer).map_err(|e| e.to_string())?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in response.content {
        match block {
            Block::Text { text } => content.push_str(&text),
            Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                name,
                arguments: match input {
                    Value::Null => "{}".to_owned(),
                    other => other.to_string(),
                },
            }),
            Block::Other => {}
        }
    }
    let stop_reason = match response.stop_reason.as_deref() {
        Some("end_turn" | "stop_sequence") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolCalls,
        Some("max_tokens") => StopReason::MaxTokens,
        _ => StopReason::Other,
    };
    // Cached input is input all the same: count it against the budget.
    let usage = response
        .usage
        .map_or_else(TokenUsage::default, |u| TokenUsage {
            input_tokens: u.input_tokens
                + u.cache_creation_input_tokens.unwrap_or(0)
                + u.cache_read_input_tokens.unwrap_or(0),
            output_tokens: u.output_tokens,
        });
    Ok(ChatResponse {
        content,
        tool_calls,
        stop_reason,
        usage,
        model: response
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| model.to_owned()),
    })
}
