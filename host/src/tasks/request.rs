//! What the task manager is asked and what it answers: its configuration,
//! launch requests, snapshots, await answers, output chunks, and its errors.

use std::path::Path;

use serde::Deserialize;

use super::*;

/// The largest follow-up message accepted.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Limits and defaults of a task manager: policy only. Its services (the
/// store, the models) are given to [`TaskManager::builder`].
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Running tasks per concurrency key; `0` = unlimited.
    pub per_key_default: usize,
    /// Overrides of `per_key_default` by key (a model, or a subagent name).
    pub per_key: HashMap<String, usize>,
    /// Running tasks in all; `0` = as many as the runtime has instance slots
    /// (a larger value is lowered to that too).
    pub max_running: usize,
    /// How deep children may nest below a top-level task.
    pub max_depth: u32,
    /// Queued and running descendants one top-level task may have at once.
    pub max_descendants: usize,
    /// Tasks that may wait in the queue at once, in all.
    pub max_queued: usize,
    /// How long a cancelled task may take to stop on its own before it is
    /// interrupted.
    pub cancel_grace: Duration,
    /// Extra registries searched first for subagents by name.
    pub agents: Vec<PathBuf>,
    /// Per-subscriber event buffer; a subscriber further behind is told it lagged.
    pub event_buffer: usize,
    /// Terminal tasks older than this are pruned from the store at start.
    pub retention: Duration,
    /// With a store: at most this many ended task trees stay in memory
    /// (their events, output and result), the oldest forgotten first; the
    /// store keeps them, and a forgotten id is [`ManagerError::NotFound`]
    /// here. `None` keeps every task for the manager's lifetime (what a
    /// batch that reads its results at the end needs). A long-lived host
    /// (`subagent mcp`) sets it.
    pub ended_in_memory: Option<usize>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            per_key_default: 5,
            per_key: HashMap::new(),
            max_running: 32,
            max_depth: 3,
            max_descendants: 1_000,
            max_queued: 100_000,
            cancel_grace: Duration::from_secs(2),
            agents: Vec::new(),
            event_buffer: 1024,
            retention: crate::store::DEFAULT_RETENTION,
            ended_in_memory: None,
        }
    }
}

/// Which subagent to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubagentRef {
    /// A name, looked up in the registries of the task's workspace.
    Name(String),
    /// A bundle directory, a manifest, or a Markdown definition.
    Path(PathBuf),
    /// An already loaded bundle (not serializable: it is not a reference).
    #[serde(skip)]
    Bundle(Box<Bundle>),
}

impl SubagentRef {
    /// What a user's `spec` refers to, by the one rule of every face
    /// ([`crate::bundle::spec_path`]): a path (relative to `base`), else a
    /// name in the registries.
    pub fn from_spec(spec: &str, base: &Path) -> SubagentRef {
        match crate::bundle::spec_path(spec, base) {
            Some(path) => SubagentRef::Path(path),
            None => SubagentRef::Name(spec.to_owned()),
        }
    }
}

/// Everything a launch asks for. It serializes (but for an already loaded
/// bundle), so another process can be handed it whole.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchRequest {
    pub subagent: SubagentRef,
    pub prompt: String,
    /// One line for listings; defaults to the subagent's description.
    pub description: Option<String>,
    /// The workspace (per call; there is no process-wide one). A child always
    /// uses its parent's.
    pub workspace: PathBuf,
    /// Narrow the writable directories.
    pub write: Option<Vec<String>>,
    pub readonly: bool,
    pub timeout: Option<Duration>,
    /// Model override; `inherit` takes the parent's effective model.
    pub model: Option<String>,
    /// The parent task, for nested launches.
    pub parent: Option<String>,
    /// Use this id instead of a new one (`subagent run --background` picks
    /// the id before the detached process launches the task).
    pub id: Option<String>,
}

impl LaunchRequest {
    pub fn new(
        subagent: SubagentRef,
        prompt: impl Into<String>,
        workspace: impl Into<PathBuf>,
    ) -> LaunchRequest {
        LaunchRequest {
            subagent,
            prompt: prompt.into(),
            description: None,
            workspace: workspace.into(),
            write: None,
            readonly: false,
            timeout: None,
            model: None,
            parent: None,
            id: None,
        }
    }
}

/// Why the manager refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    #[error("no task `{0}`")]
    NotFound(String),
    #[error("task `{id}` is not running (it is {status})")]
    NotRunning { id: String, status: TaskStatus },
    #[error(
        "cannot nest deeper than {max} levels below a top-level task (task `{parent}` is at depth {depth})"
    )]
    DepthLimit {
        parent: String,
        depth: u32,
        max: u32,
    },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A host limit on tasks (a tree's live descendants, the queue) is full.
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    Denied(String),
    #[error("the task manager is shutting down and accepts no new tasks")]
    ShuttingDown,
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Plan(PlanError),
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl From<PlanError> for ManagerError {
    fn from(err: PlanError) -> Self {
        if err.is_denied() {
            ManagerError::Denied(err.to_string())
        } else {
            ManagerError::Plan(err)
        }
    }
}

/// A point-in-time view of one task.
#[derive(Clone, Debug, Serialize)]
pub struct TaskSnapshot {
    pub id: String,
    pub subagent: String,
    pub description: String,
    pub status: TaskStatus,
    pub parent_id: Option<String>,
    pub children: Vec<String>,
    pub depth: u32,
    /// The concurrency key: the effective model, else the subagent's name.
    pub key: String,
    pub model: Option<String>,
    pub workspace: PathBuf,
    pub permissions: Permissions,
    pub created_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    pub result: Option<TaskResult>,
}

/// Which tasks [`TaskManager::list`] returns.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub statuses: Option<Vec<TaskStatus>>,
    pub subagent: Option<String>,
    /// Only the children of this task.
    pub parent: Option<String>,
    /// Only top-level tasks.
    pub top_level: bool,
}

/// The answer to [`TaskManager::await_tasks`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct AwaitResult {
    pub completed: Vec<(String, TaskResult)>,
    pub pending: Vec<String>,
    pub missing: Vec<String>,
}

/// A slice of a task's output log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutputChunk {
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Bytes in the log so far.
    pub total: u64,
    /// Bytes dropped past the output limit.
    pub dropped: u64,
}
