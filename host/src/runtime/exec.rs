//! Run one task in a fresh store: open its grant, set the limits, call
//! `run`, and turn whatever happened (an outcome, a guest error, a trap, a
//! limit) into a typed [`TaskResult`].
//!
//! How tasks map onto threads: a task starts on the caller's thread and
//! runs there for its first slice, up to one epoch tick (10 ms). Most short
//! tasks end within it, paying no thread hand-off (one is ~30 µs here, more
//! than a no-op task). A task still running after its first slice (or
//! waiting on an async host call) moves to a thread of its own, from tokio's
//! blocking pool so threads are reused, and runs there to the end with
//! `Handle::block_on`. Why: the filesystem capability serves guest file
//! calls synchronously, in place, which must not stall the async workers
//! that serve the task manager, the store and the other tasks for longer
//! than that first slice; and a CPU-bound guest is then preempted by the OS
//! instead of taking turns on a worker. Async host calls (model requests,
//! child tasks, message waits, timers) still run on the shared runtime's
//! drivers. The number of such threads is bounded by the running tasks,
//! which the task manager caps at the engine's instance slots.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::{LoadedComponent, Runtime, StoreState};
use crate::bindings::SubagentPre;
use crate::bindings::subagent::plugin::types as wit;
use crate::capabilities::filesystem::{DescriptorBudget, FsCtx, FsLimits};
use crate::capabilities::host::{HostCtx, TaskControl};
use crate::capabilities::model::{ModelBroker, ModelCtx, ModelUsage};
use crate::capabilities::subagents::{Spawner, SubagentsCtx};
use crate::events::RunObserver;
use crate::manifest::Limits;
use crate::sandbox::{GUEST_WORKSPACE, OutputLog, Sandbox, StreamKind};
use crate::task::{ErrorKind, OutputSummary, TaskError, TaskResult, Usage};
use crate::units::{format_duration, format_size};

/// Who the task is, as the guest sees it.
#[derive(Clone, Debug, Default)]
pub struct TaskInfo {
    pub id: String,
    /// The subagent's name, for messages.
    pub subagent: String,
    pub description: String,
    pub prompt: String,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
    pub parent_id: Option<String>,
}

/// Everything one run needs besides the component.
pub struct RunSpec {
    pub task: TaskInfo,
    pub sandbox: Sandbox,
    pub limits: Limits,
    /// Where stdout and stderr go; create it with `limits.output` as its cap.
    pub output: OutputLog,
    /// What serves the `subagents` interface; give it only when the manifest
    /// grants `subagents`. `None` makes every call answer `denied`.
    pub spawner: Option<Arc<dyn Spawner>>,
    /// What serves the `model` interface; give it only when the manifest
    /// grants `model`. `None` makes every call answer `denied`.
    pub models: Option<Arc<dyn ModelBroker>>,
    /// Where to record how long the parts of the run took, if anywhere.
    pub parts: Option<Arc<Mutex<RunParts>>>,
}

/// How long the parts of one run took, for profiling the launch path (the
/// benchmark prints them). Recording costs a few clock reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunParts {
    /// Opening the grant.
    pub open: Duration,
    /// Building the task's capability contexts and its store.
    pub context: Duration,
    /// Instantiating the component (taking a pool slot).
    pub instantiate: Duration,
    /// The guest's `run` call.
    pub call: Duration,
    /// Dropping the store (resetting the slot) and building the result.
    pub teardown: Duration,
}

impl RunSpec {
    /// Run `task` as `plan` decided: its sandbox and limits, output captured
    /// (not streamed) up to `limits.output`, and no `subagents` or `model`
    /// service (calls answer `denied`).
    pub fn new(task: TaskInfo, plan: crate::plan::Plan) -> RunSpec {
        RunSpec {
            task,
            output: OutputLog::new(plan.limits.output, None),
            sandbox: plan.sandbox,
            limits: plan.limits,
            spawner: None,
            models: None,
            parts: None,
        }
    }
}

/// Counts memory across all of an instance's memories and refuses growth
/// past the limit, remembering that it did.
pub(crate) struct MemoryLimiter {
    limit: usize,
    used: usize,
    denied: bool,
}

impl MemoryLimiter {
    fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            used: 0,
            denied: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let used = self.used - current.min(self.used) + desired;
        if used > self.limit {
            self.denied = true;
            return Ok(false);
        }
        self.used = used;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// How a call ended, before classification.
enum Ending {
    Returned(wasmtime::Result<Result<wit::Outcome, wit::RunError>>),
    Deadline,
    Interrupted,
}

impl Runtime {
    /// Run `component` on `spec`. Never fails: every problem, from a grant
    /// that cannot be opened to a trap, becomes a [`TaskResult`] with a
    /// typed error.
    pub async fn run(
        &self,
        component: &LoadedComponent,
        spec: RunSpec,
        control: Arc<TaskControl>,
        observer: Arc<dyn RunObserver>,
    ) -> TaskResult {
        let engine = self.engine.clone();
        let pre = component.pre.clone();
        let budget = self.descriptors.clone();
        let mut task = Box::pin(execute(engine, pre, budget, spec, control, observer));
        // The first slice, here.
        let first = std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = first {
            return result;
        }
        // The rest, on a thread of its own.
        let handle = tokio::runtime::Handle::current();
        let thread = tokio::task::spawn_blocking(move || handle.block_on(task));
        thread.await.unwrap_or_else(|err| {
            TaskResult::failure(TaskError::new(
                ErrorKind::Internal,
                format!("the task's thread failed: {err}"),
            ))
        })
    }
}

/// The guest's WASI context: captured stdout and stderr, and nothing else.
/// Files are the filesystem capability's; no directory is preopened here.
fn wasi_ctx(output: &OutputLog) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(output.stream(StreamKind::Stdout))
        .stderr(output.stream(StreamKind::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

/// Open the grant, then instantiate and call the guest, on this thread.
async fn execute(
    engine: Engine,
    pre: SubagentPre<StoreState>,
    budget: Arc<DescriptorBudget>,
    spec: RunSpec,
    control: Arc<TaskControl>,
    observer: Arc<dyn RunObserver>,
) -> TaskResult {
    let started = Instant::now();
    let RunSpec {
        task,
        sandbox,
        limits,
        output,
        spawner,
        models,
        parts,
    } = spec;
    let grant = match sandbox.open() {
        Ok(grant) => grant,
        Err(err) => {
            let kind = if err.is_denied() {
                ErrorKind::Denied
            } else {
                ErrorKind::InvalidInput
            };
            return TaskResult::failure(TaskError::new(kind, err.to_string()));
        }
    };
    let opened = Instant::now();
    let fs = FsCtx::new(grant, FsLimits::of(&limits), budget);
    let fs_task = fs.task();
    let model_usage = Arc::new(ModelUsage::default());

    let state = StoreState {
        wasi: wasi_ctx(&output),
        table: ResourceTable::new(),
        limiter: MemoryLimiter::new(limits.memory),
        fs,
        host: HostCtx {
            control: control.clone(),
            observer,
        },
        subagents: SubagentsCtx {
            subagent: task.subagent.clone(),
            spawner,
            control: control.clone(),
        },
        model: ModelCtx {
            subagent: task.subagent.clone(),
            model: task.model.clone(),
            broker: models,
            usage: model_usage.clone(),
            budget: limits.tokens,
        },
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|state| &mut state.limiter);
    let fuel = limits.fuel.unwrap_or(u64::MAX);
    store
        .set_fuel(fuel)
        .expect("fuel is enabled in the engine config");
    let deadline = started + limits.timeout;
    store.set_epoch_deadline(1);
    let mut first_slice = true;
    store.epoch_deadline_callback(move |ctx| {
        if ctx.data().host.control.is_interrupted() || Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else if std::mem::take(&mut first_slice) {
            // End of the first slice: yield, so the task can move to a
            // thread of its own (see the module docs).
            Ok(UpdateDeadline::Yield(1))
        } else {
            // The guest has its thread to itself: nothing to yield to.
            Ok(UpdateDeadline::Continue(1))
        }
    });

    let wit_task = wit::Task {
        id: task.id.clone(),
        description: task.description.clone(),
        prompt: task.prompt.clone(),
        system_prompt: task.system_prompt.clone(),
        workspace: GUEST_WORKSPACE.to_owned(),
        writable_dirs: sandbox.writes().guest_paths(),
        model: task.model.clone(),
        parent_id: task.parent_id.clone(),
    };
    let built = Instant::now();
    let mut instantiated = None;
    let ending = {
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instantiated = Some(Instant::now());
            instance.call_run(&mut store, &wit_task).await
        };
        tokio::select! {
            result = call => Ending::Returned(result),
            // A guest blocked in a host call sees no epoch; stop it here.
            _ = tokio::time::sleep_until(deadline.into()) => Ending::Deadline,
            _ = control.interrupted() => Ending::Interrupted,
        }
    };

    let called = Instant::now();
    let memory_denied = store.data().limiter.denied;
    let fuel_used = limits
        .fuel
        .map(|budget| budget - store.get_fuel().unwrap_or(0));
    // Dropping the store closes every descriptor the guest left open.
    drop(store);

    let fs_report = fs_task.report();
    let output_summary = summarize_output(&output, &limits);
    let mut result = classify(
        ending,
        &control,
        deadline,
        memory_denied,
        &limits,
        &output_summary,
    );
    result.files = fs_report.files;
    result.limits_hit = fs_report.limits_hit;
    result.output = output_summary;
    result.usage = Usage {
        duration_ms: started.elapsed().as_millis() as u64,
        fuel: fuel_used,
        rounds: control.rounds(),
        model_calls: model_usage.calls.load(Ordering::Relaxed),
        input_tokens: model_usage.input_tokens.load(Ordering::Relaxed),
        output_tokens: model_usage.output_tokens.load(Ordering::Relaxed),
        bytes_written: fs_report.bytes_written,
        files_created: fs_report.files_created,
        total: None,
    };
    result.model = task.model;
    if let Some(parts) = parts {
        let instantiated = instantiated.unwrap_or(called);
        *parts.lock().unwrap() = RunParts {
            open: opened - started,
            context: built - opened,
            instantiate: instantiated - built,
            call: called - instantiated,
            teardown: called.elapsed(),
        };
    }
    result
}

fn summarize_output(output: &OutputLog, limits: &Limits) -> OutputSummary {
    let dropped = output.dropped();
    let mut text = output.text();
    if dropped > 0 {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "[output truncated: {dropped} more bytes were dropped past the {} limit (limits.output)]\n",
            format_size(limits.output)
        ));
    }
    OutputSummary {
        text,
        bytes: output.len(),
        dropped,
    }
}

/// How deep a result's `data` may nest: what the store can give back as it
/// was returned (its JSON reader allows 128 levels, with the result around it).
pub const MAX_DATA_DEPTH: usize = 64;

/// The result a subagent returned, if the host can keep it as given: within
/// `limits.result`, and with `data` that is JSON nesting at most
/// [`MAX_DATA_DEPTH`] levels. What the host refuses here it refuses at run
/// time, with the reason; it never keeps something else in its place.
fn accept_result(outcome: wit::Outcome, limits: &Limits) -> Result<TaskResult, TaskError> {
    let size = outcome.summary.len() as u64 + outcome.data.as_ref().map_or(0, |d| d.len() as u64);
    if size > limits.result {
        return Err(TaskError::new(
            ErrorKind::Limit,
            format!(
                "the result is {}, past the {} limit (limits.result): return less (write the rest to a file), or raise `limits.result`",
                format_size(size),
                format_size(limits.result)
            ),
        ));
    }
    let data = match outcome.data {
        None => None,
        Some(text) => {
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                let why = if e.to_string().contains("recursion limit") {
                    format!("it nests deeper than {MAX_DATA_DEPTH} levels")
                } else {
                    format!("it is not JSON ({e})")
                };
                TaskError::new(
                    ErrorKind::InvalidResult,
                    format!("the result's data cannot be kept: {why}; return a JSON document, or put text in the summary"),
                )
            })?;
            let depth = json_depth(&value);
            if depth > MAX_DATA_DEPTH {
                return Err(TaskError::new(
                    ErrorKind::InvalidResult,
                    format!(
                        "the result's data cannot be kept: it nests {depth} levels deep, past {MAX_DATA_DEPTH}; flatten it"
                    ),
                ));
            }
            Some(value)
        }
    };
    Ok(TaskResult::completed(outcome.summary, data))
}

/// How many arrays and objects deep `value` nests (a scalar is 0).
fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

fn classify(
    ending: Ending,
    control: &TaskControl,
    deadline: Instant,
    memory_denied: bool,
    limits: &Limits,
    output: &OutputSummary,
) -> TaskResult {
    let timed_out = || {
        TaskResult::failure(TaskError::new(
            ErrorKind::Timeout,
            format!(
                "the task ran past its {} limit (limits.timeout)",
                format_duration(limits.timeout)
            ),
        ))
    };
    let interrupted = || {
        TaskResult::failure(TaskError::new(
            ErrorKind::Cancelled,
            "the task was cancelled and stopped by the host",
        ))
    };
    match ending {
        Ending::Deadline => timed_out(),
        Ending::Interrupted => interrupted(),
        Ending::Returned(Ok(Ok(outcome))) => match accept_result(outcome, limits) {
            Ok(result) => result,
            Err(error) => TaskResult::failure(error),
        },
        Ending::Returned(Ok(Err(err))) => TaskResult::failure(match err {
            wit::RunError::InvalidInput(message) => {
                TaskError::new(ErrorKind::InvalidInput, message)
            }
            wit::RunError::Failed(message) => TaskError::new(ErrorKind::Failed, message),
            wit::RunError::Cancelled => TaskError::new(
                ErrorKind::Cancelled,
                "the subagent stopped after being cancelled",
            ),
        }),
        Ending::Returned(Err(err)) => {
            if control.is_interrupted() {
                return interrupted();
            }
            let trap = err.downcast_ref::<Trap>().copied();
            if trap == Some(Trap::Interrupt) || Instant::now() >= deadline {
                return timed_out();
            }
            let tail = output_tail(&output.text);
            let error = if memory_denied {
                TaskError::new(
                    ErrorKind::Memory,
                    format!(
                        "the task needed more than its {} memory limit (limits.memory){tail}",
                        format_size(limits.memory)
                    ),
                )
            } else if trap == Some(Trap::OutOfFuel) {
                TaskError::new(
                    ErrorKind::Fuel,
                    format!(
                        "the task used up its fuel budget of {} (limits.fuel)",
                        limits.fuel.unwrap_or(0)
                    ),
                )
            } else if trap == Some(Trap::StackOverflow) {
                TaskError::new(
                    ErrorKind::Trap,
                    format!("the guest trapped: stack overflow (wasm call stack exhausted){tail}"),
                )
            } else if let Some(trap) = trap {
                TaskError::new(ErrorKind::Trap, format!("the guest trapped: {trap}{tail}"))
            } else {
                TaskError::new(ErrorKind::Trap, format!("the guest failed: {err:#}{tail}"))
            };
            TaskResult::failure(error)
        }
    }
}

/// The last lines the guest printed (often a panic message), for a trap report.
fn output_tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(3)..];
    format!("; last output: {}", tail.join(" | "))
}
