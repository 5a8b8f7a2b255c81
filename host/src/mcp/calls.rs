//! The tools' work: each call on the one task manager (or, for a task of
//! another process or one the manager has forgotten, on the store).

#![allow(deprecated)] // logging: deprecated by SEP-2577 for 2026-07-28, still served to clients that opt in

use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResponse, CreateTaskResult, DetailedTask, LoggingMessageNotificationParam,
    ProgressNotificationParam, Task, TaskPayload, TaskStatus as McpTaskStatus,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};

use super::server::Session;
use super::tools::{self, Args};
use super::wire::{
    complete_with_text, iso8601, launch_error, level_at_least, logging_level, result_value,
    task_call_result,
};
use crate::events::EventKind;
use crate::store::{Control, ControlOutcome, TaskQuery};
use crate::task::{TaskResult, TaskStatus};
use crate::tasks::{LaunchRequest, ManagerError, StreamItem, SubagentRef};

/// What `tasks/get` suggests between polls.
const POLL_INTERVAL_MS: u64 = 250;

/// How long a control request to a task of another process waits for that
/// process to answer.
const FOREIGN_ANSWER: Duration = Duration::from_secs(5);

impl Session {
    pub(super) async fn task(
        &self,
        args: Args,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, String> {
        let subagent = args.required_string("subagent").map_err(|e| e.0)?;
        let prompt = args.required_string("prompt").map_err(|e| e.0)?;
        let description = args.string("description").map_err(|e| e.0)?;
        let background = args
            .bool("run_in_background")
            .map_err(|e| e.0)?
            .unwrap_or(false);
        let write = args.strings("write_dirs").map_err(|e| e.0)?;
        let model = args.string("model").map_err(|e| e.0)?;
        let timeout = args.duration("timeout").map_err(|e| e.0)?;
        let workspace = self
            .workspace(args.string("workspace").map_err(|e| e.0)?, &context.peer)
            .await?;
        if subagent.contains('/') || subagent.ends_with(".toml") || subagent.ends_with(".md") {
            return Err(format!(
                "task: `subagent` must be the name of a registered subagent (see list_subagents), not a path: `{subagent}`"
            ));
        }
        let mut request = LaunchRequest::new(SubagentRef::Name(subagent), prompt, workspace);
        request.description = description.filter(|d| !d.trim().is_empty());
        request.readonly = write.as_ref().is_some_and(Vec::is_empty);
        request.write = write.filter(|w| !w.is_empty());
        request.model = model;
        request.timeout = timeout;
        let manager = &self.host.manager;
        let as_mcp_task = !background
            && context
                .client_capabilities()
                .is_some_and(|caps| caps.supports_tasks());
        // The one prepare path, and a task that can start at once starts on
        // the workspace handle it was prepared with.
        let id = manager.launch(request).await.map_err(launch_error)?;
        let snapshot = manager.get(&id).map_err(|e| e.to_string())?;
        if background {
            let text = format!(
                "Launched task {id} ({}) in the background. Collect its result with await_tasks, read its output with task_output, stop it with task_stop.",
                snapshot.subagent
            );
            return Ok(complete_with_text(
                json!({"task_id": id, "subagent": snapshot.subagent, "status": snapshot.status}),
                text,
            ));
        }
        if as_mcp_task {
            let now = iso8601(snapshot.created_at_ms);
            let task = Task::new(id, McpTaskStatus::Working, now.clone(), now)
                .with_poll_interval_ms(POLL_INTERVAL_MS);
            return Ok(CallToolResponse::Task(CreateTaskResult::new(task)));
        }
        self.host.foreground.lock().unwrap().insert(id.clone());
        let result = self.follow(&id, &snapshot.subagent, &context).await;
        self.host.foreground.lock().unwrap().remove(&id);
        let result = result?;
        Ok(CallToolResponse::Complete(task_call_result(
            &id,
            &snapshot.subagent,
            &result,
        )))
    }

    /// Follow a foreground task to its end, forwarding progress and logs;
    /// a cancelled request cancels the task.
    async fn follow(
        &self,
        id: &str,
        subagent: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<TaskResult, String> {
        let manager = &self.host.manager;
        let token = context.meta.get_progress_token();
        let logger = format!("subagent/{subagent}");
        // From 2026-07-28 a request opts in to logs in its `_meta`; before,
        // the session's `logging/setLevel` governs (info until set).
        let legacy = context
            .protocol_version()
            .is_none_or(|v| v.as_str() < rmcp::model::ProtocolVersion::V_2026_07_28.as_str());
        let least_log = context
            .meta
            .log_level()
            .or_else(|| legacy.then(|| *self.log_level.lock().unwrap()));
        if token.is_none() && least_log.is_none() {
            // Nothing to forward: wait for the end alone.
            let ids = [id.to_owned()];
            tokio::select! {
                _ = manager.await_tasks(&ids, None) => {}
                () = context.ct.cancelled() => {
                    let _ = manager.cancel(id);
                    return Err(format!("task {id} was cancelled by the client"));
                }
            }
            return manager
                .get(id)
                .map_err(|e| e.to_string())?
                .result
                .ok_or_else(|| format!("task {id} ended without a result"));
        }
        let mut events = manager.subscribe(id).map_err(|e| e.to_string())?;
        let mut progress = 0u64;
        let mut cancelled = false;
        loop {
            let item = tokio::select! {
                item = events.next() => item,
                () = context.ct.cancelled(), if !cancelled => {
                    cancelled = true;
                    let _ = manager.cancel(id);
                    continue;
                }
            };
            let Some(StreamItem::Event(event)) = item else {
                if item.is_none() {
                    break;
                }
                continue;
            };
            if cancelled {
                continue;
            }
            match event.kind {
                EventKind::Progress { progress: report } => {
                    if let Some(token) = &token {
                        progress += 1;
                        let note = ProgressNotificationParam::new(token.clone(), progress as f64)
                            .with_message(report.to_string());
                        let _ = context.peer.notify_progress(note).await;
                    }
                }
                EventKind::Log { level, message } => {
                    let level = logging_level(level);
                    if least_log.is_some_and(|least| level_at_least(level, least)) {
                        let note = LoggingMessageNotificationParam::new(level, json!(message))
                            .with_logger(logger.clone());
                        let _ = context.peer.notify_logging_message(note).await;
                    }
                }
                _ => {}
            }
        }
        if cancelled {
            return Err(format!("task {id} was cancelled by the client"));
        }
        manager
            .get(id)
            .map_err(|e| e.to_string())?
            .result
            .ok_or_else(|| format!("task {id} ended without a result"))
    }

    pub(super) async fn await_tasks(
        &self,
        args: Args,
        context: RequestContext<RoleServer>,
    ) -> Result<Value, String> {
        let ids = args
            .strings("task_ids")
            .map_err(|e| e.0)?
            .ok_or("await_tasks: `task_ids` is required")?;
        if ids.is_empty() {
            return Err("await_tasks: `task_ids` is empty; name at least one task id".into());
        }
        let timeout = args.duration("timeout").map_err(|e| e.0)?;
        let manager = &self.host.manager;
        let (local, other): (Vec<String>, Vec<String>) =
            ids.into_iter().partition(|id| manager.get(id).is_ok());
        let waiting = async {
            let local_done = async {
                if local.is_empty() {
                    return None;
                }
                manager.await_tasks(&local, timeout).await.ok()
            };
            let foreign_done = self.await_foreign(&other, timeout);
            tokio::join!(local_done, foreign_done)
        };
        let (local_done, foreign) = tokio::select! {
            done = waiting => done,
            () = context.ct.cancelled() => return Err("await_tasks: cancelled by the client".into()),
        };
        let mut completed = Vec::new();
        let mut pending = Vec::new();
        let mut missing = Vec::new();
        if let Some(done) = local_done {
            for (id, result) in &done.completed {
                let subagent = manager.get(id).map(|s| s.subagent).unwrap_or_default();
                completed.push(result_value(id, &subagent, result));
            }
            pending.extend(done.pending);
            missing.extend(done.missing);
        }
        completed.extend(foreign.completed);
        pending.extend(foreign.pending);
        missing.extend(foreign.missing);
        Ok(json!({"completed": completed, "pending": pending, "missing": missing}))
    }

    /// Tasks of other processes, through the store: polled until they end
    /// or `timeout` passes.
    async fn await_foreign(&self, ids: &[String], timeout: Option<Duration>) -> Foreign {
        let mut answer = Foreign::default();
        let Some(store) = self.host.store.clone() else {
            answer.missing = ids.to_vec();
            return answer;
        };
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut waiting: Vec<String> = ids.to_vec();
        loop {
            let store = store.clone();
            let ids = std::mem::take(&mut waiting);
            let looked = tokio::task::spawn_blocking(move || {
                ids.into_iter()
                    .map(|id| {
                        let record = store.task(&id);
                        (id, record)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (id, record) in looked {
                match record {
                    Err(_) => answer.missing.push(id),
                    Ok(record) => match record.result {
                        Some(result) if record.status.is_terminal() => {
                            answer
                                .completed
                                .push(result_value(&id, &record.subagent, &result));
                        }
                        _ => waiting.push(id),
                    },
                }
            }
            if waiting.is_empty() || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                answer.pending = waiting;
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(super) async fn send_message(&self, args: Args) -> Result<Value, String> {
        let id = args.required_string("task_id").map_err(|e| e.0)?;
        let message = args.required_string("message").map_err(|e| e.0)?;
        match self.host.manager.send_message(&id, message.clone()) {
            Ok(()) => {}
            Err(ManagerError::NotFound(_)) => {
                self.foreign_control(&id, Control::Send(message)).await?
            }
            Err(err) => return Err(format!("send_message: {err}")),
        }
        Ok(json!({"task_id": id, "delivered": true}))
    }

    pub(super) async fn task_stop(
        &self,
        args: Args,
        context: RequestContext<RoleServer>,
    ) -> Result<Value, String> {
        let id = args.required_string("task_id").map_err(|e| e.0)?;
        let manager = &self.host.manager;
        match manager.cancel(&id) {
            Ok(()) => {
                let ids = [id.clone()];
                tokio::select! {
                    _ = manager.await_tasks(&ids, None) => {}
                    () = context.ct.cancelled() => {}
                }
                let status = manager.get(&id).map_err(|e| e.to_string())?.status;
                Ok(json!({"task_id": id, "status": status}))
            }
            Err(ManagerError::NotFound(_)) => {
                self.foreign_control(&id, Control::Cancel).await?;
                let grace = manager.config().cancel_grace + FOREIGN_ANSWER;
                let done = self
                    .await_foreign(std::slice::from_ref(&id), Some(grace))
                    .await;
                let status = done
                    .completed
                    .first()
                    .map(|r| r["status"].clone())
                    .unwrap_or(json!("cancelling"));
                Ok(json!({"task_id": id, "status": status}))
            }
            Err(err) => Err(format!("task_stop: {err}")),
        }
    }

    /// Cancel or message a task another process runs, through the store.
    async fn foreign_control(&self, id: &str, control: Control) -> Result<(), String> {
        let Some(store) = self.host.store.clone() else {
            return Err(format!("no task `{id}`"));
        };
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let task = store.task(&id).map_err(|_| format!("no task `{id}`"))?;
            if task.status.is_terminal() {
                return Err(format!(
                    "task `{id}` is not running (it is {})",
                    task.status
                ));
            }
            if !store.owner_alive(&task.owner).map_err(|e| e.to_string())? {
                return Err(format!(
                    "task `{id}` belongs to a host process that is no longer running"
                ));
            }
            let request = store
                .request_control(&id, &control)
                .map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            while started.elapsed() < FOREIGN_ANSWER {
                match store.control_outcome(request).map_err(|e| e.to_string())? {
                    Some(ControlOutcome::Done) => return Ok(()),
                    Some(ControlOutcome::Refused { message }) => return Err(message),
                    None => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            Err(format!(
                "the process running task `{id}` did not answer within {} s",
                FOREIGN_ANSWER.as_secs()
            ))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    pub(super) async fn task_output(&self, args: Args) -> Result<Value, String> {
        let id = args.required_string("task_id").map_err(|e| e.0)?;
        let offset = args
            .integer("offset", u64::MAX)
            .map_err(|e| e.0)?
            .unwrap_or(0);
        let max = args
            .integer("max_bytes", tools::MAX_OUTPUT_READ)
            .map_err(|e| e.0)?
            .unwrap_or(65536)
            .max(1) as usize;
        let manager = &self.host.manager;
        let (bytes, total, dropped, status) = match manager.output(&id, offset, max) {
            Ok(chunk) => {
                let status = manager.get(&id).map_err(|e| e.to_string())?.status;
                (chunk.bytes, chunk.total, chunk.dropped, status)
            }
            Err(ManagerError::NotFound(_)) => {
                let store = self
                    .host
                    .store
                    .clone()
                    .ok_or_else(|| format!("task_output: no task `{id}`"))?;
                let lookup = id.clone();
                tokio::task::spawn_blocking(move || {
                    let task = store.task(&lookup)?;
                    let (bytes, total) = store.output(&lookup, offset, max)?;
                    Ok::<_, crate::store::StoreError>((bytes, total, 0, task.status))
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|_| format!("task_output: no task `{id}`"))?
            }
            Err(err) => return Err(format!("task_output: {err}")),
        };
        let next = offset.min(total) + bytes.len() as u64;
        Ok(json!({
            "task_id": id,
            "status": status,
            "offset": offset,
            "next_offset": next,
            "total": total,
            "dropped": dropped,
            "output": String::from_utf8_lossy(&bytes),
        }))
    }

    pub(super) async fn list_tasks(&self, args: Args) -> Result<Value, String> {
        let status = match args.string("status").map_err(|e| e.0)? {
            None => None,
            Some(s) => Some(
                serde_json::from_value::<TaskStatus>(json!(s)).map_err(|_| {
                    format!("list_tasks: no status `{s}`; one of queued, running, completed, failed, cancelled, timed_out, interrupted")
                })?,
            ),
        };
        let subagent = args.string("subagent").map_err(|e| e.0)?;
        let limit = args
            .integer("limit", 1000)
            .map_err(|e| e.0)?
            .unwrap_or(50)
            .max(1) as usize;
        let tasks: Vec<Value> = match self.host.store.clone() {
            Some(store) => {
                let query = TaskQuery {
                    statuses: status.into_iter().collect(),
                    subagent,
                    parent: None,
                    limit: Some(limit),
                };
                let records = tokio::task::spawn_blocking(move || store.tasks(&query))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("list_tasks: {e}"))?;
                records
                    .into_iter()
                    .map(|t| {
                        json!({
                            "task_id": t.id, "subagent": t.subagent, "description": t.description,
                            "status": t.status, "parent_id": t.parent_id,
                            "created_at_ms": t.created_at_ms, "ended_at_ms": t.ended_at_ms,
                        })
                    })
                    .collect()
            }
            None => {
                let filter = crate::tasks::TaskFilter {
                    statuses: status.map(|s| vec![s]),
                    subagent,
                    ..Default::default()
                };
                let mut tasks = self.host.manager.list(&filter);
                tasks.reverse();
                tasks.truncate(limit);
                tasks
                    .into_iter()
                    .map(|t| {
                        json!({
                            "task_id": t.id, "subagent": t.subagent, "description": t.description,
                            "status": t.status, "parent_id": t.parent_id,
                            "created_at_ms": t.created_at_ms, "ended_at_ms": t.ended_at_ms,
                        })
                    })
                    .collect()
            }
        };
        Ok(json!({ "tasks": tasks }))
    }

    pub(super) async fn list_subagents(&self) -> Result<Value, String> {
        let registries = self.host.registries(&self.host.workspace);
        let entries = tokio::task::spawn_blocking(move || registries.entries())
            .await
            .map_err(|e| e.to_string())?;
        let subagents: Vec<Value> = entries
            .into_iter()
            .filter(|entry| !entry.shadowed)
            .map(|entry| match &entry.bundle {
                Ok(bundle) => {
                    let m = &bundle.manifest;
                    json!({
                        "name": m.name,
                        "description": m.description,
                        "permission_mode": m.permission_mode.to_string(),
                        "write_dirs": m.allowed_write_directories,
                        "tools": m.tools.iter().map(|t| t.name()).collect::<Vec<_>>(),
                        "model": m.model,
                        "path": entry.dir,
                    })
                }
                Err(err) => json!({
                    "name": entry.name(),
                    "path": entry.dir,
                    "error": err.to_string(),
                }),
            })
            .collect();
        Ok(json!({ "subagents": subagents }))
    }

    /// `tasks/get`: a host task as an MCP task, from memory or, once the
    /// manager has forgotten it, from the store.
    pub(super) async fn mcp_task(&self, id: &str) -> Result<DetailedTask, McpError> {
        let not_found = || McpError::invalid_params(format!("no task `{id}`"), None);
        let view = match self.host.manager.get(id) {
            Ok(s) => TaskView {
                subagent: s.subagent,
                status: s.status,
                result: s.result,
                created_at_ms: s.created_at_ms,
                updated_at_ms: s.ended_at_ms.or(s.started_at_ms).unwrap_or(s.created_at_ms),
            },
            Err(_) => {
                let store = self.host.store.clone().ok_or_else(not_found)?;
                let lookup = id.to_owned();
                let record = tokio::task::spawn_blocking(move || store.task(&lookup))
                    .await
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?
                    .map_err(|_| not_found())?;
                TaskView {
                    subagent: record.subagent,
                    status: record.status,
                    result: record.result,
                    created_at_ms: record.created_at_ms,
                    updated_at_ms: record
                        .ended_at_ms
                        .or(record.started_at_ms)
                        .unwrap_or(record.created_at_ms),
                }
            }
        };
        let payload = match (&view.result, view.status) {
            (_, TaskStatus::Queued | TaskStatus::Running) => TaskPayload::Working,
            (_, TaskStatus::Cancelled) => TaskPayload::Cancelled,
            (Some(result), _) => {
                let value = serde_json::to_value(task_call_result(id, &view.subagent, result))
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                let Value::Object(result) = value else {
                    unreachable!("a CallToolResult is an object")
                };
                TaskPayload::Completed { result }
            }
            (None, _) => TaskPayload::Working,
        };
        let mut task = Task::new(
            id,
            McpTaskStatus::Working,
            iso8601(view.created_at_ms),
            iso8601(view.updated_at_ms),
        )
        .with_status_message(view.status.to_string());
        if matches!(payload, TaskPayload::Working) {
            task = task.with_poll_interval_ms(POLL_INTERVAL_MS);
        }
        Ok(DetailedTask::new(task, payload))
    }
}

/// What `tasks/get` needs of a task, wherever it is kept.
struct TaskView {
    subagent: String,
    status: TaskStatus,
    result: Option<TaskResult>,
    created_at_ms: u64,
    updated_at_ms: u64,
}

#[derive(Default)]
struct Foreign {
    completed: Vec<Value>,
    pending: Vec<String>,
    missing: Vec<String>,
}
