//! The event vocabulary: what happened to a task, as the task manager emits
//! it, the store records it and every face shows it. It lives on its own
//! floor, below both the store and the task manager, so neither imports the
//! other to borrow a type.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::sandbox::StreamKind;
use crate::task::{LogLevel, Progress, TaskError, TaskStatus};

/// One thing that happened to one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    pub task_id: String,
    /// 0-based, per task, without gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized with a `type` tag (snake_case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Accepted and waiting for a slot.
    Queued {
        subagent: String,
        key: String,
        parent_id: Option<String>,
    },
    /// Running.
    Started,
    Progress {
        progress: Progress,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    /// `len` bytes at `offset` of the task's output log (read them with
    /// `TaskManager::output`).
    Output {
        stream: StreamKind,
        offset: u64,
        len: u64,
    },
    /// A follow-up message was put in the task's inbox.
    MessageDelivered {
        len: u64,
    },
    /// The subagent took a follow-up message from its inbox.
    MessageRead {
        len: u64,
    },
    /// The task emitted events faster, or more of them, than the host
    /// keeps (see the event budget in the README): `events` of them have
    /// been dropped so far. Said when dropping starts and at most once a
    /// second after.
    Dropped {
        events: u64,
    },
    /// The end: exactly one per task, always the last.
    Terminal {
        status: TaskStatus,
        error: Option<TaskError>,
    },
}

impl EventKind {
    pub fn is_terminal(&self) -> bool {
        matches!(self, EventKind::Terminal { .. })
    }

    /// Whether the guest makes it happen (a log line, progress, output, a
    /// message taken), so a flood of it is bounded; the lifecycle is not.
    pub fn is_guest_driven(&self) -> bool {
        matches!(
            self,
            EventKind::Log { .. }
                | EventKind::Progress { .. }
                | EventKind::Output { .. }
                | EventKind::MessageRead { .. }
        )
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where the runtime reports what a running task does (progress, logs,
/// messages read), in the same vocabulary the task manager records.
pub trait RunObserver: Send + Sync {
    fn event(&self, event: EventKind);
}

/// An observer that ignores everything.
pub struct Ignore;

impl RunObserver for Ignore {
    fn event(&self, _event: EventKind) {}
}
