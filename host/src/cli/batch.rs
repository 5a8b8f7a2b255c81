//! `subagent batch`: run many tasks through the task manager with the
//! configured concurrency limits; a live view on a terminal, a summary table
//! at the end, or `--json` events for programs.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::{ConcurrencyArgs, Global, print_json, workspace};
use crate::task::{TaskResult, TaskStatus};
use crate::tasks::{
    EventKind, LaunchRequest, ManagerConfig, StreamItem, SubagentRef, TaskEvent, TaskManager,
};
use crate::units::{format_duration, parse_duration};

/// Run many tasks from a file (TOML `[[task]]` tables, or JSON lines)
#[derive(Args, Debug)]
pub struct BatchArgs {
    /// The batch file: TOML with [[task]] tables, or JSON lines (.jsonl), one task per line
    file: PathBuf,
    /// The default workspace of the tasks [default: the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    #[command(flatten)]
    limits: ConcurrencyArgs,
    /// Print one JSON object per event, then per result, then a summary (see README)
    #[arg(long)]
    json: bool,
}

/// One task in a batch file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchTask {
    /// A subagent name, or a bundle path.
    subagent: String,
    prompt: String,
    description: Option<String>,
    /// Relative to the batch file's directory.
    workspace: Option<PathBuf>,
    write: Option<Vec<String>>,
    #[serde(default)]
    readonly: bool,
    timeout: Option<String>,
    model: Option<String>,
}

/// The TOML form: `[concurrency]` and `[[task]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchFile {
    concurrency: Option<Concurrency>,
    #[serde(default)]
    task: Vec<BatchTask>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Concurrency {
    max_running: Option<usize>,
    per_key_default: Option<usize>,
    #[serde(default)]
    per_key: HashMap<String, usize>,
}

/// `--json` lines besides events. Stable: fields are only ever added.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Record<'a> {
    Result {
        task_id: &'a str,
        subagent: &'a str,
        result: &'a TaskResult,
    },
    Summary {
        total: usize,
        counts: &'a BTreeMap<TaskStatus, usize>,
    },
}

pub fn run(args: BatchArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let default_workspace = workspace(args.workspace)?;
    let (tasks, concurrency) = read_batch(&args.file)?;
    if tasks.is_empty() {
        bail!(
            "`{}` holds no tasks\n  = help: add [[task]] tables (TOML) or one JSON object per line",
            args.file.display()
        );
    }
    let base = args.file.parent().unwrap_or(Path::new("."));

    let mut requests = Vec::new();
    for (label, task) in &tasks {
        let request = request(task, base, &default_workspace)
            .with_context(|| format!("{}: {label}", args.file.display()))?;
        requests.push((label, request));
    }

    let concurrency = concurrency.unwrap_or_default();
    let tune = |config: &mut ManagerConfig| {
        // The command line over the file over the defaults.
        config.max_running = concurrency.max_running.unwrap_or(config.max_running);
        config.per_key_default = concurrency
            .per_key_default
            .unwrap_or(config.per_key_default);
        config.per_key = concurrency.per_key;
        args.limits.apply(config);
    };

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = tokio.block_on(async {
        // Ctrl-C works in every phase: before anything runs it stops the
        // batch; after, it stops the tasks (each gets its terminal status).
        let (interrupt, mut interrupted) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = interrupt.send(true);
            }
        });
        let manager = global.manager(None, tune)?;
        // Prepare every task before running any: a bad one stops the batch
        // with nothing run.
        let mut prepared = Vec::new();
        for (label, request) in requests {
            let spec = match &request.subagent {
                SubagentRef::Path(path) => path.display().to_string(),
                SubagentRef::Name(name) => name.clone(),
                SubagentRef::Bundle(bundle) => bundle.manifest.name.clone(),
            };
            let task = tokio::select! {
                task = manager.prepare(request) => task,
                _ = interrupted.wait_for(|stop| *stop) => bail!("interrupted before any task ran"),
            };
            let task = task
                .and_then(|p| p.launchable().map(|()| p))
                .with_context(|| format!("{}: {label} (subagent `{spec}`)", args.file.display()))?;
            prepared.push(task);
        }
        let mut stream = manager.subscribe_all();
        // Launched together, so their rows commit together; ids in file order.
        let launches: Vec<_> = prepared
            .into_iter()
            .map(|task| {
                let manager = manager.clone();
                tokio::spawn(async move { manager.launch_prepared(task).await })
            })
            .collect();
        let mut ids = Vec::with_capacity(launches.len());
        for launch in launches {
            ids.push(launch.await.context("a launch failed")??);
        }
        let own: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let view = View::new(ids.len(), args.json);
        // The batch ends when its own tasks have ended, as the tasks
        // themselves say; the event stream only feeds the view, and may lag.
        let done = manager.await_tasks(&ids, None);
        tokio::pin!(done);
        let mut stopping = false;
        loop {
            tokio::select! {
                answer = &mut done => {
                    answer?;
                    break;
                }
                item = stream.next() => match item {
                    Some(StreamItem::Event(event)) => view.event(&manager, &event, own.contains(event.task_id.as_str())),
                    Some(StreamItem::Lagged(missed)) => view.lagged(missed),
                    None => {}
                },
                _ = interrupted.wait_for(|stop| *stop), if !stopping => {
                    stopping = true;
                    let stopper = manager.clone();
                    tokio::spawn(async move {
                        stopper.shutdown(stopper.config().cancel_grace).await;
                    });
                }
            }
        }
        // What the view has not shown yet.
        while let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(1), stream.next()).await
        {
            if let StreamItem::Event(event) = item {
                view.event(&manager, &event, own.contains(event.task_id.as_str()));
            }
        }
        view.finish();
        manager.shutdown(manager.config().cancel_grace).await;
        let results: Vec<(String, String, TaskResult)> = ids
            .iter()
            .filter_map(|id| manager.get(id).ok())
            .map(|s| {
                (
                    s.id,
                    s.subagent,
                    s.result.unwrap_or_else(|| {
                        TaskResult::failure(crate::TaskError::new(
                            crate::ErrorKind::Internal,
                            "no result",
                        ))
                    }),
                )
            })
            .collect();
        anyhow::Ok(results)
    })?;

    let mut counts: BTreeMap<TaskStatus, usize> = BTreeMap::new();
    for (_, _, result) in &results {
        *counts.entry(result.status).or_default() += 1;
    }
    if args.json {
        print_json(&Record::Summary {
            total: results.len(),
            counts: &counts,
        });
    } else {
        print_table(&results, &counts);
    }
    let all_ok = results
        .iter()
        .all(|(_, _, r)| r.status == TaskStatus::Completed);
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Parse the batch file: TOML, or JSON lines (by extension, or a leading `{`).
fn read_batch(path: &Path) -> anyhow::Result<(Vec<(String, BatchTask)>, Option<Concurrency>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the batch file `{}`", path.display()))?;
    parse_batch(path, &text)
}

/// Read a batch file's text (what `subagent batch` does before it runs
/// anything) and return how many tasks it holds. The fuzz harness's entry
/// to the parser of a file users download from strangers.
///
/// # Errors
///
/// The located error `subagent batch` prints.
pub fn check_batch_file(path: &Path, text: &str) -> anyhow::Result<usize> {
    let (tasks, _) = parse_batch(path, text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    for (label, task) in &tasks {
        request(task, base, Path::new("/workspace"))
            .with_context(|| format!("{}: {label}", path.display()))?;
    }
    Ok(tasks.len())
}

fn parse_batch(
    path: &Path,
    text: &str,
) -> anyhow::Result<(Vec<(String, BatchTask)>, Option<Concurrency>)> {
    let json_lines = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json")
        || text.trim_start().starts_with('{');
    if json_lines {
        let mut tasks = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let task: BatchTask = serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!("{}:{}: {e}\n  = help: each line is one task: {{\"subagent\": \"deep-search\", \"prompt\": \"TODO\"}}", path.display(), n + 1)
            })?;
            tasks.push((format!("line {}", n + 1), task));
        }
        return Ok((tasks, None));
    }
    let file: BatchFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
        anyhow::anyhow!("{}:{line}: {}\n  = help: a batch file holds [[task]] tables with `subagent` and `prompt`, and optionally [concurrency]", path.display(), e.message())
    })?;
    let tasks = file
        .task
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("task {}", i + 1), t))
        .collect();
    Ok((tasks, file.concurrency))
}

/// The launch request of one task of the batch file in `base`.
fn request(
    task: &BatchTask,
    base: &Path,
    default_workspace: &Path,
) -> anyhow::Result<LaunchRequest> {
    let workspace = task
        .workspace
        .as_ref()
        .map_or_else(|| default_workspace.to_owned(), |w| base.join(w));
    let timeout = task
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid `timeout`: {e}"))?;
    let mut request = LaunchRequest::new(
        SubagentRef::from_spec(&task.subagent, base),
        task.prompt.clone(),
        workspace,
    );
    request.description = task.description.clone();
    request.write = task.write.clone();
    request.readonly = task.readonly;
    request.timeout = timeout;
    request.model = task.model.clone();
    Ok(request)
}

/// How progress is shown: a live view on a terminal, lines otherwise, or JSON.
enum View {
    Live {
        bars: MultiProgress,
        header: ProgressBar,
        running: std::sync::Mutex<HashMap<String, ProgressBar>>,
        counts: std::sync::Mutex<Counts>,
    },
    Lines,
    Json,
}

#[derive(Default)]
struct Counts {
    total: usize,
    running: usize,
    done: usize,
    failed: usize,
}

impl Counts {
    fn line(&self) -> String {
        let queued = self.total - self.running - self.done;
        format!(
            "queued {queued} · running {} · done {} ({} not completed)",
            self.running, self.done, self.failed
        )
    }
}

impl View {
    fn new(total: usize, json: bool) -> View {
        if json {
            return View::Json;
        }
        if !std::io::stderr().is_terminal() {
            return View::Lines;
        }
        let bars = MultiProgress::new();
        let header = bars.add(ProgressBar::new_spinner());
        header.set_style(
            ProgressStyle::with_template("{spinner} {wide_msg}").expect("valid template"),
        );
        header.enable_steady_tick(Duration::from_millis(100));
        let counts = Counts {
            total,
            ..Counts::default()
        };
        header.set_message(counts.line());
        View::Live {
            bars,
            header,
            running: Default::default(),
            counts: std::sync::Mutex::new(counts),
        }
    }

    /// Show `event`; `own` says whether it is of a task of the batch (not
    /// of a child one of them launched).
    fn event(&self, manager: &TaskManager, event: &TaskEvent, own: bool) {
        match self {
            View::Json => {
                print_json(event);
                if event.kind.is_terminal() {
                    if let Ok(snapshot) = manager.get(&event.task_id) {
                        if let Some(result) = &snapshot.result {
                            print_json(&Record::Result {
                                task_id: &snapshot.id,
                                subagent: &snapshot.subagent,
                                result,
                            });
                        }
                    }
                }
            }
            View::Lines => {
                if let (true, EventKind::Terminal { status, .. }) = (own, &event.kind) {
                    let name = manager
                        .get(&event.task_id)
                        .map(|s| s.subagent)
                        .unwrap_or_default();
                    errln!("{} {} {name} {status}", mark(*status), event.task_id);
                }
            }
            View::Live {
                bars,
                header,
                running,
                counts,
            } => {
                if !own {
                    return;
                }
                let mut counts = counts.lock().unwrap();
                let mut running = running.lock().unwrap();
                match &event.kind {
                    EventKind::Started => {
                        let name = manager
                            .get(&event.task_id)
                            .map(|s| s.subagent)
                            .unwrap_or_default();
                        let bar = bars.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template(
                                "  {spinner} {prefix} {elapsed:>4} {wide_msg}",
                            )
                            .expect("valid template"),
                        );
                        bar.set_prefix(format!("{} {name}", event.task_id));
                        bar.enable_steady_tick(Duration::from_millis(100));
                        running.insert(event.task_id.clone(), bar);
                        counts.running += 1;
                    }
                    EventKind::Progress { progress } => {
                        if let Some(bar) = running.get(&event.task_id) {
                            bar.set_message(super::visible(&progress.to_string()).into_owned());
                        }
                    }
                    EventKind::Terminal { status, .. } => {
                        if let Some(bar) = running.remove(&event.task_id) {
                            bar.finish_and_clear();
                            bars.remove(&bar);
                            counts.running -= 1;
                        }
                        counts.done += 1;
                        if *status != TaskStatus::Completed {
                            counts.failed += 1;
                        }
                    }
                    _ => {}
                }
                header.set_message(counts.line());
            }
        }
    }

    fn lagged(&self, missed: u64) {
        if !matches!(self, View::Json) {
            errln!("(the view fell behind and skipped {missed} events)");
        }
    }

    fn finish(&self) {
        if let View::Live { header, .. } = self {
            header.finish_and_clear();
        }
    }
}

fn mark(status: TaskStatus) -> &'static str {
    if status == TaskStatus::Completed {
        "✓"
    } else {
        "✗"
    }
}

fn print_table(results: &[(String, String, TaskResult)], counts: &BTreeMap<TaskStatus, usize>) {
    let name_width = results
        .iter()
        .map(|(_, n, _)| n.len())
        .max()
        .unwrap_or(8)
        .max(8);
    outln!(
        "{:<22} {:<name_width$} {:<11} {:>7}  SUMMARY",
        "TASK",
        "SUBAGENT",
        "STATUS",
        "TIME"
    );
    for (id, name, result) in results {
        let took = format_duration(Duration::from_millis(result.usage.duration_ms));
        let line = match (&result.summary, &result.error) {
            (Some(summary), _) => summary.lines().next().unwrap_or_default().to_owned(),
            (None, Some(error)) => format!(
                "{}: {}",
                error.kind,
                error.message.lines().next().unwrap_or_default()
            ),
            (None, None) => String::new(),
        };
        let line: String = line.chars().take(80).collect();
        outln!(
            "{id:<22} {name:<name_width$} {:<11} {took:>7}  {line}",
            result.status.as_str()
        );
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    outln!("\n{} tasks: {}", results.len(), parts.join(", "));
}
