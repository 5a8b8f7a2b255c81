//! Hostile guests and big workloads (issue 10): how fast a flooding guest
//! can push events and what the host's memory does meanwhile; how fast a
//! `batch` of 10,000 tasks goes through; how long cancelling a tree of
//! 50,000 queued tasks takes. Whole processes where a user would run one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use subagent_host::tasks::{LaunchRequest, ManagerConfig, SubagentRef, TaskManager};
use subagent_host::{Runtime, TaskStatus};

use super::format_time;

pub struct Workloads {
    pub flood_calls: u64,
    pub flood_wall: Duration,
    pub flood_peak_rss_kib: i64,
    pub batch_tasks: usize,
    pub batch_wall: Duration,
    /// `subagent tasks --limit 1000` on the store the batch filled.
    pub list_wall: Duration,
    pub tree_tasks: usize,
    pub tree_launch: Duration,
    pub tree_cancel: Duration,
}

/// `misbehave` as a bundle in `dir`.
fn misbehave_bundle(dir: &Path) -> std::path::PathBuf {
    let bundle = dir.join("misbehave");
    std::fs::create_dir_all(&bundle).expect("bundle dir");
    std::fs::write(
        bundle.join("subagent.toml"),
        format!(
            "name = \"misbehave\"\ndescription = \"d\"\ncomponent = {:?}\n",
            subagent_tests::guest("misbehave").display().to_string()
        ),
    )
    .expect("manifest");
    bundle
}

/// Run `cmd` to its end: its wall time, whether it succeeded, and its own
/// peak RSS in KiB (from `wait4`, so no other child's counts).
fn run_measured(cmd: &mut Command) -> (Duration, bool, i64) {
    let start = Instant::now();
    let child = cmd.spawn().expect("the subagent CLI runs");
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: waits for our own child; wait4 fills the zeroed struct.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, usage.as_mut_ptr()) };
    assert_eq!(
        pid,
        child.id() as i32,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let wall = start.elapsed();
    // SAFETY: zeroed, then filled by wait4.
    let peak = unsafe { usage.assume_init() }.ru_maxrss;
    (
        wall,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        peak,
    )
}

fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

pub fn measure(
    scratch: &Path,
    flood_calls: u64,
    batch_tasks: usize,
    tree_tasks: usize,
) -> Workloads {
    let dir = scratch.join("workloads");
    let workspace = dir.join("ws");
    std::fs::create_dir_all(&workspace).expect("workspace");
    let bundle = misbehave_bundle(&dir);
    let state = dir.join("state");
    let run = |args: &[&str]| run_measured(cli().arg("--state-dir").arg(&state).args(args));

    // A guest calling `log` in a loop, as one `subagent run`.
    let (flood_wall, ok, flood_peak_rss_kib) = run(&[
        "run",
        bundle.to_str().unwrap(),
        &format!("log-flood {flood_calls}"),
        "--workspace",
        workspace.to_str().unwrap(),
    ]);
    assert!(ok, "the flooding run failed");

    // A batch of no-op-like tasks.
    let batch = dir.join("batch.jsonl");
    let line = format!(
        "{{\"subagent\": {:?}, \"prompt\": \"ok\"}}\n",
        bundle.display().to_string()
    );
    std::fs::write(&batch, line.repeat(batch_tasks)).expect("batch file");
    let (batch_wall, ok, _) = run(&[
        "batch",
        batch.to_str().unwrap(),
        "--workspace",
        workspace.to_str().unwrap(),
    ]);
    assert!(ok, "the batch failed");
    let (list_wall, ok, _) = run(&["tasks", "--limit", "1000", "--json"]);
    assert!(ok, "listing failed");

    // A tree: one parent that loops, `tree_tasks` queued children, then
    // cancel the parent.
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let (tree_launch, tree_cancel) = tokio.block_on(async {
        let runtime = Arc::new(Runtime::new(Default::default()).expect("engine"));
        let manager = TaskManager::new(
            runtime,
            ManagerConfig {
                max_descendants: tree_tasks + 1,
                per_key_default: 1,
                ..ManagerConfig::default()
            },
        )
        .expect("manager");
        let request = |prompt: &str| {
            LaunchRequest::new(SubagentRef::Path(bundle.clone()), prompt, &workspace)
        };
        let parent = manager.launch(request("loop")).await.expect("parent");
        let start = Instant::now();
        let mut children = Vec::with_capacity(tree_tasks);
        for _ in 0..tree_tasks {
            let mut child = request("ok");
            child.parent = Some(parent.clone());
            children.push(manager.launch(child).await.expect("child"));
        }
        let launched = start.elapsed();
        let start = Instant::now();
        manager.cancel(&parent).expect("cancel");
        let answer = manager.await_tasks(&children, None).await.expect("await");
        let cancelled = start.elapsed();
        assert_eq!(answer.completed.len(), tree_tasks, "every child ended");
        assert!(
            answer
                .completed
                .iter()
                .all(|(_, r)| r.status == TaskStatus::Cancelled),
            "every child was cancelled before it started"
        );
        manager.shutdown(Duration::from_secs(1)).await;
        (launched, cancelled)
    });
    Workloads {
        flood_calls,
        flood_wall,
        flood_peak_rss_kib,
        batch_tasks,
        batch_wall,
        list_wall,
        tree_tasks,
        tree_launch,
        tree_cancel,
    }
}

pub fn print(w: &Workloads) {
    println!();
    println!("hostile guests and big workloads (issue 10), whole processes where a user runs one");
    println!(
        "  a guest calling log {} times (`subagent run`): {} wall, {:.0} calls/s pushed; host peak RSS {:.1} MiB",
        w.flood_calls,
        format_time(w.flood_wall),
        w.flood_calls as f64 / w.flood_wall.as_secs_f64(),
        w.flood_peak_rss_kib as f64 / 1024.0
    );
    println!(
        "  `subagent batch` of {} tasks: {} wall = {:.0} tasks/s, prepared, launched, run and stored",
        w.batch_tasks,
        format_time(w.batch_wall),
        w.batch_tasks as f64 / w.batch_wall.as_secs_f64()
    );
    println!(
        "  `subagent tasks --limit 1000 --json` on that store: {} (results are never read by a listing)",
        format_time(w.list_wall)
    );
    println!(
        "  a tree of {} queued children: launched in {} ({:.0}/s); cancelling the parent ended them all in {}",
        w.tree_tasks,
        format_time(w.tree_launch),
        w.tree_tasks as f64 / w.tree_launch.as_secs_f64(),
        format_time(w.tree_cancel)
    );
}
