//! `subagent:plugin/subagents`: launch, await, cancel and message the
//! caller's own descendants. Granted by `tools = ["subagents"]`.
//!
//! The capability sees the task manager only through [`Spawner`], defined
//! here, so the layers stay one-way (tasks → runtime → capabilities) and the
//! capability can be tested without a manager.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::bindings::subagent::plugin::subagents::{self as wit, Host};
use crate::task::{TaskResult, TaskStatus};

use super::host::TaskControl;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A child launch, as the guest asked for it.
#[derive(Clone, Debug, Default)]
pub struct ChildRequest {
    pub subagent: String,
    pub prompt: String,
    pub description: Option<String>,
    pub write_dirs: Option<Vec<String>>,
    pub readonly: bool,
    pub timeout: Option<Duration>,
    pub model: Option<String>,
}

/// The answer to an await: finished children with their results, children
/// still going, and ids that are not the caller's descendants.
#[derive(Clone, Debug, Default)]
pub struct AwaitOutcome {
    pub completed: Vec<(String, TaskResult)>,
    pub pending: Vec<String>,
    pub missing: Vec<String>,
}

/// Why a child operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("not running: {0}")]
    NotRunning(String),
    #[error("depth limit: {0}")]
    DepthLimit(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// What the capability needs from whoever runs tasks: one per task, bound to
/// that task when it is made, so the guest can name no other parent. Every
/// operation is confined to the bound task's descendants.
///
/// This is the one trait the task manager implements for a floor below it
/// (the nested launch): the documented arrow climbing back up.
pub trait Spawner: Send + Sync {
    /// Launch a child of the bound task.
    fn launch(&self, request: ChildRequest) -> BoxFuture<'_, Result<String, SpawnError>>;
    /// Wait for descendants of the bound task.
    fn await_tasks(
        &self,
        ids: Vec<String>,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<AwaitOutcome, SpawnError>>;
    /// Cancel a descendant of the bound task.
    fn cancel(&self, id: &str) -> Result<(), SpawnError>;
    /// Send a follow-up to a descendant of the bound task.
    fn send(&self, id: &str, text: String) -> Result<(), SpawnError>;
}

/// The `subagents` capability's state inside a store.
pub struct SubagentsCtx {
    pub subagent: String,
    /// `None` when the manifest does not grant `subagents`, or nothing can
    /// spawn (a bare runtime without a task manager).
    pub spawner: Option<Arc<dyn Spawner>>,
    pub control: Arc<TaskControl>,
}

impl SubagentsCtx {
    fn spawner(&self) -> Result<Arc<dyn Spawner>, wit::SubagentError> {
        self.spawner.clone().ok_or_else(|| {
            wit::SubagentError::Denied(format!(
                "subagent `{}` may not launch subagents: add \"subagents\" to `tools` in its manifest",
                self.subagent
            ))
        })
    }
}

impl From<SpawnError> for wit::SubagentError {
    fn from(err: SpawnError) -> Self {
        match err {
            SpawnError::Denied(m) => wit::SubagentError::Denied(m),
            SpawnError::NotFound(m) => wit::SubagentError::NotFound(m),
            SpawnError::NotRunning(m) => wit::SubagentError::NotRunning(m),
            SpawnError::DepthLimit(m) => wit::SubagentError::DepthLimit(m),
            SpawnError::InvalidRequest(m) => wit::SubagentError::InvalidRequest(m),
            SpawnError::Unavailable(m) => wit::SubagentError::Unavailable(m),
        }
    }
}

fn child_result(id: String, result: TaskResult) -> wit::ChildResult {
    let status = match result.status {
        TaskStatus::Queued => wit::TaskStatus::Queued,
        TaskStatus::Running => wit::TaskStatus::Running,
        TaskStatus::Completed => wit::TaskStatus::Completed,
        TaskStatus::Failed => wit::TaskStatus::Failed,
        TaskStatus::Cancelled => wit::TaskStatus::Cancelled,
        TaskStatus::TimedOut => wit::TaskStatus::TimedOut,
        TaskStatus::Interrupted => wit::TaskStatus::Interrupted,
    };
    wit::ChildResult {
        id,
        status,
        summary: result.summary,
        data: result.data.map(|d| d.to_string()),
        error_kind: result.error.as_ref().map(|e| e.kind.as_str().to_owned()),
        error_message: result.error.map(|e| e.message),
    }
}

/// Serve `subagent:plugin/subagents` from `get`'s [`SubagentsCtx`]. Linked
/// for every task; without the `subagents` grant every call answers `denied`.
///
/// # Errors
///
/// When the linker refuses a definition.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> &mut SubagentsCtx,
) -> wasmtime::Result<()> {
    crate::bindings::subagent::plugin::subagents::add_to_linker::<
        T,
        wasmtime::component::HasSelf<SubagentsCtx>,
    >(linker, get)
}

impl Host for SubagentsCtx {
    async fn launch(&mut self, request: wit::LaunchRequest) -> Result<String, wit::SubagentError> {
        let spawner = self.spawner()?;
        let request = ChildRequest {
            subagent: request.subagent,
            prompt: request.prompt,
            description: request.description,
            write_dirs: request.write_dirs,
            readonly: request.readonly,
            timeout: request.timeout_ms.map(Duration::from_millis),
            model: request.model,
        };
        Ok(spawner.launch(request).await?)
    }

    async fn await_tasks(
        &mut self,
        ids: Vec<String>,
        timeout_ms: Option<u64>,
    ) -> Result<wit::AwaitResult, wit::SubagentError> {
        let spawner = self.spawner()?;
        let wait = spawner.await_tasks(ids.clone(), timeout_ms.map(Duration::from_millis));
        // A cancelled caller stops waiting at once and sees what is done so far.
        let outcome = tokio::select! {
            outcome = wait => outcome?,
            _ = self.control.cancelled_wait() => spawner.await_tasks(ids, Some(Duration::ZERO)).await?,
        };
        Ok(wit::AwaitResult {
            completed: outcome
                .completed
                .into_iter()
                .map(|(id, r)| child_result(id, r))
                .collect(),
            pending: outcome.pending,
            missing: outcome.missing,
        })
    }

    async fn cancel(&mut self, id: String) -> Result<(), wit::SubagentError> {
        Ok(self.spawner()?.cancel(&id)?)
    }

    async fn send(&mut self, id: String, text: String) -> Result<(), wit::SubagentError> {
        Ok(self.spawner()?.send(&id, text)?)
    }
}

#[cfg(test)]
mod tests {
    //! The capability alone, with a fake [`Spawner`]: no wasm, no manager.
    use std::sync::Mutex;

    use super::*;

    /// Bound to one parent, as the manager's spawner is; records every call
    /// with that parent.
    struct Fake {
        parent: String,
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        fn for_parent(parent: &str) -> Fake {
            Fake {
                parent: parent.into(),
                calls: Mutex::default(),
            }
        }
    }

    impl Spawner for Fake {
        fn launch(&self, request: ChildRequest) -> BoxFuture<'_, Result<String, SpawnError>> {
            let parent = &self.parent;
            self.calls.lock().unwrap().push(format!(
                "launch {} for {parent}: {:?} timeout {:?}",
                request.subagent, request.write_dirs, request.timeout
            ));
            Box::pin(async { Ok("t-child".to_owned()) })
        }

        fn await_tasks(
            &self,
            ids: Vec<String>,
            _timeout: Option<Duration>,
        ) -> BoxFuture<'_, Result<AwaitOutcome, SpawnError>> {
            let parent = &self.parent;
            self.calls
                .lock()
                .unwrap()
                .push(format!("await {ids:?} for {parent}"));
            Box::pin(async move {
                Ok(AwaitOutcome {
                    missing: ids,
                    ..AwaitOutcome::default()
                })
            })
        }

        fn cancel(&self, id: &str) -> Result<(), SpawnError> {
            let parent = &self.parent;
            self.calls
                .lock()
                .unwrap()
                .push(format!("cancel {id} for {parent}"));
            Err(SpawnError::NotFound(format!(
                "no task `{id}` below {parent}"
            )))
        }

        fn send(&self, id: &str, _text: String) -> Result<(), SpawnError> {
            let parent = &self.parent;
            self.calls
                .lock()
                .unwrap()
                .push(format!("send {id} for {parent}"));
            Ok(())
        }
    }

    fn ctx(spawner: Option<Arc<dyn Spawner>>) -> SubagentsCtx {
        SubagentsCtx {
            subagent: "orchestrator".into(),
            spawner,
            control: TaskControl::new(),
        }
    }

    fn request() -> wit::LaunchRequest {
        wit::LaunchRequest {
            subagent: "deep-search".into(),
            prompt: "find it".into(),
            description: None,
            write_dirs: Some(vec!["reports".into()]),
            readonly: false,
            timeout_ms: Some(1500),
            model: None,
        }
    }

    #[tokio::test]
    async fn every_call_is_made_for_the_task_the_capability_was_built_for() {
        let fake = Arc::new(Fake::for_parent("t-parent"));
        let mut ctx = ctx(Some(fake.clone()));
        assert_eq!(ctx.launch(request()).await.unwrap(), "t-child");
        let awaited = ctx.await_tasks(vec!["t-x".into()], Some(0)).await.unwrap();
        assert_eq!(awaited.missing, ["t-x"]);
        ctx.send("t-child".into(), "hi".into()).await.unwrap();
        assert!(matches!(
            ctx.cancel("t-other".into()).await,
            Err(wit::SubagentError::NotFound(_))
        ));
        assert_eq!(
            *fake.calls.lock().unwrap(),
            [
                "launch deep-search for t-parent: Some([\"reports\"]) timeout Some(1.5s)",
                "await [\"t-x\"] for t-parent",
                "send t-child for t-parent",
                "cancel t-other for t-parent",
            ]
        );
    }

    #[tokio::test]
    async fn without_the_grant_every_call_is_denied_naming_it() {
        let mut ctx = ctx(None);
        let denied = |err: wit::SubagentError| match err {
            wit::SubagentError::Denied(message) => message,
            other => panic!("expected denied, got {other:?}"),
        };
        let message = denied(ctx.launch(request()).await.unwrap_err());
        assert!(message.contains("subagents"), "{message}");
        denied(ctx.await_tasks(vec![], None).await.unwrap_err());
        denied(ctx.cancel("t".into()).await.unwrap_err());
        denied(ctx.send("t".into(), "x".into()).await.unwrap_err());
    }
}
