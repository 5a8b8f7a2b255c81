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

/// True once the task has been asked to stop: return `RunError::Cancelled`
/// soon after.
pub fn cancelled() -> bool {
    host::cancelled()
}
