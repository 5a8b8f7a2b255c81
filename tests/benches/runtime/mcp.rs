//! What `subagent mcp` adds (issue 11): a no-op task through `subagent mcp`
//! over stdio — the official Rust SDK's client (`rmcp`) calling `task` and
//! waiting for the result — against the same task through `TaskManager::run`
//! in this process, sample by sample in one loop. Both sides run with a
//! durable store, the same registry and workspace.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::json;
use subagent_host::store::Store;
use subagent_host::tasks::{LaunchRequest, ManagerConfig, SubagentRef, TaskManager};
use subagent_host::{Runtime, TaskStatus};

use super::{Samples, format_time};

/// The aim of issue 11: MCP adds at most this at p50.
const TARGET: Duration = Duration::from_micros(100);

pub struct Mcp {
    pub over_mcp: Samples,
    pub manager: Samples,
    /// A tool call that runs no task (`await_tasks` with no ids, refused at
    /// once): the protocol's own round trip through both processes.
    pub round_trip: Samples,
    /// A line of the size of that call written to `cat` and read back: what
    /// any round trip through another process's pipes costs here, no MCP.
    pub pipe_echo: Samples,
}

pub fn measure(scratch: &Path, tasks: usize) -> Mcp {
    let dir = scratch.join("mcp");
    let agents = dir.join("agents");
    let workspace = dir.join("ws");
    std::fs::create_dir_all(agents.join("noop")).unwrap();
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(
        agents.join("noop/subagent.toml"),
        format!(
            "name = \"noop\"\ndescription = \"does nothing\"\ncomponent = {:?}\n",
            subagent_tests::guest("noop").display().to_string()
        ),
    )
    .unwrap();
    let cache = dir.join("cache");
    // The client and the in-process manager share one thread, as the
    // server's calls and their tasks do (`subagent mcp` over stdio).
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_subagent-under-test"))
            .arg("--agents")
            .arg(&agents)
            .arg("--state-dir")
            .arg(dir.join("mcp-state"))
            .arg("--cache-dir")
            .arg(&cache)
            .arg("mcp")
            .arg("--workspace")
            .arg(&workspace)
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("subagent mcp");
        let pipes = (server.stdout.take().unwrap(), server.stdin.take().unwrap());
        let client = ().serve(pipes).await.expect("MCP handshake");

        let runtime = std::sync::Arc::new(
            Runtime::new(subagent_host::RuntimeConfig {
                cache_dir: Some(cache.clone()),
                ..Default::default()
            })
            .unwrap(),
        );
        let manager = TaskManager::builder(runtime)
            .config(ManagerConfig {
                agents: vec![agents.clone()],
                ..ManagerConfig::default()
            })
            .store(Store::open(&dir.join("manager-state")).unwrap())
            .build()
            .unwrap();

        let call = CallToolRequestParams::new("task").with_arguments(
            json!({"subagent": "noop", "prompt": "x"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let request =
            || LaunchRequest::new(SubagentRef::Name("noop".into()), "x", workspace.clone());
        let empty_await = CallToolRequestParams::new("await_tasks")
            .with_arguments(json!({"task_ids": []}).as_object().unwrap().clone());
        let mut result = Mcp {
            over_mcp: Samples::default(),
            manager: Samples::default(),
            round_trip: Samples::default(),
            pipe_echo: Samples::default(),
        };
        let mut cat = tokio::process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cat");
        let mut cat_in = cat.stdin.take().unwrap();
        let mut cat_out = tokio::io::BufReader::new(cat.stdout.take().unwrap());
        let line = format!("{}\n", json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "await_tasks", "arguments": {"task_ids": []}}}));
        let mut echoed = String::new();
        // Warm both (component compiled and cached, pages touched).
        for _ in 0..20 {
            client.call_tool(call.clone()).await.unwrap();
            manager.run(request()).await.unwrap();
        }
        for _ in 0..tasks {
            let start = Instant::now();
            let answer = client.call_tool(call.clone()).await.unwrap();
            result.over_mcp.push(start.elapsed());
            let status = answer
                .structured_content
                .as_ref()
                .map(|v| v["status"].clone());
            assert_eq!(
                status,
                Some(json!("completed")),
                "a no-op task over MCP: {answer:?}"
            );

            let start = Instant::now();
            let (_, done) = manager.run(request()).await.unwrap();
            result.manager.push(start.elapsed());
            assert_eq!(done.status, TaskStatus::Completed);

            let start = Instant::now();
            let refused = client.call_tool(empty_await.clone()).await.unwrap();
            result.round_trip.push(start.elapsed());
            assert_eq!(refused.is_error, Some(true), "await_tasks [] is refused");

            use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
            echoed.clear();
            let start = Instant::now();
            cat_in.write_all(line.as_bytes()).await.unwrap();
            cat_out.read_line(&mut echoed).await.unwrap();
            result.pipe_echo.push(start.elapsed());
            assert_eq!(echoed, line, "cat echoes the line");
        }
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
        manager.shutdown(Duration::from_secs(1)).await;
        result
    })
}

pub fn print(mcp: &Mcp) {
    let (over, direct) = (mcp.over_mcp.p50(), mcp.manager.p50());
    let added = over.saturating_sub(direct);
    println!();
    println!(
        "subagent mcp (issue 11): a no-op task, client -> result, over stdio against TaskManager::run in-process, sample by sample ({} each, durable store on both)",
        mcp.over_mcp.len()
    );
    println!(
        "  TaskManager::run:              p50 {:>9}  p99 {:>9}",
        format_time(direct),
        format_time(mcp.manager.p99())
    );
    println!(
        "  task over subagent mcp (rmcp): p50 {:>9}  p99 {:>9}",
        format_time(over),
        format_time(mcp.over_mcp.p99())
    );
    println!(
        "  a tool call that runs no task:  p50 {:>9}  p99 {:>9}  (the protocol round trip: JSON-RPC over the pipes, both processes)",
        format_time(mcp.round_trip.p50()),
        format_time(mcp.round_trip.p99())
    );
    println!(
        "  the same bytes echoed by `cat`: p50 {:>9}  p99 {:>9}  (a round trip through another process's pipes, no MCP)",
        format_time(mcp.pipe_echo.p50()),
        format_time(mcp.pipe_echo.p99())
    );
    println!(
        "  MCP adds {} at p50 (target <= {}: {})",
        format_time(added),
        format_time(TARGET),
        if added <= TARGET { "met" } else { "NOT met" }
    );
}
