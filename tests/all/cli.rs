//! The `subagent` binary end to end: run, validate, list, build, `--json`,
//! and exit codes (0 ok, 1 task failed, 2 usage or input error).

use std::path::Path;

use crate::helpers::*;

#[test]
fn run_prints_summary_and_file_results() {
    let fixture = Fixture::new();
    let b = bundle(
        &guest("escape"),
        "permission_mode = \"default\"\nallowed_write_directories = [\"out\"]",
    );
    let out = subagent(&[
        "run",
        path(b.dir.path()),
        "allowed",
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("✓ test-guest completed in "), "{text}");
    assert!(
        text.contains("file results:\n  created  out/created.txt\n"),
        "{text}"
    );
    assert!(
        text.contains("  modified out/existing.txt\n")
            && text.contains("  deleted  out/gone.txt\n"),
        "{text}"
    );
}

#[test]
fn run_json_has_the_documented_fields() {
    let fixture = Fixture::new();
    let b = bundle(&guest("misbehave"), "");
    let out = subagent(&[
        "run",
        path(b.dir.path()),
        "ok",
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for field in [
        "task_id",
        "subagent",
        "status",
        "summary",
        "data",
        "error",
        "files",
        "output",
        "usage",
        "permissions",
    ] {
        assert!(report.get(field).is_some(), "missing `{field}` in {report}");
    }
    assert_eq!(report["status"], "completed");
    assert_eq!(report["summary"], "fine");
    assert_eq!(report["data"], serde_json::json!({"ok": true}));
    assert_eq!(report["permissions"]["mode"], "readonly");
    assert_eq!(report["permissions"]["writes"]["kind"], "none");
}

#[test]
fn failed_task_exits_1_with_a_typed_error() {
    let fixture = Fixture::new();
    let b = bundle(&guest("misbehave"), "");
    let out = subagent(&[
        "run",
        path(b.dir.path()),
        "loop",
        "--workspace",
        path(&fixture.workspace),
        "--timeout",
        "200ms",
    ]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("✗ test-guest timed_out")
            && text.contains("error[timeout]: the task ran past its 200ms limit"),
        "{text}"
    );

    let json = subagent(&[
        "run",
        path(b.dir.path()),
        "trap",
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    assert_eq!(code(&json), 1);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["error"]["kind"], "trap");
}

#[test]
fn input_errors_exit_2_and_say_how_to_fix_them() {
    let fixture = Fixture::new();
    let ws = path(&fixture.workspace);
    let b = bundle(
        &guest("escape"),
        "permission_mode = \"default\"\nallowed_write_directories = [\"out\"]",
    );
    let bundle_dir = path(b.dir.path());

    let no_task = subagent(&["run", bundle_dir, "--workspace", ws]);
    assert_eq!(code(&no_task), 2);
    assert!(
        stderr(&no_task).contains("error: no task given")
            && stderr(&no_task).contains("--task-file"),
        "{}",
        stderr(&no_task)
    );

    let wider = subagent(&[
        "run",
        bundle_dir,
        "allowed",
        "--workspace",
        ws,
        "--write",
        "src",
    ]);
    assert_eq!(code(&wider), 2);
    assert!(
        stderr(&wider)
            .contains("may not write `src/`: it may write only out/ (allowed_write_directories)"),
        "{}",
        stderr(&wider)
    );

    let missing = subagent(&["run", "/nonexistent/bundle", "x"]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("no bundle at `/nonexistent/bundle`: it does not exist"),
        "{}",
        stderr(&missing)
    );

    let bad_manifest = tempfile::tempdir().unwrap();
    std::fs::write(
        bad_manifest.path().join("subagent.toml"),
        "name = \"x\"\ndescription = \"d\"\ncomponent = \"x.wasm\"\ntimeout = \"1m\"\n",
    )
    .unwrap();
    let bad = subagent(&["run", path(bad_manifest.path()), "x", "--workspace", ws]);
    assert_eq!(code(&bad), 2);
    let err = stderr(&bad);
    assert!(
        err.contains("unknown field `timeout`") && err.contains("subagent.toml:4:1"),
        "{err}"
    );

    let usage = subagent(&["run"]);
    assert_eq!(code(&usage), 2, "clap usage errors exit 2");
    let bad_timeout = subagent(&["run", bundle_dir, "x", "--timeout", "soon"]);
    assert_eq!(code(&bad_timeout), 2);
}

#[test]
fn readonly_flag_overrides_the_manifest() {
    let fixture = Fixture::new();
    let b = bundle(
        &guest("escape"),
        "permission_mode = \"default\"\nallowed_write_directories = [\"out\"]",
    );
    let out = subagent(&[
        "run",
        path(b.dir.path()),
        "allowed",
        "--workspace",
        path(&fixture.workspace),
        "--readonly",
        "--json",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let results = report["data"]["results"].as_array().unwrap();
    let write = results
        .iter()
        .find(|r| r["op"] == "write /workspace/out/created.txt")
        .unwrap();
    assert_eq!(write["ok"], false, "{write}");
    assert!(!fixture.workspace.join("out/created.txt").exists());
}

#[test]
fn task_can_come_from_a_file_or_stdin() {
    let fixture = Fixture::new();
    let b = bundle(&guest("echo"), "");
    let task_file = fixture.root.path().join("task.txt");
    std::fs::write(&task_file, "task from file").unwrap();
    let from_file = subagent(&[
        "run",
        path(b.dir.path()),
        "--task-file",
        path(&task_file),
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&from_file)).unwrap();
    assert_eq!(report["data"]["prompt"], "task from file");

    let from_stdin = subagent_in(
        &[
            "run",
            path(b.dir.path()),
            "-",
            "--workspace",
            path(&fixture.workspace),
            "--json",
        ],
        Some("task from stdin"),
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&from_stdin)).unwrap();
    assert_eq!(report["data"]["prompt"], "task from stdin");
}

#[test]
fn validate_prints_effective_permissions_and_limits() {
    let fixture = Fixture::new();
    let b = bundle(
        &guest("escape"),
        "permission_mode = \"default\"\nallowed_write_directories = [\"out\", \"new/dir\"]\n[limits]\ntimeout = \"90s\"",
    );
    let out = subagent(&[
        "validate",
        path(b.dir.path()),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("✓ subagent `test-guest` is valid"), "{text}");
    assert!(
        text.contains("permissions  default: writes new/dir/, out/"),
        "{text}"
    );
    assert!(
        text.contains("limits       timeout 1m30s, memory 512 MiB, output 4 MiB, disk 1 GiB, files 100000, open_files 256, fuel unmetered"),
        "{text}"
    );
    assert!(
        text.contains("exports      run") && text.contains("subagent:plugin/types@0.1.0"),
        "{text}"
    );
    assert!(
        !fixture.workspace.join("new").exists(),
        "validate changes nothing"
    );

    let json = subagent(&[
        "validate",
        path(b.dir.path()),
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(
        report["writable_guest_paths"],
        serde_json::json!(["/workspace/new/dir", "/workspace/out"])
    );
    assert_eq!(report["limits"]["timeout_ms"], 90_000);

    let not_subagent = bundle(&guest("not-subagent"), "");
    let bad = subagent(&["validate", path(not_subagent.dir.path())]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("does not export `run`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn list_shows_registries_in_precedence_order() {
    let fixture = Fixture::new();
    let first = tempfile::tempdir().unwrap();
    let second = fixture.workspace.join(".subagents");
    let write = |dir: &Path, name: &str, description: &str| {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(
            dir.join(name).join("subagent.toml"),
            format!("name = \"{name}\"\ndescription = \"{description}\"\ncomponent = \"x.wasm\"\n"),
        )
        .unwrap();
    };
    write(first.path(), "alpha", "from the --agents dir");
    write(&second, "alpha", "from the project");
    write(&second, "beta", "only in the project");
    std::fs::create_dir_all(second.join("broken")).unwrap();
    std::fs::write(second.join("broken/subagent.toml"), "name = \"broken\"\n").unwrap();

    let out = subagent(&[
        "list",
        "--agents",
        path(first.path()),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|r: &Vec<&str>| r.len() > 2)
        .collect();
    let row = |words: &[&str]| rows.iter().any(|r| r.starts_with(words));
    assert!(
        row(&["alpha", "readonly", "from", "the", "--agents", "dir"]),
        "{text}"
    );
    assert!(
        text.contains("from the project (shadowed by an earlier registry)"),
        "{text}"
    );
    assert!(row(&["beta", "readonly", "only"]), "{text}");
    assert!(
        row(&[
            "broken",
            "-",
            "BROKEN:",
            "missing",
            "field",
            "`description`"
        ]),
        "{text}"
    );

    let json = subagent(&[
        "list",
        "--agents",
        path(first.path()),
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    let names: Vec<String> = stdout(&json)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // The built-ins come last: any registry overrides them.
    assert_eq!(
        names,
        [
            "alpha",
            "alpha",
            "beta",
            "broken",
            "deep-search",
            "prompt-agent",
            "todo-report"
        ]
    );
}

#[test]
fn run_finds_a_subagent_by_name_in_the_project_registry() {
    let fixture = Fixture::new();
    let registry = fixture.workspace.join(".subagents").join("noop");
    std::fs::create_dir_all(&registry).unwrap();
    std::fs::write(
        registry.join("subagent.toml"),
        format!(
            "name = \"noop\"\ndescription = \"does nothing\"\ncomponent = {:?}\n",
            guest("noop").display().to_string()
        ),
    )
    .unwrap();
    let out = subagent(&[
        "run",
        "noop",
        "anything",
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let typo = subagent(&[
        "run",
        "nop",
        "anything",
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&typo), 2);
    assert!(
        stderr(&typo).contains("did you mean `noop`?"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn build_runs_the_build_command() {
    let fixture = Fixture::new();
    let b = bundle(
        &guest("noop"),
        "[build]\ncommand = \"echo built > marker.txt\"",
    );
    let out = subagent(&[
        "build",
        path(b.dir.path()),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(b.dir.path().join("marker.txt")).unwrap(),
        "built\n"
    );
    assert!(
        stdout(&out).starts_with("built test-guest"),
        "{}",
        stdout(&out)
    );

    let failing = bundle(&guest("noop"), "[build]\ncommand = \"exit 3\"");
    let out = subagent(&[
        "run",
        path(failing.dir.path()),
        "x",
        "--build",
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out)
            .contains("build of subagent `test-guest` failed: `exit 3` exited with exit status: 3"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn batch_runs_many_tasks_and_summarizes() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch.toml");
    let noop = guest("noop");
    let misbehave = guest("misbehave");
    for (name, wasm) in [("noop", &noop), ("misbehave", &misbehave)] {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        std::fs::write(
            dir.path().join(name).join("subagent.toml"),
            format!(
                "name = \"{name}\"\ndescription = \"d\"\ncomponent = {:?}\n",
                wasm.display().to_string()
            ),
        )
        .unwrap();
    }
    std::fs::write(
        &batch,
        "[concurrency]\nper_key_default = 1\n\n[[task]]\nsubagent = \"./noop\"\nprompt = \"a\"\n\n[[task]]\nsubagent = \"./misbehave\"\nprompt = \"ok\"\n\n[[task]]\nsubagent = \"./misbehave\"\nprompt = \"fail\"\n",
    )
    .unwrap();
    let out = subagent(&[
        "batch",
        path(&batch),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 1, "one task fails: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("TASK"), "{text}");
    assert!(text.contains("failed: failed on purpose"), "{text}");
    assert!(text.ends_with("3 tasks: 2 completed, 1 failed\n"), "{text}");

    let json = subagent(&[
        "batch",
        path(&batch),
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_type = |t: &str| lines.iter().filter(|l| l["type"] == t).count();
    assert_eq!(
        (
            of_type("queued"),
            of_type("started"),
            of_type("terminal"),
            of_type("result")
        ),
        (3, 3, 3, 3)
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["total"], 3);
    assert_eq!(
        summary["counts"],
        serde_json::json!({"completed": 2, "failed": 1})
    );
    // Per-key limit 1: the two misbehave tasks never overlap.
    let misbehave_ids: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "queued" && l["key"] == "misbehave")
        .map(|l| l["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(misbehave_ids.len(), 2);
    let (mut running, mut most) = (0, 0);
    for line in lines
        .iter()
        .filter(|l| misbehave_ids.contains(&l["task_id"].as_str().unwrap_or("")))
    {
        match line["type"].as_str() {
            Some("started") => {
                running += 1;
                most = most.max(running);
            }
            Some("terminal") => running -= 1,
            _ => {}
        }
    }
    assert_eq!(most, 1, "tasks of key `misbehave` overlapped");

    // JSON lines input; a bad line stops the batch before anything runs.
    let jsonl = dir.path().join("tasks.jsonl");
    std::fs::write(&jsonl, "{\"subagent\": \"./noop\", \"prompt\": \"a\"}\n{\"subagent\": \"./noop\", \"promt\": \"b\"}\n").unwrap();
    let bad = subagent(&[
        "batch",
        path(&jsonl),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("tasks.jsonl:2: unknown field `promt`"),
        "{}",
        stderr(&bad)
    );
    std::fs::write(&jsonl, "{\"subagent\": \"./noop\", \"prompt\": \"a\"}\n{\"subagent\": \"nope\", \"prompt\": \"b\"}\n").unwrap();
    let unknown = subagent(&[
        "batch",
        path(&jsonl),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&unknown), 2);
    assert!(
        stderr(&unknown).contains("line 2")
            && stderr(&unknown).contains("no subagent named `nope`"),
        "{}",
        stderr(&unknown)
    );
}

/// An error that shows its source in its own message prints it once: no
/// `caused by:` block repeating what was just said.
#[test]
fn errors_print_once() {
    let b = bundle(&guest("escape"), "");
    let no_workspace = subagent(&[
        "run",
        path(b.dir.path()),
        "x",
        "--workspace",
        "/nonexistent/workspace",
    ]);
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("subagent.toml"), "name = \"x\"\n").unwrap();
    let bad_manifest = subagent(&["validate", path(bad.path())]);
    for (out, said) in [
        (&no_workspace, "No such file or directory"),
        (&bad_manifest, "missing field `description`"),
    ] {
        let err = stderr(out);
        assert_eq!(code(out), 2, "{err}");
        assert_eq!(err.matches(said).count(), 1, "said more than once:\n{err}");
        assert!(!err.contains("caused by"), "{err}");
    }
}

/// `batch` resolves a subagent the way `run` does: a bundle directory next
/// to the batch file is found by its bare name, as `run noop` finds `./noop`.
/// `batch` once took a bare name only as a registry name.
#[test]
fn batch_and_run_resolve_a_subagent_by_the_same_rule() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), "noop", "noop", "");
    let batch = dir.path().join("batch.toml");
    std::fs::write(&batch, "[[task]]\nsubagent = \"noop\"\nprompt = \"a\"\n").unwrap();
    let out = subagent(&[
        "batch",
        path(&batch),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("1 tasks: 1 completed\n"),
        "{}",
        stdout(&out)
    );

    let run = subagent_command(&["run", "noop", "a", "--workspace", path(&fixture.workspace)])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&run), 0, "{}", stderr(&run));
}

/// A task manager that has run many tasks holds no descriptors for them: an
/// ended task's grant is closed. Each ended task once kept its workspace
/// handle open, so a long batch (or a long-lived host) ran out of
/// descriptors: here 300 tasks under a limit of 128.
#[test]
fn ended_tasks_hold_no_descriptors() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), "noop", "noop", "");
    let batch = dir.path().join("batch.toml");
    let tasks = "[[task]]\nsubagent = \"noop\"\nprompt = \"a\"\n".repeat(300);
    std::fs::write(&batch, tasks).unwrap();
    let state = dir.path().join("state");
    let out = output_within(
        subagent_under_ulimit(
            128,
            &[
                "--state-dir",
                path(&state),
                "batch",
                path(&batch),
                "--workspace",
                path(&fixture.workspace),
                "--max-running",
                "2",
            ],
        ),
        std::time::Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("300 tasks: 300 completed\n"),
        "{}",
        stdout(&out)
    );
}

/// A registry with `nester` (which may launch subagents) and `noop`.
fn nesting_registry() -> tempfile::TempDir {
    let registry = tempfile::tempdir().unwrap();
    write_bundle(
        registry.path(),
        "nester",
        "nester",
        "tools = [\"subagents\"]",
    );
    write_bundle(registry.path(), "noop", "noop", "");
    registry
}

/// A batch waits for its own tasks: one whose subagent launches children
/// completes, as it does through `run`. The batch once ended at the first
/// terminal event of any task, a child's included, and shut its parent down
/// as `interrupted`.
#[test]
fn batch_waits_for_its_own_tasks_not_their_children() {
    let fixture = Fixture::new();
    let registry = nesting_registry();
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch.jsonl");
    std::fs::write(
        &batch,
        "{\"subagent\": \"nester\", \"prompt\": \"{\\\"chain\\\": 2}\"}\n",
    )
    .unwrap();
    let out = output_within(
        subagent_command(&[
            "--agents",
            path(registry.path()),
            "--state-dir",
            path(&dir.path().join("state")),
            "batch",
            path(&batch),
            "--workspace",
            path(&fixture.workspace),
        ]),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.ends_with("1 tasks: 1 completed\n"), "{text}");
    assert!(text.contains("chain 2"), "{text}");
}

/// A batch's end is decided from its tasks, not from the event stream, which
/// may fall behind: thousands of tasks with `--json` (a slow reader of many
/// events) all end, and the process exits. It once waited forever for
/// terminal events the stream had dropped.
#[test]
fn a_large_batch_ends_even_when_its_event_stream_lags() {
    let fixture = Fixture::new();
    let registry = nesting_registry();
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch.jsonl");
    let line = "{\"subagent\": \"noop\", \"prompt\": \"a\"}\n";
    std::fs::write(&batch, line.repeat(3000)).unwrap();
    let out = output_within(
        subagent_command(&[
            "--agents",
            path(registry.path()),
            "--state-dir",
            path(&dir.path().join("state")),
            "batch",
            path(&batch),
            "--workspace",
            path(&fixture.workspace),
            "--json",
        ]),
        std::time::Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["total"], 3000);
    assert_eq!(summary["counts"]["completed"], 3000, "{summary}");
}

/// A manifest's text is shown, never obeyed: `validate` and `list` make the
/// control characters of a description visible.
#[test]
fn manifest_text_is_shown_on_a_terminal_never_obeyed() {
    let registry = tempfile::tempdir().unwrap();
    let dir = registry.path().join("sneaky");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("subagent.toml"),
        format!(
            "name = \"sneaky\"\ndescription = \"\\u001b]0;pwned\\u0007\\u001b[2Jlooks\\rfine\"\ncomponent = {:?}\n",
            guest("noop").display().to_string()
        ),
    )
    .unwrap();
    for args in [
        vec!["validate", path(&dir)],
        vec!["--agents", path(registry.path()), "list"],
    ] {
        let out = subagent(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\r']),
            "{args:?}: {text:?}"
        );
        assert!(
            text.contains(r"\x1b]0;pwned\x07\x1b[2Jlooks\rfine"),
            "{args:?}: {text}"
        );
    }
}

/// The smaller refusals: each once went through, or said the wrong thing.
#[test]
fn refusals_say_what_is_wrong_before_anything_runs() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle_with = |name: &str, extra: &str| write_bundle(dir.path(), name, "noop", extra);
    // A subagent that calls a model, with no model to call: refused at
    // launch (it once failed at its first model call).
    let modeled = bundle_with("modeled", "tools = [\"model\"]\n");
    let out = subagent(&[
        "run",
        path(&modeled),
        "x",
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("subagent `modeled` has no model to use")
            && stderr(&out).contains("default_model"),
        "{}",
        stderr(&out)
    );

    // `validate` says a writable workspace is writable.
    let writer = bundle_with("writer", "permission_mode = \"default\"\n");
    let out = subagent(&[
        "validate",
        path(&writer),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(writable at /workspace)"),
        "{}",
        stdout(&out)
    );
    let out = subagent(&[
        "validate",
        path(&modeled),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert!(
        stdout(&out).contains("(read-only at /workspace)"),
        "{}",
        stdout(&out)
    );

    // `/` as the workspace of a task that may write is refused; read-only it runs.
    let out = subagent(&["run", path(&writer), "x", "--workspace", "/"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the workspace is `/`") && stderr(&out).contains("--readonly"),
        "{}",
        stderr(&out)
    );
    let out = subagent(&["run", path(&writer), "x", "--workspace", "/", "--readonly"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A store path that is a directory is said to be one.
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("tasks.db")).unwrap();
    let out = subagent(&["--state-dir", path(&state), "tasks"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("is a directory, not a database file"),
        "{}",
        stderr(&out)
    );
}
