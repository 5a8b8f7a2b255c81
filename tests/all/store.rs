//! The durable task store: crash recovery after `kill -9`, control across
//! processes, `logs --follow`, pruning, migrations, bad stores, concurrent
//! writers, and "durable before reported".

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use subagent_host::store::{SCHEMA_VERSION, STORE_FILE, Store, StoreError, TaskQuery};
use subagent_host::tasks::{LaunchRequest, StreamItem, SubagentRef, TaskManager};
use subagent_host::{Bundle, ErrorKind, TaskStatus};

use crate::helpers::*;

/// A state dir, a workspace, and bundles for the test guests.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(env.workspace()).unwrap();
        for name in ["noop", "misbehave", "echo"] {
            let bundle = env.dir.path().join("agents").join(name);
            std::fs::create_dir_all(&bundle).unwrap();
            let manifest = format!(
                "name = \"{name}\"\ndescription = \"d\"\ncomponent = {:?}\n",
                guest(name).display().to_string()
            );
            std::fs::write(bundle.join("subagent.toml"), manifest).unwrap();
        }
        env
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    fn workspace(&self) -> std::path::PathBuf {
        self.dir.path().join("ws")
    }

    fn bundle(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("agents").join(name)
    }

    /// `subagent run` of `misbehave` with `prompt` (and `extra` arguments)
    /// against this env's store, left running; its output piped or dropped.
    fn spawn_run(&self, prompt: &str, extra: &[&str], piped: bool) -> Child {
        let state = self.state();
        let (bundle, workspace) = (self.bundle("misbehave"), self.workspace());
        let mut args = vec![
            "--state-dir",
            path_str(&state),
            "run",
            path_str(&bundle),
            prompt,
            "--workspace",
            path_str(&workspace),
        ];
        args.extend_from_slice(extra);
        let output = || if piped { Stdio::piped() } else { Stdio::null() };
        subagent_command(&args)
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap()
    }

    /// The id of the first task the store shows running, once one does.
    fn running_task(&self) -> String {
        let started = Instant::now();
        loop {
            let running = Store::open(&self.state())
                .ok()
                .and_then(|s| s.tasks(&TaskQuery::default()).ok())
                .and_then(|t| t.into_iter().find(|t| t.status == TaskStatus::Running));
            if let Some(task) = running {
                return task.id;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no task started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Run the CLI against this env's store.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let state = self.state();
        let mut all = vec!["--state-dir", path_str(&state)];
        all.extend_from_slice(args);
        subagent(&all)
    }

    /// `run --background`: the task id.
    fn background(&self, name: &str, prompt: &str) -> String {
        // A timeout as a safety net: a failed test must not leave a loop running for long.
        let out = self.cli(&[
            "run",
            path_str(&self.bundle(name)),
            prompt,
            "--workspace",
            path_str(&self.workspace()),
            "--timeout",
            "120s",
            "--background",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    }

    fn store(&self) -> Arc<Store> {
        Store::open(&self.state()).unwrap()
    }

    /// Wait until task `id` has `status` in the store.
    fn wait_for(&self, id: &str, pred: impl Fn(TaskStatus) -> bool) -> TaskStatus {
        let store = self.store();
        let started = Instant::now();
        loop {
            let status = store.task(id).unwrap().status;
            if pred(status) {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "task {id} stuck at {status}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn kill_9_mid_batch_loses_nothing_and_marks_in_flight_tasks_interrupted() {
    let env = Env::new();
    let batch = env.dir.path().join("batch.jsonl");
    let mut lines = String::new();
    for i in 0..24 {
        let (bundle, prompt) = if i % 3 == 0 {
            ("noop", "x".to_owned())
        } else {
            ("misbehave", "loop".to_owned())
        };
        lines += &format!(
            "{{\"subagent\": {:?}, \"prompt\": {prompt:?}}}\n",
            path_str(&env.bundle(bundle))
        );
    }
    std::fs::write(&batch, lines).unwrap();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"))
        .args([
            "--state-dir",
            path_str(&env.state()),
            "batch",
            path_str(&batch),
            "--workspace",
            path_str(&env.workspace()),
            "--per-key-default",
            "3",
        ])
        .env("SUBAGENT_CACHE_DIR", cache_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until all 24 tasks are accepted, every no-op task has finished, and
    // the loops hold their slots (3 running, 13 queued).
    let started = Instant::now();
    loop {
        let tasks = Store::open(&env.state())
            .ok()
            .and_then(|s| s.tasks(&TaskQuery::default()).ok())
            .unwrap_or_default();
        let done = tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Completed)
            .count();
        if tasks.len() == 24 && done == 8 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the batch did not get going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The next start recovers.
    let store = env.store();
    let tasks = store.tasks(&TaskQuery::default()).unwrap();
    assert_eq!(tasks.len(), 24, "every accepted task is in the store");
    let completed: Vec<_> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Completed)
        .collect();
    let interrupted: Vec<_> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Interrupted)
        .collect();
    assert_eq!(
        (completed.len(), interrupted.len()),
        (8, 16),
        "{:?}",
        tasks.iter().map(|t| t.status).collect::<Vec<_>>()
    );
    // A listing reads no results; each task's own record has it.
    for task in &completed {
        let task = store.task(&task.id).unwrap();
        let result = task.result.as_ref().expect("finished results stay intact");
        assert_eq!(result.summary.as_deref(), Some("ok"));
    }
    for task in &interrupted {
        let task = store.task(&task.id).unwrap();
        let error = task.result.as_ref().unwrap().error.as_ref().unwrap();
        assert_eq!(error.kind, ErrorKind::Interrupted);
        assert!(
            error.message.contains("stopped before the task ended"),
            "{}",
            error.message
        );
        let events = store.events(&task.id, 0).unwrap();
        assert_eq!(
            events.iter().filter(|e| e.kind.is_terminal()).count(),
            1,
            "exactly one terminal event"
        );
        assert!(events.last().unwrap().kind.is_terminal());
    }
    // Recovering again changes nothing.
    assert!(store.recover().unwrap().is_empty());
}

#[test]
fn cancel_and_send_reach_a_task_in_another_process() {
    let env = Env::new();
    let collector = env.background("echo", "collect 2");
    env.wait_for(&collector, |s| s == TaskStatus::Running);
    for text in ["first", "second"] {
        let out = env.cli(&["send", &collector, text]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    env.wait_for(&collector, TaskStatus::is_terminal);
    let task = env.store().task(&collector).unwrap();
    assert_eq!(
        task.result.unwrap().summary.as_deref(),
        Some("first|second")
    );

    let looper = env.background("misbehave", "loop");
    env.wait_for(&looper, |s| s == TaskStatus::Running);
    let out = env.cli(&["cancel", &looper]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("cancelled {looper}"));
    assert_eq!(
        env.wait_for(&looper, TaskStatus::is_terminal),
        TaskStatus::Cancelled
    );

    let again = env.cli(&["cancel", &looper]);
    assert_eq!(code(&again), 2);
    assert!(
        stderr(&again).contains("is not running (it is cancelled)"),
        "{}",
        stderr(&again)
    );
    let unknown = env.cli(&["send", "t-nope", "hi"]);
    assert_eq!(code(&unknown), 2);
    assert!(
        stderr(&unknown).contains("no task `t-nope`"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn logs_follow_streams_all_output_in_order() {
    let env = Env::new();
    let id = env.background("misbehave", "drip 25");
    let out = env.cli(&["logs", &id, "--follow"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let expected: String = (0..25).map(|i| format!("line {i}\n")).collect();
    assert_eq!(stdout(&out), expected);
    assert!(
        stderr(&out).ends_with(&format!("[{id}] completed\n")),
        "{}",
        stderr(&out)
    );

    let since = env.cli(&["logs", &id, "--since", "14"]);
    assert_eq!(stdout(&since), expected[14..]);
    // Output events carry the offsets the log is read by.
    let store = env.store();
    let mut next = 0;
    for event in store.events(&id, 0).unwrap() {
        if let subagent_host::tasks::EventKind::Output { offset, len, .. } = event.kind {
            assert_eq!(offset, next);
            next += len;
        }
    }
    assert_eq!(next, expected.len() as u64);
}

#[test]
fn tasks_and_show_read_the_store() {
    let env = Env::new();
    let out = env.cli(&[
        "run",
        path_str(&env.bundle("misbehave")),
        "fail",
        "--workspace",
        path_str(&env.workspace()),
    ]);
    assert_eq!(code(&out), 1);
    let list = env.cli(&["tasks", "--json"]);
    let tasks: Vec<serde_json::Value> = stdout(&list)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["status"], "failed");
    let id = tasks[0]["id"].as_str().unwrap();
    let show = env.cli(&["show", id]);
    let text = stdout(&show);
    assert!(
        text.contains("status       failed")
            && text.contains("error        [failed] failed on purpose"),
        "{text}"
    );
    assert!(text.contains("ended: failed"), "{text}");
    let filtered = env.cli(&["tasks", "--status", "completed"]);
    assert!(
        stdout(&filtered).starts_with("no tasks"),
        "{}",
        stdout(&filtered)
    );
}

#[test]
fn prune_deletes_old_finished_tasks_only() {
    let env = Env::new();
    for _ in 0..3 {
        let out = env.cli(&[
            "run",
            path_str(&env.bundle("noop")),
            "x",
            "--workspace",
            path_str(&env.workspace()),
        ]);
        assert_eq!(code(&out), 0);
    }
    let running = env.background("misbehave", "loop");
    env.wait_for(&running, |s| s == TaskStatus::Running);
    let keep = env.cli(&["prune", "--older-than", "1h"]);
    assert_eq!(
        stdout(&keep).trim(),
        "pruned 0 task(s) that ended more than 1h ago"
    );
    std::thread::sleep(Duration::from_millis(20));
    let prune = env.cli(&["prune", "--older-than", "1ms"]);
    assert_eq!(
        stdout(&prune).trim(),
        "pruned 3 task(s) that ended more than 1ms ago"
    );
    let left = env.store().tasks(&TaskQuery::default()).unwrap();
    assert_eq!(
        left.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [running.as_str()],
        "a running task is never pruned"
    );
    assert!(env.store().events(&left[0].id, 0).unwrap().len() >= 2);
    env.cli(&["cancel", &running]);
}

#[test]
fn migrates_an_empty_store_and_refuses_newer_or_corrupt_ones() {
    let dir = tempfile::tempdir().unwrap();
    // An empty file is an empty database: migrated from version 0.
    std::fs::write(dir.path().join(STORE_FILE), b"").unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(STORE_FILE)).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let newer = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(newer, StoreError::Newer { found: 99, .. }),
        "{newer:?}"
    );
    assert!(
        newer
            .to_string()
            .contains("written by a newer subagent (schema version 99"),
        "{newer}"
    );

    let corrupt_dir = tempfile::tempdir().unwrap();
    let garbage = b"this is not a database, just some bytes that lost their way".repeat(100);
    std::fs::write(corrupt_dir.path().join(STORE_FILE), &garbage).unwrap();
    let err = Store::open(corrupt_dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("move it aside"), "{err}");
    assert_eq!(
        std::fs::read(corrupt_dir.path().join(STORE_FILE)).unwrap(),
        garbage,
        "a corrupt store is left untouched"
    );

    // The CLI says so too, with exit code 2.
    let out = subagent(&["--state-dir", path_str(corrupt_dir.path()), "tasks"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("is not a valid database"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn several_processes_write_one_store_at_once() {
    let env = Env::new();
    let batch = env.dir.path().join("batch.jsonl");
    let line = format!(
        "{{\"subagent\": {:?}, \"prompt\": \"x\"}}\n",
        path_str(&env.bundle("noop"))
    );
    std::fs::write(&batch, line.repeat(15)).unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_subagent-under-test"))
                .args([
                    "--state-dir",
                    path_str(&env.state()),
                    "batch",
                    path_str(&batch),
                    "--workspace",
                    path_str(&env.workspace()),
                ])
                .env("SUBAGENT_CACHE_DIR", cache_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = env.store();
    let tasks = store.tasks(&TaskQuery::default()).unwrap();
    assert_eq!(tasks.len(), 60);
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Completed
                && store.task(&t.id).unwrap().result.is_some())
    );
}

#[tokio::test]
async fn every_event_is_committed_before_anyone_hears_of_it() {
    let env = Env::new();
    let store = env.store();
    let runtime = Arc::new(
        subagent_host::Runtime::new(subagent_host::RuntimeConfig {
            cache_dir: Some(cache_dir()),
            ..Default::default()
        })
        .unwrap(),
    );
    let manager = TaskManager::builder(runtime)
        .store(store.clone())
        .build()
        .unwrap();
    let mut stream = manager.subscribe_all();
    let bundle = Bundle::open(&env.bundle("misbehave")).unwrap();
    let mut ids = Vec::new();
    for prompt in ["print 100", "ok", "fail", "drip 3"] {
        let request = LaunchRequest::new(
            SubagentRef::Bundle(Box::new(bundle.clone())),
            prompt,
            env.workspace(),
        );
        let id = manager.launch(request).await.unwrap();
        // Returned only once the task is in the store.
        assert_eq!(store.task(&id).unwrap().id, id);
        ids.push(id);
    }
    let mut terminals = 0;
    while terminals < ids.len() {
        let Some(StreamItem::Event(event)) = stream.next().await else {
            panic!("the stream ended")
        };
        let stored = store.events(&event.task_id, event.seq).unwrap();
        assert_eq!(
            stored.first(),
            Some(&event),
            "event {} of {} was reported before it was committed",
            event.seq,
            event.task_id
        );
        if event.kind.is_terminal() {
            terminals += 1;
            // The result is in the store before anyone can await it.
            assert!(store.task(&event.task_id).unwrap().result.is_some());
        }
    }
    manager.shutdown(Duration::from_secs(1)).await;
}

/// `batch` prepares every task as a launch would before it runs any: a model
/// the host config cannot serve stops the batch with nothing run. Once only
/// the plan was checked up front, and the tasks before it had run.
#[test]
fn batch_refuses_an_unservable_model_before_running_anything() {
    let env = Env::new();
    write_bundle(
        &env.dir.path().join("agents"),
        "modeler",
        "noop",
        "tools = [\"model\"]\nmodel = \"no-such-alias\"",
    );
    let batch = env.dir.path().join("batch.toml");
    std::fs::write(
        &batch,
        "[[task]]\nsubagent = \"agents/noop\"\nprompt = \"a\"\n\n[[task]]\nsubagent = \"agents/modeler\"\nprompt = \"b\"\n",
    )
    .unwrap();
    let out = env.cli(&[
        "batch",
        path_str(&batch),
        "--workspace",
        path_str(&env.workspace()),
    ]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("task 2") && err.contains("model `no-such-alias`"),
        "{err}"
    );
    let tasks = env.store().tasks(&TaskQuery::default()).unwrap();
    assert!(tasks.is_empty(), "tasks ran: {tasks:?}");
}

/// The store gives back what a run returned: data 64 levels deep (the most a
/// task may return) reads back from `show --json` as it was, and a listing
/// carries no results (`show` has each whole).
#[test]
fn deep_data_reads_back_as_returned_and_listings_carry_no_results() {
    let env = Env::new();
    let out = env.cli(&[
        "run",
        path_str(&env.bundle("misbehave")),
        "deep-data 64",
        "--workspace",
        path_str(&env.workspace()),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ran: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = ran["task_id"].as_str().unwrap();
    let expected = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert_eq!(ran["data"].to_string(), expected);

    let show = env.cli(&["show", id, "--json"]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert_eq!(
        shown["task"]["result"]["data"].to_string(),
        expected,
        "{shown}"
    );

    let list = env.cli(&["tasks", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(stdout(&list).trim()).unwrap();
    assert_eq!(listed["id"], id);
    assert!(listed["result"].is_null(), "{listed}");
}

/// Bytes a terminal would act on: ESC, BEL, a bare CR, the C1 CSI.
fn acts_on_a_terminal(text: &str) -> bool {
    text.chars()
        .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\r' || c == '\u{9b}')
}

/// Text from a guest reaches a terminal shown, never obeyed: `run`, `show`,
/// `logs`, `batch` and `tasks` make control characters visible in what they
/// print for people (stdout and stderr), `--json` keeps the text exactly (as
/// JSON escapes), and `logs --raw` gives the output's exact bytes. Title
/// changes, screen clears and clipboard writes once went through raw.
#[test]
fn guest_text_is_shown_on_a_terminal_never_obeyed() {
    let env = Env::new();
    let ws = path_str(&env.workspace()).to_owned();
    let misbehave = path_str(&env.bundle("misbehave")).to_owned();
    let run = env.cli(&["run", &misbehave, "ansi", "--workspace", &ws]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let fail = env.cli(&["run", &misbehave, "ansi-fail", "--workspace", &ws]);
    assert_eq!(code(&fail), 1, "{}", stderr(&fail));
    for out in [&run, &fail] {
        let (text, err) = (stdout(out), stderr(out));
        assert!(!acts_on_a_terminal(&text), "{text:?}");
        assert!(!acts_on_a_terminal(&err), "{err:?}");
        assert!(text.contains(r"\x1b]0;pwned\x07\x1b[2J"), "{text}");
    }
    assert!(
        stdout(&run).contains(r"red\rCR\u{9b}31m"),
        "{}",
        stdout(&run)
    );

    let json = env.cli(&["run", &misbehave, "ansi", "--workspace", &ws, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let exact = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[31mred\rCR\u{9b}31m";
    assert_eq!(report["summary"], exact);
    assert_eq!(report["data"]["text"], exact);
    let id = report["task_id"].as_str().unwrap().to_owned();

    for args in [
        vec!["show", id.as_str()],
        vec!["logs", id.as_str()],
        vec!["tasks"],
    ] {
        let out = env.cli(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert!(
            !acts_on_a_terminal(&stdout(&out)),
            "{args:?}: {:?}",
            stdout(&out)
        );
        assert!(
            !acts_on_a_terminal(&stderr(&out)),
            "{args:?}: {:?}",
            stderr(&out)
        );
    }
    let logs = env.cli(&["logs", &id]);
    assert!(stdout(&logs).contains(r"\x1b[2J"), "{}", stdout(&logs));
    let raw = env.cli(&["logs", &id, "--raw"]);
    assert_eq!(stdout(&raw), format!("{exact}\n"));

    let batch = env.dir.path().join("ansi.jsonl");
    std::fs::write(
        &batch,
        format!("{{\"subagent\": {misbehave:?}, \"prompt\": \"ansi-fail\"}}\n"),
    )
    .unwrap();
    let out = env.cli(&["batch", path_str(&batch), "--workspace", &ws]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!acts_on_a_terminal(&stdout(&out)), "{:?}", stdout(&out));
    assert!(!acts_on_a_terminal(&stderr(&out)), "{:?}", stderr(&out));
}

/// Rows of `table` for task `id`, read straight from the store's file.
fn rows(env: &Env, table: &str, id: &str) -> i64 {
    let conn = rusqlite::Connection::open(env.state().join(STORE_FILE)).unwrap();
    conn.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE task_id = ?1"),
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

/// A guest flooding the host with log calls or tiny writes fills neither
/// memory nor the store: past the event budget (10,000 a task, 1,000 a
/// second) events are dropped and counted, in the stream (`dropped`) and in
/// the result (`limits_hit`), and output is stored in chunks, every byte
/// kept. Every log call was once a stored row, 8.5 million of them.
#[test]
fn event_floods_are_bounded_and_counted() {
    let env = Env::new();
    let ws = path_str(&env.workspace()).to_owned();
    let misbehave = path_str(&env.bundle("misbehave")).to_owned();
    let out = env.cli(&[
        "run",
        &misbehave,
        "log-flood 200000",
        "--workspace",
        &ws,
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = report["task_id"].as_str().unwrap().to_owned();
    let hit = &report["limits_hit"][0];
    assert_eq!(hit["limit"], "events", "{report}");
    let dropped: u64 = hit["message"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stored = rows(&env, "events", &id);
    assert!(stored <= 10_100, "{stored} events stored");
    let logs = stored_events(&env, &id)
        .iter()
        .filter(|e| e["type"] == "log")
        .count() as u64;
    assert_eq!(logs + dropped, 200_000, "every log line is kept or counted");
    let last_dropped = stored_events(&env, &id)
        .iter()
        .rev()
        .find(|e| e["type"] == "dropped")
        .map(|e| e["events"].as_u64().unwrap());
    assert_eq!(last_dropped, Some(dropped), "the stream says how many");

    let out = env.cli(&[
        "run",
        &misbehave,
        "byte-flood 200000",
        "--workspace",
        &ws,
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = report["task_id"].as_str().unwrap().to_owned();
    assert!(
        rows(&env, "output", &id) < 1_000,
        "{} output rows",
        rows(&env, "output", &id)
    );
    let raw = env.cli(&["logs", &id, "--raw"]);
    assert_eq!(stdout(&raw), "x".repeat(200_000));
}

fn stored_events(env: &Env, id: &str) -> Vec<serde_json::Value> {
    env.store()
        .events(id, 0)
        .unwrap()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// Ctrl-C stops a batch of thousands of queued tasks: every task gets its
/// terminal status in the store and the process exits. It once marked them
/// all and then waited forever for terminal events its stream had dropped.
#[cfg(unix)]
#[test]
fn ctrl_c_ends_a_large_batch_and_its_process() {
    let env = Env::new();
    let batch = env.dir.path().join("loops.jsonl");
    let line = format!(
        "{{\"subagent\": {:?}, \"prompt\": \"loop\", \"timeout\": \"120s\"}}\n",
        path_str(&env.bundle("misbehave"))
    );
    std::fs::write(&batch, line.repeat(2000)).unwrap();
    let state = env.state();
    let mut child = subagent_command(&[
        "--state-dir",
        path_str(&state),
        "batch",
        path_str(&batch),
        "--workspace",
        path_str(&env.workspace()),
        "--per-key-default",
        "1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let started = Instant::now();
    loop {
        let accepted = Store::open(&state)
            .ok()
            .and_then(|s| s.tasks(&TaskQuery::default()).ok())
            .map_or(0, |t| t.len());
        if accepted == 2000 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the batch did not launch"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill sends a signal to a child we own.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let stopped = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(1), "tasks did not complete");
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "the process did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let tasks = env.store().tasks(&TaskQuery::default()).unwrap();
    assert_eq!(tasks.len(), 2000);
    assert!(
        tasks.iter().all(|t| t.status.is_terminal()),
        "{:?}",
        tasks.iter().filter(|t| !t.status.is_terminal()).count()
    );
}

/// A host paused past its lease finds its task ended by another process
/// (which found it dead): it writes no second outcome, says so, and reports
/// the one the store keeps. It once printed "completed" over an
/// `interrupted` record and overwrote it.
#[cfg(unix)]
#[test]
fn a_host_paused_past_its_lease_writes_no_second_outcome() {
    let env = Env::new();
    let child = env.spawn_run("spin-ms 1500", &["--json"], true);
    let pid = child.id() as i32;
    let id = env.running_task();
    // SAFETY: signals to a child we own.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    std::thread::sleep(subagent_host::store::LEASE + Duration::from_secs(1));
    // Another process opens the store: it finds the paused host dead.
    let recovered = env.store().recover().unwrap();
    let task = env.store().task(&id).unwrap();
    assert_eq!(task.status, TaskStatus::Interrupted, "{recovered:?}");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("lost its hold on the task store"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["status"], "interrupted", "{report}");

    let task = env.store().task(&id).unwrap();
    assert_eq!(task.status, TaskStatus::Interrupted);
    assert_eq!(
        task.result.unwrap().error.unwrap().kind,
        ErrorKind::Interrupted
    );
    let events = env.store().events(&id, 0).unwrap();
    let terminals: Vec<_> = events.iter().filter(|e| e.kind.is_terminal()).collect();
    assert_eq!(terminals.len(), 1, "{events:?}");
    assert!(events.last().unwrap().kind.is_terminal());
}

/// Reading a store does not need writing it: a user who may not write the
/// state directory still lists and shows its tasks, even when opening it to
/// write would first have to recover a dead host's task. Such a store once
/// could not be read at all.
#[cfg(unix)]
#[test]
fn a_store_can_be_read_without_write_access() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let state = env.state();
    // A task left running by a host that died: opening the store to write
    // would recover it (a write).
    let mut child = env.spawn_run("loop", &["--timeout", "120s"], false);
    env.running_task();
    child.kill().unwrap();
    child.wait().unwrap();

    // Nobody but the owner may write it from here on.
    let binary = env.dir.path().join("subagent");
    std::fs::copy(env!("CARGO_BIN_EXE_subagent-under-test"), &binary).unwrap();
    for (path, mode) in [
        (env.dir.path().to_owned(), 0o755),
        (state.clone(), 0o755),
        (binary.clone(), 0o755),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let as_another_user = |args: &[&str]| {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = if root {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&binary);
            cmd
        } else {
            // Not root: take the write permission away instead.
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555)).unwrap();
            for file in std::fs::read_dir(&state).unwrap() {
                let file = file.unwrap().path();
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
            }
            Command::new(&binary)
        };
        cmd.arg("--state-dir").arg(&state).args(args);
        cmd.env("XDG_CONFIG_HOME", "/nonexistent");
        // The copy may still be open for writing in a process another test
        // thread is forking (ETXTBSY) for a moment.
        for _ in 0..50 {
            match cmd.output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {}
                // setpriv's own exec of it, refused the same way.
                Ok(out) if String::from_utf8_lossy(&out.stderr).contains("Text file busy") => {}
                other => return other.unwrap(),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} stayed busy", binary.display())
    };
    let list = as_another_user(&["tasks", "--json"]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let task: serde_json::Value = serde_json::from_str(stdout(&list).trim()).unwrap();
    assert_eq!(
        task["status"], "running",
        "the reader changes nothing: {task}"
    );
    let id = task["id"].as_str().unwrap();
    let show = as_another_user(&["show", id]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    assert!(
        stdout(&show).contains("status       running"),
        "{}",
        stdout(&show)
    );
}

/// A long-lived host (`subagent mcp`) keeps a bounded number of ended task
/// trees in memory; the rest are forgotten there and read from the store.
/// Before, every ended task's events, output and result stayed in memory for
/// the manager's lifetime.
#[tokio::test]
async fn a_long_lived_manager_forgets_old_ended_trees_and_the_store_keeps_them() {
    let env = Env::new();
    let store = env.store();
    let runtime = Arc::new(
        subagent_host::Runtime::new(subagent_host::RuntimeConfig {
            cache_dir: Some(cache_dir()),
            ..Default::default()
        })
        .unwrap(),
    );
    let manager = TaskManager::builder(runtime)
        .config(subagent_host::tasks::ManagerConfig {
            ended_in_memory: Some(4),
            ..Default::default()
        })
        .store(store.clone())
        .build()
        .unwrap();
    let bundle = Bundle::open(&env.bundle("misbehave")).unwrap();
    let mut ids = Vec::new();
    for _ in 0..30 {
        let request = LaunchRequest::new(
            SubagentRef::Bundle(Box::new(bundle.clone())),
            "print 10",
            env.workspace(),
        );
        let (id, result) = manager.run(request).await.unwrap();
        assert_eq!(result.status, TaskStatus::Completed);
        ids.push(id);
    }
    let in_memory = manager.list(&Default::default()).len();
    assert!(
        (4..=7).contains(&in_memory),
        "{in_memory} ended tasks in memory, keeping 4 (forgotten in batches of up to 3)"
    );
    // The newest is still here; the oldest is forgotten here, kept there.
    assert!(manager.get(ids.last().unwrap()).is_ok());
    assert!(matches!(
        manager.get(&ids[0]),
        Err(subagent_host::tasks::ManagerError::NotFound(_))
    ));
    let stored = store.task(&ids[0]).unwrap();
    assert_eq!(stored.status, TaskStatus::Completed);
    assert!(stored.result.is_some());
    let (output, _) = store.output(&ids[0], 0, 1 << 20).unwrap();
    assert!(!output.is_empty());
    manager.shutdown(Duration::from_secs(1)).await;
}
