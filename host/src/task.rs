//! The vocabulary of a task's life, shared by the runtime, the task manager
//! and the CLI: statuses, typed failure kinds, results and events.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sandbox::{FileChanges, WriteSet};

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
    /// The host stopped (crashed, or shut down) before the task ended.
    Interrupted,
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskStatus::Queued | TaskStatus::Running)
    }

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

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a task did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// It ran past its `limits.timeout`.
    Timeout,
    /// It needed more than its `limits.memory`.
    Memory,
    /// It used up its `limits.fuel`.
    Fuel,
    /// The guest trapped: a panic, `unreachable`, stack overflow, …
    Trap,
    /// It asked for something its grants do not allow.
    Denied,
    /// It was cancelled.
    Cancelled,
    /// A model call failed.
    Model,
    /// The task or the subagent's input was not acceptable.
    InvalidInput,
    /// The subagent reported failure.
    Failed,
    /// The host stopped before the task ended.
    Interrupted,
    /// The task ran into a host limit that ends it (`limits.result`, …).
    Limit,
    /// The subagent's result is not one the host can keep as given: its
    /// `data` is not JSON, or nests too deep.
    InvalidResult,
    /// Something went wrong in the host itself.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Memory => "memory",
            ErrorKind::Fuel => "fuel",
            ErrorKind::Trap => "trap",
            ErrorKind::Denied => "denied",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Model => "model",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Failed => "failed",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Limit => "limit",
            ErrorKind::InvalidResult => "invalid-result",
            ErrorKind::Internal => "internal",
        }
    }

    /// The terminal status a failure of this kind ends in.
    pub fn status(self) -> TaskStatus {
        match self {
            ErrorKind::Timeout => TaskStatus::TimedOut,
            ErrorKind::Cancelled => TaskStatus::Cancelled,
            ErrorKind::Interrupted => TaskStatus::Interrupted,
            _ => TaskStatus::Failed,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed failure with a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    pub kind: ErrorKind,
    pub message: String,
}

impl TaskError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> TaskError {
        TaskError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

/// What a task used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub duration_ms: u64,
    /// Fuel consumed, when the task was metered.
    pub fuel: Option<u64>,
    /// Agent-loop rounds the subagent reported.
    pub rounds: u32,
    pub model_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Bytes the guest wrote to files.
    #[serde(default)]
    pub bytes_written: u64,
    /// Files and directories the guest created.
    #[serde(default)]
    pub files_created: u64,
    /// This task together with all its descendants, for a task that had
    /// children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<UsageTotals>,
}

/// Usage summed over a task and its descendants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// How many tasks: this one and every descendant.
    pub tasks: u64,
    pub model_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    /// This task's own usage, or its totals with descendants when it has them.
    pub fn totals(&self) -> UsageTotals {
        self.total.unwrap_or(UsageTotals {
            tasks: 1,
            model_calls: self.model_calls,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        })
    }
}

impl std::ops::Add for UsageTotals {
    type Output = UsageTotals;
    fn add(self, other: UsageTotals) -> UsageTotals {
        UsageTotals {
            tasks: self.tasks + other.tasks,
            model_calls: self.model_calls + other.model_calls,
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
        }
    }
}

/// Captured stdout + stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSummary {
    /// What was kept, as text; ends with a marker line when truncated.
    pub text: String,
    /// Bytes kept.
    pub bytes: u64,
    /// Bytes dropped past `limits.output`.
    pub dropped: u64,
}

impl OutputSummary {
    pub fn truncated(&self) -> bool {
        self.dropped > 0
    }
}

/// Everything known about a finished task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    pub status: TaskStatus,
    pub summary: Option<String>,
    /// The subagent's machine-readable result (JSON), when it gave valid JSON.
    pub data: Option<serde_json::Value>,
    pub error: Option<TaskError>,
    /// Host-observed changes to the workspace.
    pub files: FileChanges,
    pub output: OutputSummary,
    pub usage: Usage,
    /// The effective model: the one its calls went to.
    pub model: Option<String>,
    /// The model name the launch or the manifest asked for (`inherit`
    /// included), when it asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_model: Option<String>,
    /// Set when the requested model did not resolve on the host and the
    /// default model stood in for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_warning: Option<String>,
    /// Limits the guest ran into without the task ending (a write refused
    /// past `limits.disk`, …): the calls failed, and the guest carried on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits_hit: Vec<LimitHit>,
}

/// A per-task limit that fails a call rather than ending the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `limits.disk`: bytes written (or the host's disk headroom).
    Disk,
    /// `limits.files`: entries created.
    Files,
    /// `limits.open_files`: descriptors open at once.
    OpenFiles,
    /// The host's event budget: logs, progress and output notices past it
    /// were dropped (the output's bytes never are).
    Events,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Disk => "disk",
            Limit::Files => "files",
            Limit::OpenFiles => "open_files",
            Limit::Events => "events",
        }
    }
}

/// A limit a task ran into, and what was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitHit {
    pub limit: Limit,
    pub message: String,
}

impl TaskResult {
    /// A result for a task that ran to completion.
    pub fn completed(summary: String, data: Option<serde_json::Value>) -> TaskResult {
        TaskResult {
            status: TaskStatus::Completed,
            summary: Some(summary),
            data,
            error: None,
            ..TaskResult::empty()
        }
    }

    /// A result for a task that ended without running to completion.
    pub fn failure(error: TaskError) -> TaskResult {
        TaskResult {
            status: error.kind.status(),
            error: Some(error),
            ..TaskResult::empty()
        }
    }

    fn empty() -> TaskResult {
        TaskResult {
            status: TaskStatus::Failed,
            summary: None,
            data: None,
            error: None,
            files: FileChanges::default(),
            output: OutputSummary::default(),
            usage: Usage::default(),
            model: None,
            requested_model: None,
            model_warning: None,
            limits_hit: Vec::new(),
        }
    }
}

/// The effective permissions a task runs with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Permissions {
    pub mode: crate::manifest::PermissionMode,
    pub writes: WriteSet,
    pub tools: Vec<crate::manifest::Tool>,
}

/// A log line's level, as the guest gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// A progress report from a guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Progress {
    Round { n: u32 },
    Tool { name: String, args: String },
    Note { text: String },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Round { n } => write!(f, "round {n}"),
            Progress::Tool { name, args } => write!(f, "{name} {args}"),
            Progress::Note { text } => f.write_str(text),
        }
    }
}
