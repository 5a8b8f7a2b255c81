//! The filesystem capability the host owns (issue 8), against the hostile
//! `fs-attack` guest: grants bound by handle when a task starts, no links and
//! no special files, per-task filesystem limits, and file results recorded as
//! the guest acts. Every test checks that nothing outside the grant changed.
//!
//! Limits and fields that do not exist yet (`[limits] disk/files/open_files`,
//! `limits_hit`, `usage.bytes_written`) are read through the JSON form of the
//! result, so this module compiles before the capability lands.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use subagent_host::plan::{PlanError, PlanRequest, plan};
use subagent_host::sandbox::{FileChange, FileChanges};
use subagent_host::task::Progress;
use subagent_host::tasks::{
    EventKind, LaunchRequest, ManagerConfig, StreamItem, SubagentRef, TaskManager,
};
use subagent_host::{Bundle, ErrorKind, TaskResult, TaskStatus};

use crate::helpers::*;

const GUEST: &str = "fs-attack";
/// What the guest's `write:` operation puts in a file.
const WRITTEN: &str = "written by fs-attack\n";
/// WASI `not-permitted`, as wasi-libc numbers it (EPERM).
const EPERM: i64 = 63;
/// Allowed for any CLI run before it counts as hung.
const CLI_LIMIT: Duration = Duration::from_secs(120);
const WHOLE_WORKSPACE: &str = "permission_mode = \"default\"";

/// Manifest lines granting writes to `dirs` only.
fn writes(dirs: &[&str]) -> String {
    let list: Vec<String> = dirs.iter().map(|d| format!("{d:?}")).collect();
    format!(
        "permission_mode = \"default\"\nallowed_write_directories = [{}]",
        list.join(", ")
    )
}

// ---------------------------------------------------------------- helpers

/// The operations an `fs-attack` run reported.
fn ops(result: &TaskResult) -> Vec<Value> {
    result
        .data
        .as_ref()
        .and_then(|d| d["ops"].as_array())
        .unwrap_or_else(|| panic!("no ops in {result:#?}"))
        .clone()
}

fn data(result: &TaskResult) -> &Value {
    result
        .data
        .as_ref()
        .unwrap_or_else(|| panic!("no data in {result:#?}"))
}

fn assert_all_ok(ops: &[Value]) {
    let failed: Vec<&Value> = ops.iter().filter(|o| o["ok"] != true).collect();
    assert!(failed.is_empty(), "these operations failed: {failed:#?}");
}

/// The operation failed with WASI `not-permitted`.
fn assert_not_permitted(op: &Value) {
    assert_eq!(op["ok"], false, "this operation succeeded: {op}");
    assert_eq!(
        op["errno"], EPERM,
        "expected not-permitted (EPERM, PermissionDenied): {op}"
    );
}

/// The result as JSON, for fields the host does not have yet.
fn as_json(result: &TaskResult) -> Value {
    serde_json::to_value(result).unwrap()
}

/// The names in `limits_hit` of a result (as JSON); none when it is absent.
fn limits_hit(result: &Value) -> Vec<String> {
    result["limits_hit"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|hit| hit["limit"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn u64_at(value: &Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number at `{pointer}` in {value:#}"))
}

/// File results as `"kind path"` lines, each list in path order.
#[derive(Debug, PartialEq, Eq)]
struct Results {
    created: Vec<String>,
    modified: Vec<String>,
    deleted: Vec<String>,
    incomplete: bool,
}

impl Results {
    fn of(files: &FileChanges) -> Results {
        let lines = |changes: &[FileChange]| {
            let mut changes: Vec<&FileChange> = changes.iter().collect();
            changes.sort_by(|a, b| a.path.cmp(&b.path));
            changes
                .iter()
                .map(|c| {
                    let kind = serde_json::to_value(c.kind).unwrap();
                    format!("{} {}", kind.as_str().unwrap(), c.path)
                })
                .collect()
        };
        Results {
            created: lines(&files.created),
            modified: lines(&files.modified),
            deleted: lines(&files.deleted),
            incomplete: files.incomplete,
        }
    }

    fn of_json(files: &Value) -> Results {
        let files: FileChanges = serde_json::from_value(files.clone())
            .unwrap_or_else(|e| panic!("bad file results {files}: {e}"));
        Results::of(&files)
    }

    fn exactly(created: &[&str], modified: &[&str], deleted: &[&str]) -> Results {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Results {
            created: owned(created),
            modified: owned(modified),
            deleted: owned(deleted),
            incomplete: false,
        }
    }
}

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// The symlinks under the workspace in a state map.
fn workspace_symlinks(state: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    state
        .iter()
        .filter(|(path, what)| path.starts_with("ws/") && what.starts_with("-> "))
        .map(|(path, what)| format!("{path} {what}"))
        .collect()
}

/// Run the CLI, failing the test (not hanging it) past `limit`.
fn cli_within(cmd: std::process::Command, limit: Duration) -> Output {
    output_within(cmd, limit).unwrap_or_else(|hang| panic!("the CLI hung: {hang}"))
}

fn cli(args: &[&str]) -> Output {
    cli_within(subagent_command(args), CLI_LIMIT)
}

/// The exit code, failing on a death by signal (a crash).
/// The CLI refused the run before it started (exit 2), naming `component`
/// as a symlink.
fn assert_refused_as_symlink(out: &Output, component: &str) {
    let err = stderr(out);
    assert_eq!(exit_code(out), 2, "{}{err}", stdout(out));
    assert!(
        err.contains(&format!("`{component}` is a symlink")),
        "{err}"
    );
}

fn exit_code(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| {
        let tail: String = stderr(out)
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("the CLI was killed by a signal ({}):\n{tail}", out.status)
    })
}

fn json_report(out: &Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| {
        panic!(
            "no JSON result on stdout ({e}):\n{}\nstderr:\n{}",
            stdout(out),
            stderr(out)
        )
    })
}

/// A bundle `dir/name` running the test guest `component`, with `extra`
/// manifest lines.
fn write_bundle(dir: &Path, name: &str, component: &str, extra: &str) {
    std::fs::create_dir_all(dir.join(name)).unwrap();
    std::fs::write(
        dir.join(name).join("subagent.toml"),
        format!(
            "name = \"{name}\"\ndescription = \"test {name}\"\ncomponent = {:?}\n{extra}\n",
            guest(component).display().to_string()
        ),
    )
    .unwrap();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo failed");
}

/// Open `fifo` read-write (never blocks on Linux), so a host thread stuck
/// opening it from either end gets unstuck.
fn unblock(fifo: &Path) {
    let _ = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(fifo);
}

/// Run a task on a tokio runtime of its own that is abandoned afterwards, so
/// a host thread blocked for good cannot hold up the test; `None` when it
/// did not end within `guard`.
fn run_abandoning(
    bundle: &Bundle,
    workspace: &Path,
    prompt: &str,
    guard: Duration,
) -> Option<TaskResult> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = tokio.block_on(async {
        tokio::time::timeout(
            guard,
            run_with(bundle, workspace, prompt, &PlanRequest::default()),
        )
        .await
        .ok()
    });
    tokio.shutdown_background();
    result
}

/// Tasks through a real task manager, with a registry of the given
/// `(name, component, manifest lines)`.
struct Host {
    _registry: tempfile::TempDir,
    fixture: Fixture,
    manager: TaskManager,
}

impl Host {
    fn new(fixture: Fixture, agents: &[(&str, &str, &str)], max_running: usize) -> Host {
        let registry = tempfile::tempdir().unwrap();
        for (name, component, extra) in agents {
            write_bundle(registry.path(), name, component, extra);
        }
        let config = ManagerConfig {
            agents: vec![registry.path().to_owned()],
            max_running,
            ..ManagerConfig::default()
        };
        Host {
            manager: TaskManager::new(manager_runtime(), config).unwrap(),
            _registry: registry,
            fixture,
        }
    }

    async fn launch(&self, name: &str, prompt: &str, write: Option<&[&str]>) -> String {
        let mut request = LaunchRequest::new(
            SubagentRef::Name(name.into()),
            prompt,
            &self.fixture.workspace,
        );
        request.write = write.map(|dirs| dirs.iter().map(|d| d.to_string()).collect());
        self.manager
            .launch(request)
            .await
            .unwrap_or_else(|e| panic!("launch {name}: {e}"))
    }

    async fn result(&self, id: &str) -> TaskResult {
        await_result(&self.manager, id).await
    }

    /// Wait (at most 60 s) until task `id` reports the progress note `text`.
    async fn note(&self, id: &str, text: &str) {
        let mut events = self.manager.subscribe(id).unwrap();
        let wait = async {
            while let Some(item) = events.next().await {
                if let StreamItem::Event(event) = item {
                    match event.kind {
                        EventKind::Progress {
                            progress: Progress::Note { text: note },
                        } if note == text => return,
                        kind if kind.is_terminal() => {
                            panic!("task {id} ended before its note `{text}`: {kind:?}")
                        }
                        _ => {}
                    }
                }
            }
            panic!("the events of task {id} ended before its note `{text}`");
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("task {id} did not note `{text}` within 60 s"));
    }
}

fn manager_runtime() -> Arc<subagent_host::Runtime> {
    static RUNTIME: std::sync::OnceLock<Arc<subagent_host::Runtime>> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let config = subagent_host::RuntimeConfig {
                cache_dir: Some(cache_dir()),
                max_instances: 16,
                ..Default::default()
            };
            Arc::new(subagent_host::Runtime::new(config).unwrap())
        })
        .clone()
}

// ------------------------------------- 1. grants are bound when a task starts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_task_whose_write_dir_became_a_symlink_is_denied_at_start() {
    let fixture = Fixture::plain();
    std::fs::create_dir_all(fixture.workspace.join("a/reports")).unwrap();
    let host = Host::new(fixture, &[("attack", GUEST, WHOLE_WORKSPACE)], 1);
    let first = host.launch("attack", "do wait", Some(&["a"])).await;
    // Checked now, while a/reports is a real directory; queued behind `first`.
    let second = host
        .launch("attack", "do write:a/reports/x.txt", Some(&["a/reports"]))
        .await;
    host.note(&first, "waiting").await;
    assert_eq!(
        host.manager.get(&second).unwrap().status,
        TaskStatus::Queued,
        "with max_running 1 the second task waits for the first"
    );

    let reports = host.fixture.workspace.join("a/reports");
    std::fs::remove_dir(&reports).unwrap();
    symlink(&host.fixture.outside, &reports);
    let before = host.fixture.state_except(&[]);
    host.manager.send_message(&first, "go on").unwrap();
    assert_eq!(host.result(&first).await.status, TaskStatus::Completed);
    let result = host.result(&second).await;

    assert_eq!(
        host.fixture.state_except(&[]),
        before,
        "the queued task wrote through a/reports -> outside: {result:#?}"
    );
    assert_eq!(result.status, TaskStatus::Failed, "{result:#?}");
    let error = result.error.expect("a failed task has an error");
    assert_eq!(error.kind, ErrorKind::Denied, "{error:?}");
    assert!(error.message.contains("is a symlink"), "{}", error.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_dir_swapped_during_a_run_keeps_receiving_the_writes() {
    let fixture = Fixture::plain();
    std::fs::create_dir_all(fixture.workspace.join("out")).unwrap();
    let host = Host::new(fixture, &[("attack", GUEST, WHOLE_WORKSPACE)], 0);
    let id = host
        .launch("attack", "do wait write:out/late.txt", Some(&["out"]))
        .await;
    host.note(&id, "waiting").await;

    let ws = &host.fixture.workspace;
    std::fs::rename(ws.join("out"), ws.join("out.moved")).unwrap();
    symlink("../outside", ws.join("out"));
    let before = host.fixture.state_except(&["out.moved"]);
    host.manager.send_message(&id, "go on").unwrap();
    let result = host.result(&id).await;

    assert_eq!(
        host.fixture.state_except(&["out.moved"]),
        before,
        "the write followed the path `out` instead of the opened directory"
    );
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    assert_all_ok(&ops(&result));
    assert_eq!(
        std::fs::read_to_string(ws.join("out.moved/late.txt")).unwrap(),
        WRITTEN
    );
}

// ----------------------------- 2. a child never gets more than its parent

#[test]
fn plan_refuses_write_dirs_that_are_or_pass_through_a_symlink() {
    // (symlink, its target, the write dir granted)
    let cases = [("reports", ".", "reports"), ("alias", "src", "alias/gen")];
    for (link, target, dir) in cases {
        let fixture = Fixture::plain();
        symlink(target, fixture.workspace.join(link));
        let before = fixture.state_except(&[]);
        let b = bundle(&guest(GUEST), &writes(&[dir]));
        for create in [false, true] {
            let err = match plan(
                &b.bundle,
                &fixture.workspace,
                &PlanRequest::default(),
                create,
            ) {
                Ok(plan) => panic!(
                    "plan (create = {create}) accepted `{dir}` with `{link} -> {target}`: {:?}",
                    plan.sandbox
                ),
                Err(err) => err,
            };
            assert!(matches!(err, PlanError::Sandbox(_)), "{err:?}");
            let message = err.to_string();
            assert!(
                message.contains("is a symlink") && message.contains(link),
                "{message}"
            );
        }
        assert_eq!(
            fixture.state_except(&[]),
            before,
            "plan changed the workspace"
        );
    }
}

#[test]
fn cli_run_refuses_a_write_dir_symlinked_to_the_root_and_writes_nothing() {
    let fixture = Fixture::plain();
    symlink(".", fixture.workspace.join("reports"));
    let before = fixture.state_except(&[]);
    let b = bundle(&guest(GUEST), &writes(&["reports"]));
    let out = cli(&[
        "run",
        path(b.dir.path()),
        "do write:reports/pwned.txt",
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_eq!(
        fixture.state_except(&[]),
        before,
        "something was written: {}",
        stdout(&out)
    );
    assert_refused_as_symlink(&out, "reports");
}

#[test]
fn cli_validate_refuses_a_write_dir_symlinked_to_the_root() {
    let fixture = Fixture::plain();
    symlink(".", fixture.workspace.join("reports"));
    let b = bundle(&guest(GUEST), &writes(&["reports"]));
    let out = cli(&[
        "validate",
        path(b.dir.path()),
        "--workspace",
        path(&fixture.workspace),
    ]);
    assert_refused_as_symlink(&out, "reports");
}

#[test]
fn cli_write_flag_through_a_symlink_inside_the_grant_exits_2() {
    let fixture = Fixture::plain();
    std::fs::create_dir(fixture.workspace.join("reports")).unwrap();
    symlink("..", fixture.workspace.join("reports/up"));
    let before = fixture.state_except(&[]);
    let b = bundle(&guest(GUEST), &writes(&["reports"]));
    let out = cli(&[
        "run",
        path(b.dir.path()),
        "do write:reports/up/pwned.txt",
        "--workspace",
        path(&fixture.workspace),
        "--write",
        "reports/up",
    ]);
    assert_eq!(
        fixture.state_except(&[]),
        before,
        "the run wrote through reports/up -> ..: {}",
        stdout(&out)
    );
    assert_refused_as_symlink(&out, "reports/up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_cannot_write_through_a_symlink_inside_its_parents_grant() {
    let fixture = Fixture::plain();
    std::fs::create_dir(fixture.workspace.join("reports")).unwrap();
    symlink("..", fixture.workspace.join("reports/up"));
    let nester = format!("tools = [\"subagents\"]\n{}", writes(&["reports"]));
    let host = Host::new(
        fixture,
        &[
            ("nester", "nester", nester.as_str()),
            ("attack", GUEST, WHOLE_WORKSPACE),
        ],
        0,
    );
    let before = host.fixture.state_except(&["reports"]);
    let spawn = json!({
        "spawn": [{
            "subagent": "attack",
            "prompt": "do write:reports/up/pwned.txt",
            "write_dirs": ["reports/up"],
        }],
        "await": true,
    });
    let id = host.launch("nester", &spawn.to_string(), None).await;
    let result = host.result(&id).await;

    assert_eq!(
        host.fixture.state_except(&["reports"]),
        before,
        "the child wrote outside its parent's grant: {result:#?}"
    );
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    let data = data(&result);
    let refused_at_launch = data["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap_or("").contains("is a symlink"));
    let child = &data["results"][0];
    let denied_at_start = child["status"] == "failed"
        && child["error"]
            .as_str()
            .unwrap_or("")
            .contains("is a symlink");
    assert!(
        refused_at_launch || denied_at_start,
        "the child's launch was not refused for the symlink: {data:#}"
    );
}

// ------------------------------------------- 3. no symlinks, no hard links

#[tokio::test]
async fn guest_cannot_create_symlinks_or_hard_links() {
    let fixture = Fixture::plain();
    std::fs::create_dir(fixture.workspace.join("reports")).unwrap();
    std::fs::write(fixture.workspace.join("reports/existing.txt"), "mine\n").unwrap();
    let before = fixture.state_except(&[]);
    let b = bundle(&guest(GUEST), &writes(&["reports"]));
    let attempts = [
        "symlink:loop:reports/loop",
        "symlink:b:reports/a",
        "symlink:a:reports/b",
        "symlink:../../..:reports/leak",
        "symlink:/:reports/root",
        "symlink:existing.txt:reports/alias",
        "hardlink:reports/existing.txt:reports/hard",
        "hardlink:readme.txt:reports/readme-link",
    ];
    let result = run(
        &b.bundle,
        &fixture.workspace,
        &format!("do {}", attempts.join(" ")),
    )
    .await;

    let after = fixture.state_except(&[]);
    assert_eq!(
        workspace_symlinks(&after),
        Vec::<String>::new(),
        "the guest left symlinks in the workspace"
    );
    assert_eq!(after, before, "the guest changed the workspace");
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    let ops = ops(&result);
    assert_eq!(ops.len(), attempts.len());
    for op in &ops {
        assert_not_permitted(op);
    }
}

// ------------------------------------- 4. FIFOs, sockets, devices: refused

#[test]
fn fifo_in_the_workspace_is_refused_at_open_without_blocking() {
    let fixture = Fixture::plain();
    let fifo = fixture.workspace.join("pipe");
    mkfifo(&fifo);
    let before = fixture.state_pruned(&["pipe"]);
    let b = bundle(
        &guest(GUEST),
        &format!("{WHOLE_WORKSPACE}\n[limits]\ntimeout = \"5s\""),
    );
    let result = run_abandoning(
        &b.bundle,
        &fixture.workspace,
        "do read:pipe open-write:pipe stat:pipe",
        Duration::from_secs(60),
    );
    unblock(&fifo);
    let result = result.expect("the task did not end within 60 s");

    assert_eq!(
        result.status,
        TaskStatus::Completed,
        "the guest blocked on the FIFO: {result:#?}"
    );
    let ops = ops(&result);
    assert_not_permitted(&ops[0]);
    assert_not_permitted(&ops[1]);
    assert_eq!(fixture.state_pruned(&["pipe"]), before);
}

#[test]
fn sockets_and_device_nodes_in_the_workspace_are_refused_at_open() {
    let fixture = Fixture::plain();
    let _listener = std::os::unix::net::UnixListener::bind(fixture.workspace.join("sock")).unwrap();
    let mut prompt = "do read:sock open-write:sock".to_owned();
    // A character device (/dev/null's numbers), where this user may make one.
    let device = std::process::Command::new("mknod")
        .arg(fixture.workspace.join("null"))
        .args(["c", "1", "3"])
        .output()
        .is_ok_and(|out| out.status.success());
    if device {
        prompt.push_str(" read:null open-write:null");
    } else {
        eprintln!("mknod is not permitted here: device nodes are not tried");
    }
    let before = fixture.state_pruned(&["sock", "null"]);
    let b = bundle(
        &guest(GUEST),
        &format!("{WHOLE_WORKSPACE}\n[limits]\ntimeout = \"5s\""),
    );
    let result = run_abandoning(
        &b.bundle,
        &fixture.workspace,
        &prompt,
        Duration::from_secs(60),
    )
    .expect("the task did not end within 60 s");

    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    for op in &ops(&result) {
        assert_not_permitted(op);
    }
    assert_eq!(fixture.state_pruned(&["sock", "null"]), before);
}

#[test]
fn cli_exits_by_itself_after_a_guest_reads_a_fifo() {
    let fixture = Fixture::plain();
    let fifo = fixture.workspace.join("pipe");
    mkfifo(&fifo);
    let b = bundle(&guest(GUEST), "");
    let out = output_within(
        subagent_command(&[
            "run",
            path(b.dir.path()),
            "do read:pipe",
            "--workspace",
            path(&fixture.workspace),
            "--timeout",
            "5s",
            "--json",
        ]),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|hang| {
        panic!("the CLI did not exit by itself (a host thread blocked on the FIFO?): {hang}")
    });
    let report = json_report(&out);
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(exit_code(&out), 0);
    assert_not_permitted(&report["data"]["ops"][0]);
}

// ------------------------------ 5. one task cannot exhaust the descriptors

const HOG: &str = "hog readme.txt 2000 hog/ready sib/done";
const SIBLING: &str = "sibling sib hog/ready sib/done";
const SIBLING_OK: &str = "sibling: 10 file ops, 0 failed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_files_limit_stops_a_hog_and_its_sibling_keeps_working() {
    let hog_manifest = format!("{}\n[limits]\nopen_files = 32", writes(&["hog"]));
    let host = Host::new(
        Fixture::plain(),
        &[
            ("hog", GUEST, hog_manifest.as_str()),
            ("sibling", GUEST, writes(&["sib"]).as_str()),
        ],
        0,
    );
    let before = host.fixture.state_except(&["hog", "sib"]);
    let hog = host.launch("hog", HOG, None).await;
    let sibling = host.launch("sibling", SIBLING, None).await;
    let (hog, sibling) = (host.result(&hog).await, host.result(&sibling).await);

    assert_eq!(host.fixture.state_except(&["hog", "sib"]), before);
    assert_eq!(sibling.status, TaskStatus::Completed, "{sibling:#?}");
    assert_all_ok(data(&sibling)["ops"].as_array().unwrap());
    assert_eq!(sibling.summary.as_deref(), Some(SIBLING_OK));
    assert_eq!(
        data(&sibling)["ready_seen"],
        true,
        "the sibling worked while the hog held its descriptors"
    );

    assert_eq!(hog.status, TaskStatus::Completed, "{hog:#?}");
    let held = data(&hog);
    assert_eq!(held["error"]["kind"], "QuotaExceeded", "{held:#}");
    let opened = held["opened"].as_u64().unwrap();
    assert!(
        (24..=32).contains(&opened),
        "the hog held {opened} descriptors under open_files = 32 (preopens may count)"
    );
    assert_eq!(limits_hit(&as_json(&hog)), ["open_files"]);
}

#[test]
fn cli_batch_sibling_keeps_working_beside_a_descriptor_hog_under_ulimit_256() {
    let fixture = Fixture::plain();
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), "hog", GUEST, &writes(&["hog"]));
    write_bundle(dir.path(), "sibling", GUEST, &writes(&["sib"]));
    let batch = dir.path().join("batch.toml");
    std::fs::write(
        &batch,
        format!(
            "[[task]]\nsubagent = \"./hog\"\nprompt = \"hog readme.txt 100000 hog/ready sib/done\"\n\n\
             [[task]]\nsubagent = \"./sibling\"\nprompt = \"{SIBLING}\"\n"
        ),
    )
    .unwrap();
    let before = fixture.state_except(&["hog", "sib"]);
    let out = cli_within(
        subagent_under_ulimit(
            256,
            &[
                "batch",
                path(&batch),
                "--workspace",
                path(&fixture.workspace),
                "--max-running",
                "2",
                "--json",
            ],
        ),
        CLI_LIMIT,
    );
    let results: Vec<Value> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "result")
        .collect();
    let result_of = |name: &str| {
        results
            .iter()
            .find(|r| r["subagent"] == name)
            .map(|r| r["result"].clone())
            .unwrap_or_else(|| panic!("no result for {name}:\n{}\n{}", stdout(&out), stderr(&out)))
    };
    let (hog, sibling) = (result_of("hog"), result_of("sibling"));

    assert_eq!(fixture.state_except(&["hog", "sib"]), before);
    let failed: Vec<&Value> = sibling["data"]["ops"]
        .as_array()
        .unwrap_or_else(|| panic!("the sibling has no ops: {sibling:#}"))
        .iter()
        .filter(|op| op["ok"] != true)
        .collect();
    assert!(
        failed.is_empty(),
        "the sibling's file operations failed: {failed:#?}"
    );
    assert_eq!(sibling["status"], "completed", "{sibling:#}");
    assert_eq!(sibling["summary"], SIBLING_OK);
    assert_eq!(sibling["data"]["ready_seen"], true, "{sibling:#}");
    assert_eq!(hog["status"], "completed", "{hog:#}");
    assert_eq!(
        hog["data"]["error"]["kind"], "QuotaExceeded",
        "the hog must stop at its own limit: {hog:#}"
    );
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
}

// --------------------------------------------------- 6. filesystem quotas

const MIB: u64 = 1 << 20;
const CHUNK: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_limit_fails_the_write_with_no_space_and_names_the_limit() {
    let filler = format!("{}\n[limits]\ndisk = \"1MiB\"", writes(&["reports"]));
    let fixture = Fixture::plain();
    // Write dirs exist beforehand: only what the guest creates counts.
    for dir in ["reports", "other"] {
        std::fs::create_dir(fixture.workspace.join(dir)).unwrap();
    }
    let host = Host::new(
        fixture,
        &[
            ("filler", GUEST, filler.as_str()),
            ("writer", GUEST, writes(&["other"]).as_str()),
        ],
        0,
    );
    let before = host.fixture.state_except(&["reports", "other"]);
    let filled = host
        .launch(
            "filler",
            &format!("fill reports/big.bin {CHUNK} {}", 8 * MIB),
            None,
        )
        .await;
    let wrote = host
        .launch(
            "writer",
            &format!("fill other/big.bin {CHUNK} {}", 2 * MIB),
            None,
        )
        .await;
    let (filled, wrote) = (host.result(&filled).await, host.result(&wrote).await);

    assert_eq!(host.fixture.state_except(&["reports", "other"]), before);
    assert_eq!(filled.status, TaskStatus::Completed, "{filled:#?}");
    let fill = data(&filled);
    // The host fails the write with `insufficient-space`; wasi-libc (Rust's
    // std on wasm32-wasip2) reports any failed stream write as EIO (29),
    // while a call answered directly (pwrite) would carry ENOSPC.
    let refused = &fill["error"];
    assert!(
        refused["kind"] == "StorageFull" || refused["errno"] == 29,
        "the write past the limit did not fail as expected: {fill:#}"
    );
    let bytes = fill["bytes"].as_u64().unwrap();
    assert!(
        (MIB - CHUNK..=MIB).contains(&bytes),
        "wrote {bytes} bytes under disk = 1MiB"
    );
    let on_disk = std::fs::metadata(host.fixture.workspace.join("reports/big.bin"))
        .unwrap()
        .len();
    assert!(on_disk <= MIB, "{on_disk} bytes on disk under disk = 1MiB");
    let report = as_json(&filled);
    assert_eq!(limits_hit(&report), ["disk"]);
    let counted = u64_at(&report, "/usage/bytes_written");
    assert!(
        (bytes..=MIB).contains(&counted),
        "usage.bytes_written = {counted}, the guest wrote {bytes}"
    );

    // The quota is the filler's alone.
    assert_eq!(wrote.status, TaskStatus::Completed, "{wrote:#?}");
    assert_eq!(data(&wrote)["error"], Value::Null, "{:#}", data(&wrote));
    assert_eq!(data(&wrote)["bytes"], 2 * MIB);
    assert_eq!(limits_hit(&as_json(&wrote)), Vec::<String>::new());
}

#[tokio::test]
async fn files_limit_fails_creation_with_quota_and_names_the_limit() {
    let fixture = Fixture::plain();
    // The write dir exists beforehand: only what the guest creates counts.
    std::fs::create_dir(fixture.workspace.join("reports")).unwrap();
    let before = fixture.state_except(&["reports"]);
    let b = bundle(
        &guest(GUEST),
        &format!("{}\n[limits]\nfiles = 100", writes(&["reports"])),
    );
    let result = run(&b.bundle, &fixture.workspace, "create-files reports 1000").await;

    assert_eq!(fixture.state_except(&["reports"]), before);
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    let created = data(&result)["created"].as_u64().unwrap();
    assert_eq!(
        data(&result)["error"]["kind"],
        "QuotaExceeded",
        "{:#}",
        data(&result)
    );
    assert!(
        (98..=100).contains(&created),
        "created {created} files under files = 100"
    );
    let on_disk = std::fs::read_dir(fixture.workspace.join("reports"))
        .unwrap()
        .count();
    assert_eq!(on_disk as u64, created);
    let report = as_json(&result);
    assert_eq!(limits_hit(&report), ["files"]);
    assert_eq!(u64_at(&report, "/usage/files_created"), created);
}

// ------------------- 7. file results recorded as the guest acts, not scanned

#[test]
fn ten_thousand_nested_directories_do_not_crash_the_cli() {
    let fixture = Fixture::plain();
    std::fs::create_dir(fixture.workspace.join("out")).unwrap();
    let before = fixture.state_pruned(&["out"]);
    let b = bundle(&guest(GUEST), &writes(&["out"]));
    let run_cli = |prompt: &str| {
        cli(&[
            "run",
            path(b.dir.path()),
            prompt,
            "--workspace",
            path(&fixture.workspace),
            "--json",
        ])
    };

    let _cleanup = RemoveTree(fixture.workspace.join("out"));
    let deep = run_cli("deep out/deep 10000");
    let code = exit_code(&deep);
    assert!(code == 0 || code == 1, "exit {code}: {}", stderr(&deep));
    let report = json_report(&deep);
    let depth = report["data"]["depth"]
        .as_u64()
        .unwrap_or_else(|| panic!("no depth in the result: {report:#}"));
    assert!(
        depth >= 1000,
        "the guest got only {depth} levels deep: {report:#}"
    );

    // A later writable run on the same workspace works, and sees only its own change.
    let second = run_cli("do write:out/second.txt");
    assert_eq!(exit_code(&second), 0, "{}", stderr(&second));
    let report = json_report(&second);
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(
        Results::of_json(&report["files"]),
        Results::exactly(&["file out/second.txt"], &[], &[])
    );
    assert_eq!(fixture.state_pruned(&["out"]), before);
}

/// Removes a tree of any depth when dropped, even after a failure: `rm`
/// walks it without recursion, which a plain drop might not.
struct RemoveTree(std::path::PathBuf);

impl Drop for RemoveTree {
    fn drop(&mut self) {
        let mut rm = std::process::Command::new("rm");
        rm.arg("-rf").arg(&self.0);
        let _ = output_within(rm, Duration::from_secs(60));
    }
}

/// `dirs` directories of `files` empty files each under `root`: hard links
/// to a few seed files (made in a temporary directory under `scratch`, on
/// the same filesystem), as creating inodes is slow on some filesystems.
fn populate(root: &Path, scratch: &Path, dirs: usize, files: usize) {
    let seeds = tempfile::tempdir_in(scratch).unwrap();
    // Well under the smallest common link limit (ext4: 65,000).
    let per_seed = 50_000;
    let mut seed = seeds.path().join("seed");
    for n in 0..dirs * files {
        if n % per_seed == 0 {
            seed = seeds.path().join(format!("seed{n}"));
            std::fs::File::create(&seed).unwrap();
        }
        let dir = root.join(format!("d{:03}", n / files));
        if n % files == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::hard_link(&seed, dir.join(format!("f{:03}", n % files))).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_results_are_exact_in_a_workspace_of_200_000_files() {
    let fixture = Fixture::plain();
    populate(
        &fixture.workspace.join("big"),
        fixture.root.path(),
        200,
        1000,
    );
    std::fs::write(fixture.workspace.join("notes.txt"), "notes\n").unwrap();
    let untouched = ["big", "notes.txt", "new.txt"];
    let before = fixture.state_pruned(&untouched);
    let b = bundle(&guest(GUEST), WHOLE_WORKSPACE);
    let result = run(
        &b.bundle,
        &fixture.workspace,
        "do append:notes.txt write:new.txt",
    )
    .await;

    assert_eq!(fixture.state_pruned(&untouched), before);
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    assert_all_ok(&ops(&result));
    assert_eq!(
        Results::of(&result.files),
        Results::exactly(&["file new.txt"], &["file notes.txt"], &[])
    );
}

#[test]
fn file_results_are_complete_under_a_low_descriptor_limit() {
    let fixture = Fixture::plain();
    std::fs::create_dir(fixture.workspace.join("out")).unwrap();
    let before = fixture.state_except(&["out"]);
    let b = bundle(&guest(GUEST), &writes(&["out"]));
    let out = cli_within(
        subagent_under_ulimit(
            64,
            &[
                "run",
                path(b.dir.path()),
                "tree out/t 100",
                "--workspace",
                path(&fixture.workspace),
                "--json",
            ],
        ),
        CLI_LIMIT,
    );
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let report = json_report(&out);
    assert_eq!(report["data"]["failures"], json!([]), "{report:#}");
    assert_eq!(report["data"]["files"], 100);

    let mut created = vec!["dir out/t".to_owned()];
    let mut dir = "out/t".to_owned();
    for i in 0..100 {
        dir = format!("{dir}/d{i}");
        created.push(format!("dir {dir}"));
        created.push(format!("file {dir}/f.txt"));
    }
    let mut expected = Results::exactly(&[], &[], &[]);
    expected.created = created;
    expected.created.sort_by(|a, b| {
        a.split_once(' ')
            .unwrap()
            .1
            .cmp(b.split_once(' ').unwrap().1)
    });
    let results = Results::of_json(&report["files"]);
    assert_eq!(
        (results.created.len(), results.incomplete),
        (expected.created.len(), false),
        "(entries in `created`, incomplete)"
    );
    assert_eq!(results, expected);
    assert_eq!(fixture.state_except(&["out"]), before);
}

#[tokio::test]
async fn file_results_record_each_kind_of_change_exactly() {
    let fixture = Fixture::plain();
    let reports = fixture.workspace.join("reports");
    std::fs::create_dir_all(reports.join("old-dir")).unwrap();
    for name in ["keep.txt", "gone.txt", "a.txt"] {
        std::fs::write(reports.join(name), format!("{name}\n")).unwrap();
    }
    let before = fixture.state_except(&["reports"]);
    let b = bundle(&guest(GUEST), &writes(&["reports"]));
    let script = [
        "write:reports/tmp.txt",
        "remove:reports/tmp.txt",
        "append:reports/keep.txt",
        "remove:reports/gone.txt",
        "rename:reports/a.txt:reports/b.txt",
        "mkdir:reports/new-dir",
        "rmdir:reports/old-dir",
        "mkdir:reports/brief",
        "rmdir:reports/brief",
    ];
    let result = run(
        &b.bundle,
        &fixture.workspace,
        &format!("do {}", script.join(" ")),
    )
    .await;

    assert_eq!(fixture.state_except(&["reports"]), before);
    assert_all_ok(&ops(&result));
    assert_eq!(
        Results::of(&result.files),
        Results::exactly(
            &["file reports/b.txt", "dir reports/new-dir"],
            &["file reports/keep.txt"],
            &[
                "file reports/a.txt",
                "file reports/gone.txt",
                "dir reports/old-dir"
            ],
        )
    );
}

#[tokio::test]
async fn overwrite_keeping_size_and_mtime_is_reported_modified() {
    let fixture = Fixture::plain();
    let file = fixture.workspace.join("reports/same.txt");
    std::fs::create_dir(fixture.workspace.join("reports")).unwrap();
    std::fs::write(&file, "0123456789\n").unwrap();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let b = bundle(&guest(GUEST), &writes(&["reports"]));
    let result = run(
        &b.bundle,
        &fixture.workspace,
        "do same-size:reports/same.txt",
    )
    .await;

    assert_all_ok(&ops(&result));
    // The premise: only a host that records the write can know.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "XXXXXXXXXXX");
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    assert_eq!(
        Results::of(&result.files),
        Results::exactly(&[], &["file reports/same.txt"], &[])
    );
}

// ------------- lookups at native cost still see every change the task makes

#[tokio::test]
async fn cached_lookups_see_the_tasks_own_changes() {
    let fixture = Fixture::plain();
    let out = fixture.workspace.join("out");
    std::fs::create_dir_all(out.join("d")).unwrap();
    std::fs::write(out.join("real.txt"), "real\n").unwrap();
    symlink("real.txt", out.join("link.txt"));
    let before = fixture.state_except(&["out"]);
    let b = bundle(&guest(GUEST), &writes(&["out"]));
    let script = [
        "stat:out/d/x.txt",                  // missing
        "write:out/d/x.txt",                 // now it exists
        "stat:out/d/x.txt",                  // seen, though `out/d` was looked up before
        "rename:out/d:out/e",                // the directory moves
        "stat:out/d/x.txt",                  // gone from the old name
        "stat:out/e/x.txt",                  // found under the new one
        "remove:out/e/x.txt",                //
        "stat:out/e/x.txt",                  // gone
        "read:out/link.txt",                 // a final symlink inside the grant is followed
        "stat:out/link.txt",                 // and reported as a symlink when not followed
        "read:out/e/../real.txt",            // `..` inside the grant resolves
        "read:out/../../outside/secret.txt", // and never leaves it
    ];
    let result = run(
        &b.bundle,
        &fixture.workspace,
        &format!("do {}", script.join(" ")),
    )
    .await;
    let ops = ops(&result);
    let ok: Vec<bool> = ops.iter().map(|o| o["ok"] == true).collect();
    assert_eq!(
        ok,
        [
            false, true, true, true, false, true, true, false, true, true, true, false
        ],
        "{ops:#?}"
    );
    for missing in [0, 4, 7] {
        assert_eq!(ops[missing]["kind"], "NotFound", "{:#}", ops[missing]);
    }
    assert_eq!(ops[9]["detail"], "symlink", "{:#}", ops[9]);
    assert_eq!(fixture.state_except(&["out"]), before);
}
