//! The Python SDK (plugins/sdk-python) and its example, built with componentize-py.
//!
//! tests/sdks/python/setup.sh installs the pinned componentize-py into
//! target/sdk-python/venv; with its `bin` on PATH, `subagent build` runs each
//! bundle's `[build]` command. Three components, each built once per test
//! run (and only rebuilt when a .py or .wit is newer, since every build of an
//! 18 MB Python component is compiled afresh): the example
//! `plugins/py-line-stats`, the test guest `tests/sdks/python/guest` (one
//! behaviour per prompt) and the template `subagent new --lang python`
//! writes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::http_server::{Canned, TestServer};

/// Long enough for a cold build and compile of an 18 MB component.
const LIMIT: Duration = Duration::from_secs(300);

/// `PATH` with the venv of tests/sdks/python/setup.sh first, installed once
/// per test run (the script is idempotent and locks against concurrent runs).
fn venv_path() -> &'static str {
    static PATH: OnceLock<Result<String, String>> = OnceLock::new();
    let path = PATH.get_or_init(|| {
        let script = repo_root().join("tests/sdks/python/setup.sh");
        let out = Command::new(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "tests/sdks/python/setup.sh failed (it installs PyPI `componentize-py` into target/sdk-python/venv):\n{}{}",
                stdout(&out),
                stderr(&out)
            ));
        }
        let bin = repo_root().join("target/sdk-python/venv/bin");
        Ok(format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ))
    });
    path.as_deref().unwrap_or_else(|err| panic!("{err}"))
}

/// The CLI with the venv on PATH (for `[build]` commands), ended after [`LIMIT`].
fn cli(args: &[&str]) -> Output {
    let mut cmd = subagent_command(args);
    cmd.env("PATH", venv_path());
    output_within(cmd, LIMIT).unwrap_or_else(|e| panic!("subagent {args:?}: {e}"))
}

/// `subagent build <bundle>`: runs its `[build]` command and compiles the
/// component into the shared artifact cache, so the runs after it start at once.
fn build(bundle: &Path) {
    let out = cli(&["build", path(bundle)]);
    assert_eq!(
        code(&out),
        0,
        "building {} failed:\n{}{}",
        bundle.display(),
        stdout(&out),
        stderr(&out)
    );
}

/// The example bundle, built once.
fn example() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let bundle = repo_root().join("plugins/py-line-stats");
        build(&bundle);
        bundle
    })
}

/// The SDK's test guest, built once.
fn guest() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let bundle = repo_root().join("tests/sdks/python/guest");
        build(&bundle);
        bundle
    })
}

/// Run `bundle` with `--json`; the exit code, the result and the output.
fn run_json(bundle: &Path, workspace: &Path, prompt: &str, extra: &[&str]) -> (i32, Value, Output) {
    let mut args = vec![
        "run",
        path(bundle),
        prompt,
        "--workspace",
        path(workspace),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = cli(&args);
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "`subagent run --json` printed no JSON ({e}):\n{}{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (code(&out), result, out)
}

/// The guest's failure for `prompt`: exit code 1, and the result's error.
fn guest_error(prompt: &str) -> (String, String, Output) {
    let fixture = Fixture::plain();
    let (code, result, out) = run_json(guest(), &fixture.workspace, prompt, &[]);
    assert_eq!(code, 1, "`{prompt}` should fail: {result:#}");
    assert_eq!(result["status"], "failed", "{result:#}");
    (
        result["error"]["kind"].as_str().unwrap().to_owned(),
        result["error"]["message"].as_str().unwrap().to_owned(),
        out,
    )
}

/// A workspace for the line counter: text files of several kinds, a binary,
/// and directories it must skip.
fn line_fixture() -> Fixture {
    let fixture = Fixture::plain(); // readme.txt (1 line), src/lib.rs (1 line)
    let ws = &fixture.workspace;
    for dir in ["docs", ".git", "node_modules/x", "target"] {
        std::fs::create_dir_all(ws.join(dir)).unwrap();
    }
    std::fs::write(ws.join("src/util.rs"), "pub fn a() {}\n\npub fn b() {}\n").unwrap();
    std::fs::write(ws.join("docs/guide.md"), "# Guide\n\nUse it.\n").unwrap();
    std::fs::write(ws.join("Makefile"), "all:\n\techo hi").unwrap();
    std::fs::write(ws.join("logo.png"), b"\x89PNG\0\0\0\rIHDR").unwrap();
    std::fs::write(ws.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(ws.join("node_modules/x/index.js"), "a\nb\nc\n").unwrap();
    std::fs::write(ws.join("target/gen.rs"), "a\nb\nc\n").unwrap();
    fixture
}

#[test]
fn the_example_counts_lines_per_extension_and_writes_only_its_report() {
    let fixture = line_fixture();
    let before = fixture.state_except(&["reports"]);
    let bundle = example();

    // As a user runs it: `--build` (the .wasm is up to date, so it is kept).
    let out = cli(&[
        "run",
        path(bundle),
        ".",
        "--build",
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out)
            .contains("Wrote reports/line-stats.md: 10 lines in 5 files (.rs 4, .md 3, (none) 2)"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("is up to date"), "{}", stderr(&out));

    let report = std::fs::read_to_string(fixture.workspace.join("reports/line-stats.md")).unwrap();
    assert!(
        report.starts_with(
            "# Line counts: `.`\n\n10 lines (2 blank) in 5 text files; 1 binary file skipped."
        ),
        "{report}"
    );
    assert!(report.contains("| `.rs` | 2 | 4 | 1 | 42 |"), "{report}");
    assert!(
        report.contains("| **total** | 5 | 10 | 2 | 88 |"),
        "{report}"
    );
    // Nothing else changed, in the workspace or next to it.
    assert_eq!(fixture.state_except(&["reports"]), before);

    // Again, as JSON: the report in reports/ is not counted, and is rewritten.
    let (code, result, _) = run_json(bundle, &fixture.workspace, ".", &[]);
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(
        result["data"],
        json!({
            "root": ".",
            "files": 5,
            "lines": 10,
            "blank": 2,
            "binary": 1,
            "by_extension": {
                "(none)": {"files": 1, "lines": 2, "blank": 0, "bytes": 13},
                ".md": {"files": 1, "lines": 3, "blank": 1, "bytes": 17},
                ".rs": {"files": 2, "lines": 4, "blank": 1, "bytes": 42},
                ".txt": {"files": 1, "lines": 1, "blank": 0, "bytes": 16},
            },
            "report": "reports/line-stats.md",
        })
    );
    assert_eq!(
        result["files"]["modified"],
        json!([{"path": "reports/line-stats.md", "kind": "file"}])
    );
    assert_eq!(result["files"]["created"], json!([]));
}

#[test]
fn the_example_scans_one_directory_and_writes_nothing_when_readonly() {
    let fixture = line_fixture();
    let before = fixture.state_except(&[]);
    let (code, result, _) = run_json(example(), &fixture.workspace, "src", &["--readonly"]);
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(
        result["summary"],
        "Read-only run, no report written: 4 lines in 2 files (.rs 4)"
    );
    assert_eq!(result["data"]["report"], Value::Null);
    assert_eq!(
        fixture.state_except(&[]),
        before,
        "a read-only run changed files"
    );
}

#[test]
fn invalid_input_maps_to_the_invalid_input_error() {
    let fixture = Fixture::plain();
    let (code, result, _) = run_json(example(), &fixture.workspace, "no/such/dir", &[]);
    assert_eq!(code, 1, "{result:#}");
    assert_eq!(
        result["error"],
        json!({"kind": "invalid-input", "message": "no such directory: no/such/dir"})
    );
    let (code, result, _) = run_json(example(), &fixture.workspace, "../outside", &[]);
    assert_eq!(code, 1, "{result:#}");
    assert_eq!(result["error"]["kind"], "invalid-input");

    // Raised by the guest's own code, with its own message.
    let (kind, message, _) = guest_error("invalid this");
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("invalid-input", "cannot do 'this'")
    );
}

#[test]
fn a_denied_write_is_a_python_permission_error_and_leaves_no_file() {
    let fixture = Fixture::plain();
    let before = fixture.state_except(&["out"]);
    for (target, error) in [
        ("src/new.txt", "PermissionError"),
        ("readme.txt", "PermissionError"),
        ("../outside/new.txt", "PermissionError"),
        ("/tmp/new.txt", "FileNotFoundError"),
    ] {
        let (code, result, _) =
            run_json(guest(), &fixture.workspace, &format!("write {target}"), &[]);
        assert_eq!(code, 0, "{result:#}");
        assert_eq!(result["data"]["ok"], false, "writing {target}: {result:#}");
        assert_eq!(
            result["data"]["error"], error,
            "writing {target}: {result:#}"
        );
        assert_eq!(result["files"]["created"], json!([]), "{result:#}");
    }
    assert_eq!(fixture.state_except(&["out"]), before);
    assert!(!fixture.root.path().join("outside/new.txt").exists());

    // The grant itself works.
    let (code, result, _) = run_json(guest(), &fixture.workspace, "write out/new.txt", &[]);
    assert_eq!(
        (code, &result["data"]["ok"]),
        (0, &json!(true)),
        "{result:#}"
    );
    assert_eq!(
        std::fs::read_to_string(fixture.workspace.join("out/new.txt")).unwrap(),
        "written by the python guest\n"
    );
}

#[test]
fn an_uncaught_exception_fails_with_its_headline_and_logs_the_traceback() {
    let fixture = Fixture::plain();
    let out = cli(&[
        "run",
        path(guest()),
        "raise",
        "--workspace",
        path(&fixture.workspace),
    ]);
    let (text, log) = (stdout(&out), stderr(&out));
    assert_eq!(code(&out), 1, "{text}{log}");
    assert!(
        text.contains("error[failed]: ValueError: no such directory: src\n"),
        "{text}"
    );
    // The whole traceback is in the task's log, not the headline.
    assert!(
        log.contains("[py-guest] error: Traceback (most recent call last):"),
        "{log}"
    );
    assert!(log.contains("in find_directory"), "{log}");
    for trap in ["wasm backtrace", "unreachable", "trap"] {
        assert!(!text.contains(trap) && !log.contains(trap), "{text}{log}");
    }

    let (kind, message, _) = guest_error("raise");
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("failed", "ValueError: no such directory: src")
    );
    // `Failed(msg)` is exactly msg; the SDK's own errors say what failed.
    assert_eq!(guest_error("failed gave up").1, "gave up");
    assert_eq!(
        guest_error("uncaught-model").1,
        "denied: subagent `py-guest` may not call models: add \"model\" to `tools` in its manifest"
    );
    assert_eq!(
        guest_error("none").1,
        "run() returned NoneType; return an Outcome or a str"
    );
    assert!(
        guest_error("bad-data")
            .1
            .starts_with("the outcome's data is not JSON: "),
    );
    // KeyboardInterrupt while the task is not cancelled is just an exception.
    assert_eq!(guest_error("interrupt").1, "KeyboardInterrupt");
}

#[test]
fn sys_exit_ends_the_run_with_its_status() {
    let (kind, message, _) = guest_error("exit 3");
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("failed", "exited with status 3")
    );
    assert_eq!(guest_error("exit no input given").1, "no input given");

    let fixture = Fixture::plain();
    let (code, result, _) = run_json(guest(), &fixture.workspace, "exit 0", &[]);
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(result["summary"], "exited with status 0");
}

#[test]
fn sdk_calls_reach_the_host() {
    let fixture = Fixture::plain();
    let (code, result, out) = run_json(guest(), &fixture.workspace, "sdk", &[]);
    assert_eq!(code, 0, "{result:#}");
    let data = &result["data"];
    assert!(
        data["python"].as_str().unwrap().starts_with("3."),
        "{data:#}"
    );
    assert_eq!(data["next"], Value::Null);
    assert_eq!(data["waited"], Value::Null);
    assert_eq!(data["cancelled"], false);
    // Without the grants, both capabilities answer `denied`, as exceptions.
    assert_eq!(data["launch"]["kind"], "denied");
    assert_eq!(data["launch"]["failed"], true);
    assert!(
        data["launch"]["text"]
            .as_str()
            .unwrap()
            .starts_with("denied: subagent `py-guest` may not launch subagents"),
        "{data:#}"
    );
    assert_eq!(data["complete"]["kind"], "denied");
    assert_eq!(result["usage"]["rounds"], 1);
    let log = stderr(&out);
    for line in [
        "[py-guest] info: info line",
        "[py-guest] warn: warn line",
        "[py-guest] error: error line",
        "[py-guest] a note",
        "[py-guest] round 1",
        "[py-guest] read_file {\"path\": \"readme.txt\"}",
    ] {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }
}

#[test]
fn children_launch_and_await_real_subagents() {
    // The guest's component under a manifest that grants `subagents`; the
    // children (`hello`) are found in the plugins registry.
    let fixture = Fixture::plain();
    let dir = tempfile::tempdir().unwrap();
    let component = repo_root().join("target/sdk-python/py-guest.wasm");
    guest();
    std::fs::write(
        dir.path().join("subagent.toml"),
        format!(
            "name = \"py-parent\"\ndescription = \"d\"\ncomponent = {:?}\ntools = [\"subagents\"]\n",
            path(&component)
        ),
    )
    .unwrap();
    let plugins = repo_root().join("plugins");
    let (code, result, _) = run_json(
        dir.path(),
        &fixture.workspace,
        "children python",
        &["--agents", path(&plugins)],
    );
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(
        result["data"],
        json!({
            "children": [
                {"status": "completed", "summary": "Hello, python! The workspace has 2 top-level entries."},
                {"status": "completed", "summary": "Hello, again! The workspace has 2 top-level entries."},
            ],
            "pending": [],
            "missing": [],
            "send": "not found",
        })
    );
}

/// An OpenAI chat-completions answer from `scripted-2024`.
fn completion(message: Value, finish_reason: &str, usage: (u64, u64)) -> Canned {
    Canned::openai_chat("scripted-2024", message, finish_reason, usage)
}

#[test]
fn model_calls_send_the_history_and_return_the_reply() {
    // Round 1 calls `lookup` twice (the second call without arguments);
    // round 2, given both results, answers.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![
        completion(
            json!({"role": "assistant", "content": "Looking it up.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{\"query\": \"capital of France\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "lookup", "arguments": ""}},
            ]}),
            "tool_calls",
            (12, 7),
        ),
        completion(
            json!({"role": "assistant", "content": "Paris."}),
            "stop",
            (30, 2),
        ),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_model = \"mock\"\n\n[models.mock]\nprovider = \"openai\"\nbase_url = \"{}/v1\"\nmodel = \"scripted\"\nmax_retries = 0\n",
            server.url()
        ),
    )
    .unwrap();
    // The guest's component under a manifest that grants `model`.
    let bundle = dir.path().join("py-model");
    std::fs::create_dir(&bundle).unwrap();
    let component = repo_root().join("target/sdk-python/py-guest.wasm");
    guest();
    std::fs::write(
        bundle.join("subagent.toml"),
        format!(
            "name = \"py-model\"\ndescription = \"d\"\ncomponent = {:?}\ntools = [\"model\"]\n",
            path(&component)
        ),
    )
    .unwrap();

    let fixture = Fixture::plain();
    let (code, result, out) = run_json(
        &bundle,
        &fixture.workspace,
        "chat What is the capital of France?",
        &["--config", path(&config)],
    );
    assert_eq!(code, 0, "{result:#}\n{}", stderr(&out));
    assert_eq!(result["summary"], "Paris.");
    assert_eq!(
        result["data"],
        json!({"rounds": [
            {
                "content": "Looking it up.",
                "tool_calls": [
                    {"id": "call_a", "name": "lookup", "arguments": {"query": "capital of France"}},
                    {"id": "call_b", "name": "lookup", "arguments": {}},
                ],
                "stop_reason": "tool_calls",
                "usage": {"input": 12, "output": 7},
                "model": "scripted-2024",
            },
            {
                "content": "Paris.",
                "tool_calls": [],
                "stop_reason": "end_turn",
                "usage": {"input": 30, "output": 2},
                "model": "scripted-2024",
            },
        ]})
    );
    assert_eq!(result["model"], "mock", "{result:#}");
    let usage = &result["usage"];
    assert_eq!(
        (
            &usage["model_calls"],
            &usage["input_tokens"],
            &usage["output_tokens"]
        ),
        (&json!(2), &json!(42), &json!(9)),
        "{usage:#}"
    );

    // What the provider received: the history as the guest built it.
    let requests = server.received();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/v1/chat/completions")
        );
    }
    let lookup = json!([{"type": "function", "function": {
        "name": "lookup",
        "description": "Look a fact up.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    }}]);
    let system = json!({"role": "system", "content": "Answer in one word; look facts up first."});
    let user = json!({"role": "user", "content": "What is the capital of France?"});
    assert_eq!(
        requests[0].json(),
        json!({
            "model": "scripted",
            "messages": [system, user],
            "tools": lookup,
            "max_tokens": 64,
            "temperature": 0.2,
        })
    );
    // Round 2 echoes the assistant's calls and answers each by its id; it
    // sets no max_tokens (so none is sent) and an int temperature.
    assert_eq!(
        requests[1].json(),
        json!({
            "model": "scripted",
            "messages": [
                system,
                user,
                {"role": "assistant", "content": "Looking it up.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{\"query\": \"capital of France\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "lookup", "arguments": ""}},
                ]},
                {"role": "tool", "content": "Paris", "tool_call_id": "call_a"},
                {"role": "tool", "content": "no such fact", "tool_call_id": "call_b"},
            ],
            "tools": lookup,
            "temperature": 0.0,
        })
    );
}

#[test]
fn cancelling_a_python_loop_ends_it_cancelled() {
    let fixture = Fixture::plain();
    let mut cmd = subagent_command(&[
        "run",
        path(guest()),
        "wait-for-cancel",
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    let mut child = cmd
        .env("PATH", venv_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the guest says it is in its loop, then Ctrl-C the CLI.
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("waiting for cancel") => break,
            Ok(line) => seen += &format!("{line}\n"),
            Err(_) => {
                let _ = child.kill();
                panic!("the guest never said it was waiting:\n{seen}");
            }
        }
    }
    let sigint = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sigint.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the task did not end within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(code(&out), 1, "{result:#}");
    assert_eq!(result["status"], "cancelled", "{result:#}");
    assert_eq!(result["error"]["kind"], "cancelled", "{result:#}");
}

/// Copy `from` to `to`, writing only files whose contents differ, so the
/// template bundle's mtimes (and with them its up-to-date .wasm) survive
/// from one test run to the next.
fn sync(from: &Path, to: &Path, edit: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "__pycache__" {
            continue;
        }
        if src.is_dir() {
            sync(&src, &dst, edit);
            continue;
        }
        let text = edit(std::fs::read_to_string(&src).unwrap());
        if std::fs::read_to_string(&dst).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&dst, text).unwrap();
        }
    }
}

#[test]
fn the_template_builds_and_runs_as_subagent_new_lays_it_out() {
    // What `subagent new py-starter --lang python` writes, synced into a
    // stable place so an unchanged bundle is not rebuilt on every run.
    let name = "py-starter";
    let fresh = tempfile::tempdir().unwrap();
    let written = fresh.path().join(name);
    let out = crate::helpers::subagent(&["new", name, "--lang", "python", "--dir", path(&written)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for file in [
        "subagent.toml",
        "app.py",
        "subagent_sdk/__init__.py",
        "wit/world.wit",
    ] {
        assert!(written.join(file).is_file(), "subagent new wrote no {file}");
    }
    let bundle = repo_root().join("target/sdk-python/template").join(name);
    sync(&written, &bundle, &|text| text);
    for file in ["subagent.toml", "app.py"] {
        let text = std::fs::read_to_string(bundle.join(file)).unwrap();
        assert!(!text.contains("{{"), "{file} keeps a placeholder:\n{text}");
    }

    let fixture = Fixture::plain();
    let (code, result, out) = run_json(&bundle, &fixture.workspace, "greet", &["--build"]);
    assert_eq!(code, 0, "{result:#}\n{}", stderr(&out));
    assert_eq!(
        result["summary"],
        "Hello from py-starter! The workspace has 2 top-level entries."
    );
    assert_eq!(
        result["data"],
        json!({"prompt": "greet", "entries": ["readme.txt", "src"]})
    );
    assert_eq!(result["permissions"]["mode"], "readonly");
    assert!(bundle.join(format!("{name}.wasm")).is_file());
}
