//! `subagent mcp`: the task manager as a Model Context Protocol server, so
//! any agent client (Claude Code, Cursor, Codex, opencode, …) launches,
//! awaits, messages and stops sandboxed subagents.
//!
//! A face, not a second manager: every call goes through the one
//! [`TaskManager`](crate::tasks::TaskManager) of the process and its prepare
//! path, so a call widens no grant, every task is in the store, and the
//! concurrency limits hold across all clients. Transports: stdio (what
//! clients spawn) and streamable HTTP ([`http`]).
//!
//! When a client goes away, its foreground `task` calls are cancelled (nobody
//! is left to read their result); background tasks (and MCP tasks, which the
//! client polls) run on to their end, and `subagent mcp` over stdio exits once
//! they have. SIGINT or SIGTERM cancels everything and exits after the grace
//! period.

mod calls;
mod host;
pub mod http;
mod server;
pub mod tools;
mod wire;

use std::sync::Arc;

use rmcp::ServiceExt;

pub use host::Host;
pub use server::Session;

/// Serve one client over this process's stdin and stdout until it closes
/// them (or the process is told to stop), then wait for its background tasks.
///
/// # Errors
///
/// When the client's opening handshake fails.
pub async fn serve_stdio(host: Arc<Host>) -> anyhow::Result<()> {
    host.watch_registries();
    let session = Session::new(host.clone());
    let running = session
        .serve(rmcp::transport::io::stdio_pipes())
        .await
        .map_err(|err| anyhow::anyhow!("the MCP client's handshake failed: {err}"))?;
    let stop = running.cancellation_token();
    tokio::select! {
        _ = running.waiting() => {
            host.cancel_foreground();
            // Background tasks finish unless the process is told to stop.
            tokio::select! {
                () = host.drain() => {}
                () = stop_signal() => {}
            }
        }
        () = stop_signal() => stop.cancel(),
    }
    host.manager()
        .shutdown(host.manager().config().cancel_grace)
        .await;
    Ok(())
}

/// SIGINT or SIGTERM.
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
