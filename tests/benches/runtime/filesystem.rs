//! Guest file I/O against native: the real `deep-search` and `todo-report`
//! components over generated source trees (see [`tree`](super::tree)),
//! against `rg -j1` on the same trees, in wall time and in CPU time; and a
//! writable whole-workspace run against the same run read-only.
//!
//! Every sample is checked: `deep-search` and `rg` must both count every
//! file, every matching file and every matching line the generator wrote,
//! `todo-report` must count every marker and write only its report, and
//! no read-only or writable search may report a changed file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use subagent_host::events::Ignore;
use subagent_host::plan::{PlanRequest, plan};
use subagent_host::units::format_size;
use subagent_host::{
    Bundle, LoadedComponent, PermissionMode, RunSpec, Runtime, TaskControl, TaskInfo, TaskResult,
    TaskStatus,
};

use super::tree::{self, MARKER, Tree};
use super::{Row, Samples, config, format_ratio, format_time, plugin_copy};

/// Which trees, and how many samples of each measurement.
pub struct FsIterations {
    /// Files in each generated tree; the writable/read-only and
    /// `todo-report` pairs run on the last (largest) one.
    pub trees: &'static [usize],
    /// Rounds of samples (each round samples every contender once): at
    /// least `min_rounds`, then more while the group has taken less than
    /// `budget`, up to `max_rounds`.
    pub min_rounds: usize,
    pub max_rounds: usize,
    pub budget: Duration,
}

/// Issue 8, Build 5: the targets the rows are held to.
const SEARCH_TARGET: f64 = 2.0;
const WRITABLE_TARGET: f64 = 1.1;

/// The `rg` command line, after `rg`: one thread, no ignore files, hidden and
/// binary files searched (the tree has none, but nothing may be left out),
/// no config file, fixed-string `TODO`, matching lines counted per file.
const RG_ARGS: [&str; 7] = ["--no-config", "-j1", "-uuu", "-c", "-F", MARKER, "."];

/// One sample: elapsed time, CPU time (user + system) and context switches
/// (voluntary + involuntary).
#[derive(Clone, Copy)]
struct Measured {
    wall: Duration,
    cpu: Duration,
    switches: u64,
}

/// A measured thing, with the samples it took.
struct Contender<'a> {
    run: Box<dyn FnMut() -> Measured + 'a>,
    wall: Samples,
    cpu: Samples,
    switches: Vec<u64>,
}

impl<'a> Contender<'a> {
    fn new(run: impl FnMut() -> Measured + 'a) -> Contender<'a> {
        Contender {
            run: Box::new(run),
            wall: Samples::default(),
            cpu: Samples::default(),
            switches: Vec::new(),
        }
    }

    fn median_switches(&self) -> u64 {
        let mut sorted = self.switches.clone();
        sorted.sort_unstable();
        sorted[(sorted.len() - 1) / 2]
    }
}

/// Sample every contender once per round, interleaved and each round
/// starting with the next one, so that noise from the rest of the machine
/// and from what ran just before falls on all of them alike.
fn rounds(contenders: &mut [&mut Contender<'_>], n: &FsIterations) {
    let start = Instant::now();
    for round in 0..n.max_rounds {
        contenders.rotate_left(usize::from(round > 0));
        for contender in contenders.iter_mut() {
            let measured = (contender.run)();
            contender.wall.push(measured.wall);
            contender.cpu.push(measured.cpu);
            contender.switches.push(measured.switches);
        }
        if round + 1 >= n.min_rounds && start.elapsed() >= n.budget {
            break;
        }
    }
}

/// `getrusage(who)`: CPU time and context switches so far.
fn usage(who: libc::c_int) -> (Duration, u64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; it is zeroed anyway.
    let rc = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    // SAFETY: zeroed, then filled by getrusage.
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (
        time(usage.ru_utime) + time(usage.ru_stime),
        (usage.ru_nvcsw + usage.ru_nivcsw) as u64,
    )
}

/// CPU time of the children waited for so far (`RUSAGE_CHILDREN`).
pub fn usage_children() -> Duration {
    usage(libc::RUSAGE_CHILDREN).0
}

/// Time `work` by the clock and by `getrusage(who)`.
fn measure<T>(who: libc::c_int, work: impl FnOnce() -> T) -> (T, Measured) {
    let (cpu_before, switches_before) = usage(who);
    let start = Instant::now();
    let value = work();
    let wall = start.elapsed();
    let (cpu_after, switches_after) = usage(who);
    (
        value,
        Measured {
            wall,
            cpu: cpu_after.saturating_sub(cpu_before),
            switches: switches_after.saturating_sub(switches_before),
        },
    )
}

/// `rg --version`'s first line, if `rg` runs.
fn rg_version() -> Option<String> {
    let output = Command::new("rg")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    output
        .status
        .success()
        .then(|| text.lines().next().unwrap_or("rg").to_owned())
}

/// `rg`'s version, installing Debian's `ripgrep` first when it is missing
/// (`apt-get install`, then `apt-get update` and again if that fails); or
/// why there is no `rg`.
fn ripgrep() -> Result<String, String> {
    if let Some(version) = rg_version() {
        return Ok(version);
    }
    eprintln!("rg is missing: installing Debian's `ripgrep` with apt-get");
    // Err((whether apt-get ran at all, why it failed)).
    let apt = |args: &[&str]| -> Result<(), (bool, String)> {
        let output = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| (false, format!("cannot run apt-get: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        Err((
            true,
            format!(
                "`apt-get {}` failed ({}): {}",
                args.join(" "),
                output.status,
                last.unwrap_or("no message")
            ),
        ))
    };
    let install = ["install", "-y", "-q", "ripgrep"];
    match apt(&install) {
        Ok(()) => {}
        Err((false, why)) => return Err(why),
        Err((true, why)) => {
            eprintln!("{why}; running `apt-get update` and trying again");
            apt(&["update", "-q"]).map_err(|(_, why)| why)?;
            apt(&install).map_err(|(_, why)| why)?;
        }
    }
    rg_version().ok_or_else(|| "`apt-get install ripgrep` succeeded but `rg` does not run".into())
}

/// Run `rg` over `tree` and check that it found every marker line.
fn rg_sample(tree: &Tree) -> Measured {
    let (output, measured) = measure(libc::RUSAGE_CHILDREN, || {
        Command::new("rg")
            .args(RG_ARGS)
            .current_dir(&tree.root)
            .env_remove("RIPGREP_CONFIG_PATH")
            .stdin(Stdio::null())
            .output()
            .expect("cannot run rg")
    });
    assert!(
        output.status.success(),
        "rg failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let (mut files, mut lines) = (0, 0);
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let (_, count) = line
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("unexpected rg output line {line:?}"));
        files += 1;
        lines += count.parse::<usize>().expect("rg count");
    }
    assert_eq!(
        (files, lines),
        (tree.marker_files, tree.marker_lines),
        "rg found (files, lines) with `{MARKER}`, the tree has (right)"
    );
    measured
}

/// A component, its bundle variants and a current-thread runtime to run
/// them on (as `subagent run` does).
struct Tasks {
    runtime: Runtime,
    tokio: tokio::runtime::Runtime,
}

impl Tasks {
    fn load(&self, bundle: &Bundle) -> Arc<LoadedComponent> {
        let m = &bundle.manifest;
        self.runtime
            .load(&m.name, &m.component, m.sha256.as_deref(), &m.path)
            .unwrap_or_else(|e| panic!("load failed: {e}"))
    }

    /// Plan + run, timed by the clock and by `getrusage(RUSAGE_SELF)` (which
    /// counts every thread of the process: the runtime's, the blocking pool's).
    fn sample(
        &self,
        component: &LoadedComponent,
        bundle: &Bundle,
        request: &PlanRequest,
        workspace: &Path,
        prompt: &str,
    ) -> (TaskResult, Measured) {
        measure(libc::RUSAGE_SELF, || {
            self.tokio.block_on(async {
                let plan = plan(bundle, workspace, request, true)
                    .unwrap_or_else(|e| panic!("plan failed: {e}"));
                let spec = RunSpec::new(
                    TaskInfo {
                        id: "t-bench".into(),
                        subagent: bundle.manifest.name.clone(),
                        description: "bench".into(),
                        prompt: prompt.into(),
                        ..TaskInfo::default()
                    },
                    plan,
                );
                self.runtime
                    .run(component, spec, TaskControl::new(), Arc::new(Ignore))
                    .await
            })
        })
    }
}

/// The bundle of plugin `name` running the copy `component`, with the given
/// permission mode and write directories (`None`: the whole workspace).
fn bundle(name: &str, component: &Path, mode: PermissionMode, dirs: Option<&[&str]>) -> Bundle {
    let bundle = Bundle::open(&subagent_tests::plugin(name))
        .unwrap_or_else(|e| panic!("cannot open the {name} bundle: {e}"));
    let mut manifest = bundle.manifest;
    manifest.component = component.to_owned();
    manifest.sha256 = None;
    manifest.permission_mode = mode;
    manifest.allowed_write_directories =
        dirs.map(|dirs| dirs.iter().map(|d| d.to_string()).collect());
    Bundle::from_manifest(manifest).expect("bundle")
}

fn completed(result: &TaskResult, what: &str) -> serde_json::Value {
    assert_eq!(
        result.status,
        TaskStatus::Completed,
        "{what} did not complete: {:?} {:?}",
        result.error,
        result.summary
    );
    result
        .data
        .clone()
        .unwrap_or_else(|| panic!("{what} returned no data: {:?}", result.summary))
}

fn count(data: &serde_json::Value, key: &str) -> usize {
    data[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count `{key}` in {data}")) as usize
}

/// Check a `deep-search` result against what the generator wrote.
fn check_search(result: &TaskResult, tree: &Tree, what: &str) {
    let data = completed(result, what);
    assert_eq!(
        [
            count(&data, "files_scanned"),
            count(&data, "files_matched"),
            count(&data, "total_matches"),
            count(&data, "files_unreadable"),
        ],
        [tree.files, tree.marker_files, tree.marker_lines, 0],
        "{what}: [scanned, matched files, matching lines, unreadable], the tree has (right)"
    );
    assert!(
        result.files.is_empty() && !result.files.incomplete,
        "{what} reported changed files: {:?}",
        result.files
    );
}

/// Check a `todo-report` result: every marker counted, and nothing changed
/// but `reports/todo.md`.
fn check_report(result: &TaskResult, tree: &Tree, what: &str) {
    let data = completed(result, what);
    assert_eq!(
        [
            count(&data, "files_scanned"),
            count(&data, "files_with_markers"),
            count(&data, "total"),
            count(&data, "files_unreadable"),
        ],
        [tree.files, tree.marker_files, tree.marker_lines, 0],
        "{what}: [scanned, files with markers, markers, unreadable], the tree has (right)"
    );
    let files = &result.files;
    let in_reports = |path: &str| path == "reports" || path.starts_with("reports/");
    assert!(
        files.created.iter().any(|c| c.path == "reports/todo.md")
            && files.deleted.is_empty()
            && !files.incomplete
            && files
                .created
                .iter()
                .chain(&files.modified)
                .all(|c| in_reports(&c.path)),
        "{what}: the file results should be just reports/todo.md created: {files:?}"
    );
    assert!(tree.root.join("reports/todo.md").is_file());
}

/// p50 of `this` over p50 of `other`.
fn p50_ratio(this: &Samples, other: &Samples) -> f64 {
    this.p50().as_secs_f64() / other.p50().as_secs_f64()
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the filesystem section measured, ready to print.
pub struct Filesystem {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// Generate the trees in `scratch`, then measure.
pub fn measure_all(scratch: &Path, n: &FsIterations) -> Filesystem {
    let rg = ripgrep();
    if let Err(why) = &rg {
        eprintln!("skipping the rg rows: {why}");
    }
    let trees: Vec<Tree> = n
        .trees
        .iter()
        .map(|&files| {
            eprintln!("generating a {}-file tree", thousands(files));
            tree::generate(
                &scratch.join(format!("tree-{files}")),
                files,
                0x5EED + files as u64,
            )
        })
        .collect();
    // Written back now, not in the middle of a measurement.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };

    let search = plugin_copy(scratch, "deep-search");
    let report = plugin_copy(scratch, "todo-report");
    let tasks = Tasks {
        runtime: Runtime::new(config(Some(scratch.join("fs-cache")))).expect("engine"),
        tokio: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio"),
    };
    // Limits as in the plugins' manifests, but a timeout that a slow run on
    // a busy machine cannot hit: a timeout would be a failure, not a figure.
    let request = |readonly: bool| PlanRequest {
        readonly,
        timeout: Some(Duration::from_secs(3600)),
        ..PlanRequest::default()
    };
    let search_readonly = bundle("deep-search", &search, PermissionMode::Readonly, None);
    let search_writable = bundle("deep-search", &search, PermissionMode::Default, None);
    // todo-report cannot run read-only: it refuses at once when it may not
    // write reports/todo.md. Its fair baseline is its own manifest's grant,
    // `reports` only: the same scan and the same one-file write, so the pair
    // differs only in how much of the workspace is writable.
    let report_whole = bundle("todo-report", &report, PermissionMode::Default, None);
    let report_reports = bundle(
        "todo-report",
        &report,
        PermissionMode::Default,
        Some(&["reports"]),
    );
    let search_component = tasks.load(&search_readonly);
    let report_component = tasks.load(&report_whole);
    let prompt = format!(r#"{{"query": "{MARKER}", "case_sensitive": true}}"#);
    // References, so the sampling closures below can copy them.
    let (tasks, prompt) = (&tasks, prompt.as_str());
    let (search_component, report_component) = (&*search_component, &*report_component);

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for tree in &trees {
        let files = thousands(tree.files);
        notes.push(format!(
            "{files} files: {} dirs at depth {}-{} below the root, {}, `{MARKER}` on {} lines in {} files (written in {})",
            thousands(tree.dirs),
            tree::DEPTHS.start(),
            tree::DEPTHS.end(),
            format_size(tree.bytes),
            thousands(tree.marker_lines),
            thousands(tree.marker_files),
            format_time(tree.took),
        ));
    }
    let mut targets = Vec::new();
    let mut switches = Vec::new();
    for (i, tree) in trees.iter().enumerate() {
        let largest = i + 1 == trees.len();
        let files = thousands(tree.files);
        eprintln!(
            "measuring deep-search{} over {files} files",
            if rg.is_ok() { " and rg" } else { "" }
        );
        let sample = |bundle: &Bundle, readonly: bool, what: String| {
            let bundle = bundle.clone();
            move || {
                let (result, measured) = tasks.sample(
                    search_component,
                    &bundle,
                    &request(readonly),
                    &tree.root,
                    prompt,
                );
                check_search(&result, tree, &what);
                measured
            }
        };
        let mut rg_runs = Contender::new(|| rg_sample(tree));
        let mut readonly = Contender::new(sample(
            &search_readonly,
            true,
            format!("deep-search over {files} files, read-only"),
        ));
        let mut writable = Contender::new(sample(
            &search_writable,
            false,
            format!("deep-search over {files} files, workspace writable"),
        ));
        let mut group: Vec<&mut Contender> = Vec::new();
        if rg.is_ok() {
            // Untimed: the tree is in the page cache for every contender.
            rg_sample(tree);
            group.push(&mut rg_runs);
        }
        group.push(&mut readonly);
        if largest {
            group.push(&mut writable);
        }
        rounds(&mut group, n);

        let search_name = |kind: &str| format!("deep-search {files} files, {kind}");
        let rg_name = |kind: &str| format!("rg -j1 {files} files, {kind}");
        for (kind, ours, theirs) in [
            ("wall", &readonly.wall, &rg_runs.wall),
            ("CPU", &readonly.cpu, &rg_runs.cpu),
        ] {
            if rg.is_ok() {
                rows.push(Row::new(&search_name(kind), ours).ratio(ours, theirs, &rg_name(kind)));
                rows.push(Row::new(&rg_name(kind), theirs).baseline());
            } else {
                rows.push(Row::new(&search_name(kind), ours));
            }
        }
        let mut counts = vec![format!(
            "deep-search {}",
            thousands(readonly.median_switches() as usize)
        )];
        if largest {
            counts.push(format!(
                "deep-search writable {}",
                thousands(writable.median_switches() as usize)
            ));
        }
        if rg.is_ok() {
            counts.push(format!(
                "rg -j1 {}",
                thousands(rg_runs.median_switches() as usize)
            ));
        }
        switches.push(format!("{files} files: {}", counts.join(", ")));
        if largest {
            if rg.is_ok() {
                targets.push(target_line(
                    &format!("deep-search / rg -j1, {files} files"),
                    p50_ratio(&readonly.wall, &rg_runs.wall),
                    p50_ratio(&readonly.cpu, &rg_runs.cpu),
                    SEARCH_TARGET,
                ));
            }
            for (kind, ours, theirs) in [
                ("wall", &writable.wall, &readonly.wall),
                ("CPU", &writable.cpu, &readonly.cpu),
            ] {
                rows.push(
                    Row::new(&search_name(&format!("workspace writable, {kind}")), ours).ratio(
                        ours,
                        theirs,
                        &search_name(&format!("read-only, {kind}")),
                    ),
                );
            }
            targets.push(target_line(
                &format!("deep-search writable / read-only, {files} files"),
                p50_ratio(&writable.wall, &readonly.wall),
                p50_ratio(&writable.cpu, &readonly.cpu),
                WRITABLE_TARGET,
            ));

            eprintln!("measuring todo-report over {files} files");
            let reports = tree.root.join("reports");
            let report_sample = |bundle: &Bundle, what: String| {
                let bundle = bundle.clone();
                let reports = reports.clone();
                move || {
                    // Each run starts from an empty reports/ and creates todo.md.
                    std::fs::create_dir_all(&reports).expect("reports dir");
                    let _ = std::fs::remove_file(reports.join("todo.md"));
                    let (result, measured) = tasks.sample(
                        report_component,
                        &bundle,
                        &request(false),
                        &tree.root,
                        "write the todo report",
                    );
                    check_report(&result, tree, &what);
                    measured
                }
            };
            let mut whole = Contender::new(report_sample(
                &report_whole,
                format!("todo-report over {files} files, workspace writable"),
            ));
            let mut narrow = Contender::new(report_sample(
                &report_reports,
                format!("todo-report over {files} files, reports writable"),
            ));
            rounds(&mut [&mut narrow, &mut whole], n);
            // The report would be searched by anything run after.
            std::fs::remove_dir_all(&reports).expect("remove reports");
            let report_name = |kind: &str| format!("todo-report {files} files, {kind}");
            for (kind, ours, theirs) in [
                ("wall", &whole.wall, &narrow.wall),
                ("CPU", &whole.cpu, &narrow.cpu),
            ] {
                let base = report_name(&format!("reports/ writable, {kind}"));
                rows.push(
                    Row::new(&report_name(&format!("workspace writable, {kind}")), ours)
                        .ratio(ours, theirs, &base),
                );
                rows.push(Row::new(&base, theirs).baseline());
            }
            targets.push(target_line(
                &format!("todo-report workspace / reports/ writable, {files} files"),
                p50_ratio(&whole.wall, &narrow.wall),
                p50_ratio(&whole.cpu, &narrow.cpu),
                WRITABLE_TARGET,
            ));
        }
    }

    let mut lines = vec![format!(
        "filesystem: `{MARKER}` over generated source trees; a task row is plan + run on a current-thread runtime (component loaded before), CPU = user + system of the whole process (getrusage); an rg row is spawn + wait of `rg {}`, CPU from RUSAGE_CHILDREN",
        RG_ARGS.join(" ")
    )];
    match &rg {
        Ok(version) => lines.push(format!("  rg: {version}")),
        Err(why) => lines.push(format!("  rg rows skipped: {why}")),
    }
    lines.extend(notes.into_iter().map(|note| format!("  tree of {note}")));
    lines.push(format!(
        "  context switches per run (p50): {}",
        switches.join("; ")
    ));
    lines.push("  targets (issue 8, Build 5), p50 ratios:".into());
    lines.extend(targets);
    Filesystem { rows, notes: lines }
}

fn target_line(name: &str, wall: f64, cpu: f64, target: f64) -> String {
    let verdict = if wall <= target && cpu <= target {
        "met"
    } else {
        "MISSED"
    };
    format!(
        "    {name}: wall {}x, CPU {}x (target <= {}x: {verdict})",
        format_ratio(wall),
        format_ratio(cpu),
        format_ratio(target)
    )
}
