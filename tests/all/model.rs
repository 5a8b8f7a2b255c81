//! The host's model providers against a real loopback HTTP server speaking
//! the OpenAI and Anthropic wire formats: what goes on the wire, how
//! answers and failures come back as typed errors, record and replay, and
//! the host config's errors. Nothing here leaves 127.0.0.1.

use crate::http_server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use subagent_host::capabilities::model::ModelBroker;
use subagent_host::model::{
    ChatRequest, ChatResponse, HostConfig, KeySource, Message, ModelChoice, ModelError, Models,
    ProviderKind, Role, StopReason, TokenUsage, ToolCall, ToolDefinition,
};

use http_server::{Canned, TestServer, refused_url};

/// Models from config `text` (written to a temp dir, read back through the
/// loader), reading keys from `env` instead of the process environment.
struct Setup {
    dir: tempfile::TempDir,
    models: Models,
}

fn setup(text: &str, env: &[(&str, &str)]) -> Setup {
    setup_recording(text, env, None)
}

fn setup_recording(text: &str, env: &[(&str, &str)], record: Option<PathBuf>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let config = subagent_host::model::config::load(Some(&path))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let models = Models::new(config, record)
        .unwrap()
        .with_env(move |name| env.get(name).cloned());
    Setup { dir, models }
}

/// `[models.<alias>]` for an OpenAI-compatible server at `url`.
fn openai_model(alias: &str, url: &str, extra: &str) -> String {
    format!(
        "[models.{alias}]\nprovider = \"openai\"\nbase_url = \"{url}/v1\"\nmodel = \"qwen2.5-coder:7b\"\n{extra}\n"
    )
}

fn user(text: &str) -> Message {
    message(Role::User, text)
}

fn message(role: Role, text: &str) -> Message {
    Message {
        role,
        content: text.into(),
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        messages,
        tools: Vec::new(),
        max_tokens: None,
        temperature: None,
    }
}

fn read_file_tool() -> ToolDefinition {
    ToolDefinition {
        name: "read_file".into(),
        description: "Read a file of the workspace".into(),
        parameters:
            r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#
                .into(),
    }
}

/// A history in which the assistant called `read_file` and got its answer.
fn tool_history(call_id: &str, said: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            message(Role::System, "You are terse."),
            user("Summarize README.md"),
            Message {
                role: Role::Assistant,
                content: said.into(),
                tool_calls: vec![ToolCall {
                    id: call_id.into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"README.md"}"#.into(),
                }],
                tool_call_id: None,
            },
            Message {
                role: Role::Tool,
                content: "# subagent-host".into(),
                tool_calls: Vec::new(),
                tool_call_id: Some(call_id.into()),
            },
        ],
        tools: vec![read_file_tool()],
        max_tokens: Some(512),
        temperature: Some(0.2),
    }
}

fn openai_text(text: &str) -> Canned {
    Canned::json(
        200,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "qwen2.5-coder:7b",
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "finish_reason": "stop",
            }],
            "usage": { "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15 },
        }),
    )
}

fn openai_error(status: u16, message: &str) -> Canned {
    Canned::json(
        status,
        json!({ "error": { "message": message, "type": "error", "code": null } }),
    )
}

async fn complete(
    setup: &Setup,
    model: &str,
    request: ChatRequest,
) -> Result<ChatResponse, ModelError> {
    let call = setup.models.complete(model.into(), request);
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the model call did not end within 60 s")
}

#[tokio::test]
async fn openai_text_answer_with_usage() {
    let server = TestServer::start(vec![openai_text("Hello!")]).await;
    let setup = setup(&openai_model("local", &server.url(), ""), &[]);
    let mut req = request(vec![message(Role::System, "Be brief."), user("Say hello")]);
    req.temperature = Some(0.2);

    let response = complete(&setup, "local", req).await.unwrap();

    assert_eq!(
        response,
        ChatResponse {
            content: "Hello!".into(),
            tool_calls: Vec::new(),
            stop_reason: StopReason::EndTurn,
            usage: TokenUsage {
                input_tokens: 12,
                output_tokens: 3
            },
            model: "qwen2.5-coder:7b".into(),
        }
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    let sent = &received[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.header("authorization"),
        None,
        "a local server gets no key"
    );
    assert_eq!(
        sent.json(),
        json!({
            "model": "qwen2.5-coder:7b",
            "messages": [
                { "role": "system", "content": "Be brief." },
                { "role": "user", "content": "Say hello" },
            ],
            "temperature": 0.2,
        })
    );
}

#[tokio::test]
async fn openai_tool_calls_round_trip() {
    let server = TestServer::start(vec![
        Canned::json(
            200,
            json!({
                "model": "qwen2.5-coder:7b",
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [{
                            "id": "call_1",
                            "type": "function",
                            "function": { "name": "read_file", "arguments": "{\"path\":\"README.md\"}" },
                        }],
                    },
                    "finish_reason": "tool_calls",
                }],
                "usage": { "prompt_tokens": 40, "completion_tokens": 9 },
            }),
        ),
        openai_text("It is a sandbox for subagents."),
    ])
    .await;
    let setup = setup(
        &openai_model(
            "local",
            &server.url(),
            "api_key_env = \"SUBAGENT_TEST_OPENAI_KEY\"\nmax_tokens = 4096",
        ),
        &[("SUBAGENT_TEST_OPENAI_KEY", "sk-test-openai")],
    );

    let mut first = request(vec![user("Summarize README.md")]);
    first.tools = vec![read_file_tool()];
    let response = complete(&setup, "local", first).await.unwrap();
    assert_eq!(response.stop_reason, StopReason::ToolCalls);
    assert_eq!(response.content, "");
    assert_eq!(
        response.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "read_file".into(),
            arguments: r#"{"path":"README.md"}"#.into(),
        }]
    );
    assert_eq!(response.usage.input_tokens, 40);

    let response = complete(&setup, "local", tool_history("call_1", ""))
        .await
        .unwrap();
    assert_eq!(response.content, "It is a sandbox for subagents.");

    let received = server.received();
    assert_eq!(received.len(), 2);
    for sent in &received {
        assert_eq!(sent.header("authorization"), Some("Bearer sk-test-openai"));
    }
    let tools = json!([{
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file of the workspace",
            "parameters": {
                "type": "object",
                "properties": { "path": { "type": "string" } },
                "required": ["path"],
            },
        },
    }]);
    assert_eq!(
        received[0].json(),
        json!({
            "model": "qwen2.5-coder:7b",
            "messages": [{ "role": "user", "content": "Summarize README.md" }],
            "tools": tools,
            "max_tokens": 4096,
        }),
        "the config's max_tokens applies when the request gives none"
    );
    assert_eq!(
        received[1].json(),
        json!({
            "model": "qwen2.5-coder:7b",
            "messages": [
                { "role": "system", "content": "You are terse." },
                { "role": "user", "content": "Summarize README.md" },
                {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": "call_1",
                        "type": "function",
                        "function": { "name": "read_file", "arguments": "{\"path\":\"README.md\"}" },
                    }],
                },
                { "role": "tool", "tool_call_id": "call_1", "content": "# subagent-host" },
            ],
            "tools": tools,
            "max_tokens": 512,
            "temperature": 0.2,
        })
    );
}

fn anthropic_model(url: &str) -> String {
    format!(
        "[models.claude]\nprovider = \"anthropic\"\nbase_url = \"{url}\"\nmodel = \"claude-test\"\napi_key_env = \"SUBAGENT_TEST_ANTHROPIC_KEY\"\n"
    )
}

#[tokio::test]
async fn anthropic_text_answer_headers_and_system() {
    let server = TestServer::start(vec![Canned::json(
        200,
        json!({
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test-20250101",
            "content": [{ "type": "text", "text": "Hi." }],
            "stop_reason": "end_turn",
            "usage": { "input_tokens": 10, "output_tokens": 2 },
        }),
    )])
    .await;
    let setup = setup(
        &anthropic_model(&server.url()),
        &[("SUBAGENT_TEST_ANTHROPIC_KEY", "sk-ant-test")],
    );

    let response = complete(
        &setup,
        "claude",
        request(vec![
            message(Role::System, "You are terse."),
            user("Say hi"),
        ]),
    )
    .await
    .unwrap();

    assert_eq!(
        response,
        ChatResponse {
            content: "Hi.".into(),
            tool_calls: Vec::new(),
            stop_reason: StopReason::EndTurn,
            usage: TokenUsage {
                input_tokens: 10,
                output_tokens: 2
            },
            model: "claude-test-20250101".into(),
        }
    );
    let sent = &server.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json(),
        json!({
            "model": "claude-test",
            "max_tokens": 4096,
            "system": "You are terse.",
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "Say hi" }] }],
        }),
        "the system prompt is top-level, and max_tokens (required) defaults"
    );
}

#[tokio::test]
async fn anthropic_tool_use_round_trip() {
    let server = TestServer::start(vec![
        Canned::json(
            200,
            json!({
                "type": "message",
                "role": "assistant",
                "model": "claude-test",
                "content": [
                    { "type": "text", "text": "Let me look." },
                    { "type": "tool_use", "id": "toolu_1", "name": "read_file", "input": { "path": "README.md" } },
                ],
                "stop_reason": "tool_use",
                "usage": { "input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 5 },
            }),
        ),
        Canned::json(
            200,
            json!({
                "type": "message",
                "role": "assistant",
                "content": [{ "type": "text", "text": "A sandbox." }],
                "stop_reason": "max_tokens",
                "usage": { "input_tokens": 50, "output_tokens": 512 },
            }),
        ),
    ])
    .await;
    let setup = setup(
        &anthropic_model(&server.url()),
        &[("SUBAGENT_TEST_ANTHROPIC_KEY", "sk-ant-test")],
    );

    let mut first = request(vec![user("Summarize README.md")]);
    first.tools = vec![read_file_tool()];
    let response = complete(&setup, "claude", first).await.unwrap();
    assert_eq!(response.content, "Let me look.");
    assert_eq!(response.stop_reason, StopReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![ToolCall {
            id: "toolu_1".into(),
            name: "read_file".into(),
            arguments: r#"{"path":"README.md"}"#.into(),
        }]
    );
    assert_eq!(
        response.usage,
        TokenUsage {
            input_tokens: 15,
            output_tokens: 20
        },
        "cached input counts as input"
    );

    let response = complete(&setup, "claude", tool_history("toolu_1", "Let me look."))
        .await
        .unwrap();
    assert_eq!(response.stop_reason, StopReason::MaxTokens);
    assert_eq!(response.model, "claude-test", "the configured id stands in");

    let tools = json!([{
        "name": "read_file",
        "description": "Read a file of the workspace",
        "input_schema": {
            "type": "object",
            "properties": { "path": { "type": "string" } },
            "required": ["path"],
        },
    }]);
    let received = server.received();
    assert_eq!(received[0].json()["tools"], tools);
    assert_eq!(
        received[1].json(),
        json!({
            "model": "claude-test",
            "max_tokens": 512,
            "system": "You are terse.",
            "messages": [
                { "role": "user", "content": [{ "type": "text", "text": "Summarize README.md" }] },
                { "role": "assistant", "content": [
                    { "type": "text", "text": "Let me look." },
                    { "type": "tool_use", "id": "toolu_1", "name": "read_file", "input": { "path": "README.md" } },
                ] },
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "toolu_1", "content": "# subagent-host" },
                ] },
            ],
            "tools": tools,
            "temperature": 0.2,
        })
    );
}

#[tokio::test]
async fn retry_after_is_honoured_before_retrying() {
    let server = TestServer::start(vec![
        openai_error(429, "slow down").header("retry-after", "1"),
        openai_text("finally"),
    ])
    .await;
    let setup = setup(&openai_model("local", &server.url(), ""), &[]);

    let response = complete(&setup, "local", request(vec![user("hi")])).await;

    assert_eq!(response.unwrap().content, "finally");
    let received = server.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "retried after {waited:?}, before the 1 s the server asked for"
    );
}

#[tokio::test]
async fn rate_limited_after_retries_reports_retry_after() {
    let limited =
        openai_error(429, "Rate limit reached for requests").header("retry-after-ms", "20");
    let server = TestServer::start(vec![limited.clone(), limited.clone(), limited]).await;
    let setup = setup(
        &openai_model("local", &server.url(), "max_retries = 2"),
        &[],
    );

    let err = complete(&setup, "local", request(vec![user("hi")]))
        .await
        .unwrap_err();

    let ModelError::RateLimited {
        message,
        retry_after,
    } = &err
    else {
        panic!("expected rate-limited, got {err:?}");
    };
    assert_eq!(*retry_after, Some(Duration::from_millis(20)));
    assert!(
        message.contains("after 3 attempts") && message.contains("Rate limit reached"),
        "{message}"
    );
    assert_eq!(server.received().len(), 3, "1 attempt + max_retries 2");
}

#[tokio::test]
async fn a_retry_after_beyond_a_minute_is_returned_not_waited() {
    let server = TestServer::start(vec![
        openai_error(429, "quota").header("retry-after", "120"),
    ])
    .await;
    let setup = setup(&openai_model("local", &server.url(), ""), &[]);

    let err = complete(&setup, "local", request(vec![user("hi")]))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, ModelError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(120)),
        "{err:?}"
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn server_error_then_success() {
    let server =
        TestServer::start(vec![openai_error(500, "internal error"), openai_text("ok")]).await;
    let setup = setup(&openai_model("local", &server.url(), ""), &[]);

    let response = complete(&setup, "local", request(vec![user("hi")])).await;

    assert_eq!(response.unwrap().content, "ok");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn server_errors_after_retries_are_unavailable() {
    let server = TestServer::start(vec![
        openai_error(503, "overloaded"),
        openai_error(503, "overloaded"),
    ])
    .await;
    let setup = setup(
        &openai_model("local", &server.url(), "max_retries = 1"),
        &[],
    );

    let err = complete(&setup, "local", request(vec![user("hi")]))
        .await
        .unwrap_err();

    let ModelError::Unavailable(message) = &err else {
        panic!("expected unavailable, got {err:?}");
    };
    assert!(
        message.contains("HTTP 503")
            && message.contains("after 2 attempts")
            && message.contains("overloaded"),
        "{message}"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let server = TestServer::start(vec![openai_text("late").delay(Duration::from_secs(10))]).await;
    let setup = setup(
        &openai_model("local", &server.url(), "timeout = \"300ms\""),
        &[],
    );

    let err = complete(&setup, "local", request(vec![user("hi")]))
        .await
        .unwrap_err();

    let ModelError::Timeout(message) = &err else {
        panic!("expected timeout, got {err:?}");
    };
    assert!(
        message.contains("300ms") && message.contains("`local`"),
        "{message}"
    );
    assert_eq!(server.received().len(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn a_refused_key_is_an_auth_error_naming_the_variable_not_the_key() {
    let key = "sk-very-secret-4242";
    let server = TestServer::start(vec![openai_error(
        401,
        &format!("Incorrect API key provided: {key}."),
    )])
    .await;
    let setup = setup(
        &openai_model(
            "local",
            &server.url(),
            "api_key_env = \"SUBAGENT_TEST_REFUSED_KEY\"",
        ),
        &[("SUBAGENT_TEST_REFUSED_KEY", key)],
    );

    let err = complete(&setup, "local", request(vec![user("hi")]))
        .await
        .unwrap_err();

    let ModelError::Auth(message) = &err else {
        panic!("expected auth, got {err:?}");
    };
    assert!(
        message.contains("`SUBAGENT_TEST_REFUSED_KEY`") && message.contains("HTTP 401"),
        "{message}"
    );
    assert!(
        !format!("{err} {err:?}").contains(key),
        "the key leaked: {err:?}"
    );
    assert_eq!(server.received().len(), 1, "auth errors are not retried");
}

#[tokio::test]
async fn a_missing_key_variable_is_an_auth_error_at_call_time_not_at_load() {
    let server = TestServer::start(vec![openai_text("unused")]).await;
    let setup = setup(
        &openai_model(
            "local",
            &server.url(),
            "api_key_env = \"SUBAGENT_TEST_UNSET_KEY\"",
        ),
        &[],
    );
    setup
        .models
        .check("local")
        .expect("keys are not checked at launch");

    let err = complete(&setup, "local", request(vec![user("hi")]))
        .await
        .unwrap_err();

    let ModelError::Auth(message) = &err else {
        panic!("expected auth, got {err:?}");
    };
    assert!(
        message.contains("`SUBAGENT_TEST_UNSET_KEY`") && message.contains("is not set"),
        "{message}"
    );
    assert!(
        server.received().is_empty(),
        "nothing was sent without a key"
    );
}

#[tokio::test]
async fn a_rejected_request_carries_the_provider_message() {
    let server = TestServer::start(vec![openai_error(
        400,
        "Invalid schema for function 'read_file'",
    )])
    .await;
    let setup = setup(&openai_model("local", &server.url(), ""), &[]);

    let err = complete(&setup, "local", request(vec![user("hi")]))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, ModelError::BadRequest(m) if m.contains("HTTP 400") && m.contains("Invalid schema for function 'read_file'")),
        "{err:?}"
    );
    assert_eq!(server.received().len(), 1, "a bad request is not retried");
}

#[tokio::test]
async fn a_malformed_answer_is_a_bad_request() {
    let server = TestServer::start(vec![
        Canned::raw(200, "{\"choices\": [tru"),
        Canned::json(200, json!({ "object": "chat.completion" })),
    ])
    .await;
    let setup = setup(&openai_model("local", &server.url(), ""), &[]);

    for expected in ["EOF while parsing", "missing field `choices`"] {
        let err = complete(&setup, "local", request(vec![user("hi")]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ModelError::BadRequest(m) if m.starts_with("malformed response from") && m.contains(expected)),
            "expected a malformed-response error mentioning {expected:?}, got {err:?}"
        );
    }
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let url = refused_url().await;
    let setup = setup(&openai_model("down", &url, "max_retries = 1"), &[]);

    let err = complete(&setup, "down", request(vec![user("hi")]))
        .await
        .unwrap_err();

    let ModelError::Unavailable(message) = &err else {
        panic!("expected unavailable, got {err:?}");
    };
    assert!(
        message.contains("cannot reach")
            && message.contains(&url)
            && message.contains("after 2 attempts"),
        "{message}"
    );
}

/// The calls of the record and replay tests: a tool call, its follow-up,
/// and one the provider rejects.
fn recorded_calls() -> Vec<ChatRequest> {
    let mut first = request(vec![user("Summarize README.md")]);
    first.tools = vec![read_file_tool()];
    vec![
        first,
        tool_history("call_1", ""),
        request(vec![user("a request the provider rejects")]),
    ]
}

async fn record(recording: &Path) -> Vec<Result<ChatResponse, ModelError>> {
    let server = TestServer::start(vec![
        Canned::json(
            200,
            json!({
                "model": "qwen2.5-coder:7b",
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [{
                            "id": "call_1",
                            "type": "function",
                            "function": { "name": "read_file", "arguments": "{\"path\":\"README.md\"}" },
                        }],
                    },
                    "finish_reason": "tool_calls",
                }],
                "usage": { "prompt_tokens": 40, "completion_tokens": 9 },
            }),
        ),
        openai_text("It is a sandbox for subagents."),
        openai_error(400, "context length exceeded"),
    ])
    .await;
    let setup = setup_recording(
        &openai_model("fast", &server.url(), ""),
        &[],
        Some(recording.to_owned()),
    );
    let mut results = Vec::new();
    for call in recorded_calls() {
        results.push(complete(&setup, "fast", call).await);
    }
    results
}

fn replay_config(recording: &Path) -> String {
    format!(
        "default_model = \"fast\"\n[models.fast]\nprovider = \"replay\"\nfile = {:?}\n",
        recording.display().to_string()
    )
}

#[tokio::test]
async fn record_then_replay_gives_the_same_answers_offline() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("session.jsonl");
    let live = record(&recording).await;
    assert!(live[0].is_ok() && live[1].is_ok(), "{live:?}");
    assert!(
        matches!(&live[2], Err(ModelError::BadRequest(_))),
        "{live:?}"
    );
    let lines = std::fs::read_to_string(&recording).unwrap();
    assert_eq!(lines.lines().count(), 3, "one line per exchange:\n{lines}");
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["model"], "fast");

    // The server is gone: only the recording answers now.
    let setup = setup(&replay_config(&recording), &[]);
    let mut replayed = Vec::new();
    for call in recorded_calls() {
        replayed.push(complete(&setup, "fast", call).await);
    }

    assert_eq!(replayed, live);
}

#[tokio::test]
async fn replaying_serves_every_model_from_the_recording_without_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("session.jsonl");
    let live = record(&recording).await;

    let models = Models::replaying(HostConfig::default(), &recording).unwrap();
    models.check("fast").unwrap();
    let mut replayed = Vec::new();
    for call in recorded_calls() {
        replayed.push(models.complete("fast".into(), call).await);
    }

    assert_eq!(replayed, live);
    assert_eq!(
        models.check("smart").unwrap_err(),
        format!(
            "the recording {} holds no exchange of model `smart` (it holds fast); replay the run with the model it was recorded with",
            recording.display()
        )
    );
}

#[tokio::test]
async fn a_replay_that_differs_names_the_exchange_and_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("session.jsonl");
    record(&recording).await;
    let setup = setup(&replay_config(&recording), &[]);
    let calls = recorded_calls();
    complete(&setup, "fast", calls[0].clone()).await.unwrap();

    let mut changed = calls[1].clone();
    changed.messages[1].content = "Summarize README.txt".into();
    let err = complete(&setup, "fast", changed).await.unwrap_err();

    let ModelError::BadRequest(message) = &err else {
        panic!("expected bad-request, got {err:?}");
    };
    let expected = format!(
        "replay of {}: this call does not match the recording: exchange 2 of 3 differs: message 1 differs: the user content was \"Summarize README.md\", now \"Summarize README.txt\"; record the run again with `--record` if the change is intended",
        recording.display()
    );
    assert_eq!(message, &expected);
}

#[tokio::test]
async fn a_replay_past_the_end_of_the_recording_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("session.jsonl");
    record(&recording).await;
    let setup = setup(&replay_config(&recording), &[]);
    for call in recorded_calls() {
        let _ = complete(&setup, "fast", call).await;
    }

    let err = complete(&setup, "fast", request(vec![user("one more")]))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, ModelError::BadRequest(m) if m.contains("more model calls than were recorded: all 3 exchanges were served")),
        "{err:?}"
    );
}

fn config_error(text: &str) -> String {
    let err = HostConfig::parse(Path::new("/home/u/.config/subagent/config.toml"), text)
        .expect_err("the config should be refused");
    err.to_string()
}

#[test]
fn config_errors_name_the_file_line_and_fix() {
    let cases = [
        (
            "[models.fast]\nprovider = \"opnai\"\nmodel = \"gpt-4o-mini\"\n",
            "unknown provider `opnai`
  --> /home/u/.config/subagent/config.toml:2:12
  |
2 | provider = \"opnai\"
  |            ^
  = help: did you mean `openai`? providers: openai (any OpenAI-compatible server: OpenAI, vLLM, Ollama, LiteLLM), anthropic, replay",
        ),
        (
            "[models.fast]\nprovider = \"openai\"\nmodel = \"m\"\nbase_ur = \"http://localhost:8000/v1\"\n",
            "unknown field `base_ur`
  --> /home/u/.config/subagent/config.toml:4:1
  |
4 | base_ur = \"http://localhost:8000/v1\"
  | ^
  = help: did you mean `base_url`?",
        ),
        (
            "default-model = \"fast\"\n",
            "unknown field `default-model`
  --> /home/u/.config/subagent/config.toml:1:1
  |
1 | default-model = \"fast\"
  | ^
  = help: did you mean `default_model`?",
        ),
        (
            "default_model = \"fsat\"\n[models.fast]\nprovider = \"openai\"\nmodel = \"m\"\n[models.smart]\nprovider = \"anthropic\"\nmodel = \"c\"\n",
            "`default_model`: unknown model `fsat`
  --> /home/u/.config/subagent/config.toml:1:17
  |
1 | default_model = \"fsat\"
  |                 ^
  = help: did you mean `fast`? the aliases in /home/u/.config/subagent/config.toml are `fast`, `smart`; or write `provider/model`, e.g. `openai/gpt-4o-mini` or `anthropic/claude-sonnet-4-5`",
        ),
        (
            "[models.rec]\nprovider = \"replay\"\n",
            "model `rec` has provider `replay` but no `file`
  --> /home/u/.config/subagent/config.toml:1:9
  |
1 | [models.rec]
  |         ^
  = help: add `file = \"session.jsonl\"`: a file written by `subagent run --record`",
        ),
        (
            "[models.fast]\nprovider = \"openai\"\nmodel = \"m\"\ntimeout = \"60\"\n",
            "invalid `timeout`: `60` has no unit: write \"60s\" for seconds (units: ms, s, m, h)
  --> /home/u/.config/subagent/config.toml:4:11
  |
4 | timeout = \"60\"
  |           ^
  = help: write a duration such as \"60s\" or \"5m\"",
        ),
        (
            "[models.fast]\nprovider = \"openai\"\nmodel = \"m\"\napi_key_env = \"sk-proj-abc123\"\n",
            "`api_key_env` of model `fast` is not an environment variable name
  --> /home/u/.config/subagent/config.toml:4:15
  = help: `api_key_env` is the NAME of the environment variable holding the key, such as \"OPENAI_API_KEY\"; never put the key itself in the config",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(config_error(text), expected, "for config:\n{text}");
    }
}

#[test]
fn an_unreadable_config_names_the_file() {
    let missing = Path::new("/nonexistent/subagent/config.toml");
    let err = subagent_host::model::config::load(Some(missing)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot read host config:")
            && text.contains("--> /nonexistent/subagent/config.toml"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unknown_alias_lists_the_known_ones_at_launch_and_at_call_time() {
    let setup = setup(
        "[models.fast]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         [models.smart]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"n\"\n",
        &[],
    );
    let config_path = setup.dir.path().join("config.toml");

    let refused = setup.models.check("fsat").unwrap_err();
    assert_eq!(
        refused,
        format!(
            "unknown model `fsat`\n  = help: did you mean `fast`? the aliases in {} are `fast`, `smart`; or write `provider/model`, e.g. `openai/gpt-4o-mini` or `anthropic/claude-sonnet-4-5`",
            config_path.display()
        )
    );
    let err = complete(&setup, "fsat", request(vec![user("hi")]))
        .await
        .unwrap_err();
    assert_eq!(err, ModelError::Unavailable(refused));
}

#[test]
fn the_direct_form_uses_the_hosted_api_defaults() {
    let config = HostConfig::default();
    let openai = config.resolve("openai/gpt-4o-mini").unwrap();
    assert_eq!(
        (
            openai.provider,
            openai.base_url.as_str(),
            openai.model.as_str()
        ),
        (
            ProviderKind::OpenAi,
            "https://api.openai.com/v1",
            "gpt-4o-mini"
        )
    );
    assert_eq!(openai.api_key, KeySource::Env("OPENAI_API_KEY".into()));
    let claude = config.resolve("anthropic/claude-sonnet-4-5").unwrap();
    assert_eq!(claude.base_url, "https://api.anthropic.com");
    assert_eq!(claude.api_key, KeySource::Env("ANTHROPIC_API_KEY".into()));
    // Model ids may hold `/` themselves.
    let nested = config.resolve("openai/meta-llama/Llama-3-8B").unwrap();
    assert_eq!(nested.model, "meta-llama/Llama-3-8B");

    let err = config.resolve("opnai/gpt-4o-mini").unwrap_err();
    assert_eq!(
        err.message,
        "unknown provider `opnai` in model `opnai/gpt-4o-mini`"
    );
    assert!(
        err.help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `openai/gpt-4o-mini`?"),
        "{err}"
    );
}

// Model names as real definitions write them: families (`sonnet`), full
// provider ids (`claude-3-5-haiku-latest`, `gpt-4o`), and names this host
// cannot resolve, which run on the default only with a warning.

/// A host config: `local`, an OpenAI-compatible server at `url`/v1, and
/// `claude`, an Anthropic provider at `url` whose model is a Sonnet; then
/// `extra`. `default_model` is `local` unless `default` is false.
fn mixed_config(url: &str, default: bool, extra: &str) -> String {
    format!(
        "{}[models.local]\nprovider = \"openai\"\nbase_url = \"{url}/v1\"\nmodel = \"scripted-local\"\nmax_retries = 0\n\n\
         [models.claude]\nprovider = \"anthropic\"\nbase_url = \"{url}\"\nmodel = \"claude-sonnet-4-5\"\napi_key_env = \"SUBAGENT_TEST_ANTHROPIC_KEY\"\nmax_retries = 0\n\n{extra}",
        if default {
            "default_model = \"local\"\n\n"
        } else {
            ""
        }
    )
}

fn host_config(text: &str) -> HostConfig {
    HostConfig::parse(Path::new("/home/u/.config/subagent/config.toml"), text)
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
}

fn chosen(requested: &str, model: &str, warning: Option<&str>) -> ModelChoice {
    ModelChoice {
        requested: Some(requested.into()),
        model: model.into(),
        warning: warning.map(str::to_owned),
    }
}

#[test]
fn family_names_resolve_to_a_configured_model_of_the_family() {
    let url = "http://127.0.0.1:9";
    let config = host_config(&mixed_config(url, true, ""));

    // `sonnet`: the alias whose model is a Sonnet.
    let sonnet = config.resolve("sonnet").unwrap();
    assert_eq!(
        (sonnet.name.as_str(), sonnet.provider, sonnet.model.as_str()),
        ("claude", ProviderKind::Anthropic, "claude-sonnet-4-5")
    );
    assert_eq!(
        config.choose("sonnet").unwrap(),
        chosen("sonnet", "claude", None)
    );
    // No alias of the family: its current id, on the one Anthropic provider.
    for (family, id) in [("haiku", "claude-haiku-4-5"), ("opus", "claude-opus-4-5")] {
        let spec = config.resolve(family).unwrap();
        assert_eq!(
            (
                spec.name.as_str(),
                spec.model.as_str(),
                spec.base_url.as_str()
            ),
            (id, id, url),
            "{family}"
        );
        assert_eq!(
            spec.api_key,
            KeySource::Env("SUBAGENT_TEST_ANTHROPIC_KEY".into())
        );
        // The effective model resolves to the same model again.
        assert_eq!(config.resolve(&spec.name).unwrap(), spec);
    }

    // `[families]` maps a name, over the built-in family.
    let mapped = host_config(&mixed_config(
        url,
        true,
        "[families]\nopus = \"local\"\nfast = \"claude\"\n",
    ));
    assert_eq!(mapped.resolve("opus").unwrap().name, "local");
    assert_eq!(
        mapped.choose("fast").unwrap(),
        chosen("fast", "claude", None)
    );
    // An alias of that name wins over the built-in family.
    let aliased = host_config(&mixed_config(
        url,
        true,
        "[models.sonnet]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
    ));
    assert_eq!(
        aliased.resolve("sonnet").unwrap().provider,
        ProviderKind::OpenAi
    );
}

#[test]
fn full_model_ids_go_to_the_one_provider_of_their_vendor() {
    let config = host_config(&mixed_config(
        "http://127.0.0.1:9",
        true,
        "[models.gpt]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:8/v1\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"SUBAGENT_TEST_OPENAI_KEY\"\n",
    ));
    for id in ["claude-sonnet-4-20250514", "claude-3-5-haiku-latest"] {
        let spec = config.resolve(id).unwrap();
        assert_eq!(
            (
                spec.name.as_str(),
                spec.provider,
                spec.base_url.as_str(),
                spec.model.as_str()
            ),
            (id, ProviderKind::Anthropic, "http://127.0.0.1:9", id)
        );
        assert_eq!(config.choose(id).unwrap(), chosen(id, id, None));
    }
    // An OpenAI-compatible provider one of whose aliases names an OpenAI model.
    for id in ["gpt-4o", "o3-mini", "o1"] {
        let spec = config.resolve(id).unwrap();
        assert_eq!(
            (spec.provider, spec.base_url.as_str(), spec.model.as_str()),
            (ProviderKind::OpenAi, "http://127.0.0.1:8/v1", id),
            "{id}"
        );
        assert_eq!(
            spec.api_key,
            KeySource::Env("SUBAGENT_TEST_OPENAI_KEY".into())
        );
    }

    // No provider of the vendor: the default stands in, with a warning.
    let err = config.resolve("gemini-2.5-pro").unwrap_err();
    assert_eq!(
        err.message,
        "model `gemini-2.5-pro` is a Google Gemini model id, and no Google Gemini provider is configured"
    );
    assert!(err.fallback);
    let choice = config.choose("gemini-2.5-pro").unwrap();
    assert_eq!(choice.model, "local");
    let warning = choice.warning.unwrap();
    assert!(
        warning.starts_with("model `gemini-2.5-pro` is a Google Gemini model id, and no Google Gemini provider is configured; it runs on the default model `local` instead (to choose its model: add an alias for it to /home/u/.config/subagent/config.toml"),
        "{warning}"
    );
    // Open weights served locally are no vendor's hosted model.
    let local = config.choose("gpt-oss:20b").unwrap();
    assert_eq!(local.model, "local");
    assert!(
        local
            .warning
            .unwrap()
            .starts_with("unknown model `gpt-oss:20b`; it runs on the default model `local`"),
    );

    // Two Anthropic providers: which one is not clear.
    let two = host_config(&mixed_config(
        "http://127.0.0.1:9",
        true,
        "[models.other]\nprovider = \"anthropic\"\nbase_url = \"http://127.0.0.1:7\"\nmodel = \"claude-opus-4-1\"\n",
    ));
    let err = two.resolve("claude-3-5-haiku-latest").unwrap_err();
    assert_eq!(
        err.message,
        "model `claude-3-5-haiku-latest` is an Anthropic model id, and 2 Anthropic providers are configured (`claude`, `other`): which one to use is not clear"
    );
    assert!(err.fallback);
}

#[test]
fn a_typo_of_an_alias_is_refused_even_with_a_default() {
    let config = host_config(&mixed_config("http://127.0.0.1:9", true, ""));
    let err = config.choose("lcoal").unwrap_err();
    assert_eq!(err.message, "unknown model `lcoal`");
    assert!(!err.fallback);
    assert!(
        err.help.unwrap().starts_with("did you mean `local`?"),
        "a typo is not run on something else"
    );
    let err = config.choose("opnai/gpt-4o").unwrap_err();
    assert!(!err.fallback, "{err}");
}

#[test]
fn families_in_the_config_are_checked_where_they_are_written() {
    let cases = [
        (
            "[families]\nsonnet = \"nope\"\n",
            "`[families] sonnet`: unknown model `nope`\n  --> /home/u/.config/subagent/config.toml:2:10",
        ),
        (
            "[models.sonnet]\nprovider = \"openai\"\nmodel = \"m\"\n[families]\nsonnet = \"openai/gpt-4o\"\n",
            "`sonnet` is both an alias (`[models.sonnet]`) and in `[families]`\n  --> /home/u/.config/subagent/config.toml:5:1",
        ),
    ];
    for (text, expected) in cases {
        let err = config_error(text);
        assert!(
            err.starts_with(expected),
            "for config:\n{text}\ngot:\n{err}"
        );
    }
}

/// The prompt-agent component, which runs prompt-only subagents.
fn prompt_agent_component() -> PathBuf {
    subagent_host::Bundle::open(&crate::helpers::plugin("prompt-agent"))
        .unwrap()
        .manifest
        .component
}

/// A prompt-only bundle `name` in `dir` calling the model `model` (none:
/// the host default).
fn model_bundle(dir: &Path, name: &str, model: Option<&str>) -> PathBuf {
    let bundle = dir.join(name);
    std::fs::create_dir_all(&bundle).unwrap();
    let model = model.map_or(String::new(), |m| format!("model = \"{m}\"\n"));
    std::fs::write(
        bundle.join("subagent.toml"),
        format!(
            "name = \"{name}\"\ndescription = \"Looks around.\"\ncomponent = {:?}\nprompt = \"You look around.\"\ntools = [\"model\"]\n{model}",
            prompt_agent_component().display().to_string()
        ),
    )
    .unwrap();
    bundle
}

/// An OpenAI answer that calls `finish`.
fn openai_finish(summary: &str) -> Canned {
    Canned::openai_chat(
        "scripted-local",
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_f", "type": "function", "function": {"name": "finish", "arguments": json!({"summary": summary}).to_string()}}
        ]}),
        "tool_calls",
        (20, 5),
    )
}

/// An Anthropic answer that calls `finish`.
fn anthropic_finish(summary: &str) -> Canned {
    Canned::json(
        200,
        json!({
            "id": "msg_f", "type": "message", "role": "assistant", "model": "claude-scripted",
            "content": [{"type": "tool_use", "id": "toolu_f", "name": "finish", "input": {"summary": summary}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 20, "output_tokens": 5},
        }),
    )
}

/// `subagent ARGS` with the Anthropic test key in its environment.
fn cli(args: &[&str]) -> std::process::Output {
    crate::helpers::subagent_command(args)
        .env("SUBAGENT_TEST_ANTHROPIC_KEY", "sk-ant-test")
        .output()
        .unwrap()
}

/// `run BUNDLE "look around" --json` in a fresh workspace with `config`,
/// and `extra` arguments: the exit code, the report and stderr.
/// `subagent --config CONFIG run BUNDLE "look around"` on an empty workspace,
/// with `extra` arguments.
fn run_bundle(config: &Path, bundle: &Path, extra: &[&str]) -> std::process::Output {
    use crate::helpers::path;
    let ws = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--config",
        path(config),
        "run",
        path(bundle),
        "look around",
        "--workspace",
        path(ws.path()),
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

fn run_json(config: &Path, bundle: &Path, extra: &[&str]) -> (i32, Value, String) {
    use crate::helpers::{code, stderr, stdout};
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = run_bundle(config, bundle, &args);
    let report = serde_json::from_str(&stdout(&out)).unwrap_or_else(|_| {
        panic!(
            "exit {}: no JSON report:\n{}\n{}",
            code(&out),
            stdout(&out),
            stderr(&out)
        )
    });
    (code(&out), report, stderr(&out))
}

#[test]
fn definitions_naming_a_family_or_a_full_id_run_on_the_provider_they_name() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![
        anthropic_finish("Looked, as Sonnet."),
        anthropic_finish("Looked, as Haiku 3.5."),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, mixed_config(&server.url(), true, "")).unwrap();

    let sonnet = model_bundle(dir.path(), "sonnet-agent", Some("sonnet"));
    let (code, report, stderr) = run_json(&config, &sonnet, &[]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["summary"], "Looked, as Sonnet.");
    assert_eq!(report["model"], "claude");
    assert_eq!(report["requested_model"], "sonnet");
    assert_eq!(report["model_warning"], Value::Null);
    assert!(!stderr.contains("warning"), "{stderr}");

    let haiku = model_bundle(dir.path(), "id-agent", Some("claude-3-5-haiku-latest"));
    let (code, report, stderr) = run_json(&config, &haiku, &[]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["summary"], "Looked, as Haiku 3.5.");
    assert_eq!(report["model"], "claude-3-5-haiku-latest");
    assert_eq!(report["requested_model"], "claude-3-5-haiku-latest");

    // Both went to the Anthropic provider, each with its model id.
    let received = server.received();
    assert_eq!(received.len(), 2);
    for (sent, model) in received
        .iter()
        .zip(["claude-sonnet-4-5", "claude-3-5-haiku-latest"])
    {
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
        assert_eq!(sent.json()["model"], model);
    }
}

#[test]
fn a_name_this_host_cannot_resolve_runs_on_the_default_with_a_warning_everywhere() {
    use crate::helpers::{code, path, stderr, stdout};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![
        openai_finish("Looked, locally."),
        openai_finish("Looked again."),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // Only a local server: no Anthropic provider for `sonnet`.
    std::fs::write(
        &config,
        format!(
            "default_model = \"local\"\n[models.local]\nprovider = \"openai\"\nbase_url = \"{}/v1\"\nmodel = \"scripted-local\"\nmax_retries = 0\n",
            server.url()
        ),
    )
    .unwrap();
    let registry = dir.path().join("agents");
    let bundle = model_bundle(&registry, "sonnet-agent", Some("sonnet"));
    let warning = "model `sonnet` is the Anthropic Sonnet family, and no Anthropic provider is configured; it runs on the default model `local` instead (to choose its model: add an alias whose `model` is a Sonnet model to";

    // validate: the model line says so, and a warning.
    let out = cli(&["--config", path(&config), "validate", path(&bundle)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "  model        local (the host config's default_model, in place of `sonnet`)\n"
        ) && text.contains(&format!("  warning      {warning}")),
        "{text}"
    );
    let out = cli(&[
        "--config",
        path(&config),
        "validate",
        path(&bundle),
        "--json",
    ]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (
            &report["model"],
            &report["requested_model"],
            &report["model_problem"]
        ),
        (&json!("local"), &json!("sonnet"), &Value::Null)
    );
    assert!(
        report["model_warning"]
            .as_str()
            .unwrap()
            .starts_with(warning),
        "{report}"
    );

    // list: a warning under the entry, and the fields in JSON.
    let out = cli(&[
        "--config",
        path(&config),
        "--agents",
        path(&registry),
        "list",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("warning: {warning}")),
        "{}",
        stdout(&out)
    );
    let out = cli(&[
        "--config",
        path(&config),
        "--agents",
        path(&registry),
        "list",
        "--json",
    ]);
    let row: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(
        (&row["name"], &row["model"], &row["requested_model"]),
        (&json!("sonnet-agent"), &json!("local"), &json!("sonnet"))
    );
    assert!(
        row["model_warning"].as_str().unwrap().starts_with(warning),
        "{row}"
    );

    // run --json: a line on stderr, both models and the warning in the result.
    let (status, report, err) = run_json(&config, &bundle, &[]);
    assert_eq!(status, 0, "{report}\n{err}");
    assert!(
        err.contains(&format!("warning: subagent `sonnet-agent`: {warning}")),
        "{err}"
    );
    assert_eq!(report["summary"], "Looked, locally.");
    assert_eq!(report["model"], "local");
    assert_eq!(report["requested_model"], "sonnet");
    assert!(
        report["model_warning"]
            .as_str()
            .unwrap()
            .starts_with(warning),
        "{report}"
    );
    assert_eq!(server.received()[0].json()["model"], "scripted-local");

    // show, as text and as JSON, from the store.
    let id = report["task_id"].as_str().unwrap();
    let out = cli(&["show", id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("model        local (requested `sonnet`)\n")
            && text.contains(&format!("warning      {warning}")),
        "{text}"
    );
    let out = cli(&["show", id, "--json"]);
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["task"]["result"]["requested_model"], "sonnet");
    assert_eq!(shown["task"]["result"]["model"], "local");

    // run, as text: both models and the warning.
    let out = run_bundle(&config, &bundle, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("model: local (requested `sonnet`)\n")
            && text.contains(&format!("warning: {warning}")),
        "{text}"
    );
    assert!(stderr(&out).contains("warning: subagent `sonnet-agent`: model `sonnet`"));
}

#[test]
fn without_a_default_a_name_that_does_not_resolve_is_refused() {
    use crate::helpers::{code, path, stderr, stdout};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[models.local]\nprovider = \"openai\"\nbase_url = \"{}/v1\"\nmodel = \"scripted-local\"\n",
            server.url()
        ),
    )
    .unwrap();
    let bundle = model_bundle(dir.path(), "sonnet-agent", Some("sonnet"));
    let refusal =
        "model `sonnet` is the Anthropic Sonnet family, and no Anthropic provider is configured";

    let out = run_bundle(&config, &bundle, &[]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "subagent `sonnet-agent` uses model `sonnet`: {refusal}"
        )) && err.contains("or set `default_model` in the host config"),
        "{err}"
    );
    assert!(server.received().is_empty(), "nothing ran");

    let out = cli(&["--config", path(&config), "validate", path(&bundle)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("  warning      model `sonnet`: {refusal}"))
            && text.contains("a run here would be refused"),
        "{text}"
    );
}

#[test]
fn a_replay_needs_none_of_the_config_it_was_recorded_with() {
    use crate::helpers::path;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![
        anthropic_finish("Looked, as Sonnet."),
        openai_finish("Looked, on the default."),
        openai_finish("Looked, in place of Gemini."),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, mixed_config(&server.url(), true, "")).unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let cases = [
        // A family, through an alias of the config.
        model_bundle(dir.path(), "sonnet-agent", Some("sonnet")),
        // No model: the config's default.
        model_bundle(dir.path(), "default-agent", None),
        // A name the config cannot resolve: the default, with a warning.
        model_bundle(dir.path(), "gemini-agent", Some("gemini-2.5-pro")),
    ];
    let mut recorded = Vec::new();
    for bundle in &cases {
        let recording = dir.path().join(format!(
            "{}.jsonl",
            bundle.file_name().unwrap().to_str().unwrap()
        ));
        let (code, live, stderr) = run_json(&config, bundle, &["--record", path(&recording)]);
        assert_eq!(code, 0, "{live}\n{stderr}");
        recorded.push((bundle, recording, live));
    }
    drop(server);
    drop(runtime);

    // The provider is gone, and so is the config: an empty one, or none.
    for (bundle, recording, live) in &recorded {
        for replay_config in [Some(empty.as_path()), None] {
            let mut args = vec!["run", path(bundle), "look around", "--json"];
            if let Some(c) = replay_config {
                args.splice(0..0, ["--config", path(c)]);
            }
            args.extend(["--replay", path(recording)]);
            let ws = tempfile::tempdir().unwrap();
            args.extend(["--workspace", path(ws.path())]);
            let out = cli(&args);
            let report: Value =
                serde_json::from_str(&crate::helpers::stdout(&out)).unwrap_or_else(|_| {
                    panic!(
                        "{}: replay with config {replay_config:?} failed:\n{}",
                        bundle.display(),
                        crate::helpers::stderr(&out)
                    )
                });
            assert_eq!(crate::helpers::code(&out), 0, "{report}");
            for field in [
                "status",
                "summary",
                "model",
                "requested_model",
                "model_warning",
            ] {
                assert_eq!(report[field], live[field], "{field} of {report}");
            }
            assert_eq!(
                report["usage"]["input_tokens"],
                live["usage"]["input_tokens"]
            );
        }
    }
    assert_eq!(recorded[0].2["model"], "claude");
    assert_eq!(recorded[1].2["model"], "local");
    assert_eq!(recorded[2].2["model"], "local");
    assert!(recorded[2].2["model_warning"].is_string());
}
