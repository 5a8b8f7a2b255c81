//! Run one task in a fresh store: set the limits, call `run`, and turn
//! whatever happened (an outcome, a guest error, a trap, a limit) into a
//! typed [`TaskResult`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};

use super::{LoadedComponent, Runtime, StoreState};
use crate::bindings::subagent::plugin::types as wit;
use crate::capabilities::host::{HostCtx, TaskControl};
use crate::capabilities::model::{ModelBroker, ModelCtx, ModelUsage};
use crate::capabilities::subagents::{Spawner, SubagentsCtx};
use crate::manifest::Limits;
use crate::sandbox::{GUEST_WORKSPACE, OutputLog, Sandbox, Snapshot, WriteSet};
use crate::task::{ErrorKind, OutputSummary, RunObserver, TaskError, TaskResult, Usage};
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
    /// Run `component` on `spec`. Never fails: every problem, from a bad
    /// sandbox to a trap, becomes a [`TaskResult`] with a typed error.
    pub async fn run(
        &self,
        component: &LoadedComponent,
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
        } = spec;
        let wasi = match sandbox.wasi_ctx(&output) {
            Ok(wasi) => wasi,
            Err(err) => {
                return TaskResult::failure(TaskError::new(ErrorKind::Internal, err.to_string()));
            }
        };
        let before = snapshot(&sandbox).await;
        let model_usage = Arc::new(ModelUsage::default());

        let state = StoreState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory),
            host: HostCtx {
                control: control.clone(),
                observer,
            },
            subagents: SubagentsCtx {
                task_id: task.id.clone(),
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
        let mut store = Store::new(self.engine(), state);
        store.limiter(|state| &mut state.limiter);
        let fuel = limits.fuel.unwrap_or(u64::MAX);
        store
            .set_fuel(fuel)
            .expect("fuel is enabled in the engine config");
        let deadline = started + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().host.control.is_interrupted() || Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield at every tick so one busy guest never starves the
                // other tasks on this thread.
                Ok(UpdateDeadline::Yield(1))
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
        let ending = {
            let call = async {
                let instance = component.pre.instantiate_async(&mut store).await?;
                instance.call_run(&mut store, &wit_task).await
            };
            tokio::select! {
                result = call => Ending::Returned(result),
                // A guest blocked in a host call sees no epoch; stop it here.
                _ = tokio::time::sleep_until(deadline.into()) => Ending::Deadline,
                _ = control.interrupted() => Ending::Interrupted,
            }
        };

        let memory_denied = store.data().limiter.denied;
        let fuel_used = limits
            .fuel
            .map(|budget| budget - store.get_fuel().unwrap_or(0));
        drop(store);

        let after = snapshot(&sandbox).await;
        let files = before.diff(&after);
        let output_summary = summarize_output(&output, &limits);
        let mut result = classify(
            ending,
            &control,
            deadline,
            memory_denied,
            &limits,
            &output_summary,
        );
        result.files = files;
        result.output = output_summary;
        result.usage = Usage {
            duration_ms: started.elapsed().as_millis() as u64,
            fuel: fuel_used,
            rounds: control.rounds(),
            model_calls: model_usage.calls.load(Ordering::Relaxed),
            input_tokens: model_usage.input_tokens.load(Ordering::Relaxed),
            output_tokens: model_usage.output_tokens.load(Ordering::Relaxed),
            total: None,
        };
        result.model = task.model;
        result
    }
}

/// Snapshot the writable part of the workspace off the async threads; a
/// read-only task has nothing to snapshot.
async fn snapshot(sandbox: &Sandbox) -> Snapshot {
    if *sandbox.writes() == WriteSet::None {
        return Snapshot::default();
    }
    let sandbox = sandbox.clone();
    tokio::task::spawn_blocking(move || sandbox.snapshot())
        .await
        .unwrap_or_default()
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
        Ending::Returned(Ok(Ok(outcome))) => {
            let data = outcome
                .data
                .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
            TaskResult::completed(outcome.summary, data)
        }
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
