//! Run subagents from Rust through the task manager, the way the `subagent`
//! CLI does: launch in the background, watch events, await the result.
//!
//! ```text
//! cargo run -p subagent-embed-example -- plugins/deep-search . "TODO"
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use subagent_host::tasks::{
    EventKind, LaunchRequest, ManagerConfig, StreamItem, SubagentRef, TaskManager,
};
use subagent_host::{Runtime, RuntimeConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: subagent-embed-example BUNDLE WORKSPACE PROMPT";
    let bundle = PathBuf::from(args.next().context(usage)?);
    let workspace = PathBuf::from(args.next().context(usage)?);
    let prompt = args.next().context(usage)?;

    // One runtime (engine, artifact cache) and one manager serve many tasks.
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let manager = TaskManager::new(runtime, ManagerConfig::default())?;

    // Launch in the background: the id comes back at once.
    let id = manager
        .launch(LaunchRequest::new(
            SubagentRef::Path(bundle),
            prompt,
            workspace,
        ))
        .await?;

    // Watch its events until the terminal one.
    let mut events = manager.subscribe(&id)?;
    while let Some(StreamItem::Event(event)) = events.next().await {
        if let EventKind::Progress { progress } = &event.kind {
            eprintln!("[{id}] {progress}");
        }
    }

    // Results stay available: await as often as you like.
    let answer = manager.await_tasks(std::slice::from_ref(&id), None).await?;
    let (_, result) = &answer.completed[0];
    println!("{} {}", id, result.status);
    match (&result.summary, &result.error) {
        (Some(summary), _) => println!("{summary}"),
        (None, Some(error)) => println!("error: {error}"),
        (None, None) => {}
    }
    Ok(())
}
