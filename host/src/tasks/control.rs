//! Control from other processes: the heartbeat of this host's lease, and the
//! cancel and send requests other processes leave in the store for its tasks,
//! answered with a typed outcome.

use super::*;

/// With a store: heartbeat, and apply the cancel and send requests other
/// processes leave for this host's tasks. Ends when the manager is dropped.
pub(super) async fn control_loop(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat = Instant::now();
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let (Some(store), Some(host)) = (&inner.store, &inner.host) else {
            return;
        };
        if last_beat.elapsed() >= crate::store::HEARTBEAT {
            store.heartbeat(host);
            last_beat = Instant::now();
        }
        let Ok(requests) = store.pending_controls(host) else {
            continue;
        };
        for request in requests {
            let outcome = match &request.control {
                Control::Cancel => inner.cancel(&request.task_id, None),
                Control::Send(text) => inner.send_message(&request.task_id, text.clone(), None),
            };
            let outcome = match outcome {
                Ok(()) => ControlOutcome::Done,
                Err(err) => ControlOutcome::Refused {
                    message: err.to_string(),
                },
            };
            store.control_done(request.id, &outcome);
        }
    }
}
