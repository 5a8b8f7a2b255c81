//! `subagent run`: run one subagent on a workspace and print its result.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use super::progress::Progress;
use super::{Global, print_json, workspace};
use crate::sandbox::FileChanges;
use crate::task::{LimitHit, OutputSummary, Permissions, TaskError, TaskResult, TaskStatus, Usage};
use crate::tasks::{LaunchRequest, Preparer, StreamItem, SubagentRef, TaskManager};
use crate::units::{format_duration, parse_duration};

/// Run a subagent on a workspace
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The bundle: a directory with subagent.toml, its manifest path, or a subagent name
    bundle: String,
    /// What to do (the task prompt); `-` reads it from stdin
    task: Option<String>,
    /// Read the task prompt from FILE (`-` for stdin)
    #[arg(long, value_name = "FILE", conflicts_with = "task")]
    task_file: Option<PathBuf>,
    /// The workspace the subagent sees at /workspace [default: the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Narrow the writable directories to DIR (repeatable; each must be allowed by the manifest)
    #[arg(long = "write", value_name = "DIR")]
    write: Vec<String>,
    /// Write nothing, whatever the manifest allows
    #[arg(long, conflicts_with = "write")]
    readonly: bool,
    /// Replace the manifest's timeout, e.g. 30s, 10m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Run the manifest's [build] command first
    #[arg(long)]
    build: bool,
    /// Use this model (an alias from the host config, or provider/model) instead of the manifest's
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Save every model exchange of the run to FILE (JSON lines), to replay it later
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    record: Option<PathBuf>,
    /// Serve the model exchanges recorded in FILE instead of calling any provider
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Print the result as one JSON object (see README: "JSON output")
    #[arg(long)]
    json: bool,
    /// Print the task id and return; the task runs on in a detached process
    #[arg(long, conflicts_with = "json")]
    background: bool,
}

/// The detached process of `run --background`.
#[derive(Args, Debug)]
pub struct DetachedArgs {
    /// The request the foreground process wrote (JSON); removed once read
    request: PathBuf,
}

/// What `run --background` hands its detached process: the launch request as
/// it was prepared (the subagent by its bundle's path, the workspace
/// canonical, the prompt already read, the task id chosen), the global
/// options and the run's own, with every path absolute. Never a command line
/// rebuilt option by option, which forgets the options added after it was
/// written.
#[derive(Serialize, Deserialize)]
struct Detached {
    global: Global,
    request: LaunchRequest,
    options: RunOptions,
}

/// What a run does besides the launch: where model exchanges are recorded
/// or replayed from, and how the result is printed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RunOptions {
    record: Option<PathBuf>,
    replay: Option<PathBuf>,
    json: bool,
}

/// The `--json` form of a run's result. Stable: fields are only ever added.
#[derive(Serialize)]
struct RunReport<'a> {
    task_id: &'a str,
    subagent: &'a str,
    status: TaskStatus,
    summary: Option<&'a str>,
    data: Option<&'a serde_json::Value>,
    error: Option<&'a TaskError>,
    files: &'a FileChanges,
    /// Limits the guest ran into (a write past `limits.disk`, …).
    limits_hit: &'a [LimitHit],
    output: &'a OutputSummary,
    usage: &'a Usage,
    permissions: &'a Permissions,
    /// The effective model, when the subagent uses one.
    model: Option<&'a str>,
    /// The model name the launch or the manifest asked for, when one did.
    requested_model: Option<&'a str>,
    /// Set when the requested model did not resolve on this host and the
    /// default model stood in for it.
    model_warning: Option<&'a str>,
}

pub fn run(args: RunArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let prompt = read_prompt(args.task.as_deref(), args.task_file.as_deref())?;
    let workspace = workspace(args.workspace.clone())?;
    let mut request = LaunchRequest::new(
        SubagentRef::from_spec(&args.bundle, std::path::Path::new("")),
        prompt,
        workspace,
    );
    request.write = (!args.write.is_empty()).then_some(args.write);
    request.readonly = args.readonly;
    request.timeout = args.timeout;
    request.model = args.model;
    if args.build {
        let bundle = global.bundle(&args.bundle, &request.workspace)?;
        bundle.build()?;
        request.subagent = SubagentRef::Bundle(Box::new(bundle));
    }
    let options = RunOptions {
        record: args.record,
        replay: args.replay,
        json: args.json,
    };
    if args.background {
        return background(request, options, global);
    }
    foreground(request, &options, global)
}

/// The detached process of `--background`: run the request it was handed.
pub fn run_detached(args: DetachedArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.request)
        .with_context(|| format!("cannot read {}", args.request.display()))?;
    // Written for this process alone.
    let _ = std::fs::remove_file(&args.request);
    let detached: Detached = serde_json::from_str(&text)
        .with_context(|| format!("cannot read {}", args.request.display()))?;
    detached.global.apply();
    foreground(detached.request, &detached.options, &detached.global)
}

/// Launch `request` and follow it to its end, printing the result.
fn foreground(
    request: LaunchRequest,
    options: &RunOptions,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    // The store opens (and migrates, and recovers) on a thread of its own
    // while the engine starts and the task is prepared: the two are
    // independent, and this is the whole start of a `subagent run`.
    let opening = {
        let global = global.clone();
        std::thread::spawn(move || global.store())
    };
    let models = global.models(options.record.clone(), options.replay.as_deref())?;
    let runtime = Arc::new(global.runtime()?);
    let preparer = Preparer::new(runtime.clone(), models.clone(), global.agents.clone());
    let prepared = preparer.prepare(request)?;
    prepared.launchable()?;
    warn_model(&prepared);
    let store = opening
        .join()
        .map_err(|_| anyhow::anyhow!("the task store could not be opened"))??;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (snapshot, result, manager) = tokio.block_on(async {
        let manager = TaskManager::builder(runtime)
            .config(global.manager_config())
            .store(store.clone())
            .models(models)
            .build()?;
        let id = manager.launch_prepared(prepared).await?;
        let name = manager.get(&id)?.subagent;
        let progress = Progress::new(&name, std::io::stderr().is_terminal() && !options.json);
        let mut events = manager.subscribe(&id)?;
        // Ctrl-C asks the task to stop; after the grace period it is interrupted.
        let canceller = manager.clone();
        let cancel_id = id.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = canceller.cancel(&cancel_id);
            }
        });
        while let Some(item) = events.next().await {
            if let StreamItem::Event(event) = item {
                progress.show(&event.kind);
            }
        }
        progress.finish();
        // Children the task left behind were cancelled when it ended; let
        // them end properly and leave the store clean before exiting.
        manager.shutdown(manager.config().cancel_grace).await;
        let snapshot = manager.get(&id)?;
        let result = snapshot
            .result
            .clone()
            .expect("the stream ends after the terminal event");
        anyhow::Ok((snapshot, result, manager))
    })?;
    // The process ends once this is printed: tearing down the engine (its
    // pooled memory), the store and the thread pools would only delay it.
    std::mem::forget(manager);
    std::mem::forget(tokio);

    // A process paused past its lease finds its task ended by another: the
    // store keeps that one outcome, and so does what is printed.
    let mut result = result;
    if store.lease_lost() {
        if let Ok(Some(stored)) = store.task(&snapshot.id).map(|t| t.result) {
            errln!(
                "error: this process lost its hold on the task store (it was paused or cut off past its {}s lease) and another process ended task {} as {}; the outcome here ({}) was not recorded",
                crate::store::LEASE.as_secs(),
                snapshot.id,
                stored.status,
                result.status
            );
            result = stored;
        }
    }
    let name = &snapshot.subagent;
    if options.json {
        print_json(&RunReport {
            task_id: &snapshot.id,
            subagent: name,
            status: result.status,
            summary: result.summary.as_deref(),
            data: result.data.as_ref(),
            error: result.error.as_ref(),
            files: &result.files,
            limits_hit: &result.limits_hit,
            output: &result.output,
            usage: &result.usage,
            permissions: &snapshot.permissions,
            model: result.model.as_deref(),
            requested_model: result.requested_model.as_deref(),
            model_warning: result.model_warning.as_deref(),
        });
    } else {
        print_human(name, &snapshot.id, &result);
    }
    Ok(if result.status == TaskStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prepare the request as a launch would (so a bad one fails here, with
/// exit code 2), then hand it to a detached `subagent` in its own process
/// group, and return the task id once the task is in the store.
fn background(
    request: LaunchRequest,
    mut options: RunOptions,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    // Recording starts in the detached process; nothing here calls a model.
    let models = global.models(None, options.replay.as_deref())?;
    let preparer = Preparer::new(
        std::sync::Arc::new(global.runtime()?),
        models,
        global.agents.clone(),
    );
    let prepared = preparer.prepare(request)?;
    prepared.launchable()?;
    warn_model(&prepared);
    let store = global.store()?;
    let state = store
        .path()
        .parent()
        .expect("the store lives in the state dir")
        .to_owned();
    let spool = state.join("background");
    std::fs::create_dir_all(&spool)
        .with_context(|| format!("cannot create {}", spool.display()))?;
    let id = crate::ids::new_task_id();
    let log = spool.join(format!("{id}.log"));

    // The request as prepared is already absolute: the bundle by its path,
    // the workspace canonical. So are the options, here.
    let mut request = prepared.request().clone();
    request.id = Some(id.clone());
    let absolute = |path: &mut Option<PathBuf>| -> anyhow::Result<()> {
        if let Some(p) = path {
            *p = std::path::absolute(&*p)?;
        }
        Ok(())
    };
    absolute(&mut options.record)?;
    absolute(&mut options.replay)?;
    let mut global = global.clone();
    global.state_dir = Some(state);
    global.agents = global
        .agents
        .iter()
        .map(std::path::absolute)
        .collect::<Result<_, _>>()?;
    absolute(&mut global.cache_dir)?;
    absolute(&mut global.config)?;
    let request_file = spool.join(format!("{id}.request.json"));
    let detached = Detached {
        global,
        request,
        options,
    };
    std::fs::write(&request_file, serde_json::to_vec(&detached)?)
        .with_context(|| format!("cannot write {}", request_file.display()))?;

    let mut command =
        Command::new(std::env::current_exe().context("cannot find the subagent executable")?);
    command.arg("run-detached").arg(&request_file);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: Ctrl-C in this terminal does not reach it.
        command.process_group(0);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(&log)
                .with_context(|| format!("cannot create {}", log.display()))?,
        )
        .spawn()
        .context("cannot start the background process")?;

    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if store.task(&id).is_ok() {
            outln!("{id}");
            errln!(
                "running in the background (pid {}); follow it with: subagent logs --follow {id}",
                child.id()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(status) = child.try_wait()? {
            let _ = std::fs::remove_file(&request_file);
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "the background process exited ({status}) before starting the task:\n{}",
                output.trim_end()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!(
        "the background process did not start the task within 60 s; see {}",
        log.display()
    )
}

/// Say on stderr when the model asked for does not resolve here and the
/// default stands in: never silently.
fn warn_model(prepared: &crate::tasks::Prepared) {
    if let Some(warning) = prepared.model_warning() {
        errln!(
            "warning: subagent `{}`: {warning}",
            prepared.bundle().manifest.name
        );
    }
}

/// The prompt from the argument, `--task-file`, or stdin (`-`).
fn read_prompt(task: Option<&str>, file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let read_stdin = || -> anyhow::Result<String> {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the task from stdin")?;
        Ok(text)
    };
    let prompt = match (task, file) {
        (Some("-"), _) => read_stdin()?,
        (Some(text), _) => text.to_owned(),
        (None, Some(path)) if path.as_os_str() == "-" => read_stdin()?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the task file `{}`", path.display()))?,
        (None, None) => bail!(
            "no task given\n  = help: pass it as an argument (subagent run BUNDLE \"what to do\"), with --task-file FILE, or `-` to read stdin"
        ),
    };
    if prompt.trim().is_empty() {
        bail!("the task is empty\n  = help: say what the subagent should do");
    }
    Ok(prompt)
}

fn print_human(name: &str, task_id: &str, result: &TaskResult) {
    let mark = if result.status == TaskStatus::Completed {
        "✓"
    } else {
        "✗"
    };
    let took = format_duration(std::time::Duration::from_millis(result.usage.duration_ms));
    outln!("{mark} {name} {} in {took} (task {task_id})", result.status);
    if let Some(error) = &result.error {
        outln!("error[{}]: {}", error.kind, error.message);
    }
    if let Some(model) = &result.model {
        outln!(
            "model: {}",
            super::model_line(model, result.requested_model.as_deref())
        );
    }
    if let Some(warning) = &result.model_warning {
        outln!("warning: {warning}");
    }
    if let Some(summary) = &result.summary {
        outln!("\n{}", summary.trim_end());
    }
    if !result.files.is_empty() || result.files.incomplete {
        outln!("\nfile results:");
        for (label, changes) in [
            ("created", &result.files.created),
            ("modified", &result.files.modified),
            ("deleted", &result.files.deleted),
        ] {
            for change in changes {
                outln!("  {label:<8} {}", change.path);
            }
        }
        if result.files.incomplete {
            outln!(
                "  (incomplete: {} more changes than the host records were left out)",
                result.files.omitted
            );
        }
    }
    if !result.limits_hit.is_empty() {
        outln!("\nlimits hit:");
        for hit in &result.limits_hit {
            outln!("  {:<10} {}", hit.limit.as_str(), hit.message);
        }
    }
    if !result.output.text.is_empty() {
        outln!(
            "\noutput ({} bytes):\n{}",
            result.output.bytes,
            result.output.text.trim_end()
        );
    }
}
