//! Write subagents for `subagent-host`.
//!
//! A subagent is a WebAssembly component that exports `run(task)` from the
//! `subagent:plugin@0.1.0` world. This crate holds the generated bindings and a
//! small API around the host interface:
//!
//! ```ignore
//! use subagent_sdk::{Outcome, RunError, Subagent, Task};
//!
//! struct Hello;
//!
//! impl Subagent for Hello {
//!     fn run(task: Task) -> Result<Outcome, RunError> {
//!         subagent_sdk::log::info(&format!("greeting for task {}", task.id));
//!         Ok(Outcome::summary(format!("Hello, {}!", task.prompt)))
//!     }
//! }
//!
//! subagent_sdk::export!(Hello);
//! ```
//!
//! The workspace is mounted at `/workspace` (see [`WORKSPACE`]) and is
//! read-only except for the directories listed in `Task::writable_dirs`; use
//! `std::fs` as usual. There are no sockets, environment variables or
//! arguments.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "subagent",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "subagent_sdk::bindings",
    });
}

pub mod walk;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use bindings::Guest as Subagent;
pub use bindings::subagent::plugin::types::{
    LogLevel, Outcome, ProgressEvent as Progress, RunError, Task, ToolCall,
};

use bindings::subagent::plugin::host;

/// Where the host mounts the workspace inside the guest.
pub const WORKSPACE: &str = "/workspace";

/// Export `$ty` (which implements [`Subagent`]) as this component's `run`.
#[macro_export]
macro_rules! export {
    ($ty:ident) => {
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}

impl Outcome {
    /// An outcome with a summary and no data.
    pub fn summary(summary: impl Into<String>) -> Self {
        Outcome {
            summary: summary.into(),
            data: None,
        }
    }

    /// Attach machine-readable data (serialized as JSON).
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data.to_string());
        self
    }
}

impl RunError {
    /// Shorthand for `RunError::Failed`.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        RunError::Failed(message.to_string())
    }

    /// Shorthand for `RunError::InvalidInput`.
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        RunError::InvalidInput(message.to_string())
    }
}

impl From<std::io::Error> for RunError {
    fn from(err: std::io::Error) -> Self {
        RunError::Failed(err.to_string())
    }
}

/// Log lines, recorded in the task's event stream.
pub mod log {
    use super::{LogLevel, host};

    pub fn debug(message: &str) {
        host::log(LogLevel::Debug, message);
    }
    pub fn info(message: &str) {
        host::log(LogLevel::Info, message);
    }
    pub fn warn(message: &str) {
        host::log(LogLevel::Warn, message);
    }
    pub fn error(message: &str) {
        host::log(LogLevel::Error, message);
    }
}

/// Progress events, shown live by the CLI.
pub mod progress {
    use super::{Progress, ToolCall, host};

    /// A free-form note, such as "scanned 120 files".
    pub fn note(text: impl Into<String>) {
        host::progress(&Progress::Note(text.into()));
    }

    /// An agent loop starts round `n`.
    pub fn round(n: u32) {
        host::progress(&Progress::Round(n));
    }

    /// The subagent calls a tool; `args` is a JSON document.
    pub fn tool(name: impl Into<String>, args: serde_json::Value) {
        host::progress(&Progress::Tool(ToolCall {
            name: name.into(),
            args: args.to_string(),
        }));
    }
}

/// Follow-up messages sent to this task while it runs.
pub mod messages {
    use super::host;
    use std::time::Duration;

    /// The next waiting message, without blocking.
    pub fn next() -> Option<String> {
        host::next_message()
    }

    /// Wait up to `timeout` for a message; returns `None` on timeout or as
    /// soon as the task is cancelled.
    pub fn wait(timeout: Duration) -> Option<String> {
        host::wait_message(timeout.as_millis().min(u64::MAX as u128) as u64)
    }
}

/// Child subagents, for subagents whose manifest grants `tools = ["subagents"]`.
///
/// ```ignore
/// let a = subagent_sdk::children::launch("deep-search", "TODO")?;
/// let b = subagent_sdk::children::launch("deep-search", "FIXME")?;
/// let done = subagent_sdk::children::wait(&[a, b], None)?;
/// ```
pub mod children {
    use std::time::Duration;

    use super::bindings::subagent::plugin::subagents as wit;
    pub use super::bindings::subagent::plugin::subagents::{
        AwaitResult, ChildResult, LaunchRequest, SubagentError, TaskStatus,
    };

    impl TaskStatus {
        /// The host's name for the status: `completed`, `timed_out`, …
        pub fn as_str(self) -> &'static str {
            match self {
                TaskStatus::Queued => "queued",
                TaskStatus::Running => "running",
                TaskStatus::Completed => "completed",
                TaskStatus::Failed => "failed",
                TaskStatus::Cancelled => "cancelled",
                TaskStatus::TimedOut => "timed_out",
                TaskStatus::Interrupted => "interrupted",
            }
        }
    }

    impl LaunchRequest {
        /// A request for `subagent` with `prompt` and no other options.
        pub fn new(subagent: impl Into<String>, prompt: impl Into<String>) -> Self {
            LaunchRequest {
                subagent: subagent.into(),
                prompt: prompt.into(),
                description: None,
                write_dirs: None,
                readonly: false,
                timeout_ms: None,
                model: None,
            }
        }
    }

    impl SubagentError {
        /// `kind: message`, for people.
        pub fn describe(&self) -> String {
            let (kind, message) = match self {
                SubagentError::Denied(m) => ("denied", m),
                SubagentError::NotFound(m) => ("not found", m),
                SubagentError::NotRunning(m) => ("not running", m),
                SubagentError::DepthLimit(m) => ("depth limit", m),
                SubagentError::InvalidRequest(m) => ("invalid request", m),
                SubagentError::Unavailable(m) => ("unavailable", m),
            };
            format!("{kind}: {message}")
        }
    }

    impl From<SubagentError> for super::RunError {
        fn from(err: SubagentError) -> Self {
            super::RunError::Failed(err.describe())
        }
    }

    /// Launch `subagent` on `prompt` in the background; returns its task id.
    pub fn launch(subagent: &str, prompt: &str) -> Result<String, SubagentError> {
        wit::launch(&LaunchRequest::new(subagent, prompt))
    }

    /// Launch with every option.
    pub fn launch_with(request: &LaunchRequest) -> Result<String, SubagentError> {
        wit::launch(request)
    }

    /// Wait until all `ids` have finished, or `timeout` passes.
    pub fn wait(ids: &[String], timeout: Option<Duration>) -> Result<AwaitResult, SubagentError> {
        wit::await_tasks(
            ids,
            timeout.map(|t| t.as_millis().min(u64::MAX as u128) as u64),
        )
    }

    /// Cancel a child (and its descendants).
    pub fn cancel(id: &str) -> Result<(), SubagentError> {
        wit::cancel(id)
    }

    /// Send a follow-up message to a child.
    pub fn send(id: &str, text: &str) -> Result<(), SubagentError> {
        wit::send(id, text)
    }
}

/// Model calls, for subagents whose manifest grants `tools = ["model"]`.
///
/// The host brokers every call: the guest names no model, key or URL; the
/// host uses the task's effective model and counts its tokens.
///
/// ```ignore
/// use subagent_sdk::model::{self, ChatRequest, Message};
///
/// let request = ChatRequest::new(
///     vec![Message::system("Answer in one word."), Message::user("Capital of France?")],
///     Vec::new(),
/// );
/// let answer = model::complete(&request)?;
/// ```
pub mod model {
    use super::bindings::subagent::plugin::model as wit;
    pub use super::bindings::subagent::plugin::model::{
        ChatRequest, ChatResponse, Message, ModelError, RateLimit, Role, StopReason, ToolCall,
        ToolDefinition, Usage,
    };

    impl Message {
        /// A system message.
        pub fn system(text: impl Into<String>) -> Self {
            Message::plain(Role::System, text.into())
        }

        /// A user message.
        pub fn user(text: impl Into<String>) -> Self {
            Message::plain(Role::User, text.into())
        }

        /// An assistant message: its text and the tools it called (echo a
        /// response's `content` and `tool_calls` back into the history).
        pub fn assistant(text: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
            Message {
                role: Role::Assistant,
                content: text.into(),
                tool_calls,
                tool_call_id: None,
            }
        }

        /// The result of the tool call with id `call_id`.
        pub fn tool_result(call_id: impl Into<String>, text: impl Into<String>) -> Self {
            Message {
                role: Role::Tool,
                content: text.into(),
                tool_calls: Vec::new(),
                tool_call_id: Some(call_id.into()),
            }
        }

        fn plain(role: Role, content: String) -> Self {
            Message {
                role,
                content,
                tool_calls: Vec::new(),
                tool_call_id: None,
            }
        }
    }

    impl ToolDefinition {
        /// A tool whose arguments object is described by the JSON Schema `schema`.
        pub fn new(
            name: impl Into<String>,
            description: impl Into<String>,
            schema: serde_json::Value,
        ) -> Self {
            ToolDefinition {
                name: name.into(),
                description: description.into(),
                parameters: schema.to_string(),
            }
        }
    }

    impl ToolCall {
        /// The arguments, parsed.
        ///
        /// # Errors
        ///
        /// When the model sent arguments that are not JSON.
        pub fn args(&self) -> Result<serde_json::Value, serde_json::Error> {
            if self.arguments.trim().is_empty() {
                return Ok(serde_json::Value::Object(Default::default()));
            }
            serde_json::from_str(&self.arguments)
        }
    }

    impl ChatRequest {
        /// A request with `messages` and `tools`, and the host's defaults for
        /// `max_tokens` and `temperature`.
        pub fn new(messages: Vec<Message>, tools: Vec<ToolDefinition>) -> Self {
            ChatRequest {
                messages,
                tools,
                max_tokens: None,
                temperature: None,
            }
        }
    }

    impl ModelError {
        /// `kind: message`, for people.
        pub fn describe(&self) -> String {
            let (kind, message) = match self {
                ModelError::Auth(m) => ("auth", m),
                ModelError::RateLimited(limit) => {
                    return match limit.retry_after_ms {
                        Some(ms) => {
                            format!("rate limited: {} (retry after {ms} ms)", limit.message)
                        }
                        None => format!("rate limited: {}", limit.message),
                    };
                }
                ModelError::Timeout(m) => ("timeout", m),
                ModelError::BadRequest(m) => ("bad request", m),
                ModelError::Unavailable(m) => ("unavailable", m),
                ModelError::Denied(m) => ("denied", m),
                ModelError::BudgetExceeded(m) => ("budget exceeded", m),
            };
            format!("{kind}: {message}")
        }
    }

    impl From<ModelError> for super::RunError {
        fn from(err: ModelError) -> Self {
            super::RunError::Failed(err.describe())
        }
    }

    /// One chat completion with the task's effective model.
    ///
    /// # Errors
    ///
    /// [`ModelError`]: `denied` without the `model` grant, `budget-exceeded`
    /// once `limits.tokens` is used up, and the provider's failures.
    pub fn complete(request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        wit::complete(request)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn messages_carry_their_role_and_ids() {
            let call = ToolCall {
                id: "c1".into(),
                name: "finish".into(),
                arguments: r#"{"summary": "done"}"#.into(),
            };
            let assistant = Message::assistant("", vec![call.clone()]);
            assert!(matches!(assistant.role, Role::Assistant));
            assert_eq!(assistant.tool_calls[0].id, "c1");
            let result = Message::tool_result("c1", "ok");
            assert!(matches!(result.role, Role::Tool));
            assert_eq!(result.tool_call_id.as_deref(), Some("c1"));
            assert!(matches!(Message::system("s").role, Role::System));
            assert!(Message::user("u").tool_call_id.is_none());
            assert_eq!(call.args().unwrap()["summary"], "done");
        }

        #[test]
        fn tool_definitions_hold_the_schema_as_json() {
            let tool = ToolDefinition::new(
                "read_file",
                "Read a file",
                serde_json::json!({"type": "object"}),
            );
            assert_eq!(tool.parameters, r#"{"type":"object"}"#);
        }

        #[test]
        fn errors_describe_themselves() {
            let limited = ModelError::RateLimited(RateLimit {
                message: "slow down".into(),
                retry_after_ms: Some(1500),
            });
            assert_eq!(
                limited.describe(),
                "rate limited: slow down (retry after 1500 ms)"
            );
            let budget = ModelError::BudgetExceeded("used 1000 of 1000 tokens".into());
            assert!(matches!(
                crate::RunError::from(budget),
                crate::RunError::Failed(m) if m == "budget exceeded: used 1000 of 1000 tokens"
            ));
        }
    }
}

/// True once the task has been asked to stop: return `RunError::Cancelled`
/// soon after.
pub fn cancelled() -> bool {
    host::cancelled()
}
