//! What the runtime costs, against what a process costs: cold compile and
//! cached load of the real `deep-search` component, instantiate + run of the
//! no-op guest, and `posix_spawn` of `/bin/true`, printed side by side with
//! ratios. Then guest file I/O against native: `deep-search` over generated
//! source trees of 10,000 and 50,000 files against `rg -j1` (wall and CPU
//! time), and writable whole-workspace runs of `deep-search` and
//! `todo-report` against the same runs with less writable (see
//! [`filesystem`]). `rg` comes from Debian's `ripgrep`, installed with
//! apt-get when missing; without it the rg rows are skipped, saying why.
//!
//! ```text
//! cargo bench -p subagent-tests --bench runtime            # full run
//! cargo bench -p subagent-tests --bench runtime -- --quick # fewer iterations, 10,000-file tree only
//! ```
//!
//! Every sample is checked (a load that should hit the cache did, a task
//! completed, `/bin/true` exited 0, a search counted every marker the tree
//! generator wrote), so a failure cannot pass as a fast run.

#[path = "runtime/filesystem.rs"]
mod filesystem;
#[path = "runtime/languages.rs"]
mod languages;
#[path = "runtime/launch.rs"]
mod launch;
#[path = "runtime/mcp.rs"]
mod mcp;
#[path = "runtime/tree.rs"]
mod tree;
#[path = "runtime/workloads.rs"]
mod workloads;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use filesystem::FsIterations;
use subagent_host::events::Ignore;
use subagent_host::plan::{PlanRequest, plan};
use subagent_host::runtime::CacheOutcome;
use subagent_host::store::{Store, TaskQuery};
use subagent_host::tasks::{LaunchRequest, ManagerConfig, SubagentRef, TaskManager};
use subagent_host::units::format_size;
use subagent_host::{
    Bundle, LoadedComponent, Manifest, RunSpec, Runtime, RuntimeConfig, TaskControl, TaskInfo,
    TaskStatus,
};

/// How many samples each measurement takes.
struct Iterations {
    cold: usize,
    cached: usize,
    tasks: usize,
    spawns: usize,
    durable: usize,
    /// No-op tasks launched at once on every core.
    burst: usize,
    /// Whole `subagent run` processes (and as many `wasmtime run`).
    processes: usize,
    /// Log calls of the flooding guest.
    flood: u64,
    fs: FsIterations,
}

impl Iterations {
    const FULL: Iterations = Iterations {
        cold: 3,
        cached: 100,
        tasks: 2000,
        spawns: 2000,
        durable: 1000,
        burst: 1000,
        processes: 20,
        flood: 10_000_000,
        fs: FsIterations {
            trees: &[10_000, 50_000],
            min_rounds: 3,
            max_rounds: 7,
            budget: Duration::from_secs(60),
        },
    };
    const QUICK: Iterations = Iterations {
        cold: 1,
        cached: 20,
        tasks: 200,
        spawns: 200,
        durable: 200,
        burst: 1000,
        processes: 10,
        flood: 1_000_000,
        fs: FsIterations {
            trees: &[10_000],
            min_rounds: 3,
            max_rounds: 5,
            budget: Duration::from_secs(30),
        },
    };
}

fn main() {
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            // Only no-op tasks through the manager, N of them, for a profiler
            // (`perf record`): nothing printed but the p50.
            // Only the hostile-guest and big-workload figures (a flood of
            // N log calls, a 10,000-task batch, a 50,000-task tree).
            "--workloads" => {
                let calls = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(10_000_000);
                let scratch = tempfile::tempdir().expect("temp dir");
                workloads::print(&workloads::measure(scratch.path(), calls, 10_000, 50_000));
                return;
            }
            // Only bursts of 1,000 no-op tasks on every core, through the
            // manager and bare, ROUNDS times, for a profiler.
            "--profile-burst" => {
                let scratch = tempfile::tempdir().expect("temp dir");
                for _ in 0..args.next().and_then(|n| n.parse().ok()).unwrap_or(10) {
                    let burst = launch::measure_burst(scratch.path(), 1000);
                    println!(
                        "burst of 1000, per task: through the manager {}, bare {}",
                        format_time(burst.managed / 1000),
                        format_time(burst.bare / 1000)
                    );
                }
                return;
            }
            "--profile-manager" => {
                let count = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
                let scratch = tempfile::tempdir().expect("temp dir");
                let bare = noop_tasks(scratch.path(), count.min(20_000));
                let samples = manager_tasks(scratch.path(), count);
                println!(
                    "no-op task p50: bare instantiate + run {}, through the manager {} ({count} tasks)",
                    format_time(bare.run.p50()),
                    format_time(samples.p50())
                );
                return;
            }
            // Only the Python and JavaScript examples against Rust's hello:
            // cold compile and cached run.
            "--languages" => {
                let scratch = tempfile::tempdir().expect("temp dir");
                languages::print(&languages::measure(scratch.path(), 2, 10));
                return;
            }
            // Only the MCP overhead, N tasks each way.
            "--mcp" => {
                let count = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
                let scratch = tempfile::tempdir().expect("temp dir");
                mcp::print(&mcp::measure(scratch.path(), count));
                return;
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "-h" | "--help" => {
                println!(
                    "usage: cargo bench -p subagent-tests --bench runtime [-- --quick | --workloads [LOG_CALLS] | --mcp [N] | --languages | --profile-manager N | --profile-burst ROUNDS]"
                );
                return;
            }
            other => {
                eprintln!("error: unknown argument `{other}` (expected `--quick`)");
                std::process::exit(2);
            }
        }
    }
    let n = if quick {
        Iterations::QUICK
    } else {
        Iterations::FULL
    };
    let scratch = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();

    let deep_search = plugin_copy(scratch.path(), "deep-search");
    let size = std::fs::metadata(&deep_search).expect("deep-search").len();
    let cold = cold_compile(&deep_search, scratch.path(), n.cold);
    let (engine_setup, cached, memoized) = cached_load(&deep_search, scratch.path(), n.cached);
    let tasks = noop_tasks(scratch.path(), n.tasks);
    let sequential = manager_tasks(scratch.path(), n.tasks);
    let durability = durability(scratch.path(), n.durable);
    let spawn = spawn_true(n.spawns);
    let launch = launch::measure(scratch.path(), n.tasks, n.burst, n.processes);
    let workloads = workloads::measure(scratch.path(), n.flood, 10_000, 50_000);
    let mcp = mcp::measure(scratch.path(), n.durable);
    let fs = filesystem::measure_all(scratch.path(), &n.fs);
    let languages = languages::measure(scratch.path(), n.cold.min(2), n.processes / 2);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pooling = Runtime::new(config(None)).expect("engine").pooling();
    println!(
        "subagent-host runtime benchmark ({cores} core{}, {} allocator, {} task iterations{})",
        if cores == 1 { "" } else { "s" },
        if pooling { "pooling" } else { "on-demand" },
        n.tasks,
        if quick { ", --quick" } else { "" },
    );
    println!();
    let vs_run = |name: &str, samples: &Samples| {
        Row::new(name, samples).ratio(samples, &tasks.run, "noop run")
    };
    let rows = [
        Row::new(
            &format!("cold compile deep-search ({})", format_size(size)),
            &cold,
        )
        .ratio(&cold, &cached, "cached load"),
        vs_run("cached load deep-search (cache hit)", &cached),
        vs_run("repeat load, same Runtime (memoized)", &memoized),
        vs_run("engine setup (Runtime::new)", &engine_setup),
        vs_run("plan (read-only, empty workspace)", &tasks.plan),
        Row::new("noop run (instantiate + run)", &tasks.run).baseline(),
        vs_run("noop plan + run", &tasks.plan_run),
        vs_run("noop run, workspace writable", &tasks.run_writable),
        vs_run("task manager: launch -> terminal", &sequential),
        vs_run("posix_spawn /bin/true + wait", &spawn),
    ];
    print_table(&[
        ("", &rows[..]),
        (
            "filesystem: guest file I/O against rg, writable against less (notes below)",
            &fs.rows[..],
        ),
    ]);

    println!();
    let overhead = sequential.p50().saturating_sub(tasks.run.p50());
    println!("task manager, no-op tasks through the public API (TaskManager::launch, read-only)");
    println!(
        "  one at a time:  p50 {}  p99 {}  = {:.0} tasks/s",
        format_time(sequential.p50()),
        format_time(sequential.p99()),
        sequential.per_second()
    );
    println!(
        "  {} launched at once, all awaited: {:.0} tasks/s",
        durability.tasks,
        durability.tasks as f64 / durability.memory.as_secs_f64()
    );
    println!(
        "  manager overhead per task (p50 launch->terminal minus p50 bare run): {} = {}x the bare instantiate + run",
        format_time(overhead),
        format_ratio(overhead.as_secs_f64() / tasks.run.p50().as_secs_f64())
    );
    println!(
        "  posix_spawn /bin/true is {}x a no-op task end to end through the manager",
        format_ratio(spawn.p50().as_secs_f64() / sequential.p50().as_secs_f64())
    );

    println!();
    println!(
        "durability: {} no-op tasks launched at once and awaited, store off vs on (SQLite, WAL, synchronous=FULL, group commit)",
        durability.tasks
    );
    let rate = |d: Duration| durability.tasks as f64 / d.as_secs_f64();
    println!(
        "  in memory only:   {:>8.0} tasks/s  ({})",
        rate(durability.memory),
        format_time(durability.memory)
    );
    println!(
        "  durable (store):  {:>8.0} tasks/s  ({})",
        rate(durability.durable),
        format_time(durability.durable)
    );
    println!(
        "  durability costs {}x  ({} commits for {} writes: {:.1} writes per commit)",
        format_ratio(durability.durable.as_secs_f64() / durability.memory.as_secs_f64()),
        durability.commits,
        durability.writes,
        durability.writes as f64 / durability.commits.max(1) as f64
    );

    println!();
    println!("parts of a run, timed alone on the same thread (p50)");
    let parts = [
        ("sandbox.open (grant opened by handle)", &tasks.open),
        ("spawn_blocking round trip (no work)", &tasks.hop),
    ];
    let width = parts.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, samples) in parts {
        println!("  {name:<width$}  {:>9}", format_time(samples.p50()));
    }
    println!("  (a task opens its grant when it starts; file results are recorded as the");
    println!("  guest acts, with no scan before or after; guest file calls are served on");
    println!("  the task's own thread, without the spawn_blocking round trip)");
    println!();
    println!(
        "one task at a time on a current-thread runtime: {:.0} tasks/s (run), {:.0} tasks/s (plan + run); {:.0} spawns/s",
        tasks.run.per_second(),
        tasks.plan_run.per_second(),
        spawn.per_second(),
    );
    launch::print(&launch, &spawn);
    workloads::print(&workloads);
    mcp::print(&mcp);
    println!();
    println!("languages: the Python and JavaScript examples against Rust's hello");
    languages::print(&languages);
    println!();
    for line in &fs.notes {
        println!("{line}");
    }
    println!();
    println!("total benchmark time {}", format_time(started.elapsed()));
}

fn config(cache_dir: Option<PathBuf>) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir,
        ..RuntimeConfig::default()
    }
}

/// Copy the built component of plugin `name` into `dir`, so a concurrent
/// rebuild of the plugins cannot change the file between samples.
fn plugin_copy(dir: &Path, name: &str) -> PathBuf {
    let bundle = Bundle::open(&subagent_tests::plugin(name))
        .unwrap_or_else(|e| panic!("cannot open the {name} bundle: {e}"));
    let copy = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::copy(&bundle.manifest.component, &copy).unwrap_or_else(|e| {
        panic!(
            "cannot copy {} (it is built by tests/build.rs): {e}",
            bundle.manifest.component.display()
        )
    });
    copy
}

fn load(runtime: &Runtime, component: &Path) -> Arc<LoadedComponent> {
    runtime
        .load("bench", component, None, component)
        .unwrap_or_else(|e| panic!("load failed: {e}"))
}

/// `Runtime::load` with an empty cache: read, hash, compile, store, prepare.
fn cold_compile(component: &Path, scratch: &Path, iterations: usize) -> Samples {
    let mut samples = Samples::default();
    for i in 0..iterations {
        let cache = scratch.join(format!("cold-{i}"));
        let runtime = Runtime::new(config(Some(cache))).expect("engine");
        let start = Instant::now();
        let loaded = load(&runtime, component);
        samples.push(start.elapsed());
        assert_eq!(
            loaded.cache,
            CacheOutcome::Compiled,
            "a cold load must compile"
        );
    }
    samples
}

/// A fresh `Runtime` per sample over a warm cache: the load is a cache hit.
/// Returns (Runtime::new, cached load, repeat load on the same Runtime).
fn cached_load(component: &Path, scratch: &Path, iterations: usize) -> (Samples, Samples, Samples) {
    let cache = scratch.join("warm");
    let warm = Runtime::new(config(Some(cache.clone()))).expect("engine");
    let first = load(&warm, component);
    assert_eq!(first.cache, CacheOutcome::Compiled);
    drop((first, warm));

    let (mut setup, mut cached, mut memoized) =
        (Samples::default(), Samples::default(), Samples::default());
    for _ in 0..iterations {
        let start = Instant::now();
        let runtime = Runtime::new(config(Some(cache.clone()))).expect("engine");
        setup.push(start.elapsed());

        let start = Instant::now();
        let loaded = load(&runtime, component);
        cached.push(start.elapsed());
        assert_eq!(
            loaded.cache,
            CacheOutcome::Hit,
            "a warm load must hit the cache"
        );

        let start = Instant::now();
        let again = load(&runtime, component);
        memoized.push(start.elapsed());
        assert!(
            Arc::ptr_eq(&loaded, &again),
            "a repeat load must be memoized"
        );
    }
    (setup, cached, memoized)
}

struct TaskSamples {
    plan: Samples,
    run: Samples,
    plan_run: Samples,
    /// Runs with the whole workspace writable.
    run_writable: Samples,
    open: Samples,
    hop: Samples,
}

/// A bundle for the no-op guest, with `permission_mode` as given.
fn noop_bundle(dir: &Path, permission_mode: &str) -> Bundle {
    std::fs::create_dir(dir).expect("bundle dir");
    let path = dir.join("subagent.toml");
    let text = format!(
        "name = \"noop\"\ndescription = \"does nothing\"\ncomponent = {:?}\npermission_mode = {permission_mode:?}\n",
        subagent_tests::guest("noop").display().to_string()
    );
    std::fs::write(&path, &text).expect("manifest");
    let manifest = Manifest::parse(&path, &text)
        .unwrap_or_else(|e| panic!("the noop manifest is invalid:\n{e}"));
    Bundle::from_manifest(manifest).expect("bundle")
}

/// Plan and run `bundle` on `workspace`, as `subagent run` does.
/// Returns how long (plan, run, plan + run) took.
async fn plan_and_run(
    runtime: &Runtime,
    component: &LoadedComponent,
    bundle: &Bundle,
    workspace: &Path,
    request: &PlanRequest,
) -> (Duration, Duration, Duration) {
    let start = Instant::now();
    let plan =
        plan(bundle, workspace, request, true).unwrap_or_else(|e| panic!("plan failed: {e}"));
    let planned = start.elapsed();
    let spec = RunSpec::new(
        TaskInfo {
            id: "t-bench".into(),
            subagent: bundle.manifest.name.clone(),
            description: "bench".into(),
            prompt: "nothing".into(),
            ..TaskInfo::default()
        },
        plan,
    );
    let run_start = Instant::now();
    let result = runtime
        .run(component, spec, TaskControl::new(), Arc::new(Ignore))
        .await;
    let ran = run_start.elapsed();
    let total = start.elapsed();
    assert_eq!(
        result.status,
        TaskStatus::Completed,
        "the noop task did not complete: {result:#?}"
    );
    assert!(result.files.is_empty(), "the noop task changed files");
    (planned, ran, total)
}

/// Run the no-op guest over an empty workspace, one task at a time on a
/// current-thread runtime (as `subagent run` does): read-only, then with the
/// workspace writable; then time the parts of a run reachable from outside.
fn noop_tasks(scratch: &Path, iterations: usize) -> TaskSamples {
    let workspace = scratch.join("workspace");
    std::fs::create_dir(&workspace).expect("workspace");
    let readonly = noop_bundle(&scratch.join("noop-readonly"), "readonly");
    let writable = noop_bundle(&scratch.join("noop-writable"), "default");
    let readonly_request = PlanRequest {
        readonly: true,
        ..PlanRequest::default()
    };
    let writable_request = PlanRequest::default();

    let runtime = Runtime::new(config(Some(scratch.join("noop-cache")))).expect("engine");
    let m = &readonly.manifest;
    let component = runtime
        .load(&m.name, &m.component, m.sha256.as_deref(), &m.path)
        .unwrap_or_else(|e| panic!("load failed: {e}"));
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");

    tokio.block_on(async {
        let mut samples = TaskSamples {
            plan: Samples::default(),
            run: Samples::default(),
            plan_run: Samples::default(),
            run_writable: Samples::default(),
            open: Samples::default(),
            hop: Samples::default(),
        };
        for _ in 0..warmup(iterations) {
            plan_and_run(
                &runtime,
                &component,
                &readonly,
                &workspace,
                &readonly_request,
            )
            .await;
        }
        for _ in 0..iterations {
            let (planned, ran, total) = plan_and_run(
                &runtime,
                &component,
                &readonly,
                &workspace,
                &readonly_request,
            )
            .await;
            samples.plan.push(planned);
            samples.run.push(ran);
            samples.plan_run.push(total);
        }
        for _ in 0..warmup(iterations) {
            plan_and_run(
                &runtime,
                &component,
                &writable,
                &workspace,
                &writable_request,
            )
            .await;
        }
        for _ in 0..iterations {
            let (_, ran, _) = plan_and_run(
                &runtime,
                &component,
                &writable,
                &workspace,
                &writable_request,
            )
            .await;
            samples.run_writable.push(ran);
        }

        for _ in 0..iterations {
            // A fresh plan each time: a sandbox opens its grant only once.
            let sandbox = plan(&writable, &workspace, &writable_request, true)
                .expect("plan")
                .sandbox;
            let start = Instant::now();
            let grant = sandbox.open().expect("open the grant");
            samples.open.push(start.elapsed());
            drop(grant);

            let start = Instant::now();
            tokio::task::spawn_blocking(|| ()).await.expect("hop");
            samples.hop.push(start.elapsed());
        }
        samples
    })
}

/// `std::process::Command::status`, which uses `posix_spawn` on Linux.
fn spawn_true(iterations: usize) -> Samples {
    let spawn = || {
        let start = Instant::now();
        let status = std::process::Command::new("/bin/true")
            .status()
            .expect("cannot spawn /bin/true");
        let took = start.elapsed();
        assert!(status.success(), "/bin/true failed: {status}");
        took
    };
    for _ in 0..warmup(iterations) {
        spawn();
    }
    let mut samples = Samples::default();
    for _ in 0..iterations {
        samples.push(spawn());
    }
    samples
}

/// What both task-manager measurements run on: a workspace, the no-op
/// bundle, a runtime with a warm cache, and a current-thread tokio runtime.
struct Managed {
    workspace: PathBuf,
    bundle: Bundle,
    runtime: Arc<Runtime>,
    tokio: tokio::runtime::Runtime,
}

impl Managed {
    fn new(scratch: &Path, name: &str) -> Managed {
        let workspace = scratch.join(format!("{name}-workspace"));
        std::fs::create_dir(&workspace).expect("workspace");
        Managed {
            bundle: noop_bundle(&scratch.join(format!("noop-{name}")), "readonly"),
            runtime: Arc::new(
                Runtime::new(config(Some(scratch.join("noop-cache")))).expect("engine"),
            ),
            tokio: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio"),
            workspace,
        }
    }

    /// A manager with no concurrency limits but the instance pool.
    fn manager(&self, store: Option<Arc<Store>>) -> TaskManager {
        let config = ManagerConfig {
            per_key_default: 0,
            max_running: 0,
            ..ManagerConfig::default()
        };
        let _guard = self.tokio.enter();
        let builder = TaskManager::builder(self.runtime.clone()).config(config);
        match store {
            Some(store) => builder.store(store),
            None => builder,
        }
        .build()
        .expect("manager")
    }

    fn request(&self) -> LaunchRequest {
        LaunchRequest::new(
            SubagentRef::Bundle(Box::new(self.bundle.clone())),
            "nothing",
            &self.workspace,
        )
    }
}

/// No-op tasks through the task manager's public API, one at a time:
/// launch -> terminal latency. (Throughput of a burst is the in-memory side
/// of [`durability`].)
fn manager_tasks(scratch: &Path, iterations: usize) -> Samples {
    let managed = Managed::new(scratch, "managed");
    let manager = managed.manager(None);
    managed.tokio.block_on(async {
        let mut sequential = Samples::default();
        for i in 0..warmup(iterations) + iterations {
            let start = Instant::now();
            let (_, result) = manager.run(managed.request()).await.expect("launch");
            let took = start.elapsed();
            assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
            if i >= warmup(iterations) {
                sequential.push(took);
            }
        }
        sequential
    })
}

struct Durability {
    tasks: usize,
    memory: Duration,
    durable: Duration,
    commits: u64,
    writes: u64,
}

/// The same burst of no-op tasks through a manager without and with a store.
fn durability(scratch: &Path, tasks: usize) -> Durability {
    let managed = Managed::new(scratch, "durable");
    let burst = |store: Option<Arc<Store>>| {
        let manager = managed.manager(store);
        managed.tokio.block_on(async {
            let start = Instant::now();
            // Launches in flight together, so the store can commit them together.
            let mut launches = tokio::task::JoinSet::new();
            for _ in 0..tasks {
                let (manager, request) = (manager.clone(), managed.request());
                launches.spawn(async move { manager.launch(request).await.expect("launch") });
            }
            let mut ids = Vec::with_capacity(tasks);
            while let Some(id) = launches.join_next().await {
                ids.push(id.expect("launch task"));
            }
            let answer = manager.await_tasks(&ids, None).await.expect("await");
            let took = start.elapsed();
            assert_eq!(answer.completed.len(), tasks);
            assert!(
                answer
                    .completed
                    .iter()
                    .all(|(_, r)| r.status == TaskStatus::Completed)
            );
            manager.shutdown(Duration::from_secs(1)).await;
            took
        })
    };
    let memory = burst(None);
    let store = Store::open(&scratch.join("durable-state")).expect("store");
    let durable = burst(Some(store.clone()));
    let stored = store
        .tasks(&TaskQuery {
            statuses: vec![TaskStatus::Completed],
            ..TaskQuery::default()
        })
        .expect("tasks");
    assert_eq!(stored.len(), tasks, "every task is in the store");
    let stats = store.stats();
    Durability {
        tasks,
        memory,
        durable,
        commits: stats.commits,
        writes: stats.writes,
    }
}

fn warmup(iterations: usize) -> usize {
    (iterations / 20).max(5)
}

#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// The nearest-rank percentile `p` (0–100).
    fn percentile(&self, p: f64) -> Duration {
        assert!(!self.0.is_empty(), "no samples");
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    fn p99(&self) -> Duration {
        self.percentile(99.0)
    }

    fn per_second(&self) -> f64 {
        let total: Duration = self.0.iter().sum();
        self.0.len() as f64 / total.as_secs_f64()
    }
}

struct Row {
    name: String,
    n: usize,
    p50: Duration,
    p99: Duration,
    ratio: String,
    versus: String,
}

impl Row {
    fn new(name: &str, samples: &Samples) -> Row {
        Row {
            name: name.to_owned(),
            n: samples.len(),
            p50: samples.p50(),
            p99: samples.p99(),
            ratio: String::new(),
            versus: String::new(),
        }
    }

    /// p50 of `this` over p50 of `other`.
    fn ratio(mut self, this: &Samples, other: &Samples, other_name: &str) -> Row {
        let r = this.p50().as_secs_f64() / other.p50().as_secs_f64();
        self.ratio = format!("{}x", format_ratio(r));
        self.versus = other_name.to_owned();
        self
    }

    fn baseline(mut self) -> Row {
        self.ratio = "1x".into();
        self.versus = "(baseline)".into();
        self
    }
}

/// One table of groups of rows; a group with a title starts with a blank
/// line and its title.
fn print_table(groups: &[(&str, &[Row])]) {
    let rows = || groups.iter().flat_map(|(_, rows)| rows.iter());
    let name_width = rows().map(|r| r.name.chars().count()).max().unwrap_or(0);
    let ratio_width = rows().map(|r| r.ratio.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<name_width$}  {:>5}  {:>9}  {:>9}  {:>ratio_width$}",
        "measurement", "n", "p50", "p99", "ratio",
    );
    for (title, rows) in groups {
        if rows.is_empty() {
            continue;
        }
        if !title.is_empty() {
            println!();
            println!("{title}");
        }
        for row in *rows {
            println!(
                "{:<name_width$}  {:>5}  {:>9}  {:>9}  {:>ratio_width$} {}",
                row.name,
                row.n,
                format_time(row.p50),
                format_time(row.p99),
                row.ratio,
                row.versus,
            );
        }
    }
}

fn format_time(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn format_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else if r >= 0.01 {
        format!("{r:.2}")
    } else {
        format!("{r:.4}")
    }
}
