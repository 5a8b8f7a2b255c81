//! The MCP server's handler: one client's session, what it told us (roots,
//! log level), and the dispatch of its calls (see [`super::calls`]).

#![allow(deprecated)] // logging and roots: deprecated by SEP-2577 for 2026-07-28, still served to older clients

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    GetTaskParams, GetTaskResult, Implementation, ListToolsResult, LoggingLevel,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, Peer, ServerHandler};
use serde_json::json;

use super::host::Host;
use super::tools::{self, ArgError, Args};
use super::wire::{complete, percent_decode};
use crate::tasks::ManagerError;

/// One client's session (with the 2026-07-28 protocol over HTTP, one
/// request's): the shared host plus what this client told us.
#[derive(Clone)]
pub struct Session {
    pub(super) host: Arc<Host>,
    /// The client's roots, when it offers them: workspaces must lie inside.
    pub(super) roots: Arc<Mutex<Option<Vec<PathBuf>>>>,
    /// The least severe log level the client wants (`logging/setLevel`).
    pub(super) log_level: Arc<Mutex<LoggingLevel>>,
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
    pub(super) async fn workspace(
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
