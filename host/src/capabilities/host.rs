//! `subagent:plugin/host`: logging, progress, the follow-up inbox and
//! cancellation. Always linked; needs no grant.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::bindings::subagent::plugin::host::Host;
use crate::bindings::subagent::plugin::types::{LogLevel, ProgressEvent};
use crate::events::{EventKind, RunObserver};
use crate::task::{self, Progress};

/// The most bytes of one log message kept; the rest is cut and marked.
const MAX_LOG_MESSAGE: usize = 16 * 1024;

/// Control of one running task, shared between the host (which cancels it
/// and sends it messages) and the guest's capability.
#[derive(Default)]
pub struct TaskControl {
    inbox: Mutex<VecDeque<String>>,
    cancelled: AtomicBool,
    interrupted: AtomicBool,
    changed: Notify,
    rounds: AtomicU32,
}

impl TaskControl {
    pub fn new() -> Arc<TaskControl> {
        Arc::new(TaskControl::default())
    }

    /// Queue a follow-up message for the guest.
    pub fn push_message(&self, text: String) {
        self.inbox.lock().unwrap().push_back(text);
        self.changed.notify_waiters();
    }

    /// Ask the guest to stop: `cancelled()` turns true and a pending
    /// `wait-message` returns.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Stop the guest at its next epoch tick, whatever it is doing.
    pub fn interrupt(&self) {
        self.cancel();
        self.interrupted.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Resolves once [`TaskControl::interrupt`] has been called.
    pub async fn interrupted(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_interrupted() {
                return;
            }
            notified.await;
        }
    }

    /// Resolves once [`TaskControl::cancel`] has been called.
    pub async fn cancelled_wait(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Agent-loop rounds the guest reported.
    pub fn rounds(&self) -> u32 {
        self.rounds.load(Ordering::Relaxed)
    }

    fn pop(&self) -> Option<String> {
        self.inbox.lock().unwrap().pop_front()
    }

    async fn wait_message(&self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(message) = self.pop() {
                return Some(message);
            }
            if self.is_cancelled() {
                return None;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return self.pop(),
            }
        }
    }
}

/// The `host` capability's state inside a store.
pub struct HostCtx {
    pub control: Arc<TaskControl>,
    pub observer: Arc<dyn RunObserver>,
}

impl HostCtx {
    fn taken(&self, message: Option<String>) -> Option<String> {
        if let Some(text) = &message {
            self.observer.event(EventKind::MessageRead {
                len: text.len() as u64,
            });
        }
        message
    }
}

/// Serve `subagent:plugin/host` (and the `types` it shares) from `get`'s
/// [`HostCtx`]. Always linked; needs no grant.
///
/// # Errors
///
/// When the linker refuses a definition.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> &mut HostCtx,
) -> wasmtime::Result<()> {
    use crate::bindings::subagent::plugin;
    use wasmtime::component::HasSelf;
    plugin::types::add_to_linker::<T, HasSelf<HostCtx>>(linker, get)?;
    plugin::host::add_to_linker::<T, HasSelf<HostCtx>>(linker, get)
}

impl Host for HostCtx {
    fn log(&mut self, level: LogLevel, mut message: String) {
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [log message truncated]");
        }
        let level = match level {
            LogLevel::Trace => task::LogLevel::Trace,
            LogLevel::Debug => task::LogLevel::Debug,
            LogLevel::Info => task::LogLevel::Info,
            LogLevel::Warn => task::LogLevel::Warn,
            LogLevel::Error => task::LogLevel::Error,
        };
        self.observer.event(EventKind::Log { level, message });
    }

    fn progress(&mut self, event: ProgressEvent) {
        let progress = match event {
            ProgressEvent::Round(n) => {
                self.control.rounds.fetch_max(n, Ordering::Relaxed);
                Progress::Round { n }
            }
            ProgressEvent::Tool(call) => Progress::Tool {
                name: call.name,
                args: call.args,
            },
            ProgressEvent::Note(text) => Progress::Note { text },
        };
        self.observer.event(EventKind::Progress { progress });
    }

    fn next_message(&mut self) -> Option<String> {
        let message = self.control.pop();
        self.taken(message)
    }

    async fn wait_message(&mut self, timeout_ms: u64) -> Option<String> {
        let message = self
            .control
            .wait_message(Duration::from_millis(timeout_ms))
            .await;
        self.taken(message)
    }

    fn cancelled(&mut self) -> bool {
        self.control.is_cancelled()
    }
}

impl crate::bindings::subagent::plugin::types::Host for HostCtx {}
