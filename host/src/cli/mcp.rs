//! `subagent mcp`: serve the task manager to agent clients over the Model
//! Context Protocol (see [`crate::mcp`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{ConcurrencyArgs, Global, workspace};
use crate::mcp::http::{HttpOptions, PATH, TOKEN_VAR};
use crate::mcp::{Host, serve_stdio};
use crate::tasks::TaskManager;

/// Serve subagents to agent clients (Claude Code, Cursor, Codex, opencode, ...) over MCP
///
/// Over stdio by default (what clients spawn); `--listen` serves streamable
/// HTTP instead. Tools: task, await_tasks, send_message, task_stop,
/// task_output, list_tasks, list_subagents.
#[derive(Args, Debug)]
pub struct McpArgs {
    /// The workspace subagents work on; a call may name one inside it (or inside the client's roots) [default: the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Serve streamable HTTP on ADDR (e.g. 127.0.0.1:8765; port 0 picks one) at /mcp instead of stdio. Beyond loopback, $SUBAGENT_MCP_TOKEN must hold a bearer token
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// With --listen: also allow browser requests from ORIGIN (e.g. https://app.example.com:443; repeatable)
    #[arg(long = "allow-origin", value_name = "ORIGIN", requires = "listen")]
    allow_origin: Vec<String>,
    /// Shared by every client of this server.
    #[command(flatten)]
    limits: ConcurrencyArgs,
}

/// Ended task trees the server keeps in memory; older ones are in the store.
const ENDED_IN_MEMORY: usize = 1000;

pub fn run(args: McpArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let workspace = workspace(args.workspace)?;
    let http = args.listen.map(|listen| HttpOptions {
        listen,
        token: std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty()),
        allowed_origins: args.allow_origin,
    });
    if let Some(http) = &http {
        http.check()?;
    }
    let store = global.store()?;
    let models = global.models(None, None)?;
    let runtime = Arc::new(global.runtime()?);
    // One client over stdio: its calls and their tasks' events stay on one
    // thread (tasks past their first slice move to the blocking pool, as in
    // `subagent run`). Many HTTP clients get a worker per core.
    let tokio = if http.is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    tokio.block_on(async {
        // A long-lived host: ended tasks are read from the store once
        // they are old (tools fall back to it), so memory stays bounded.
        let mut config = crate::tasks::ManagerConfig {
            ended_in_memory: Some(ENDED_IN_MEMORY),
            ..global.manager_config()
        };
        args.limits.apply(&mut config);
        let manager = TaskManager::builder(runtime)
            .config(config)
            .store(store.clone())
            .models(models)
            .build()?;
        let host = Host::new(manager, Some(store), &workspace, global.agents.clone())?;
        match http {
            None => serve_stdio(host).await,
            Some(options) => {
                crate::mcp::http::serve(host, options, |bound| {
                    errln!("subagent mcp: listening on http://{bound}{PATH}");
                })
                .await
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
