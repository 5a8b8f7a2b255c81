//! Task events: a typed stream per task with sequence numbers and
//! timestamps, and a stream of every task's events.
//!
//! Emitting never blocks: subscribers read from bounded broadcast buffers,
//! and one that falls behind is told how many events it missed
//! ([`StreamItem::Lagged`]) instead of slowing the task down.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

pub use crate::events::{EventKind, TaskEvent, now_ms};
use crate::store::{Store, Write};

/// Events kept per task for late subscribers; older ones are dropped.
const HISTORY: usize = 4096;

/// The event budget of one task: of the events its guest makes happen
/// (logs, progress, output notices, messages taken), at most this many are
/// kept (recorded, stored and published) over its life...
pub const EVENTS_KEPT: u64 = 10_000;
/// ... at most this many a second on average ...
pub const EVENTS_PER_SECOND: u32 = 1_000;
/// ... with bursts of up to this many.
const EVENTS_BURST: f64 = 2_000.0;

/// Counts a task's guest-driven events against its budget.
struct Budget {
    kept: u64,
    tokens: f64,
    refilled: std::time::Instant,
    dropped: u64,
    /// When the last `Dropped` notice went out, and the count it gave.
    noticed: Option<std::time::Instant>,
    said: u64,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            kept: 0,
            tokens: EVENTS_BURST,
            refilled: std::time::Instant::now(),
            dropped: 0,
            noticed: None,
            said: 0,
        }
    }

    /// Whether one more event may be kept.
    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * f64::from(EVENTS_PER_SECOND);
        self.tokens = (self.tokens + earned).min(EVENTS_BURST);
        self.refilled = now;
        if self.kept >= EVENTS_KEPT || self.tokens < 1.0 {
            self.dropped += 1;
            return false;
        }
        self.tokens -= 1.0;
        self.kept += 1;
        true
    }

    /// Whether to say now how many were dropped: when dropping starts, then
    /// at most once a second.
    fn notice_due(&mut self) -> bool {
        let now = std::time::Instant::now();
        let due = self
            .noticed
            .is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_secs(1));
        if due {
            self.noticed = Some(now);
        }
        due
    }
}

/// The event log of one task: sequence numbers, history, live subscribers.
///
/// With a store, an event is recorded in the history and published only once
/// the store has committed it: nobody hears of a change that a crash could
/// still undo.
pub(crate) struct EventLog {
    task_id: String,
    inner: Mutex<LogInner>,
    all: AllEvents,
    buffer: usize,
    store: Option<Arc<Store>>,
}

struct LogInner {
    budget: Budget,
    next_seq: u64,
    history: VecDeque<TaskEvent>,
    ended: bool,
    /// Created by the first subscriber: most tasks never have one, and a
    /// broadcast channel allocates its whole buffer up front.
    tx: Option<broadcast::Sender<TaskEvent>>,
}

/// Every task's events, for [`super::TaskManager::subscribe_all`]. A
/// broadcast channel allocates its whole buffer up front, so it is made by
/// the first subscriber: a host nobody watches that way (`subagent run`)
/// never pays for it.
#[derive(Clone)]
pub(crate) struct AllEvents {
    capacity: usize,
    tx: Arc<std::sync::OnceLock<broadcast::Sender<TaskEvent>>>,
}

impl AllEvents {
    pub fn new(capacity: usize) -> AllEvents {
        AllEvents {
            capacity,
            tx: Arc::default(),
        }
    }

    fn send(&self, event: TaskEvent) {
        if let Some(tx) = self.tx.get() {
            let _ = tx.send(event);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.tx
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }
}

/// Runs after an event is published.
pub(crate) type Then = Box<dyn FnOnce() + Send>;

impl EventLog {
    pub fn new(
        task_id: String,
        all: AllEvents,
        buffer: usize,
        store: Option<Arc<Store>>,
    ) -> EventLog {
        EventLog {
            task_id,
            inner: Mutex::new(LogInner {
                budget: Budget::new(),
                next_seq: 0,
                history: VecDeque::new(),
                ended: false,
                tx: None,
            }),
            all,
            buffer: buffer.max(1),
            store,
        }
    }

    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// How many of its events the task's budget has dropped.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().unwrap().budget.dropped
    }

    /// Record and publish `kind`. Nothing is recorded after the terminal event.
    /// Returns whether the event was accepted.
    pub fn emit(self: &Arc<Self>, kind: EventKind) -> bool {
        self.emit_then(kind, None, None)
    }

    /// Like [`EventLog::emit`], writing `before` to the store in the same
    /// commit, and running `then` once the event is published.
    pub fn emit_then(
        self: &Arc<Self>,
        kind: EventKind,
        before: Option<Write>,
        then: Option<Then>,
    ) -> bool {
        let mut inner = self.inner.lock().unwrap();
        if inner.ended {
            return false;
        }
        let mut kind = kind;
        let mut before = before;
        if kind.is_guest_driven() && !inner.budget.take() {
            // Past the budget: the event is dropped, what it carries for the
            // store (output bytes) is not.
            if let (Some(store), Some(write)) = (&self.store, before.take()) {
                store.write(write, None);
            }
            if !inner.budget.notice_due() {
                return false;
            }
            kind = EventKind::Dropped {
                events: inner.budget.dropped,
            };
        }
        if kind.is_terminal() && inner.budget.dropped > inner.budget.said {
            // The last word on what was dropped, just before the end.
            let dropped = inner.budget.dropped;
            drop(inner);
            self.emit_then(EventKind::Dropped { events: dropped }, None, None);
            inner = self.inner.lock().unwrap();
        }
        if let EventKind::Dropped { events } = kind {
            inner.budget.said = events;
        }
        inner.ended = kind.is_terminal();
        let event = TaskEvent {
            task_id: self.task_id.clone(),
            seq: inner.next_seq,
            at_ms: now_ms(),
            kind,
        };
        inner.next_seq += 1;
        match &self.store {
            None => Self::publish(&mut inner, &self.all, event, then),
            Some(store) => {
                // Queued under the lock, so the store sees (and acknowledges)
                // this task's events in sequence order.
                if let Some(write) = before {
                    store.write(write, None);
                }
                let log = self.clone();
                let write = Write::event(&event);
                store.write(
                    write,
                    Some(Box::new(move || {
                        Self::publish(&mut log.inner.lock().unwrap(), &log.all, event, then)
                    })),
                );
            }
        }
        true
    }

    /// Record `event` in the history, run `then` (which may release results
    /// the event announces), then tell subscribers: whoever hears of the
    /// event finds its effects in place.
    fn publish(inner: &mut LogInner, all: &AllEvents, event: TaskEvent, then: Option<Then>) {
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(event.clone());
        if let Some(then) = then {
            then();
        }
        if let Some(tx) = &inner.tx {
            let _ = tx.send(event.clone());
        }
        all.send(event);
    }

    /// The history so far, then everything after it, without gap or overlap.
    pub fn subscribe(&self) -> EventStream {
        let mut inner = self.inner.lock().unwrap();
        let rx = match &inner.tx {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.buffer);
                inner.tx = Some(tx);
                rx
            }
        };
        EventStream {
            backlog: inner.history.iter().cloned().collect(),
            rx,
            ends_at_terminal: true,
            done: false,
        }
    }
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamItem {
    Event(TaskEvent),
    /// This subscriber fell behind and missed this many events.
    Lagged(u64),
}

/// A subscription to one task's events (it ends after the terminal event) or
/// to every task's events (it ends when the manager is dropped).
pub struct EventStream {
    backlog: VecDeque<TaskEvent>,
    rx: broadcast::Receiver<TaskEvent>,
    ends_at_terminal: bool,
    done: bool,
}

impl EventStream {
    pub(crate) fn all(rx: broadcast::Receiver<TaskEvent>) -> EventStream {
        EventStream {
            backlog: VecDeque::new(),
            rx,
            ends_at_terminal: false,
            done: false,
        }
    }

    /// The next event; `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<StreamItem> {
        if self.done {
            return None;
        }
        let event = match self.backlog.pop_front() {
            Some(event) => event,
            None => match self.rx.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Some(StreamItem::Lagged(missed));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return None;
                }
            },
        };
        if self.ends_at_terminal && event.kind.is_terminal() {
            self.done = true;
        }
        Some(StreamItem::Event(event))
    }
}
