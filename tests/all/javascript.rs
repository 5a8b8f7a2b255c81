//! The JavaScript SDK (plugins/sdk-js) and its example, built with componentize-js.
//!
//! Three components, each built by the `subagent` CLI from its bundle's
//! `[build]` command with componentize-js (tests/sdks/js/setup.sh installs the
//! pinned version) on PATH: the example `plugins/js-loc`, the test guest
//! `tests/sdks/js/guest` (one component for every SDK behaviour, picked by the
//! prompt) and a bundle laid out as `subagent new NAME --lang js` writes it.
//!
//! componentize-js output is not reproducible (a Wizer snapshot of a fresh
//! engine), so the compiled-artifact cache cannot key on it: a component is
//! rebuilt only when its inputs (sources, SDK, WIT, pinned tool) change, once
//! per test run; otherwise `subagent validate` checks it and warms the cache.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    code, output_within, path, plugin, repo_root, stderr, stdout, subagent_command,
};
use crate::http_server::{Canned, TestServer};

/// How long a build (componentize-js, then compiling the component) may take.
const BUILD_LIMIT: Duration = Duration::from_secs(900);
/// How long one run may take.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// The pinned tool, as every package.json here names it. componentize-js
/// 0.23.0 imports preview2-shim without depending on it, so it is pinned too
/// (`npm ci` would leave it out).
const PINS: [(&str, &str); 2] = [
    ("@bytecodealliance/componentize-js", "0.23.0"),
    ("@bytecodealliance/preview2-shim", "0.25.0"),
];

/// `target/sdk-js/node_modules/.bin`, with componentize-js installed.
fn tool_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = repo_root().join("tests/sdks/js/setup.sh");
        let out = Command::new("sh")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed (it needs node and npm):\n{}{}",
            script.display(),
            stdout(&out),
            stderr(&out)
        );
        let bin = repo_root().join("target/sdk-js/node_modules/.bin");
        assert!(
            bin.join("componentize-js").exists(),
            "setup did not install componentize-js"
        );
        bin
    })
}

/// The CLI with componentize-js on PATH, as a bundle's [build] command needs.
fn cli(args: &[&str]) -> Command {
    let mut cmd = subagent_command(args);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![tool_bin().to_owned()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    cmd
}

/// A fingerprint of `files` (path and contents; directories recursively,
/// symlinks followed) and of the installed tool.
fn fingerprint(files: &[PathBuf]) -> String {
    fn add(path: &Path, hasher: &mut DefaultHasher) {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for entry in entries {
                add(&entry, hasher);
            }
        } else {
            path.hash(hasher);
            std::fs::read(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
                .hash(hasher);
        }
    }
    let mut hasher = DefaultHasher::new();
    for file in files {
        add(file, &mut hasher);
    }
    add(&repo_root().join("target/sdk-js/.stamp"), &mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Build `bundle` with `subagent build` unless `component` was built from
/// the same `inputs` before; either way the component is then valid and
/// compiled into the shared cache. Returns the bundle.
fn build(bundle: &Path, component: &Path, inputs: &[PathBuf]) -> PathBuf {
    tool_bin();
    let stamp_file = component.with_extension("wasm.inputs");
    let stamp = fingerprint(inputs);
    let fresh =
        component.exists() && std::fs::read_to_string(&stamp_file).is_ok_and(|old| old == stamp);
    let verb = if fresh { "validate" } else { "build" };
    let out = output_within(cli(&[verb, path(bundle)]), BUILD_LIMIT)
        .unwrap_or_else(|e| panic!("subagent {verb} {}: {e}", bundle.display()));
    assert_eq!(
        code(&out),
        0,
        "subagent {verb} {} failed:\n{}{}",
        bundle.display(),
        stdout(&out),
        stderr(&out)
    );
    if !fresh {
        std::fs::write(&stamp_file, stamp).unwrap();
    }
    bundle.to_owned()
}

fn sdk_inputs() -> Vec<PathBuf> {
    let sdk = repo_root().join("plugins/sdk-js");
    vec![sdk.join("index.js"), sdk.join("wit")]
}

/// The example bundle, built.
fn example() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let bundle = repo_root().join("plugins/js-loc");
        let mut inputs = sdk_inputs();
        inputs.extend(["app.js", "package.json", "subagent.toml"].map(|f| bundle.join(f)));
        build(&bundle, &bundle.join("target/js-loc.wasm"), &inputs)
    })
}

/// The test guest's bundle, built.
fn guest() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let bundle = repo_root().join("tests/sdks/js/guest");
        let mut inputs = sdk_inputs();
        inputs.extend(["app.js", "subagent.toml"].map(|f| bundle.join(f)));
        build(
            &bundle,
            &repo_root().join("target/sdk-js/guest.wasm"),
            &inputs,
        )
    })
}

/// Run `bundle` on `workspace` with `--json` and `extra` arguments; the
/// parsed result and the process output.
fn run(bundle: &Path, workspace: &Path, prompt: &str, extra: &[&str]) -> (Value, Output) {
    let mut args = vec![
        "run",
        path(bundle),
        prompt,
        "--workspace",
        path(workspace),
        "--json",
    ];
    args.extend(extra);
    let out = output_within(cli(&args), RUN_LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "`subagent run` printed no JSON ({e}):\n{}{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (result, out)
}

/// Every file under `dir` with its contents (directories as `<dir>`).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, state: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                state.insert(rel, "<dir>".into());
                walk(root, &path, state);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                state.insert(rel, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    let mut state = BTreeMap::new();
    walk(dir, dir, &mut state);
    state
}

fn write(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, contents) in files {
        let file = root.join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, contents).unwrap();
    }
}

/// A small source tree: counted files, and files the example must skip.
fn source_tree() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    write(
        ws.path(),
        &[
            // Rust: 2 code, 2 comment, 1 blank.
            (
                "src/main.rs",
                b"// entry point\nfn main() {\n\n    // TODO: work\n}\n",
            ),
            // JavaScript: 1 code, 1 comment, 1 blank.
            ("src/web/app.js", b"// app\n\nexport const x = 1;\n"),
            // Python: 2 code, 1 comment, 0 blank.
            ("tools/gen.py", b"# generate\nimport os\nprint(os.name)\n"),
            // Markdown has no comments: 2 code, 1 blank.
            ("README.md", b"# Demo\n\nA demo.\n"),
            // Skipped: binary, unknown extension, skipped directories.
            ("src/blob.rs", b"fn x() {}\0\x01\x02"),
            ("notes.xyz", b"not counted\n"),
            ("target/debug/gen.rs", b"fn generated() {}\n"),
            ("node_modules/dep/index.js", b"module.exports = 1;\n"),
            (".git/HEAD", b"ref: refs/heads/main\n"),
        ],
    );
    ws
}

#[test]
fn example_counts_lines_and_writes_only_its_report() {
    let bundle = example();
    let ws = source_tree();
    let before = snapshot(ws.path());

    let (result, out) = run(bundle, ws.path(), ".", &[]);

    assert_eq!(code(&out), 0, "{result:#}\n{}", stderr(&out));
    assert_eq!(result["status"], "completed", "{result:#}");
    assert_eq!(
        result["summary"],
        "Wrote reports/loc.md: 14 lines in 4 files (Rust 5, JavaScript 3, Markdown 3, Python 3)"
    );
    assert_eq!(
        result["data"],
        json!({
            "report": "reports/loc.md",
            "directory": ".",
            "files": 4,
            "skipped": 2,
            "lines": {"code": 7, "comment": 4, "blank": 3, "total": 14},
            "languages": {
                "Rust": {"files": 1, "code": 2, "comment": 2, "blank": 1},
                "JavaScript": {"files": 1, "code": 1, "comment": 1, "blank": 1},
                "Markdown": {"files": 1, "code": 2, "comment": 0, "blank": 1},
                "Python": {"files": 1, "code": 2, "comment": 1, "blank": 0},
            },
        })
    );
    // The host recorded exactly one new file, and the workspace agrees: the
    // report, inside the write directory, and nothing else changed.
    assert_eq!(
        result["files"]["created"],
        json!([{"path": "reports/loc.md", "kind": "file"}])
    );
    let mut after = snapshot(ws.path());
    let report = after.remove("reports/loc.md").expect("reports/loc.md");
    after.remove("reports");
    assert_eq!(
        after, before,
        "the example changed files besides its report"
    );
    assert!(
        report.starts_with("# Lines of code in the workspace\n"),
        "{report}"
    );
    assert!(report.contains("| Rust | 1 | 2 | 2 | 1 | 5 |"), "{report}");
    assert!(
        report.contains("| **total** | 4 | 7 | 4 | 3 | 14 |"),
        "{report}"
    );
    assert!(
        report.contains("- `src/main.rs`: 5 lines (Rust)"),
        "{report}"
    );

    // A subdirectory counts only what lies there, with workspace paths.
    let (result, _) = run(bundle, ws.path(), "src/web", &[]);
    assert_eq!(
        result["summary"], "Wrote reports/loc.md: 3 lines in 1 file (JavaScript 3)",
        "{result:#}"
    );
    let report = std::fs::read_to_string(ws.path().join("reports/loc.md")).unwrap();
    assert!(report.contains("- `src/web/app.js`: 3 lines"), "{report}");
}

#[test]
fn example_refuses_what_it_cannot_do_as_invalid_input() {
    let bundle = example();
    let ws = source_tree();
    let before = snapshot(ws.path());

    let (result, out) = run(bundle, ws.path(), "no/such/dir", &[]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        result["error"],
        json!({"kind": "invalid-input", "message": "no directory `no/such/dir` in the workspace; name one, or `.` for all of it"})
    );

    let (result, out) = run(bundle, ws.path(), ".", &["--readonly"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        result["error"],
        json!({"kind": "invalid-input", "message": "js-loc writes reports/loc.md, but this run may write nothing; launch it without --readonly"})
    );

    let mut after = snapshot(ws.path());
    after.remove("reports"); // created empty by the host for the first run
    assert_eq!(after, before);
}

#[test]
fn a_denied_write_is_a_js_error_naming_the_grant() {
    let bundle = guest();
    let ws = source_tree();
    std::fs::create_dir(ws.path().join("out")).unwrap();
    let before = snapshot(ws.path());
    let grant = "this subagent may write only under /workspace/out";

    // Caught by the guest: an Error with the WASI code and a clear message.
    for (target, resolved) in [
        ("escape.txt", "/workspace/escape.txt"),
        ("/workspace/out/../escape.txt", "/workspace/escape.txt"),
        ("src/main.rs", "/workspace/src/main.rs"),
    ] {
        let (result, out) = run(bundle, ws.path(), &format!("write {target}"), &[]);
        assert_eq!(code(&out), 0, "{result:#}");
        let message = format!("cannot write {resolved}: not permitted (not-permitted); {grant}");
        assert_eq!(
            result["data"],
            json!({
                "ok": false,
                "isError": true,
                "isFsError": true,
                "name": "FsError",
                "code": "not-permitted",
                "message": message,
            }),
            "writing {target}"
        );
        assert_eq!(result["files"]["created"], json!([]));
        assert_eq!(result["files"]["modified"], json!([]));
    }

    // A path outside every preopen does not exist for the guest.
    let (result, _) = run(bundle, ws.path(), "write /etc/evil", &[]);
    assert_eq!(result["data"]["code"], "no-entry", "{result:#}");
    assert_eq!(
        result["data"]["message"],
        "cannot write /etc/evil: no such file or directory (no-entry); only /workspace exists in the sandbox"
    );

    // Not caught: the run fails with the error's headline.
    let (result, out) = run(bundle, ws.path(), "write-or-fail escape.txt", &[]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        result["error"],
        json!({"kind": "failed", "message": format!("FsError: cannot write /workspace/escape.txt: not permitted (not-permitted); {grant}")})
    );

    assert!(!ws.path().join("escape.txt").exists());
    assert_eq!(
        snapshot(ws.path()),
        before,
        "a denied write changed the workspace"
    );

    // The same call inside the grant works.
    let (result, _) = run(bundle, ws.path(), "write out/ok.txt", &[]);
    assert_eq!(
        result["data"],
        json!({"ok": true, "path": "/workspace/out/ok.txt"})
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out/ok.txt")).unwrap(),
        "written by the js guest\n"
    );
}

#[test]
fn a_thrown_error_fails_the_task_with_its_headline() {
    let bundle = guest();
    let ws = source_tree();

    // The human-readable result: exit code 1 and the error's own message.
    let out = output_within(
        cli(&[
            "run",
            path(bundle),
            "throw the guest gave up",
            "--workspace",
            path(ws.path()),
        ]),
        RUN_LIMIT,
    )
    .unwrap();
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("error[failed]: Error: the guest gave up"),
        "{text}"
    );
    // Logged at level error with the stack, pointing into the guest's source.
    assert!(
        text.contains("error: Error: the guest gave up\nthrow@tests/sdks/js/guest/app.js:"),
        "{text}"
    );
    for word in ["trap", "unreachable", "abort"] {
        assert!(!text.contains(word), "`{word}` in:\n{text}");
    }

    // Every kind of throw: the headline, never a trap.
    for (prompt, message) in [
        (
            "type-error",
            "TypeError: can't access property \"field\", missing is undefined",
        ),
        ("throw-string oops", "uncaught \"oops\""),
        (
            "bad-return",
            "TypeError: run returned 42; return a summary string or { summary, data }",
        ),
    ] {
        let (result, out) = run(bundle, ws.path(), prompt, &[]);
        assert_eq!(code(&out), 1, "{prompt}");
        assert_eq!(
            result["error"],
            json!({"kind": "failed", "message": message}),
            "{prompt}"
        );
    }
}

#[test]
fn invalid_input_maps_to_invalid_input() {
    let (result, out) = run(guest(), source_tree().path(), "invalid no such thing", &[]);
    assert_eq!(code(&out), 1);
    assert_eq!(result["status"], "failed");
    assert_eq!(
        result["error"],
        json!({"kind": "invalid-input", "message": "no such thing"})
    );
    // Not logged as a failure: the subagent said why.
    assert!(!stderr(&out).contains("error: "), "{}", stderr(&out));
}

#[test]
fn cancelled_maps_to_cancelled() {
    let (result, out) = run(guest(), source_tree().path(), "cancel", &[]);
    assert_eq!(code(&out), 1);
    assert_eq!(result["status"], "cancelled", "{result:#}");
    assert_eq!(result["error"]["kind"], "cancelled");
}

#[test]
fn waiting_for_a_message_times_out_with_undefined() {
    let (result, _) = run(guest(), source_tree().path(), "wait 20", &[]);
    assert_eq!(result["status"], "completed", "{result:#}");
    assert_eq!(result["data"], json!({"message": null, "cancelled": false}));
}

#[test]
fn async_runs_reach_the_host() {
    let (result, out) = run(guest(), source_tree().path(), "async hi", &[]);
    assert_eq!(result["status"], "completed", "{result:#}");
    assert_eq!(result["summary"], "async hi");
    assert_eq!(result["data"], json!({"next": null}));
    let err = stderr(&out);
    for line in [
        "info: async run for hi",
        "halfway",
        "round 1",
        r#"echo {"text":"hi"}"#,
    ] {
        assert!(err.contains(line), "no `{line}` in:\n{err}");
    }
}

#[test]
fn ungranted_capabilities_are_typed_errors() {
    let (result, _) = run(guest(), source_tree().path(), "denied", &[]);
    assert_eq!(result["status"], "completed", "{result:#}");
    assert_eq!(
        result["data"],
        json!({
            "children": {
                "name": "SubagentError",
                "kind": "denied",
                "message": "denied: subagent `js-sdk-guest` may not launch subagents: add \"subagents\" to `tools` in its manifest",
            },
            "model": {
                "name": "ModelError",
                "kind": "denied",
                "message": "denied: subagent `js-sdk-guest` may not call models: add \"model\" to `tools` in its manifest",
            },
        })
    );
}

/// A bundle in `dir/name` running the built test guest under `manifest`
/// (extra lines: grants, permissions). Returns the bundle directory.
fn guest_bundle_in(dir: &Path, name: &str, manifest: &str) -> PathBuf {
    guest();
    let bundle = dir.join(name);
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("subagent.toml"),
        format!(
            "name = \"{name}\"\ndescription = \"the js test guest, with grants\"\ncomponent = {:?}\n{manifest}\n",
            path(&repo_root().join("target/sdk-js/guest.wasm"))
        ),
    )
    .unwrap();
    bundle
}

/// A chat-completions answer: `content`, then `calls` as (id, name, arguments text).
fn completion(
    content: &str,
    calls: &[(&str, &str, &str)],
    finish: &str,
    usage: (u64, u64),
) -> Canned {
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
        })
        .collect();
    let mut message = json!({"role": "assistant", "content": content});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Canned::openai_chat("scripted-model", message, finish, usage)
}

#[test]
fn a_chat_with_tool_calls_round_trips_through_the_host_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![
        completion(
            "Calling finish twice.",
            &[
                ("call_a", "finish", r#"{"summary":"the repo"}"#),
                ("call_b", "finish", ""),
            ],
            "tool_calls",
            (30, 12),
        ),
        completion("All done.", &[], "stop", (50, 4)),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_model = \"mock\"\n\n[models.mock]\nprovider = \"openai\"\nbase_url = \"{}/v1\"\nmodel = \"scripted-default\"\nmax_retries = 0\n",
            server.url()
        ),
    )
    .unwrap();
    let bundle = guest_bundle_in(dir.path(), "js-chat", "tools = [\"model\"]");

    let (result, out) = run(
        &bundle,
        source_tree().path(),
        "chat the repo",
        &["--config", path(&config)],
    );
    assert_eq!(code(&out), 0, "{result:#}\n{}", stderr(&out));
    assert_eq!(result["status"], "completed", "{result:#}");
    assert_eq!(result["summary"], "All done.");
    assert_eq!(
        result["data"],
        json!({
            "first": {
                "content": "Calling finish twice.",
                "toolCalls": [
                    {"id": "call_a", "name": "finish", "args": {"summary": "the repo"}},
                    {"id": "call_b", "name": "finish", "args": {}},
                ],
                "stopReason": "tool-calls",
                "usage": {"inputTokens": 30, "outputTokens": 12},
                "model": "scripted-model",
            },
            "second": {
                "content": "All done.",
                "toolCalls": [],
                "stopReason": "end-turn",
                "usage": {"inputTokens": 50, "outputTokens": 4},
                "model": "scripted-model",
            },
        })
    );
    assert_eq!(result["model"], "mock");
    assert_eq!(result["usage"]["model_calls"], 2);
    assert_eq!(result["usage"]["input_tokens"], 80);
    assert_eq!(result["usage"]["output_tokens"], 16);

    // What the provider saw: the configured model, the history in order
    // (the assistant's calls echoed, each answered by its id), the tool's
    // schema as JSON, and the request's limits.
    let requests = server.received();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let tool = json!({
        "type": "function",
        "function": {
            "name": "finish",
            "description": "End the task with a summary.",
            "parameters": {
                "type": "object",
                "properties": {"summary": {"type": "string"}},
                "required": ["summary"],
            },
        },
    });
    let opening = json!([
        {"role": "system", "content": "You are the JavaScript SDK's test guest."},
        {"role": "user", "content": "Summarize the repo."},
    ]);
    let mut history = opening.as_array().unwrap().clone();
    history.extend([
        json!({
            "role": "assistant",
            "content": "Calling finish twice.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "finish", "arguments": r#"{"summary":"the repo"}"#}},
                {"id": "call_b", "type": "function", "function": {"name": "finish", "arguments": ""}},
            ],
        }),
        json!({"role": "tool", "content": "noted: the repo", "tool_call_id": "call_a"}),
        json!({"role": "tool", "content": "no summary", "tool_call_id": "call_b"}),
    ]);
    for (request, messages) in requests.iter().zip([opening, Value::Array(history)]) {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(
            request.json(),
            json!({
                "model": "scripted-default",
                "messages": messages,
                "tools": [tool],
                "max_tokens": 256,
                "temperature": 0.2,
            })
        );
    }
}

#[test]
fn children_launch_await_and_report_back() {
    let registry = tempfile::tempdir().unwrap();
    guest_bundle_in(
        registry.path(),
        "js-parent",
        "tools = [\"subagents\"]\npermission_mode = \"readonly\"",
    );
    let hello = registry.path().join("hello");
    std::fs::create_dir(&hello).unwrap();
    std::fs::write(
        hello.join("subagent.toml"),
        format!(
            "name = \"hello\"\ndescription = \"Greets.\"\ncomponent = {:?}\npermission_mode = \"readonly\"\n",
            path(&plugin("hello").with_file_name("target/wasm32-wasip2/release/hello.wasm"))
        ),
    )
    .unwrap();
    let ws = source_tree();

    let (result, out) = run(
        Path::new("js-parent"),
        ws.path(),
        "children js",
        &["--agents", path(registry.path())],
    );
    assert_eq!(code(&out), 0, "{result:#}\n{}", stderr(&out));
    assert_eq!(result["status"], "completed", "{result:#}");
    assert_eq!(result["summary"], "2 children done");
    let data = &result["data"];
    let ids: Vec<&str> = data["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{data:#}");
    assert_ne!(ids[0], ids[1]);
    assert_eq!(
        data["children"],
        json!([
            {"status": "completed", "summary": "Hello, js! The workspace has 7 top-level entries."},
            {"status": "completed", "summary": "Hello, again! The workspace has 7 top-level entries."},
        ])
    );
    assert_eq!(data["pending"], json!([]));
    assert_eq!(data["missing"], json!([]));
    assert_eq!(
        data["send"],
        json!({
            "name": "SubagentError",
            "kind": "not-found",
            "message": "not found: no task `t-no-such-child`",
        })
    );
    assert_eq!(result["usage"]["total"]["tasks"], 3, "{result:#}");

    // The store knows both as the parent's children, with their options.
    let parent = result["task_id"].as_str().unwrap();
    let out = crate::helpers::subagent(&["tasks", "--parent", parent, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut listed: Vec<Value> = stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    listed.sort_by_key(|t| ids.iter().position(|id| t["id"] == *id));
    let seen: Vec<Value> = listed
        .iter()
        .map(|t| {
            json!({
                "id": t["id"],
                "subagent": t["subagent"],
                "description": t["description"],
                "status": t["status"],
                "parent_id": t["parent_id"],
                "depth": t["depth"],
            })
        })
        .collect();
    assert_eq!(
        seen,
        [
            json!({"id": ids[0], "subagent": "hello", "description": "Greets.", "status": "completed", "parent_id": parent, "depth": 1}),
            json!({"id": ids[1], "subagent": "hello", "description": "a readonly hello", "status": "completed", "parent_id": parent, "depth": 1}),
        ]
    );
    // The options reached the launch: the second child alone is readonly,
    // with its own timeout.
    let options = |t: &Value| json!({"prompt": t["request"]["prompt"], "readonly": t["request"]["readonly"], "timeout_ms": t["request"]["timeout_ms"]});
    assert_eq!(
        listed.iter().map(options).collect::<Vec<_>>(),
        [
            json!({"prompt": "js", "readonly": false, "timeout_ms": null}),
            json!({"prompt": "again", "readonly": true, "timeout_ms": 60_000}),
        ]
    );
}

#[test]
fn files_round_trip_through_the_sdk() {
    let bundle = guest();
    let ws = source_tree();
    std::fs::create_dir(ws.path().join("out")).unwrap();

    let (result, _) = run(bundle, ws.path(), "tree out/t", &[]);
    assert_eq!(result["status"], "completed", "{result:#}");
    assert_eq!(
        result["data"],
        json!({
            "files": ["a/b/one.txt", "a/two.bin", "big.txt"],
            "bytes": [0, 1, 2, 255],
            "bigRoundTrip": true,
            "goneExists": false,
            "stat": {"type": "directory", "size": result["data"]["stat"]["size"]},
        })
    );
    assert_eq!(
        std::fs::read(ws.path().join("out/t/a/two.bin")).unwrap(),
        [0, 1, 2, 255]
    );
    assert_eq!(
        std::fs::read(ws.path().join("out/t/big.txt"))
            .unwrap()
            .len(),
        256 * 1024
    );
    assert!(!ws.path().join("out/t/gone.txt").exists());

    // Reading, listing and walking the read-only part; the walk skips
    // .git, target and node_modules, in depth-first name order.
    let (result, _) = run(bundle, ws.path(), "read tools/gen.py", &[]);
    assert_eq!(result["summary"], "# generate\nimport os\nprint(os.name)\n");
    assert_eq!(
        result["data"]["files"],
        json!([
            "README.md",
            "notes.xyz",
            "out/t/a/b/one.txt",
            "out/t/a/two.bin",
            "out/t/big.txt",
            "src/blob.rs",
            "src/main.rs",
            "src/web/app.js",
            "tools/gen.py",
        ])
    );
    let top: Vec<&str> = result["data"]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        top,
        [
            ".git",
            "README.md",
            "node_modules",
            "notes.xyz",
            "out",
            "src",
            "target",
            "tools"
        ]
    );
}

#[test]
fn components_import_only_what_the_host_serves() {
    for bundle in [example(), guest()] {
        let out = output_within(cli(&["validate", path(bundle), "--json"]), RUN_LIMIT).unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let imports: Vec<&str> = report["imports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap())
            .collect();
        assert!(
            imports.contains(&"wasi:filesystem/preopens@0.2.12"),
            "{imports:?}"
        );
        assert!(
            !imports.iter().any(|i| i.starts_with("wasi:http")),
            "{} imports wasi:http (build with --disable http fetch-event): {imports:?}",
            bundle.display()
        );
        assert_eq!(report["exports"], json!(["run"]));
    }
}

/// Every file `subagent new NAME --lang js` writes, as (path in the bundle,
/// contents): the real command, run into a temporary directory.
fn new_bundle_files(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join(name);
    let out = crate::helpers::subagent(&["new", name, "--lang", "js", "--dir", path(&bundle)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut files = Vec::new();
    let mut dirs = vec![bundle.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            assert!(
                !kind.is_symlink(),
                "a link in the bundle: {}",
                entry.path().display()
            );
            if kind.is_dir() {
                dirs.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(&bundle)
                    .unwrap()
                    .display()
                    .to_string();
                files.push((rel, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    files.sort();
    for expected in [
        "subagent.toml",
        "app.js",
        "package.json",
        "subagent-sdk/index.js",
        "subagent-sdk/index.d.ts",
        "wit/world.wit",
        "wit/deps/subagent-plugin@0.1.0/world.wit",
        "wit/deps/filesystem@0.2.12/filesystem.wit",
    ] {
        assert!(
            files.iter().any(|(p, _)| p == expected),
            "no {expected} in {files:?}"
        );
    }
    files
}

#[test]
fn the_template_builds_and_runs_as_subagent_new_lays_it_out() {
    let name = "hello-js";
    let files = new_bundle_files(name);
    assert!(
        !files
            .iter()
            .any(|(_, c)| String::from_utf8_lossy(c).contains("{{")),
        "a placeholder is left in the template"
    );
    // A stable place, so that an unchanged template is not rebuilt each run.
    let bundle = repo_root().join("target/sdk-js/template").join(name);
    let component = bundle.join(format!("target/{name}.wasm"));
    let inputs = repo_root()
        .join("target/sdk-js/template")
        .join(format!("{name}.files"));
    let listing: String = files
        .iter()
        .map(|(p, c)| format!("{p} {}\n", String::from_utf8_lossy(c).len()))
        .collect();
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    let key = format!("{listing}{:016x}\n", hasher.finish());
    if std::fs::read_to_string(&inputs).ok().as_deref() != Some(key.as_str()) {
        let _ = std::fs::remove_dir_all(&bundle);
        for (rel, contents) in &files {
            let file = bundle.join(rel);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, contents).unwrap();
        }
        std::fs::write(&inputs, &key).unwrap();
    }
    build(&bundle, &component, &[inputs]);

    let ws = source_tree();
    let (result, out) = run(&bundle, ws.path(), "world", &[]);
    assert_eq!(code(&out), 0, "{result:#}\n{}", stderr(&out));
    assert_eq!(
        result["summary"],
        "Hello, world! The workspace has 7 top-level entries."
    );
    assert_eq!(
        result["data"],
        json!({"entries": [".git", "README.md", "node_modules", "notes.xyz", "src", "target", "tools"]})
    );
    assert_eq!(result["permissions"]["writes"], json!({"kind": "none"}));
}

#[test]
fn every_package_pins_the_same_tool() {
    let root = repo_root();
    let read = |file: &str| -> Value {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        serde_json::from_str(&text.replace("{{name}}", "x")).unwrap()
    };
    let lock = read("tests/sdks/js/package-lock.json");
    for (package, version) in PINS {
        for file in [
            "tests/sdks/js/package.json",
            "plugins/sdk-js/template/package.json",
            "plugins/js-loc/package.json",
        ] {
            assert_eq!(read(file)["devDependencies"][package], version, "{file}");
        }
        assert_eq!(
            lock["packages"][format!("node_modules/{package}")]["version"],
            version
        );
    }
    assert_eq!(
        read("plugins/sdk-js/package.json")["peerDependencies"][PINS[0].0],
        PINS[0].1
    );
}
