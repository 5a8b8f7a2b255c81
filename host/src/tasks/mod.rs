//! The task manager: runs subagents as tasks.
//!
//! Launch in the background (a task id at once) or the foreground (the
//! result); await many by id; cancel (cooperatively, then by interrupt after a
//! grace period, descendants too); send follow-up messages; read output by
//! byte offset; subscribe to events; nest children under a parent (never with
//! more permission than the parent); queue FIFO under per-key concurrency
//! limits and a global cap on running instances.
//!
//! Lifecycle: `queued → running → completed | failed | cancelled | timed_out |
//! interrupted`. Every accepted task gets **exactly one** terminal event: all
//! endings go through one guarded transition, under one lock.

mod control;
mod events;
mod lifecycle;
mod prepare;
mod request;
mod scheduler;
mod spawner;

use crate::task::{Usage, UsageTotals};
pub use events::{EventKind, EventStream, StreamItem, TaskEvent};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::bundle::{Bundle, BundleError};
use crate::capabilities::host::TaskControl;
use crate::capabilities::model::ModelBroker;
use crate::capabilities::subagents::Spawner;
use crate::events::RunObserver;
use crate::manifest::{Limits, Tool};
use crate::model::broker::Models;
use crate::model::config::HostConfig;
use crate::plan::{ParentLimits, PlanError};
use crate::runtime::{LoadError, LoadedComponent, RunSpec, Runtime, TaskInfo};
use crate::sandbox::{OutputLog, OutputSink, Sandbox, StreamKind};
use crate::task::{ErrorKind, Permissions, TaskError, TaskResult, TaskStatus};

use crate::store::{Control, ControlOutcome, Store, StoreError, TaskRecord, Write};
pub use events::now_ms;
use events::{AllEvents, EventLog};
use prepare::Parent;
pub use prepare::{Prepared, Preparer};
pub use request::{
    AwaitResult, LaunchRequest, MAX_MESSAGE, ManagerConfig, ManagerError, OutputChunk, SubagentRef,
    TaskFilter, TaskSnapshot,
};

/// Puts a [`TaskManager`] together: its policy and its services.
pub struct ManagerBuilder {
    runtime: Arc<Runtime>,
    config: ManagerConfig,
    store: Option<Arc<Store>>,
    models: Option<Arc<Models>>,
}

impl ManagerBuilder {
    /// Limits and defaults (the default policy otherwise).
    pub fn config(mut self, config: ManagerConfig) -> ManagerBuilder {
        self.config = config;
        self
    }

    /// Keep tasks, events and output durably in `store` (else in memory).
    pub fn store(mut self, store: Arc<Store>) -> ManagerBuilder {
        self.store = Some(store);
        self
    }

    /// Serve model calls from `models` (else an empty host config).
    pub fn models(mut self, models: Arc<Models>) -> ManagerBuilder {
        self.models = Some(models);
        self
    }

    /// Start the manager. Call it inside a tokio runtime; tasks run there.
    /// With a store, it registers as a live host, prunes tasks past the
    /// retention period, and serves cancel and send requests from other
    /// processes.
    ///
    /// # Errors
    ///
    /// When the store cannot register this host or prune.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn build(self) -> Result<TaskManager, StoreError> {
        let ManagerBuilder {
            runtime,
            mut config,
            store,
            models,
        } = self;
        // Never start more tasks than the engine has instance slots for.
        let slots = runtime.max_instances() as usize;
        if config.max_running == 0 || config.max_running > slots {
            config.max_running = slots;
        }
        let all_events = AllEvents::new(config.event_buffer.max(16) * 4);
        let handle = tokio::runtime::Handle::current();
        let models = models.unwrap_or_else(|| {
            Arc::new(Models::new(HostConfig::default(), None).expect("no recording to create"))
        });
        let host = match &store {
            Some(store) => {
                store.prune_later(config.retention);
                Some(store.register_host()?)
            }
            None => None,
        };
        let preparer = Preparer::new(runtime.clone(), models, config.agents.clone());
        let inner = Arc::new_cyclic(|this| Inner {
            runtime,
            config,
            preparer,
            store,
            state: Mutex::new(State::default()),
            all_events,
            handle,
            this: this.clone(),
            host,
        });
        if inner.host.is_some() {
            inner
                .handle
                .spawn(control::control_loop(Arc::downgrade(&inner)));
        }
        Ok(TaskManager { inner })
    }
}

/// Runs tasks. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct TaskManager {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Arc<Runtime>,
    config: ManagerConfig,
    /// Turns requests into prepared tasks, with the host's models (the
    /// builder's, or an empty host config's).
    preparer: Preparer,
    /// Where tasks, events and output are kept durably; `None` keeps them in
    /// memory only.
    store: Option<Arc<Store>>,
    state: Mutex<State>,
    all_events: AllEvents,
    handle: tokio::runtime::Handle,
    this: Weak<Inner>,
    /// This process's id in the store, when there is one.
    host: Option<String>,
}

#[derive(Default)]
struct State {
    tasks: HashMap<String, Box<Entry>>,
    /// Ids in creation order.
    order: Vec<String>,
    /// Which queued task starts next.
    scheduler: scheduler::Scheduler,
    /// Queued and running descendants of each top-level task that has any.
    live_descendants: HashMap<String, usize>,
    /// Top-level tasks whose whole tree has ended, oldest first (kept only
    /// when [`ManagerConfig::ended_in_memory`] is set).
    ended_trees: std::collections::VecDeque<String>,
    shutting_down: bool,
}

/// What a task shares with its observer and its awaiters.
struct Shared {
    control: Arc<TaskControl>,
    events: Arc<EventLog>,
    /// The running task's sink of events and output.
    observer: Arc<Observer>,
    output: OutputLog,
    /// The result, once its terminal event is committed and published.
    done: watch::Sender<Option<Arc<TaskResult>>>,
    /// The status as reported: it changes only once the change is committed.
    reported: Mutex<TaskStatus>,
}

impl Shared {
    fn report(&self, status: TaskStatus) {
        *self.reported.lock().unwrap() = status;
    }
}

struct Entry {
    shared: Arc<Shared>,
    subagent: String,
    description: String,
    parent: Option<String>,
    /// The top-level task of its tree (itself, for a top-level task).
    root: String,
    children: Vec<String>,
    depth: u32,
    key: String,
    model: Option<String>,
    /// What its launch or manifest asked for, and the warning when the
    /// default stood in: carried into its result.
    requested_model: Option<String>,
    model_warning: Option<String>,
    /// Its filesystem: the workspace, and once started the opened grant its
    /// children are opened beneath.
    sandbox: Sandbox,
    permissions: Permissions,
    status: TaskStatus,
    created_at_ms: u64,
    started_at_ms: Option<u64>,
    ended_at_ms: Option<u64>,
    /// When a running task's time runs out (bounds its children's timeouts).
    deadline: Option<Instant>,
    /// Its effective limits (a child gets no more).
    limits: Limits,
    /// What it takes to start; taken when the task starts.
    start: Option<Start>,
}

struct Start {
    component: Arc<LoadedComponent>,
    spec: RunSpec,
}

impl Entry {
    fn snapshot(&self, id: &str) -> TaskSnapshot {
        TaskSnapshot {
            id: id.to_owned(),
            subagent: self.subagent.clone(),
            description: self.description.clone(),
            status: *self.shared.reported.lock().unwrap(),
            parent_id: self.parent.clone(),
            children: self.children.clone(),
            depth: self.depth,
            key: self.key.clone(),
            model: self.model.clone(),
            workspace: self.sandbox.workspace().to_owned(),
            permissions: self.permissions.clone(),
            created_at_ms: self.created_at_ms,
            started_at_ms: self.started_at_ms,
            ended_at_ms: self.ended_at_ms,
            result: self.shared.done.borrow().as_deref().cloned(),
        }
    }
}

/// Reports a running task's events and output into its event log.
/// The one sink of a running task: what the guest does (progress, logs,
/// messages read) and the output it writes become its events.
///
/// Output is gathered into chunks (one event and one stored row each) of up
/// to [`OUTPUT_CHUNK`] bytes or [`OUTPUT_LINGER`] of time, so a guest writing
/// a byte at a time makes a few rows, not millions; [`Observer::flush`]
/// sends what is gathered (the task manager does every 100 ms while the
/// task runs, and once when it ends).
struct Observer {
    events: Arc<EventLog>,
    pending: Mutex<Pending>,
}

/// Output gathered but not yet sent.
#[derive(Default)]
struct Pending {
    stream: Option<StreamKind>,
    offset: u64,
    bytes: Vec<u8>,
    since: Option<Instant>,
}

/// The largest output chunk.
const OUTPUT_CHUNK: usize = 64 * 1024;
/// The longest output waits to be sent while more keeps coming.
const OUTPUT_LINGER: Duration = Duration::from_millis(20);

impl Observer {
    fn new(events: Arc<EventLog>) -> Observer {
        Observer {
            events,
            pending: Mutex::default(),
        }
    }

    /// Send the output gathered so far.
    fn flush(&self) {
        let mut pending = self.pending.lock().unwrap();
        self.send(&mut pending);
    }

    fn send(&self, pending: &mut Pending) {
        let Some(stream) = pending.stream.take() else {
            return;
        };
        let bytes = std::mem::take(&mut pending.bytes);
        pending.since = None;
        let len = bytes.len() as u64;
        let chunk = Write::Output {
            id: self.events.task_id().to_owned(),
            offset: pending.offset,
            bytes,
        };
        self.events.emit_then(
            EventKind::Output {
                stream,
                offset: pending.offset,
                len,
            },
            Some(chunk),
            None,
        );
    }
}

impl RunObserver for Observer {
    fn event(&self, event: EventKind) {
        // What was written comes before what is said after it.
        self.flush();
        self.events.emit(event);
    }
}

impl OutputSink for Observer {
    fn output(&self, stream: StreamKind, offset: u64, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap();
        let follows =
            pending.stream == Some(stream) && pending.offset + pending.bytes.len() as u64 == offset;
        if !follows {
            self.send(&mut pending);
        }
        if pending.stream.is_none() {
            pending.stream = Some(stream);
            pending.offset = offset;
            pending.since = Some(Instant::now());
        }
        pending.bytes.extend_from_slice(bytes);
        let lingered = pending.since.is_some_and(|t| t.elapsed() >= OUTPUT_LINGER);
        if pending.bytes.len() >= OUTPUT_CHUNK || lingered {
            self.send(&mut pending);
        }
    }
}

impl TaskManager {
    /// An in-memory manager running tasks on `runtime`, with no models
    /// configured: [`TaskManager::builder`] with `config`.
    ///
    /// # Errors
    ///
    /// As [`ManagerBuilder::build`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn new(runtime: Arc<Runtime>, config: ManagerConfig) -> Result<TaskManager, StoreError> {
        TaskManager::builder(runtime).config(config).build()
    }

    /// A manager running tasks on `runtime`, to be given its policy
    /// ([`ManagerConfig`]) and its services: a durable store, the host's
    /// models.
    pub fn builder(runtime: Arc<Runtime>) -> ManagerBuilder {
        ManagerBuilder {
            runtime,
            config: ManagerConfig::default(),
            store: None,
            models: None,
        }
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.inner.runtime
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// Accept a task and return its id at once; it starts when a slot frees.
    /// The subagent is resolved, its permissions planned and its component
    /// loaded before this returns, so a bad request fails here, not later.
    ///
    /// # Errors
    ///
    /// [`ManagerError`]: unknown subagent or parent, permissions beyond the
    /// grant, depth limit, bad component, or a manager shutting down.
    pub async fn launch(&self, request: LaunchRequest) -> Result<String, ManagerError> {
        let prepared = self.inner.prepare(request).await?;
        self.inner.launch(prepared).await
    }

    /// Check and resolve `request` without queueing it: what
    /// [`TaskManager::launch`] does first. `subagent batch` prepares every
    /// task before it launches any.
    ///
    /// # Errors
    ///
    /// As [`TaskManager::launch`], but for what [`Prepared::launchable`]
    /// checks: that is refused at launch.
    pub async fn prepare(&self, request: LaunchRequest) -> Result<Prepared, ManagerError> {
        let prepared = self.inner.prepare(request).await?;
        // It may wait long before it is launched: it holds no descriptor.
        prepared.plan.sandbox.park();
        Ok(prepared)
    }

    /// Queue a task prepared by [`TaskManager::prepare`] (or by a
    /// [`Preparer`] over this manager's runtime) and return its id.
    ///
    /// # Errors
    ///
    /// What [`Prepared::launchable`] refuses, a parent that has ended, an id
    /// in use, or a manager shutting down.
    pub async fn launch_prepared(&self, prepared: Prepared) -> Result<String, ManagerError> {
        self.inner.launch(prepared).await
    }

    /// The preparer this manager uses: its runtime, models and registries.
    pub fn preparer(&self) -> &Preparer {
        &self.inner.preparer
    }

    /// Launch and wait for the result.
    ///
    /// # Errors
    ///
    /// As [`TaskManager::launch`]; a task that runs and fails is a result, not an error.
    pub async fn run(&self, request: LaunchRequest) -> Result<(String, TaskResult), ManagerError> {
        let id = self.launch(request).await?;
        let mut done = self.inner.done_receiver(&id)?;
        let result = done
            .wait_for(Option::is_some)
            .await
            .expect("the sender lives in the task entry")
            .clone();
        Ok((id, (*result.expect("checked by wait_for")).clone()))
    }

    /// Wait until every task in `ids` has ended, or `timeout` passes.
    /// Awaiting does not consume results.
    ///
    /// # Errors
    ///
    /// [`ManagerError::InvalidRequest`] for an empty id list.
    pub async fn await_tasks(
        &self,
        ids: &[String],
        timeout: Option<Duration>,
    ) -> Result<AwaitResult, ManagerError> {
        self.inner.await_tasks(ids, timeout, None).await
    }

    /// Cancel a task and its descendants: queued ones leave the queue; running
    /// ones see `cancelled()` turn true, and are interrupted after the grace period.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotFound`], or [`ManagerError::NotRunning`] for a finished task.
    pub fn cancel(&self, id: &str) -> Result<(), ManagerError> {
        self.inner.cancel(id, None)
    }

    /// Deliver a follow-up message to a queued or running task's inbox.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotFound`], [`ManagerError::NotRunning`] for a finished
    /// task, [`ManagerError::InvalidRequest`] for a message over 64 KiB.
    pub fn send_message(&self, id: &str, text: impl Into<String>) -> Result<(), ManagerError> {
        self.inner.send_message(id, text.into(), None)
    }

    /// One task's current state.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotFound`].
    pub fn get(&self, id: &str) -> Result<TaskSnapshot, ManagerError> {
        let state = self.inner.lock();
        state
            .tasks
            .get(id)
            .map(|e| e.snapshot(id))
            .ok_or_else(|| ManagerError::NotFound(id.to_owned()))
    }

    /// Tasks matching `filter`, oldest first.
    pub fn list(&self, filter: &TaskFilter) -> Vec<TaskSnapshot> {
        let state = self.inner.lock();
        state
            .order
            .iter()
            .filter_map(|id| state.tasks.get(id).map(|e| (id, e)))
            .filter(|(_, e)| {
                filter
                    .statuses
                    .as_ref()
                    .is_none_or(|s| s.contains(&e.status))
            })
            .filter(|(_, e)| filter.subagent.as_ref().is_none_or(|s| *s == e.subagent))
            .filter(|(_, e)| filter.parent.is_none() || e.parent == filter.parent)
            .filter(|(_, e)| !filter.top_level || e.parent.is_none())
            .map(|(id, e)| e.snapshot(id))
            .collect()
    }

    /// Up to `max` bytes of a task's output from `offset`.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotFound`].
    pub fn output(&self, id: &str, offset: u64, max: usize) -> Result<OutputChunk, ManagerError> {
        let shared = self.inner.shared(id)?;
        Ok(OutputChunk {
            offset,
            bytes: shared.output.read(offset, max),
            total: shared.output.len(),
            dropped: shared.output.dropped(),
        })
    }

    /// One task's events: its history so far, then live ones, ending after
    /// the terminal event.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotFound`].
    pub fn subscribe(&self, id: &str) -> Result<EventStream, ManagerError> {
        Ok(self.inner.shared(id)?.events.subscribe())
    }

    /// Every task's events from now on.
    pub fn subscribe_all(&self) -> EventStream {
        EventStream::all(self.inner.all_events.subscribe())
    }

    /// Stop accepting tasks; end queued ones as `interrupted`; ask running
    /// ones to stop, interrupt them after `grace`, and return once every task
    /// has its terminal event.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown(grace).await
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shared(&self, id: &str) -> Result<Arc<Shared>, ManagerError> {
        let state = self.lock();
        state
            .tasks
            .get(id)
            .map(|e| e.shared.clone())
            .ok_or_else(|| ManagerError::NotFound(id.to_owned()))
    }

    fn done_receiver(
        &self,
        id: &str,
    ) -> Result<watch::Receiver<Option<Arc<TaskResult>>>, ManagerError> {
        Ok(self.shared(id)?.done.subscribe())
    }

    fn limit_for(&self, key: &str) -> usize {
        self.config
            .per_key
            .get(key)
            .copied()
            .unwrap_or(self.config.per_key_default)
    }

    /// Prepare `request`, nested under its parent if it names one, loading
    /// its component off the async threads if that may compile.
    async fn prepare(&self, request: LaunchRequest) -> Result<Prepared, ManagerError> {
        // The parent's ceiling, read once.
        let parent = match &request.parent {
            None => None,
            Some(parent_id) => Some(self.parent_limits(parent_id)?),
        };
        if self.lock().shutting_down {
            return Err(ManagerError::ShuttingDown);
        }
        // Resolving and planning are a few metadata calls; a component
        // already loaded costs a stat.
        let prepared = self.preparer.stage(request, parent.as_ref())?;
        loaded(prepared).await
    }

    /// Queue a prepared task and return its id once its row is committed.
    async fn launch(&self, prepared: Prepared) -> Result<String, ManagerError> {
        if !Arc::ptr_eq(prepared.runtime(), &self.runtime) {
            return Err(ManagerError::InvalidRequest(format!(
                "subagent `{}` was prepared for another runtime: prepare it with this task manager",
                prepared.bundle.manifest.name
            )));
        }
        prepared.launchable()?;
        let prepared = loaded(prepared).await?;
        let Prepared {
            request,
            bundle,
            plan,
            model,
            requested_model,
            model_warning,
            uses_model,
            key,
            depth,
            component,
            ..
        } = prepared;
        let component = component.expect("loaded above");
        let recorded_write = request.write.clone();
        let models = self.preparer.models().clone();
        let sandbox = plan.sandbox.clone();
        let manifest = &bundle.manifest;
        let id = match request.id {
            Some(id) if self.lock().tasks.contains_key(&id) => {
                return Err(ManagerError::InvalidRequest(format!(
                    "task id `{id}` is already in use"
                )));
            }
            Some(id) => id,
            None => crate::ids::new_task_id(),
        };
        let events = Arc::new(EventLog::new(
            id.clone(),
            self.all_events.clone(),
            self.config.event_buffer,
            self.store.clone(),
        ));
        let observer = Arc::new(Observer::new(events.clone()));
        let output = OutputLog::new(plan.limits.output, Some(observer.clone()));
        let (done, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            control: TaskControl::new(),
            events,
            observer,
            output: output.clone(),
            done,
            reported: Mutex::new(TaskStatus::Queued),
        });
        let spawner: Option<Arc<dyn Spawner>> =
            plan.permissions.tools.contains(&Tool::Subagents).then(|| {
                Arc::new(spawner::ManagerSpawner::new(self.this.clone(), id.clone()))
                    as Arc<dyn Spawner>
            });
        let description = request
            .description
            .unwrap_or_else(|| manifest.description.clone());
        let spec = RunSpec {
            task: TaskInfo {
                id: id.clone(),
                subagent: manifest.name.clone(),
                description: description.clone(),
                prompt: request.prompt,
                system_prompt: bundle.system_prompt.clone(),
                model: model.clone(),
                parent_id: request.parent.clone(),
            },
            sandbox: plan.sandbox.clone(),
            limits: plan.limits.clone(),
            output,
            spawner,
            models: uses_model.then(|| models.clone() as Arc<dyn ModelBroker>),
            parts: None,
        };
        let mut entry = Entry {
            shared: shared.clone(),
            subagent: manifest.name.clone(),
            description,
            parent: request.parent.clone(),
            root: id.clone(),
            children: Vec::new(),
            depth,
            key: key.clone(),
            model,
            requested_model,
            model_warning,
            sandbox: plan.sandbox.clone(),
            permissions: plan.permissions,
            status: TaskStatus::Queued,
            created_at_ms: now_ms(),
            started_at_ms: None,
            ended_at_ms: None,
            deadline: None,
            limits: plan.limits.clone(),
            start: Some(Start { component, spec }),
        };
        let record = self.host.as_ref().map(|host| {
            Box::new(TaskRecord {
                id: id.clone(),
                subagent: entry.subagent.clone(),
                description: entry.description.clone(),
                status: TaskStatus::Queued,
                parent_id: entry.parent.clone(),
                depth: entry.depth,
                key: key.clone(),
                model: entry.model.clone(),
                workspace: entry.sandbox.workspace().display().to_string(),
                request: serde_json::json!({
                    "prompt": entry.start.as_ref().map(|s| s.spec.task.prompt.as_str()),
                    "write": recorded_write,
                    "readonly": request.readonly,
                    "timeout_ms": request.timeout.map(|t| t.as_millis() as u64),
                    "model": entry.model,
                    "manifest": manifest.path,
                }),
                permissions: serde_json::to_value(&entry.permissions)
                    .expect("permissions serialize"),
                result: None,
                created_at_ms: entry.created_at_ms,
                started_at_ms: None,
                ended_at_ms: None,
                owner: host.clone(),
            })
        });
        let (committed, accepted) = tokio::sync::oneshot::channel::<()>();

        let starts = {
            let mut state = self.lock();
            if state.shutting_down {
                return Err(ManagerError::ShuttingDown);
            }
            if state.scheduler.queued_len() >= self.config.max_queued {
                return Err(ManagerError::Limit(format!(
                    "the host already has {} tasks waiting to start, as many as it queues (max_queued); launch again once some have started",
                    self.config.max_queued
                )));
            }
            if let Some(parent_id) = &request.parent {
                // The parent may have ended while the child was prepared.
                match state.tasks.get_mut(parent_id) {
                    Some(p) if !p.status.is_terminal() => {
                        entry.root = p.root.clone();
                        let live = state
                            .live_descendants
                            .get(&entry.root)
                            .copied()
                            .unwrap_or(0);
                        if live >= self.config.max_descendants {
                            return Err(ManagerError::Limit(format!(
                                "task `{}` already has {live} queued and running descendants, as many as a top-level task may have (max_descendants); await or cancel some first",
                                entry.root
                            )));
                        }
                        let p = state.tasks.get_mut(parent_id).expect("found above");
                        p.children.push(id.clone());
                        *state
                            .live_descendants
                            .entry(entry.root.clone())
                            .or_default() += 1;
                    }
                    Some(p) => {
                        return Err(ManagerError::NotRunning {
                            id: parent_id.clone(),
                            status: p.status,
                        });
                    }
                    None => return Err(ManagerError::NotFound(parent_id.clone())),
                }
            }
            // The task row commits with its first event; the id is returned
            // only after that.
            shared.events.emit_then(
                EventKind::Queued {
                    subagent: entry.subagent.clone(),
                    key: key.clone(),
                    parent_id: request.parent,
                },
                record.map(Write::InsertTask),
                Some(Box::new(move || {
                    let _ = committed.send(());
                })),
            );
            state.tasks.insert(id.clone(), Box::new(entry));
            state.order.push(id.clone());
            state.scheduler.enqueue(&id, &key);
            self.schedule(&mut state)
        };
        // A task that waits in the queue holds no descriptor; one that
        // starts now opens its grant from the handle its check opened.
        if !starts.iter().any(|(started, ..)| *started == id) {
            sandbox.park();
        }
        self.start_all(starts);
        let _ = accepted.await;
        Ok(id)
    }

    fn parent_limits(&self, parent_id: &str) -> Result<Parent, ManagerError> {
        let state = self.lock();
        let parent = state
            .tasks
            .get(parent_id)
            .ok_or_else(|| ManagerError::NotFound(parent_id.to_owned()))?;
        if parent.status.is_terminal() {
            return Err(ManagerError::NotRunning {
                id: parent_id.to_owned(),
                status: parent.status,
            });
        }
        if parent.depth + 1 > self.config.max_depth {
            return Err(ManagerError::DepthLimit {
                parent: parent_id.to_owned(),
                depth: parent.depth,
                max: self.config.max_depth,
            });
        }
        let remaining = parent.deadline.map_or(crate::manifest::MAX_TIMEOUT, |d| {
            d.saturating_duration_since(Instant::now())
        });
        Ok(Parent {
            limits: ParentLimits {
                id: parent_id.to_owned(),
                writes: parent.permissions.writes.clone(),
                tools: parent.permissions.tools.clone(),
                remaining: remaining.max(Duration::from_millis(1)),
                limits: parent.limits.clone(),
                grant: parent.sandbox.opened(),
            },
            workspace: parent.sandbox.workspace().to_owned(),
            model: parent.model.clone(),
            depth: parent.depth,
        })
    }

    /// Move queued tasks to running while slots are free: among the keys under
    /// their limit, the one whose head waited longest goes first.
    fn schedule(&self, state: &mut State) -> Vec<(String, Arc<Shared>, Start)> {
        let mut starts = Vec::new();
        while let Some((id, _)) = state
            .scheduler
            .next(self.config.max_running, |key| self.limit_for(key))
        {
            let entry = state.tasks.get_mut(&id).expect("queued tasks exist");
            entry.status = TaskStatus::Running;
            entry.started_at_ms = Some(now_ms());
            let start = entry.start.take().expect("a queued task has its start");
            entry.deadline = Some(Instant::now() + start.spec.limits.timeout);
            let shared = entry.shared.clone();
            entry.shared.events.emit_then(
                EventKind::Started,
                None,
                Some(Box::new(move || shared.report(TaskStatus::Running))),
            );
            starts.push((id, entry.shared.clone(), start));
        }
        starts
    }

    fn start_all(&self, starts: Vec<(String, Arc<Shared>, Start)>) {
        for (id, shared, start) in starts {
            let this = self.this.clone();
            let runtime = self.runtime.clone();
            self.handle.spawn(async move {
                let observer = shared.observer.clone();
                let run = runtime.run(
                    &start.component,
                    start.spec,
                    shared.control.clone(),
                    observer.clone(),
                );
                tokio::pin!(run);
                // Most tasks end in their first slice; one that runs on has
                // its gathered output sent every 100 ms.
                let first =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(run.as_mut().poll(cx))).await;
                let result = match first {
                    std::task::Poll::Ready(result) => result,
                    std::task::Poll::Pending => {
                        let mut ticks = tokio::time::interval(Duration::from_millis(100));
                        ticks.tick().await;
                        loop {
                            tokio::select! {
                                biased;
                                result = &mut run => break result,
                                _ = ticks.tick() => observer.flush(),
                            }
                        }
                    }
                };
                observer.flush();
                if let Some(inner) = this.upgrade() {
                    inner.finish(&id, result);
                }
            });
        }
    }

    /// Is `id` a strict descendant of `ancestor`?
    fn is_descendant(state: &State, id: &str, ancestor: &str) -> bool {
        let mut current = state.tasks.get(id).and_then(|e| e.parent.clone());
        while let Some(parent) = current {
            if parent == ancestor {
                return true;
            }
            current = state.tasks.get(&parent).and_then(|e| e.parent.clone());
        }
        false
    }

    /// Look `id` up, as seen by `caller` (`None` = the host, which sees all;
    /// a task sees only its descendants).
    fn visible<'s>(
        state: &'s State,
        id: &str,
        caller: Option<&str>,
    ) -> Result<&'s Entry, ManagerError> {
        let entry = state
            .tasks
            .get(id)
            .ok_or_else(|| ManagerError::NotFound(id.to_owned()))?;
        match caller {
            Some(caller) if !Inner::is_descendant(state, id, caller) => {
                Err(ManagerError::NotFound(id.to_owned()))
            }
            _ => Ok(entry),
        }
    }

    fn cancel(&self, id: &str, caller: Option<&str>) -> Result<(), ManagerError> {
        let (running, starts) = {
            let mut state = self.lock();
            let entry = Inner::visible(&state, id, caller)?;
            if entry.status.is_terminal() {
                return Err(ManagerError::NotRunning {
                    id: id.to_owned(),
                    status: entry.status,
                });
            }
            // The task and all its live descendants, parents first.
            let mut subtree = vec![id.to_owned()];
            let mut i = 0;
            while i < subtree.len() {
                let children = self.live_children(&state, &subtree[i]);
                subtree.extend(children);
                i += 1;
            }
            let mut running = Vec::new();
            for task in subtree.iter().rev() {
                let Some(entry) = state.tasks.get(task) else {
                    continue;
                };
                match entry.status {
                    TaskStatus::Queued => {
                        let result = TaskResult::failure(TaskError::new(
                            ErrorKind::Cancelled,
                            "cancelled before it started",
                        ));
                        self.terminate(&mut state, task, result);
                    }
                    TaskStatus::Running => running.push(entry.shared.control.clone()),
                    _ => {}
                }
            }
            (running, self.schedule(&mut state))
        };
        self.start_all(starts);
        for control in running {
            control.cancel();
            let grace = self.config.cancel_grace;
            self.handle.spawn(async move {
                tokio::time::sleep(grace).await;
                control.interrupt();
            });
        }
        Ok(())
    }

    fn send_message(
        &self,
        id: &str,
        text: String,
        caller: Option<&str>,
    ) -> Result<(), ManagerError> {
        if text.len() > MAX_MESSAGE {
            return Err(ManagerError::InvalidRequest(format!(
                "the message is {} bytes; the limit is {} KiB",
                text.len(),
                MAX_MESSAGE / 1024
            )));
        }
        let state = self.lock();
        let entry = Inner::visible(&state, id, caller)?;
        if entry.status.is_terminal() {
            return Err(ManagerError::NotRunning {
                id: id.to_owned(),
                status: entry.status,
            });
        }
        let len = text.len() as u64;
        entry.shared.control.push_message(text);
        entry
            .shared
            .events
            .emit(EventKind::MessageDelivered { len });
        Ok(())
    }

    async fn await_tasks(
        &self,
        ids: &[String],
        timeout: Option<Duration>,
        caller: Option<&str>,
    ) -> Result<AwaitResult, ManagerError> {
        if ids.is_empty() {
            return Err(ManagerError::InvalidRequest(
                "await needs at least one task id".into(),
            ));
        }
        let receivers: Vec<Option<watch::Receiver<Option<Arc<TaskResult>>>>> = {
            let state = self.lock();
            ids.iter()
                .map(|id| {
                    Inner::visible(&state, id, caller)
                        .ok()
                        .map(|e| e.shared.done.subscribe())
                })
                .collect()
        };
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        for receiver in receivers.iter().flatten() {
            let mut receiver = receiver.clone();
            let wait = receiver.wait_for(Option::is_some);
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, wait).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = wait.await;
                }
            }
        }
        let mut answer = AwaitResult::default();
        for (id, receiver) in ids.iter().zip(&receivers) {
            match receiver.as_ref().map(|r| r.borrow().clone()) {
                None => answer.missing.push(id.clone()),
                Some(Some(result)) => answer.completed.push((id.clone(), (*result).clone())),
                Some(None) => answer.pending.push(id.clone()),
            }
        }
        Ok(answer)
    }
}

/// `prepared` with its component loaded: at once when it is in memory,
/// else on the blocking pool (loading may compile).
async fn loaded(mut prepared: Prepared) -> Result<Prepared, ManagerError> {
    if prepared.component.is_some() {
        return Ok(prepared);
    }
    tokio::task::spawn_blocking(move || {
        prepared.load()?;
        Ok(prepared)
    })
    .await
    .map_err(|e| ManagerError::InvalidRequest(format!("the launch was aborted: {e}")))?
}
