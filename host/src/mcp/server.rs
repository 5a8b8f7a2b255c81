//! The MCP server's handler: each tool call becomes a call on the one task
//! manager of the process, through the same prepare path as the CLI.

#![allow(deprecated)] // logging and roots: deprecated by SEP-2577 for 2026-07-28, still served to older clients

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    CreateTaskResult, DetailedTask, GetTaskParams, GetTaskResult, Implementation, ListToolsResult,
    LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscriptionFilter, Task, TaskPayload, TaskStatus as McpTaskStatus,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, Peer, ServerHandler};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::tools::{self, ArgError, Args, Listed};
use crate::bundle::Registries;
use crate::events::EventKind;
use crate::store::{Control, ControlOutcome, Store, TaskQuery};
use crate::task::{LogLevel, TaskResult, TaskStatus};
use crate::tasks::{LaunchRequest, ManagerError, StreamItem, SubagentRef, TaskManager};

/// How often the registries are looked at for added, removed or changed
/// subagents (`notifications/tools/list_changed`).
const REGISTRY_POLL: Duration = Duration::from_secs(1);

/// What `tasks/get` suggests between polls.
const POLL_INTERVAL_MS: u64 = 250;

/// How long a control request to a task of another process waits for that
/// process to answer.
const FOREIGN_ANSWER: Duration = Duration::from_secs(5);

/// What every session of one `subagent mcp` process shares: the task
/// manager (so concurrency limits hold across all clients, and every task is
/// in the store), the allowed workspace and the registries.
pub struct Host {
    manager: TaskManager,
    store: Option<Arc<Store>>,
    /// The default workspace, canonical: a call may name one inside it (or
    /// inside the client's roots, when it offers them).
    workspace: PathBuf,
    agents: Vec<PathBuf>,
    /// Bumped whenever the registries' subagents change.
    registry: watch::Sender<u64>,
    /// Sessions of clients that negotiated a protocol with sessions (before
    /// 2026-07-28): they get `tools/list_changed` unasked.
    sessions: Mutex<Vec<Peer<RoleServer>>>,
    /// Foreground `task` calls in flight: cancelled when their client goes.
    foreground: Mutex<HashSet<String>>,
}

impl Host {
    /// A host over `manager`; `workspace` must exist.
    pub fn new(
        manager: TaskManager,
        store: Option<Arc<Store>>,
        workspace: &Path,
        agents: Vec<PathBuf>,
    ) -> std::io::Result<Arc<Host>> {
        let workspace = std::fs::canonicalize(workspace).map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("workspace {}: {err}", workspace.display()),
            )
        })?;
        let (registry, _) = watch::channel(0);
        Ok(Arc::new(Host {
            manager,
            store,
            workspace,
            agents,
            registry,
            sessions: Mutex::new(Vec::new()),
            foreground: Mutex::new(HashSet::new()),
        }))
    }

    pub fn manager(&self) -> &TaskManager {
        &self.manager
    }

    fn registries(&self, workspace: &Path) -> Registries {
        Registries::standard(&self.agents, workspace)
    }

    /// The subagents `task` can launch in the default workspace.
    fn listed(&self) -> Vec<Listed> {
        self.registries(&self.workspace)
            .entries()
            .into_iter()
            .filter(|entry| !entry.shadowed)
            .filter_map(|entry| entry.bundle.ok())
            .map(|bundle| Listed {
                name: bundle.manifest.name.clone(),
                description: bundle.manifest.description.clone(),
            })
            .collect()
    }

    /// What the registries hold, to notice a change: each entry's name, path
    /// and the modification time of what defines it.
    fn registry_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for entry in self.registries(&self.workspace).entries() {
            entry.dir.hash(&mut hasher);
            entry.shadowed.hash(&mut hasher);
            let defining = if entry.dir.is_dir() {
                entry.dir.join(crate::manifest::MANIFEST_FILE)
            } else {
                entry.dir.clone()
            };
            if let Ok(meta) = std::fs::metadata(&defining) {
                meta.modified().ok().hash(&mut hasher);
                meta.len().hash(&mut hasher);
            }
            match &entry.bundle {
                Ok(bundle) => {
                    bundle.manifest.name.hash(&mut hasher);
                    bundle.manifest.description.hash(&mut hasher);
                }
                Err(err) => err.to_string().hash(&mut hasher),
            }
        }
        hasher.finish()
    }

    /// Watch the registries until the process ends: on a change, bump
    /// [`Host::registry`] and tell every session-mode client.
    pub fn watch_registries(self: &Arc<Self>) {
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let Some(strong) = host.upgrade() else { return };
                let fingerprint = {
                    let strong = strong.clone();
                    tokio::task::spawn_blocking(move || strong.registry_fingerprint())
                        .await
                        .unwrap_or_default()
                };
                if last.is_some_and(|last| last != fingerprint) {
                    strong.registry.send_modify(|generation| *generation += 1);
                    let peers: Vec<Peer<RoleServer>> = {
                        let mut sessions = strong.sessions.lock().unwrap();
                        sessions.retain(|peer| !peer.is_transport_closed());
                        sessions.clone()
                    };
                    for peer in peers {
                        let _ = peer.notify_tool_list_changed().await;
                    }
                }
                last = Some(fingerprint);
                drop(strong);
                tokio::time::sleep(REGISTRY_POLL).await;
            }
        });
    }

    /// The client went away: its foreground tasks are cancelled (nobody
    /// waits for their result); background ones run on to their end.
    pub fn cancel_foreground(&self) {
        let ids: Vec<String> = self.foreground.lock().unwrap().drain().collect();
        for id in ids {
            let _ = self.manager.cancel(&id);
        }
    }

    /// Wait until every task of this process has ended.
    pub async fn drain(&self) {
        let live: Vec<String> = self
            .manager
            .list(&crate::tasks::TaskFilter {
                statuses: Some(vec![TaskStatus::Queued, TaskStatus::Running]),
                ..Default::default()
            })
            .into_iter()
            .map(|task| task.id)
            .collect();
        if !live.is_empty() {
            let _ = self.manager.await_tasks(&live, None).await;
        }
    }
}

/// One client's session (with the 2026-07-28 protocol over HTTP, one
/// request's): the shared host plus what this client told us.
#[derive(Clone)]
pub struct Session {
    host: Arc<Host>,
    /// The client's roots, when it offers them: workspaces must lie inside.
    roots: Arc<Mutex<Option<Vec<PathBuf>>>>,
    /// The least severe log level the client wants (`logging/setLevel`).
    log_level: Arc<Mutex<LoggingLevel>>,
}

impl Session {
    pub fn new(host: Arc<Host>) -> Session {
        Session {
            host,
            roots: Arc::new(Mutex::new(None)),
            log_level: Arc::new(Mutex::new(LoggingLevel::Info)),
        }
    }

    /// The workspace a call names (default: the server's), canonical, and
    /// only inside the client's roots or else the server's workspace.
    async fn workspace(
        &self,
        named: Option<String>,
        peer: &Peer<RoleServer>,
    ) -> Result<PathBuf, String> {
        // The roots are asked for once the session starts; a call that comes
        // first waits for them rather than miss them.
        if self.roots.lock().unwrap().is_none() {
            self.refresh_roots(peer).await;
        }
        let path = match named {
            Some(named) => {
                let named = PathBuf::from(named);
                if named.is_absolute() {
                    named
                } else {
                    self.host.workspace.join(named)
                }
            }
            None => self.host.workspace.clone(),
        };
        let canonical = std::fs::canonicalize(&path)
            .map_err(|err| format!("task: workspace {}: {err}", path.display()))?;
        if !canonical.is_dir() {
            return Err(format!(
                "task: workspace {} is not a directory",
                path.display()
            ));
        }
        let roots = self.roots.lock().unwrap().clone();
        let (allowed, what) = match roots {
            Some(roots) => (roots, "the client's roots"),
            None => (
                vec![self.host.workspace.clone()],
                "the server's workspace (subagent mcp --workspace)",
            ),
        };
        if allowed.iter().any(|root| canonical.starts_with(root)) {
            return Ok(canonical);
        }
        let allowed: Vec<String> = allowed.iter().map(|r| r.display().to_string()).collect();
        Err(format!(
            "task: workspace {} is outside {what}: {}; name a directory inside it",
            canonical.display(),
            allowed.join(", ")
        ))
    }

    async fn refresh_roots(&self, peer: &Peer<RoleServer>) {
        let offers = peer
            .peer_info()
            .is_some_and(|info| info.capabilities.roots.is_some());
        if !offers {
            return;
        }
        let Ok(listed) = peer.list_roots().await else {
            return;
        };
        let roots = listed
            .roots
            .iter()
            .filter_map(|root| root.uri.strip_prefix("file://"))
            .filter_map(|path| std::fs::canonicalize(percent_decode(path)).ok())
            .collect();
        *self.roots.lock().unwrap() = Some(roots);
    }

    async fn call(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(tool) = tools::NAMES.iter().find(|n| **n == params.name) else {
            let hint = crate::diagnostic::did_you_mean(&params.name, &tools::NAMES)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(McpError::invalid_params(
                format!(
                    "no tool `{}`{hint}; this server has: {}",
                    params.name,
                    tools::NAMES.join(", ")
                ),
                None,
            ));
        };
        let outcome = match Args::new(tool, params.arguments) {
            Err(ArgError(message)) => Err(message),
            Ok(args) => match *tool {
                tools::TASK => self.task(args, context).await,
                tools::AWAIT_TASKS => self.await_tasks(args, context).await.map(complete),
                tools::SEND_MESSAGE => self.send_message(args).await.map(complete),
                tools::TASK_STOP => self.task_stop(args, context).await.map(complete),
                tools::TASK_OUTPUT => self.task_output(args).await.map(complete),
                tools::LIST_TASKS => self.list_tasks(args).await.map(complete),
                tools::LIST_SUBAGENTS => self.list_subagents().await.map(complete),
                _ => unreachable!("every tool is handled"),
            },
        };
        Ok(outcome.unwrap_or_else(|message| {
            let mut result = CallToolResult::structured_error(json!({ "error": message }));
            result.content = vec![ContentBlock::text(message)];
            CallToolResponse::Complete(result)
        }))
    }

    async fn task(
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

    async fn await_tasks(
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

    async fn send_message(&self, args: Args) -> Result<Value, String> {
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

    async fn task_stop(
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

    async fn task_output(&self, args: Args) -> Result<Value, String> {
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

    async fn list_tasks(&self, args: Args) -> Result<Value, String> {
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

    async fn list_subagents(&self) -> Result<Value, String> {
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
    async fn mcp_task(&self, id: &str) -> Result<DetailedTask, McpError> {
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

/// A launch refused: the manager's message, which names the subagent, the
/// grant or the limit.
fn launch_error(err: ManagerError) -> String {
    format!("task: {err}")
}

fn complete(value: Value) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::structured(value))
}

fn complete_with_text(value: Value, text: String) -> CallToolResponse {
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    CallToolResponse::Complete(result)
}

/// A task's result as tools return it: the result's fields plus its id and
/// subagent.
fn result_value(id: &str, subagent: &str, result: &TaskResult) -> Value {
    let mut value = serde_json::to_value(result).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut value {
        map.insert("task_id".into(), json!(id));
        map.insert("subagent".into(), json!(subagent));
        // Always there, so a client can rely on the shape.
        map.entry("limits_hit").or_insert_with(|| json!([]));
    }
    value
}

/// A finished task as a `task` call's result: its summary (or error) as the
/// text, the whole result as structured content; an error unless completed.
fn task_call_result(id: &str, subagent: &str, result: &TaskResult) -> CallToolResult {
    let value = result_value(id, subagent, result);
    let text = match (&result.summary, &result.error) {
        (_, Some(error)) if result.status != TaskStatus::Completed => {
            format!(
                "task {id} ({subagent}) {}: {}",
                result.status, error.message
            )
        }
        (Some(summary), _) => summary.clone(),
        (None, _) => format!("task {id} ({subagent}) {}", result.status),
    };
    let mut call = if result.status == TaskStatus::Completed {
        CallToolResult::structured(value)
    } else {
        CallToolResult::structured_error(value)
    };
    call.content = vec![ContentBlock::text(text)];
    call
}

fn logging_level(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Trace | LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Warn => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
    }
}

fn level_at_least(level: LoggingLevel, least: LoggingLevel) -> bool {
    fn rank(level: LoggingLevel) -> u8 {
        match level {
            LoggingLevel::Debug => 0,
            LoggingLevel::Info => 1,
            LoggingLevel::Notice => 2,
            LoggingLevel::Warning => 3,
            LoggingLevel::Error => 4,
            LoggingLevel::Critical => 5,
            LoggingLevel::Alert => 6,
            LoggingLevel::Emergency => 7,
        }
    }
    rank(level) >= rank(least)
}

/// `file://` URIs percent-encode; the path they name does not.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Milliseconds since the Unix epoch as an ISO 8601 UTC timestamp.
fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

impl ServerHandler for Session {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("subagent", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Delegate work to sandboxed subagents: `task` launches one (list them with \
                 list_subagents); background tasks are collected with await_tasks.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let host = self.host.clone();
        let listed = tokio::task::spawn_blocking(move || host.listed())
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(ListToolsResult::with_all_items(tools::all(&listed)))
    }

    fn get_tool(&self, _name: &str) -> Option<rmcp::model::Tool> {
        None
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.call(request, context).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        *self.log_level.lock().unwrap() = request.level;
        Ok(())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.host
            .sessions
            .lock()
            .unwrap()
            .push(context.peer.clone());
        let session = self.clone();
        tokio::spawn(async move { session.refresh_roots(&context.peer).await });
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.refresh_roots(&context.peer).await;
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.host.registry.subscribe();
        changes.mark_unchanged();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if context.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        Ok(GetTaskResult::new(self.mcp_task(&request.task_id).await?))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        match self.host.manager.cancel(&request.task_id) {
            Ok(()) => Ok(()),
            Err(ManagerError::NotFound(id)) => {
                Err(McpError::invalid_params(format!("no task `{id}`"), None))
            }
            Err(err) => Err(McpError::invalid_params(err.to_string(), None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_796_169_600_123), "2026-12-01T00:00:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn root_uris_are_percent_decoded() {
        assert_eq!(percent_decode("/home/a%20b/x"), "/home/a b/x");
        assert_eq!(percent_decode("/bad%2"), "/bad%2");
    }
}
