//! The task manager as the `subagents` capability sees it: bound to one
//! task, every operation confined to that task's descendants.

use std::sync::Weak;
use std::time::Duration;

use super::{Inner, LaunchRequest, ManagerError, SubagentRef};
use crate::capabilities::subagents::{AwaitOutcome, BoxFuture, ChildRequest, SpawnError, Spawner};

/// The task manager as one task's `subagents` capability sees it: bound to
/// that task (the parent of whatever it launches) when the task is launched.
pub(super) struct ManagerSpawner {
    inner: Weak<Inner>,
    parent: String,
}

impl ManagerSpawner {
    pub(super) fn new(inner: Weak<Inner>, parent: String) -> ManagerSpawner {
        ManagerSpawner { inner, parent }
    }

    fn inner(&self) -> Result<std::sync::Arc<Inner>, SpawnError> {
        self.inner
            .upgrade()
            .ok_or_else(|| SpawnError::Unavailable("the task manager has stopped".into()))
    }
}

impl From<ManagerError> for SpawnError {
    fn from(err: ManagerError) -> Self {
        let message = err.to_string();
        match err {
            ManagerError::NotFound(_) => SpawnError::NotFound(message),
            ManagerError::NotRunning { .. } => SpawnError::NotRunning(message),
            // The WIT contract has no variant of its own for it: a tree
            // grown as large as the host allows is a depth-limit too.
            ManagerError::DepthLimit { .. } | ManagerError::Limit(_) => {
                SpawnError::DepthLimit(message)
            }
            ManagerError::Denied(_) => SpawnError::Denied(message),
            ManagerError::ShuttingDown => SpawnError::Unavailable(message),
            ManagerError::Bundle(crate::BundleError::UnknownName { .. }) => {
                SpawnError::NotFound(message)
            }
            // Already says "invalid request"; say it once.
            ManagerError::InvalidRequest(problem) => SpawnError::InvalidRequest(problem),
            _ => SpawnError::InvalidRequest(message),
        }
    }
}

impl Spawner for ManagerSpawner {
    fn launch(&self, request: ChildRequest) -> BoxFuture<'_, Result<String, SpawnError>> {
        Box::pin(async move {
            let inner = self.inner()?;
            if !crate::manifest::valid_name(&request.subagent) {
                return Err(SpawnError::InvalidRequest(format!(
                    "`{}` is not a subagent name; children are launched by name from the host's registries",
                    request.subagent
                )));
            }
            let launch = LaunchRequest {
                subagent: SubagentRef::Name(request.subagent),
                prompt: request.prompt,
                description: request.description,
                // The parent's workspace is used whatever is given here.
                workspace: Default::default(),
                write: request.write_dirs,
                readonly: request.readonly,
                timeout: request.timeout,
                model: request.model,
                parent: Some(self.parent.clone()),
                id: None,
            };
            let prepared = inner.prepare(launch).await?;
            Ok(inner.launch(prepared).await?)
        })
    }

    fn await_tasks(
        &self,
        ids: Vec<String>,
        timeout: Option<Duration>,
    ) -> BoxFuture<'_, Result<AwaitOutcome, SpawnError>> {
        Box::pin(async move {
            let inner = self.inner()?;
            let answer = inner.await_tasks(&ids, timeout, Some(&self.parent)).await?;
            Ok(AwaitOutcome {
                completed: answer.completed,
                pending: answer.pending,
                missing: answer.missing,
            })
        })
    }

    fn cancel(&self, id: &str) -> Result<(), SpawnError> {
        Ok(self.inner()?.cancel(id, Some(&self.parent))?)
    }

    fn send(&self, id: &str, text: String) -> Result<(), SpawnError> {
        Ok(self.inner()?.send_message(id, text, Some(&self.parent))?)
    }
}
