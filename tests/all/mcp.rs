//! `subagent mcp` driven by the official MCP client SDKs: Python (PyPI
//! `mcp`) and TypeScript (npm `@modelcontextprotocol/sdk`), each over stdio
//! and over streamable HTTP, and the official Rust SDK (`rmcp`) for what a
//! script cannot do from outside (a client that vanishes). The scenarios are
//! listed in tests/mcp/CONTRACT.md; each client script asserts them and
//! reports which passed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use crate::helpers::*;

/// Every scenario of tests/mcp/CONTRACT.md.
const SCENARIOS: [&str; 11] = [
    "list-tools",
    "list-subagents",
    "foreground-progress",
    "background-await-output",
    "send-message",
    "task-stop",
    "cancel-notification",
    "mcp-tasks",
    "list-changed",
    "write-escalation",
    "malformed",
];

/// Where tests/mcp/setup.sh installs the clients.
fn clients_dir() -> PathBuf {
    repo_root().join("target").join("mcp-clients")
}

/// Install the client SDKs once per test run (the script is idempotent and
/// locks against concurrent runs).
fn setup_clients() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let done = DONE.get_or_init(|| {
        let out = Command::new(repo_root().join("tests/mcp/setup.sh"))
            .output()
            .map_err(|e| format!("cannot run tests/mcp/setup.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tests/mcp/setup.sh failed (it installs PyPI `mcp` and npm `@modelcontextprotocol/sdk`):\n{}{}",
                stdout(&out),
                stderr(&out)
            ))
        }
    });
    if let Err(err) = done {
        panic!("{err}");
    }
}

/// A registry with `echo` (may write `out/`) and `hello` (read-only), a
/// workspace, a state directory, and a bundle to add later.
struct McpFixture {
    dir: tempfile::TempDir,
}

impl McpFixture {
    fn new() -> McpFixture {
        let dir = tempfile::tempdir().unwrap();
        let agents = dir.path().join("agents");
        write_bundle(
            &agents,
            "echo",
            "echo",
            "permission_mode = \"default\"\nallowed_write_directories = [\"out\"]",
        );
        std::fs::write(
            agents.join("echo/subagent.toml"),
            std::fs::read_to_string(agents.join("echo/subagent.toml"))
                .unwrap()
                .replace(
                    "description = \"d\"",
                    "description = \"Echoes: progress N, collect N, until-cancel, log, task\"",
                ),
        )
        .unwrap();
        let hello = agents.join("hello");
        std::fs::create_dir_all(&hello).unwrap();
        std::fs::write(
            hello.join("subagent.toml"),
            format!(
                "name = \"hello\"\ndescription = \"Says hello\"\ncomponent = {:?}\n",
                subagent_host::Bundle::open(&plugin("hello"))
                    .unwrap()
                    .manifest
                    .component
                    .display()
                    .to_string()
            ),
        )
        .unwrap();
        let extra = write_bundle(dir.path(), "extra", "echo", "");
        std::fs::write(
            extra.join("subagent.toml"),
            std::fs::read_to_string(extra.join("subagent.toml"))
                .unwrap()
                .replace("name = \"extra\"", "name = \"late-arrival\"")
                .replace("description = \"d\"", "description = \"Arrived late\""),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        McpFixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The global options of the server and of the CLI that inspects it.
    fn global_args(&self) -> Vec<String> {
        vec![
            "--agents".into(),
            path(&self.path("agents")).into(),
            "--state-dir".into(),
            path(&self.path("state")).into(),
            "--cache-dir".into(),
            path(&cache_dir()).into(),
        ]
    }

    /// `subagent tasks --json` of this fixture's store.
    fn stored_task_ids(&self) -> Vec<String> {
        let mut args = self.global_args();
        args.extend([
            "tasks".into(),
            "--json".into(),
            "--limit".into(),
            "1000".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = subagent(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|task| task["id"].as_str().map(String::from))
            .collect()
    }
}

/// Run one client script over one transport and check its report.
fn drive(client: &str, transport: &str) {
    setup_clients();
    let fixture = McpFixture::new();
    let report = fixture.path("report.json");
    let mut command = match client {
        "python" => {
            let mut c = Command::new(clients_dir().join("venv/bin/python"));
            c.arg(repo_root().join("tests/mcp/python/client.py"));
            c
        }
        "node" => {
            // ESM finds packages next to the script: run a copy from there.
            let script = clients_dir()
                .join("node")
                .join(format!("client-{}-{transport}.mjs", std::process::id()));
            std::fs::copy(repo_root().join("tests/mcp/node/client.mjs"), &script).unwrap();
            let mut c = Command::new("node");
            c.arg(script);
            c
        }
        _ => unreachable!(),
    };
    command
        .env("SUBAGENT_BIN", env!("CARGO_BIN_EXE_subagent-under-test"))
        .env("SUBAGENT_ARGS", json!(fixture.global_args()).to_string())
        .env("WORKSPACE", fixture.path("ws"))
        .env("AGENTS_DIR", fixture.path("agents"))
        .env("EXTRA_BUNDLE", fixture.path("extra"))
        .env("TRANSPORT", transport)
        .env("REPORT", &report)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdin(Stdio::null());
    let out = command.output().unwrap();
    let text = format!("stdout:\n{}\nstderr:\n{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("the {client} client wrote no report ({e}):\n{text}")),
    )
    .unwrap();
    let passed: Vec<&str> = report["passed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let failed: Vec<&str> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| !passed.contains(s))
        .collect();
    assert!(
        failed.is_empty() && out.status.success(),
        "{client} over {transport}: scenarios not passed: {failed:?}\n{text}"
    );
    // Tasks launched over MCP are in the durable store, for every face.
    let ids: Vec<String> = report["task_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    assert!(ids.len() >= 5, "the client reported few task ids: {ids:?}");
    let stored = fixture.stored_task_ids();
    for id in &ids {
        assert!(
            stored.contains(id),
            "task {id} launched over MCP is not in `subagent tasks`: {stored:?}"
        );
    }
}

#[test]
fn the_python_sdk_client_over_stdio() {
    drive("python", "stdio");
}

#[test]
fn the_python_sdk_client_over_http() {
    drive("python", "http");
}

#[test]
fn the_typescript_sdk_client_over_stdio() {
    drive("node", "stdio");
}

#[test]
fn the_typescript_sdk_client_over_http() {
    drive("node", "http");
}

/// The server over stdio, spawned for the rmcp client.
fn server(fixture: &McpFixture) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"));
    command
        .args(fixture.global_args())
        .args(["mcp", "--workspace", path(&fixture.path("ws"))])
        .env("XDG_CONFIG_HOME", "/nonexistent");
    command
}

/// `subagent mcp` over stdio as a child process (killed when dropped), and
/// its (stdout, stdin) for a client. Call inside a Tokio runtime.
fn spawn_stdio(
    fixture: &McpFixture,
) -> (
    tokio::process::Child,
    (tokio::process::ChildStdout, tokio::process::ChildStdin),
) {
    let mut child = tokio::process::Command::from(server(fixture))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pipes = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
    (child, pipes)
}

fn tool(name: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone())
}

fn status_of(fixture: &McpFixture, id: &str) -> String {
    let mut args = fixture.global_args();
    args.extend(["show".into(), id.into(), "--json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = subagent(&args);
    let shown: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|_| panic!("show {id}: {}", stderr(&out)));
    shown["task"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A client that vanishes mid-call (its pipes closed, no goodbye): its
/// foreground task is cancelled, its background task runs on (here until a
/// `subagent send` from another process completes it), and then the server
/// exits by itself: no orphans, nothing left running.
#[test]
fn a_vanished_client_cancels_its_foreground_tasks_and_lets_background_ones_finish() {
    let fixture = McpFixture::new();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let mut pid = 0;
    let (background, foreground) = tokio.block_on(async {
        // The client talks over the server's pipes; dropping it closes them
        // and leaves the process to itself.
        let mut child = tokio::process::Command::from(server(&fixture))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        pid = child.id().expect("the server runs");
        let pipes = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
        let client = ().serve(pipes).await.unwrap();
        let launched = client
            .call_tool(tool(
                "task",
                json!({"subagent": "echo", "prompt": "collect 1", "run_in_background": true}),
            ))
            .await
            .unwrap();
        let background = launched.structured_content.unwrap()["task_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // A foreground call that would wait forever.
        let peer = client.peer().clone();
        tokio::spawn(async move {
            let _ = peer
                .call_tool(tool(
                    "task",
                    json!({"subagent": "echo", "prompt": "until-cancel"}),
                ))
                .await;
        });
        let foreground = loop {
            let listed = client
                .call_tool(tool(
                    "list_tasks",
                    json!({"subagent": "echo", "status": "running"}),
                ))
                .await
                .unwrap();
            let tasks = listed.structured_content.unwrap()["tasks"].clone();
            if let Some(task) = tasks
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["task_id"] != json!(background))
            {
                break task["task_id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Gone without a word: the transport (its pipes) is dropped.
        drop(client);
        (background, foreground)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_of(&fixture, &foreground) != "cancelled" {
        assert!(
            Instant::now() < deadline,
            "the foreground task of a vanished client is {}",
            status_of(&fixture, &foreground)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status_of(&fixture, &background), "running");
    assert!(alive(pid), "the server left while a background task ran");
    let mut args = fixture.global_args();
    args.extend(["send".into(), background.clone(), "done".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = subagent(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the server did not exit after its last task ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status_of(&fixture, &background), "completed");
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by tokio) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Beyond loopback the server refuses to start without a token; with one,
/// a request without it (or with a wrong one) is turned away before any
/// MCP is spoken, and so is a browser from a foreign origin.
#[test]
fn http_beyond_loopback_needs_a_bearer_token_and_checks_origins() {
    let fixture = McpFixture::new();
    let out = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"))
        .args(fixture.global_args())
        .args(["mcp", "--workspace", path(&fixture.path("ws"))])
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("SUBAGENT_MCP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("SUBAGENT_MCP_TOKEN"),
        "{}",
        stderr(&out)
    );

    let token = "a-long-enough-test-token-0123456789";
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_subagent-under-test"))
            .args(fixture.global_args())
            .args(["mcp", "--workspace", path(&fixture.path("ws"))])
            .args(["--listen", "127.0.0.1:0"])
            .env("SUBAGENT_MCP_TOKEN", token)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = listening_address(&mut child);
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let answer = |headers: &[&str]| http_post(&address, headers, initialize);
    let without = answer(&[]);
    assert!(without.starts_with("HTTP/1.1 401"), "{without}");
    let wrong = answer(&["Authorization: Bearer not-the-token-at-all-0000000000"]);
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let bearer = format!("Authorization: Bearer {token}");
    let foreign = answer(&[&bearer, "Origin: https://evil.example"]);
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    let right = answer(&[&bearer]);
    assert!(right.starts_with("HTTP/1.1 200"), "{right}");
    assert!(right.contains("\"serverInfo\""), "{right}");
}

/// A server process, killed (and reaped) when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn listening_address(child: &mut KillOnDrop) -> String {
    let child = &mut child.0;
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stderr)
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("subagent mcp: listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    url.trim_end_matches("/mcp").to_owned()
}

/// One HTTP/1.1 POST to /mcp; the response's head and the start of its body.
fn http_post(address: &str, headers: &[&str], body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Enough to see the head and the first event; an SSE stream may stay open.
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        if text.contains("serverInfo")
            || (text.contains("\r\n\r\n") && !text.starts_with("HTTP/1.1 200"))
        {
            break;
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

/// The README's client snippets (Claude Code, Cursor, Codex, opencode), as
/// written but for the checkout's path and the binary under test: each
/// command line starts a server that answers an MCP client and lists the
/// repository's plugins in `task`'s description.
#[test]
fn the_readme_client_snippets_start_a_working_server() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let snippet = |name: &str| -> String {
        let marker = format!("<!-- mcp-snippet: {name} -->");
        let start = readme
            .find(&marker)
            .unwrap_or_else(|| panic!("README has no {marker}"));
        let block = &readme[start + marker.len()..];
        let body = &block[block.find('\n').unwrap() + 1..];
        let body = &body[body.find('\n').unwrap() + 1..];
        body[..body.find("```").unwrap()].to_owned()
    };
    let as_strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let mut command_lines: Vec<(&str, Vec<String>)> = Vec::new();
    let claude = snippet("claude");
    let after = claude
        .trim()
        .split_once(" -- ")
        .expect("claude mcp add NAME -- COMMAND")
        .1;
    command_lines.push((
        "claude",
        after.split_whitespace().map(String::from).collect(),
    ));
    let cursor: Value = serde_json::from_str(&snippet("cursor")).expect("cursor JSON");
    let server = &cursor["mcpServers"]["subagents"];
    let mut line = vec![server["command"].as_str().unwrap().to_owned()];
    line.extend(as_strings(&server["args"]));
    command_lines.push(("cursor", line));
    let codex: toml::Table = toml::from_str(&snippet("codex")).expect("codex TOML");
    let server = &codex["mcp_servers"]["subagents"];
    let mut line = vec![server["command"].as_str().unwrap().to_owned()];
    line.extend(
        server["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned()),
    );
    command_lines.push(("codex", line));
    let opencode: Value = serde_json::from_str(&snippet("opencode")).expect("opencode JSON");
    let server = &opencode["mcp"]["servers"]["subagents"];
    assert_eq!(server["type"], "local");
    command_lines.push(("opencode", as_strings(&server["command"])));

    let plugins = path(&repo_root().join("plugins")).to_owned();
    let workspace = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    for (client, line) in command_lines {
        assert_eq!(line[0], "subagent", "{client}: {line:?}");
        let args: Vec<String> = line[1..]
            .iter()
            .map(|a| a.replace("/path/to/subagent-host/plugins", &plugins))
            .collect();
        tokio.block_on(async {
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_subagent-under-test"))
                .args(&args)
                .args(["--state-dir", path(state.path())])
                .args(["--cache-dir", path(&cache_dir())])
                .current_dir(workspace.path())
                .env("XDG_CONFIG_HOME", "/nonexistent")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let pipes = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
            let service = ().serve(pipes).await.unwrap();
            let tools = service.list_all_tools().await.unwrap();
            let task = tools
                .iter()
                .find(|t| t.name == "task")
                .expect("a task tool");
            let description = task.description.as_deref().unwrap_or_default();
            for plugin in ["deep-search", "hello", "todo-report"] {
                assert!(
                    description.contains(&format!("- {plugin}: ")),
                    "{client}: `task` does not list {plugin}:\n{description}"
                );
            }
            drop(service);
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .expect("the server exits when its client leaves")
                .unwrap();
            assert!(status.success(), "{client}: {status}");
        });
    }
}

/// A client (on the handshake-era protocol, where roots live) that offers
/// one root.
struct RootsClient {
    root: String,
}

// Roots are deprecated from 2026-07-28 (SEP-2577); this client is older.
#[allow(deprecated)]
impl rmcp::ClientHandler for RootsClient {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
        ClientConfig::new(
            ClientCapabilities::builder().enable_roots().build(),
            Implementation::new("roots-test", "1"),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn list_roots(
        &self,
        _context: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ListRootsResult, rmcp::ErrorData> {
        Ok(rmcp::model::ListRootsResult::new(vec![
            rmcp::model::Root::new(self.root.clone()),
        ]))
    }
}

/// Where the client offers roots, a task's workspace must lie inside them,
/// from the very first call: the server's own workspace is no exception.
#[test]
fn a_workspace_must_lie_inside_the_clients_roots() {
    let fixture = McpFixture::new();
    let ws = fixture.path("ws");
    std::fs::create_dir_all(ws.join("inner dir")).unwrap();
    std::fs::create_dir_all(ws.join("outer")).unwrap();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let (_child, pipes) = spawn_stdio(&fixture);
        let client = RootsClient {
            root: format!("file://{}", path(&ws.join("inner dir")).replace(' ', "%20")),
        }
        .serve(pipes)
        .await
        .unwrap();
        let hello = |workspace: Option<PathBuf>| {
            let mut arguments = json!({"subagent": "hello", "prompt": "hi"});
            if let Some(workspace) = workspace {
                arguments["workspace"] = json!(path(&workspace));
            }
            tool("task", arguments)
        };
        for outside in [None, Some(ws.join("outer")), Some(ws.clone())] {
            let refused = client.call_tool(hello(outside.clone())).await.unwrap();
            assert_eq!(refused.is_error, Some(true), "{outside:?}: {refused:?}");
            let text = format!("{:?}", refused.content);
            assert!(
                text.contains("outside the client's roots"),
                "{outside:?}: {text}"
            );
        }
        let inside = client
            .call_tool(hello(Some(ws.join("inner dir"))))
            .await
            .unwrap();
        assert_eq!(
            inside.structured_content.as_ref().unwrap()["status"],
            "completed",
            "{inside:?}"
        );
    });
}

fn structured(result: rmcp::model::CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{result:?}");
    result.structured_content.expect("structured content")
}

/// A task another process runs (`subagent run --background`, or one this
/// server has forgotten) is still the MCP client's: awaited, messaged,
/// read and listed through the store.
#[test]
fn tasks_of_another_process_are_awaited_messaged_and_read_through_the_store() {
    let fixture = McpFixture::new();
    let mut args = fixture.global_args();
    args.extend(
        [
            "run",
            "echo",
            "collect 1",
            "--workspace",
            path(&fixture.path("ws")),
            "--timeout",
            "120s",
            "--background",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = subagent(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_of(&fixture, &id) != "running" {
        assert!(Instant::now() < deadline, "{id} never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let (_child, pipes) = spawn_stdio(&fixture);
        let client = ().serve(pipes).await.unwrap();
        let waited = structured(
            client
                .call_tool(tool(
                    "await_tasks",
                    json!({"task_ids": [id], "timeout": 0.2}),
                ))
                .await
                .unwrap(),
        );
        assert_eq!(waited["pending"], json!([id]), "{waited}");
        let sent = structured(
            client
                .call_tool(tool(
                    "send_message",
                    json!({"task_id": id, "message": "from afar"}),
                ))
                .await
                .unwrap(),
        );
        assert_eq!(sent["delivered"], true);
        let waited = structured(
            client
                .call_tool(tool(
                    "await_tasks",
                    json!({"task_ids": [id], "timeout": "30s"}),
                ))
                .await
                .unwrap(),
        );
        let done = &waited["completed"][0];
        assert_eq!(done["task_id"], json!(id), "{waited}");
        assert_eq!(done["status"], "completed");
        assert_eq!(done["summary"], "from afar");
        let output = structured(
            client
                .call_tool(tool("task_output", json!({"task_id": id})))
                .await
                .unwrap(),
        );
        assert_eq!(output["status"], "completed", "{output}");
        let listed = structured(
            client
                .call_tool(tool("list_tasks", json!({"subagent": "echo"})))
                .await
                .unwrap(),
        );
        assert!(
            listed["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["task_id"] == json!(id)),
            "{listed}"
        );
        let refused = client
            .call_tool(tool(
                "send_message",
                json!({"task_id": id, "message": "late"}),
            ))
            .await
            .unwrap();
        assert_eq!(refused.is_error, Some(true));
        assert!(format!("{:?}", refused.content).contains("not running"));
    });
}

/// An rmcp client over streamable HTTP.
async fn http_client(url: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let transport = rmcp::transport::StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            url.to_owned(),
        ),
    );
    ().serve(transport).await.unwrap()
}

/// Every client of one server shares its concurrency limits: two HTTP
/// clients launching two tasks each under `--per-key-default 2` get two
/// running and two queued, and stopping a running one starts a queued one.
#[test]
fn clients_of_one_server_share_its_concurrency_limits() {
    let fixture = McpFixture::new();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_subagent-under-test"))
            .args(fixture.global_args())
            .args(["mcp", "--workspace", path(&fixture.path("ws"))])
            .args(["--listen", "127.0.0.1:0", "--per-key-default", "2"])
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{}/mcp", listening_address(&mut child));
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let (a, b) = (http_client(&url).await, http_client(&url).await);
        let mut ids = Vec::new();
        for client in [&a, &b, &a, &b] {
            let launched = structured(
                client
                    .call_tool(tool(
                        "task",
                        json!({"subagent": "echo", "prompt": "until-cancel", "run_in_background": true}),
                    ))
                    .await
                    .unwrap(),
            );
            ids.push(launched["task_id"].as_str().unwrap().to_owned());
        }
        let statuses = |client: &rmcp::service::RunningService<rmcp::RoleClient, ()>| {
            let client = client.peer().clone();
            async move {
                let listed = client
                    .call_tool(tool("list_tasks", json!({"subagent": "echo"})))
                    .await
                    .unwrap();
                let mut counts = std::collections::BTreeMap::new();
                for task in listed.structured_content.unwrap()["tasks"].as_array().unwrap() {
                    *counts
                        .entry(task["status"].as_str().unwrap().to_owned())
                        .or_insert(0) += 1;
                }
                counts
            }
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let counts = statuses(&b).await;
            if counts.get("running") == Some(&2) && counts.get("queued") == Some(&2) {
                break;
            }
            assert!(Instant::now() < deadline, "not 2 running and 2 queued: {counts:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The first launched runs; stopping it lets the next in line start.
        let stopped = structured(
            a.call_tool(tool("task_stop", json!({"task_id": ids[0]})))
                .await
                .unwrap(),
        );
        assert_eq!(stopped["status"], "cancelled", "{stopped}");
        loop {
            let counts = statuses(&a).await;
            if counts.get("running") == Some(&2) && counts.get("queued") == Some(&1) {
                break;
            }
            assert!(Instant::now() < deadline, "no queued task started: {counts:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for id in &ids[1..] {
            let _ = b.call_tool(tool("task_stop", json!({"task_id": id}))).await;
        }
    });
}
