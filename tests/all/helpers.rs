//! Small helpers so each test reads as one intention.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use subagent_host::events::Ignore;
use subagent_host::plan::{PlanRequest, plan};
use subagent_host::{
    Bundle, Manifest, RunSpec, Runtime, RuntimeConfig, TaskControl, TaskInfo, TaskResult,
};

pub use subagent_tests::{guest, plugin, repo_root};

/// Where the tests cache compiled components (shared across runs).
pub fn cache_dir() -> PathBuf {
    repo_root().join("target").join("test-artifacts")
}

/// One runtime shared by every test, as one host serves many tasks.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir()),
            ..RuntimeConfig::default()
        })
        .expect("engine")
    })
}

/// A bundle for `component` with extra manifest lines, in its own temp dir.
pub struct TestBundle {
    pub dir: tempfile::TempDir,
    pub bundle: Bundle,
}

pub fn bundle(component: &Path, extra: &str) -> TestBundle {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"test-guest\"\ndescription = \"a test guest\"\ncomponent = {:?}\n{extra}\n",
        component.display().to_string()
    );
    let path = dir.path().join("subagent.toml");
    std::fs::write(&path, &text).unwrap();
    let manifest =
        Manifest::parse(&path, &text).unwrap_or_else(|e| panic!("test manifest is invalid:\n{e}"));
    TestBundle {
        bundle: Bundle::from_manifest(manifest).unwrap(),
        dir,
    }
}

/// Write bundle `dir/name`: subagent `name` running test guest `guest`,
/// with `extra` manifest lines. Returns the bundle directory.
pub fn write_bundle(dir: &Path, name: &str, guest_name: &str, extra: &str) -> PathBuf {
    let bundle = dir.join(name);
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("subagent.toml"),
        format!(
            "name = \"{name}\"\ndescription = \"d\"\ncomponent = {:?}\n{extra}\n",
            guest(guest_name).display().to_string()
        ),
    )
    .unwrap();
    bundle
}

/// Run `bundle` on `workspace` with `prompt` through the real runtime.
pub async fn run(bundle: &Bundle, workspace: &Path, prompt: &str) -> TaskResult {
    run_with(bundle, workspace, prompt, &PlanRequest::default()).await
}

pub async fn run_with(
    bundle: &Bundle,
    workspace: &Path,
    prompt: &str,
    request: &PlanRequest,
) -> TaskResult {
    let plan =
        plan(bundle, workspace, request, true).unwrap_or_else(|e| panic!("plan failed: {e}"));
    let m = &bundle.manifest;
    let component = runtime()
        .load(&m.name, &m.component, m.sha256.as_deref(), &m.path)
        .unwrap_or_else(|e| panic!("load failed: {e}"));
    let spec = RunSpec::new(
        TaskInfo {
            id: "t-test".into(),
            subagent: bundle.manifest.name.clone(),
            description: "test".into(),
            prompt: prompt.into(),
            system_prompt: bundle.system_prompt.clone(),
            ..TaskInfo::default()
        },
        plan,
    );
    let hang_guard = std::time::Duration::from_secs(120);
    tokio::time::timeout(
        hang_guard,
        runtime().run(&component, spec, TaskControl::new(), Arc::new(Ignore)),
    )
    .await
    .expect("the task did not end within 120 s")
}

/// A workspace with read-only files, a writable `out/`, symlinks pointing
/// out, and an `outside` directory next to it holding a secret.
pub struct Fixture {
    pub root: tempfile::TempDir,
    pub workspace: PathBuf,
    pub outside: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("ws");
        let outside = root.path().join("outside");
        for dir in [
            &workspace,
            &outside,
            &workspace.join("src"),
            &workspace.join("out"),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(workspace.join("readme.txt"), "original readme\n").unwrap();
        std::fs::write(
            workspace.join("src/lib.rs"),
            "// TODO: write the library\nfn main() {}\n",
        )
        .unwrap();
        std::fs::write(workspace.join("out/existing.txt"), "existing\n").unwrap();
        std::fs::write(workspace.join("out/gone.txt"), "to be deleted\n").unwrap();
        std::fs::write(outside.join("secret.txt"), "the secret\n").unwrap();
        symlink(&outside, &workspace.join("link_abs"));
        symlink(Path::new("../outside"), &workspace.join("link_rel"));
        symlink(Path::new("../../outside"), &workspace.join("out/esc"));
        symlink(Path::new("../src"), &workspace.join("out/up"));
        Fixture {
            root,
            workspace,
            outside,
        }
    }

    /// Every entry under the fixture root (workspace and outside) with its
    /// contents or link target, except what lies under `except` (relative to
    /// the workspace).
    pub fn state_except(&self, except: &[&str]) -> BTreeMap<String, String> {
        let mut state = BTreeMap::new();
        walk_pruned(self.root.path(), self.root.path(), &[], &mut state);
        state.retain(|path, _| {
            !except
                .iter()
                .any(|e| path.starts_with(&format!("ws/{e}/")) || path == &format!("ws/{e}"))
        });
        state
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// One attempt the escape guest reported.
#[derive(Debug)]
pub struct Attempt {
    pub op: String,
    pub ok: bool,
    pub kind: String,
}

/// The attempts in an escape guest's result.
pub fn attempts(result: &TaskResult) -> Vec<Attempt> {
    let data = result
        .data
        .as_ref()
        .unwrap_or_else(|| panic!("no data in {result:#?}"));
    data["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r: &Value| Attempt {
            op: r["op"].as_str().unwrap().to_owned(),
            ok: r["ok"].as_bool().unwrap(),
            kind: r["kind"].as_str().unwrap_or("").to_owned(),
        })
        .collect()
}

/// Assert every attempt failed, naming any that did not.
pub fn assert_all_failed(attempts: &[Attempt]) {
    assert!(!attempts.is_empty(), "the guest reported no attempts");
    let succeeded: Vec<&Attempt> = attempts.iter().filter(|a| a.ok).collect();
    assert!(
        succeeded.is_empty(),
        "these escape attempts succeeded: {succeeded:#?}"
    );
}

/// The `subagent` CLI, run as a process.
pub fn subagent(args: &[&str]) -> Output {
    subagent_in(args, None)
}

pub fn subagent_in(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"));
    cmd.args(args)
        .env("SUBAGENT_CACHE_DIR", cache_dir())
        // No user registry or task store leaks into (or out of) the tests.
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_STATE_HOME", state_home())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// One state directory for the CLI tests of this test run.
pub fn state_home() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl Fixture {
    /// A workspace `ws/` with `readme.txt` and `src/lib.rs`, no symlinks and
    /// no write directories, and `outside/secret.txt` next to it.
    pub fn plain() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("ws");
        let outside = root.path().join("outside");
        for dir in [&workspace.join("src"), &outside] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(workspace.join("readme.txt"), "original readme\n").unwrap();
        std::fs::write(workspace.join("src/lib.rs"), "fn main() {}\n").unwrap();
        std::fs::write(outside.join("secret.txt"), "the secret\n").unwrap();
        Fixture {
            root,
            workspace,
            outside,
        }
    }

    /// Like [`Fixture::state_except`], but never descends into `except`, so
    /// huge or very deep trees there cost nothing.
    pub fn state_pruned(&self, except: &[&str]) -> BTreeMap<String, String> {
        let skip: Vec<String> = except.iter().map(|e| format!("ws/{e}")).collect();
        let mut state = BTreeMap::new();
        walk_pruned(self.root.path(), self.root.path(), &skip, &mut state);
        state
    }
}

fn walk_pruned(root: &Path, dir: &Path, skip: &[String], state: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        if skip.contains(&rel) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_symlink() {
            state.insert(
                rel,
                format!("-> {}", std::fs::read_link(&path).unwrap().display()),
            );
        } else if meta.is_dir() {
            state.insert(rel, "<dir>".into());
            walk_pruned(root, &path, skip, state);
        } else {
            state.insert(
                rel,
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
            );
        }
    }
}

/// The `subagent` CLI as a command, with the same environment as
/// [`subagent_in`], for [`output_within`].
pub fn subagent_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"));
    cmd.args(args);
    subagent_env(&mut cmd);
    cmd
}

/// The `subagent` CLI run by `sh` under `ulimit -n <descriptors>`.
pub fn subagent_under_ulimit(descriptors: u32, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {descriptors} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_subagent-under-test"))
        .args(args);
    subagent_env(&mut cmd);
    cmd
}

fn subagent_env(cmd: &mut Command) {
    cmd.env("SUBAGENT_CACHE_DIR", cache_dir())
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_STATE_HOME", state_home());
}

/// Run `cmd` (stdin closed, output captured). A process still running after
/// `limit` is killed and reported as `Err` with what it printed so far: a
/// hang becomes a failure, never a stuck test.
pub fn output_within(mut cmd: Command, limit: std::time::Duration) -> Result<Output, String> {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "still running after {limit:?}, killed\n--- stdout:\n{}\n--- stderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )),
    }
}

/// The result of task `id`, which must end within 60 s.
pub async fn await_result(manager: &subagent_host::tasks::TaskManager, id: &str) -> TaskResult {
    let answer = manager
        .await_tasks(&[id.to_owned()], Some(std::time::Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        answer.pending.is_empty(),
        "task {id} did not end within 60 s"
    );
    answer.completed.into_iter().next().unwrap().1
}
