//! Which queued task starts next: FIFO queues per concurrency key, under a
//! limit per key and a global one. Pure bookkeeping of ids and keys; it knows
//! nothing of tasks, so it is tested on its own.
//!
//! A queued task that is cancelled leaves in O(1): it is forgotten at once
//! and its queue slot is skipped when it reaches the head, so cancelling n
//! queued tasks costs O(n), not O(n²).

use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Debug, Default)]
pub(super) struct Scheduler {
    /// Per key, (ticket, id) in arrival order; may hold removed ids.
    queues: BTreeMap<String, VecDeque<(u64, String)>>,
    /// The queued ids and their tickets: the truth the queues are checked against.
    queued: HashMap<String, u64>,
    running_by_key: HashMap<String, usize>,
    running: usize,
    next_ticket: u64,
}

impl Scheduler {
    /// Queue `id` under `key`, behind everything queued before it.
    pub fn enqueue(&mut self, id: &str, key: &str) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queued.insert(id.to_owned(), ticket);
        self.queues
            .entry(key.to_owned())
            .or_default()
            .push_back((ticket, id.to_owned()));
    }

    /// Take `id` out of its queue; false if it was not queued.
    pub fn remove_queued(&mut self, id: &str) -> bool {
        self.queued.remove(id).is_some()
    }

    /// How many tasks wait.
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// The ids still queued, oldest first.
    pub fn queued(&self) -> Vec<String> {
        let mut ids: Vec<(&u64, &String)> = self.queued.iter().map(|(id, t)| (t, id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// Start the next task, if a slot is free: among the keys under their
    /// limit (`limit_for`, 0 = unlimited), the one whose head waited longest.
    /// Returns its id and key; it counts as running until [`finished`].
    ///
    /// [`finished`]: Scheduler::finished
    pub fn next(
        &mut self,
        max_running: usize,
        limit_for: impl Fn(&str) -> usize,
    ) -> Option<(String, String)> {
        if max_running > 0 && self.running >= max_running {
            return None;
        }
        let queued = &self.queued;
        // Drop what was cancelled from the heads, then empty queues.
        for queue in self.queues.values_mut() {
            while queue
                .front()
                .is_some_and(|(ticket, id)| queued.get(id) != Some(ticket))
            {
                queue.pop_front();
            }
        }
        self.queues.retain(|_, queue| !queue.is_empty());
        let key = self
            .queues
            .iter()
            .filter(|(key, _)| {
                let limit = limit_for(key);
                limit == 0 || self.running_by_key.get(*key).copied().unwrap_or(0) < limit
            })
            .min_by_key(|(_, queue)| queue.front().map(|(ticket, _)| *ticket))
            .map(|(key, _)| key.clone())?;
        let queue = self.queues.get_mut(&key).expect("chosen among the queues");
        let (_, id) = queue.pop_front().expect("heads are live");
        if queue.is_empty() {
            self.queues.remove(&key);
        }
        self.queued.remove(&id);
        self.running += 1;
        *self.running_by_key.entry(key.clone()).or_default() += 1;
        Some((id, key))
    }

    /// A task that [`next`](Scheduler::next) started under `key` ended.
    pub fn finished(&mut self, key: &str) {
        self.running = self.running.saturating_sub(1);
        if let Some(n) = self.running_by_key.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.running_by_key.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Scheduler, max: usize, limit: usize) -> Vec<String> {
        std::iter::from_fn(|| s.next(max, |_| limit).map(|(id, _)| id)).collect()
    }

    #[test]
    fn fifo_within_a_key_and_oldest_head_across_keys() {
        let mut s = Scheduler::default();
        for (id, key) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")] {
            s.enqueue(id, key);
        }
        assert_eq!(drain(&mut s, 0, 0), ["a1", "b1", "a2", "b2"]);
    }

    #[test]
    fn limits_per_key_and_in_all() {
        let mut s = Scheduler::default();
        for (id, key) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")] {
            s.enqueue(id, key);
        }
        // One per key: a2 waits behind a1 while b1 may start.
        assert_eq!(drain(&mut s, 0, 1), ["a1", "b1"]);
        s.finished("a");
        assert_eq!(drain(&mut s, 0, 1), ["a2"]);
        // Two running (b1, a2), two in all: nothing more starts.
        assert_eq!(drain(&mut s, 2, 0), Vec::<String>::new());
        s.finished("b");
        assert_eq!(drain(&mut s, 2, 0), ["b2"]);
    }

    #[test]
    fn a_removed_task_never_starts_and_the_queue_moves_on() {
        let mut s = Scheduler::default();
        for i in 0..1000 {
            s.enqueue(&format!("t{i}"), "k");
        }
        for i in (0..1000).filter(|i| i % 10 != 0) {
            assert!(s.remove_queued(&format!("t{i}")));
        }
        assert!(!s.remove_queued("t1"), "already removed");
        assert_eq!(s.queued().len(), 100);
        let started = drain(&mut s, 0, 0);
        let expected: Vec<String> = (0..1000).step_by(10).map(|i| format!("t{i}")).collect();
        assert_eq!(started, expected);
        assert!(s.queued().is_empty());
    }

    #[test]
    fn queued_lists_oldest_first() {
        let mut s = Scheduler::default();
        for (id, key) in [("x", "b"), ("y", "a"), ("z", "b")] {
            s.enqueue(id, key);
        }
        s.remove_queued("y");
        assert_eq!(s.queued(), ["x", "z"]);
    }
}
