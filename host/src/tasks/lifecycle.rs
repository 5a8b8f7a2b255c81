//! How tasks end: the one guarded transition to a terminal status (with its
//! usage roll-up and exactly one terminal event), the children that end with
//! their parent, and the shutdown of the whole manager.

use super::*;

impl Inner {
    /// The one way a task ends. Returns false if it had already ended.
    pub(super) fn finish(&self, id: &str, result: TaskResult) -> bool {
        let (ended, orphans, starts) = {
            let mut state = self.lock();
            let ended = self.terminate(&mut state, id, result);
            let orphans = if ended {
                self.live_children(&state, id)
            } else {
                Vec::new()
            };
            (ended, orphans, self.schedule(&mut state))
        };
        self.start_all(starts);
        // No orphans: a task's running children end with it.
        for child in orphans {
            let _ = self.cancel(&child, None);
        }
        ended
    }

    pub(super) fn terminate(&self, state: &mut State, id: &str, mut result: TaskResult) -> bool {
        let shutting_down = state.shutting_down;
        // Roll up the usage of the children that have ended (each with its
        // own descendants).
        let children: Vec<UsageTotals> = state.tasks.get(id).map_or_else(Vec::new, |entry| {
            entry
                .children
                .iter()
                .filter_map(|child| state.tasks.get(child))
                .filter_map(|child| {
                    child
                        .shared
                        .done
                        .borrow()
                        .as_ref()
                        .map(|r| r.usage.totals())
                })
                .collect()
        });
        if !children.is_empty() {
            let own = Usage {
                total: None,
                ..result.usage.clone()
            }
            .totals();
            result.usage.total = Some(children.into_iter().fold(own, |sum, child| sum + child));
        }
        let Some(entry) = state.tasks.get_mut(id) else {
            return false;
        };
        if entry.status.is_terminal() {
            return false;
        }
        // The model it asked for and the one it got, however it ended.
        if result.model.is_none() {
            result.model = entry.model.clone();
        }
        result.requested_model = entry.requested_model.clone();
        result.model_warning = entry.model_warning.clone();
        if shutting_down && result.status == TaskStatus::Cancelled {
            result.status = TaskStatus::Interrupted;
            result.error = Some(TaskError::new(
                ErrorKind::Interrupted,
                "the host shut down before the task ended",
            ));
        }
        let dropped = entry.shared.events.dropped();
        if dropped > 0 {
            result.limits_hit.push(crate::task::LimitHit {
                limit: crate::task::Limit::Events,
                message: format!(
                    "{dropped} events (log lines, progress, output notices) were dropped past the event budget of {} a task, {} a second; every byte of output was kept",
                    events::EVENTS_KEPT,
                    events::EVENTS_PER_SECOND,
                ),
            });
        }
        let was = entry.status;
        entry.status = result.status;
        if entry.root != id {
            // One live descendant fewer in its tree.
            if let Some(live) = state.live_descendants.get_mut(&entry.root) {
                *live -= 1;
                if *live == 0 {
                    let root = entry.root.clone();
                    state.live_descendants.remove(&root);
                }
            }
        }
        entry.ended_at_ms = Some(now_ms());
        entry.start = None;
        // An ended task launches no children: its grant can close.
        entry.sandbox.release();
        // The result commits with the terminal event; awaiters hear of it
        // only after that.
        let status = result.status;
        let terminal = EventKind::Terminal {
            status,
            error: result.error.clone(),
        };
        // Serialized only for a store to keep.
        let record = self.store.is_some().then(|| Write::result(id, &result));
        let shared = entry.shared.clone();
        let result = Arc::new(result);
        entry.shared.events.emit_then(
            terminal,
            record,
            Some(Box::new(move || {
                shared.report(status);
                shared.done.send_replace(Some(result));
            })),
        );
        let key = entry.key.clone();
        let root = entry.root.clone();
        match was {
            TaskStatus::Running => state.scheduler.finished(&key),
            _ => {
                state.scheduler.remove_queued(id);
            }
        }
        self.tree_ended(state, &root);
        true
    }

    /// Note that `root`'s tree may have ended (the root and every descendant
    /// terminal), and forget the oldest ended trees past
    /// [`ManagerConfig::ended_in_memory`]. Each tree is noted exactly once:
    /// by whichever of its root and its last live descendant ends last.
    fn tree_ended(&self, state: &mut State, root: &str) {
        let Some(keep) = self.config.ended_in_memory else {
            return;
        };
        if self.store.is_none() {
            return;
        }
        let ended = state
            .tasks
            .get(root)
            .is_some_and(|e| e.status.is_terminal())
            && !state.live_descendants.contains_key(root);
        if !ended {
            return;
        }
        state.ended_trees.push_back(root.to_owned());
        // Forget in batches, so `order` is swept once per batch.
        if state.ended_trees.len() <= keep + keep / 2 + 1 {
            return;
        }
        while state.ended_trees.len() > keep {
            let Some(root) = state.ended_trees.pop_front() else {
                break;
            };
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                if let Some(entry) = state.tasks.remove(&id) {
                    stack.extend(entry.children);
                }
            }
        }
        let tasks = &state.tasks;
        state.order.retain(|id| tasks.contains_key(id));
    }

    pub(super) fn live_children(&self, state: &State, id: &str) -> Vec<String> {
        state.tasks.get(id).map_or_else(Vec::new, |e| {
            e.children
                .iter()
                .filter(|c| state.tasks.get(*c).is_some_and(|c| !c.status.is_terminal()))
                .cloned()
                .collect()
        })
    }

    pub(super) async fn shutdown(&self, grace: Duration) {
        self.stop_tasks(grace).await;
        if let (Some(store), Some(host)) = (&self.store, &self.host) {
            // One commit: the host leaves with its last writes.
            store.unregister_host(host);
            store.flush().await;
        }
    }

    async fn stop_tasks(&self, grace: Duration) {
        let (running, receivers) = {
            let mut state = self.lock();
            state.shutting_down = true;
            let queued = state.scheduler.queued();
            for id in queued {
                let result = TaskResult::failure(TaskError::new(
                    ErrorKind::Interrupted,
                    "the host shut down before the task started",
                ));
                self.terminate(&mut state, &id, result);
            }
            let running: Vec<(String, Arc<TaskControl>)> = state
                .tasks
                .iter()
                .filter(|(_, e)| e.status == TaskStatus::Running)
                .map(|(id, e)| (id.clone(), e.shared.control.clone()))
                .collect();
            let receivers: Vec<_> = running
                .iter()
                .map(|(id, _)| state.tasks[id].shared.done.subscribe())
                .collect();
            (running, receivers)
        };
        for (_, control) in &running {
            control.cancel();
        }
        let wait_all = |receivers: Vec<watch::Receiver<Option<Arc<TaskResult>>>>| async move {
            for mut receiver in receivers {
                let _ = receiver.wait_for(Option::is_some).await;
            }
        };
        if tokio::time::timeout(grace, wait_all(receivers.clone()))
            .await
            .is_err()
        {
            for (_, control) in &running {
                control.interrupt();
            }
            // Interrupted guests stop within an epoch tick; give them a bound.
            if tokio::time::timeout(Duration::from_secs(5), wait_all(receivers))
                .await
                .is_err()
            {
                let mut state = self.lock();
                for (id, _) in &running {
                    let result = TaskResult::failure(TaskError::new(
                        ErrorKind::Interrupted,
                        "the host shut down and the task did not stop",
                    ));
                    self.terminate(&mut state, id, result);
                }
            }
        }
    }
}
