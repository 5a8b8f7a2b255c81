//! The task manager: FIFO per key, limits, cancel, await, follow-ups,
//! nesting, events, exactly one terminal event under every race, shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use subagent_host::tasks::{
    EventKind, LaunchRequest, ManagerConfig, ManagerError, StreamItem, SubagentRef, TaskEvent,
    TaskFilter, TaskManager,
};
use subagent_host::{ErrorKind, TaskResult, TaskStatus};

use crate::helpers::*;

/// A registry of test subagents plus a workspace, and a manager over them.
struct Host {
    _registry: tempfile::TempDir,
    fixture: Fixture,
    manager: TaskManager,
}

/// `(name, component, extra manifest lines)` for each test subagent.
const AGENTS: &[(&str, &str, &str)] = &[
    ("noop", "noop", ""),
    ("misbehave", "misbehave", ""),
    ("echo", "echo", ""),
    ("escape", "escape", "permission_mode = \"default\""),
    (
        "nester",
        "nester",
        "tools = [\"subagents\"]\npermission_mode = \"default\"\nallowed_write_directories = [\"out\"]",
    ),
    (
        "nester-ws",
        "nester",
        "tools = [\"subagents\"]\npermission_mode = \"default\"",
    ),
    ("lonely", "nester", ""),
];

impl Host {
    fn new(config: ManagerConfig) -> Host {
        let registry = tempfile::tempdir().unwrap();
        for (name, component, extra) in AGENTS {
            let dir = registry.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("subagent.toml"),
                format!(
                    "name = \"{name}\"\ndescription = \"test {name}\"\ncomponent = {:?}\n{extra}\n",
                    guest(component).display().to_string()
                ),
            )
            .unwrap();
        }
        let config = ManagerConfig {
            agents: vec![registry.path().to_owned()],
            ..config
        };
        let manager = TaskManager::new(shared_runtime(), config).unwrap();
        Host {
            _registry: registry,
            fixture: Fixture::new(),
            manager,
        }
    }

    fn request(&self, name: &str, prompt: &str) -> LaunchRequest {
        LaunchRequest::new(
            SubagentRef::Name(name.into()),
            prompt,
            &self.fixture.workspace,
        )
    }

    async fn launch(&self, name: &str, prompt: &str) -> String {
        self.manager
            .launch(self.request(name, prompt))
            .await
            .unwrap_or_else(|e| panic!("launch {name}: {e}"))
    }

    async fn result(&self, id: &str) -> TaskResult {
        await_result(&self.manager, id).await
    }
}

fn shared_runtime() -> Arc<subagent_host::Runtime> {
    static RUNTIME: std::sync::OnceLock<Arc<subagent_host::Runtime>> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let config = subagent_host::RuntimeConfig {
                cache_dir: Some(cache_dir()),
                max_instances: 128,
                ..Default::default()
            };
            Arc::new(subagent_host::Runtime::new(config).unwrap())
        })
        .clone()
}

/// Collect every event until `ids` all have their terminal event.
async fn collect_until_done(
    stream: &mut subagent_host::tasks::EventStream,
    ids: &[String],
) -> Vec<TaskEvent> {
    let mut events = Vec::new();
    let mut open: std::collections::HashSet<&String> = ids.iter().collect();
    let wait = async {
        while !open.is_empty() {
            match stream.next().await {
                Some(StreamItem::Event(event)) => {
                    if event.kind.is_terminal() {
                        open.remove(&event.task_id);
                    }
                    events.push(event);
                }
                Some(StreamItem::Lagged(n)) => panic!("the test subscriber lagged by {n}"),
                None => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("tasks did not all end within 120 s");
    events
}

/// The highest number of tasks running at once, from a stream of events.
fn max_concurrency(events: &[TaskEvent], filter: impl Fn(&TaskEvent) -> bool) -> usize {
    let (mut running, mut max) = (0usize, 0usize);
    for event in events.iter().filter(|e| filter(e)) {
        match event.kind {
            EventKind::Started => {
                running += 1;
                max = max.max(running);
            }
            EventKind::Terminal { .. } => running = running.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_within_a_key_and_its_limit_is_never_exceeded() {
    let host = Host::new(ManagerConfig {
        per_key_default: 2,
        ..ManagerConfig::default()
    });
    let mut stream = host.manager.subscribe_all();
    let mut ids = Vec::new();
    for _ in 0..16 {
        ids.push(host.launch("misbehave", "spin-ms 20").await);
    }
    let events = collect_until_done(&mut stream, &ids).await;
    assert_eq!(
        max_concurrency(&events, |_| true),
        2,
        "the per-key limit of 2 was not reached or was exceeded"
    );
    let started: Vec<&String> = events
        .iter()
        .filter(|e| e.kind == EventKind::Started)
        .map(|e| &e.task_id)
        .collect();
    assert_eq!(
        started,
        ids.iter().collect::<Vec<_>>(),
        "tasks of one key start in launch order"
    );
    for id in &ids {
        assert_eq!(host.result(id).await.status, TaskStatus::Completed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_have_their_own_limits_under_a_global_cap() {
    let per_key = HashMap::from([("echo".to_owned(), 1), ("noop".to_owned(), 0)]);
    let host = Host::new(ManagerConfig {
        per_key_default: 5,
        per_key,
        max_running: 3,
        ..ManagerConfig::default()
    });
    let mut stream = host.manager.subscribe_all();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(host.launch("misbehave", "spin-ms 30").await);
        ids.push(host.launch("echo", &format!("progress {i}")).await);
    }
    let events = collect_until_done(&mut stream, &ids).await;
    assert!(
        max_concurrency(&events, |_| true) <= 3,
        "the global cap of 3 was exceeded"
    );
    let echo: Vec<&String> = ids.iter().skip(1).step_by(2).collect();
    assert_eq!(
        max_concurrency(&events, |e| echo.contains(&&e.task_id)),
        1,
        "key `echo` is limited to 1"
    );
    // Over a limit a task queues; it never fails for it.
    for id in &ids {
        assert_eq!(host.result(id).await.status, TaskStatus::Completed);
    }
}

#[tokio::test]
async fn cancelling_a_queued_task_removes_it_from_the_queue() {
    let host = Host::new(ManagerConfig {
        per_key_default: 1,
        cancel_grace: Duration::from_secs(30),
        ..ManagerConfig::default()
    });
    let first = host.launch("echo", "until-cancel").await;
    let second = host.launch("echo", "until-cancel").await;
    let third = host.launch("echo", "task").await;
    assert_eq!(
        host.manager.get(&second).unwrap().status,
        TaskStatus::Queued
    );
    host.manager.cancel(&second).unwrap();
    let cancelled = host.result(&second).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(
        cancelled.error.unwrap().message,
        "cancelled before it started"
    );
    let mut events = host.manager.subscribe(&second).unwrap();
    let mut kinds = Vec::new();
    while let Some(StreamItem::Event(e)) = events.next().await {
        kinds.push(e.kind);
    }
    assert!(
        !kinds.contains(&EventKind::Started),
        "a cancelled queued task never starts: {kinds:?}"
    );
    // The next in line starts once the running one ends (cooperatively).
    host.manager.cancel(&first).unwrap();
    assert_eq!(host.result(&first).await.status, TaskStatus::Cancelled);
    assert_eq!(host.result(&third).await.status, TaskStatus::Completed);
    assert!(matches!(
        host.manager.cancel(&first),
        Err(ManagerError::NotRunning { .. })
    ));
    assert!(matches!(
        host.manager.cancel("t-nope"),
        Err(ManagerError::NotFound(_))
    ));
}

#[tokio::test]
async fn cooperative_cancel_ends_a_waiting_guest_before_the_grace_period() {
    let host = Host::new(ManagerConfig {
        cancel_grace: Duration::from_secs(60),
        ..ManagerConfig::default()
    });
    let id = host.launch("echo", "until-cancel").await;
    wait_for_status(&host.manager, &id, TaskStatus::Running).await;
    host.manager.cancel(&id).unwrap();
    let result = host.result(&id).await;
    assert_eq!(result.status, TaskStatus::Cancelled);
    assert_eq!(
        result.error.unwrap().message,
        "the subagent stopped after being cancelled",
        "it stopped on its own, not by interrupt"
    );
}

#[tokio::test]
async fn cancelling_a_busy_loop_interrupts_it_after_the_grace_period() {
    let grace = Duration::from_millis(300);
    let host = Host::new(ManagerConfig {
        cancel_grace: grace,
        ..ManagerConfig::default()
    });
    let id = host.launch("misbehave", "loop").await;
    wait_for_status(&host.manager, &id, TaskStatus::Running).await;
    let asked = std::time::Instant::now();
    host.manager.cancel(&id).unwrap();
    let result = host.result(&id).await;
    assert_eq!(result.status, TaskStatus::Cancelled, "{result:#?}");
    assert_eq!(
        result.error.unwrap().message,
        "the task was cancelled and stopped by the host"
    );
    assert!(
        asked.elapsed() >= grace,
        "the guest ignored cancel(), so only the interrupt after the grace period stops it"
    );
}

async fn wait_for_status(manager: &TaskManager, id: &str, status: TaskStatus) {
    for _ in 0..2000 {
        if manager.get(id).unwrap().status == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {id} never became {status}");
}

#[tokio::test]
async fn await_reports_completed_pending_and_missing() {
    let host = Host::new(ManagerConfig::default());
    let done = host.launch("noop", "x").await;
    host.result(&done).await;
    let waiting = host.launch("echo", "until-cancel").await;
    let ids = vec![done.clone(), waiting.clone(), "t-missing".to_owned()];
    let answer = host
        .manager
        .await_tasks(&ids, Some(Duration::from_millis(200)))
        .await
        .unwrap();
    assert_eq!(
        answer
            .completed
            .iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        [&done]
    );
    assert_eq!(answer.completed[0].1.summary.as_deref(), Some("ok"));
    assert_eq!(answer.pending, [waiting.clone()]);
    assert_eq!(answer.missing, ["t-missing"]);
    // Awaiting again gives the same answer: results are not consumed.
    let again = host
        .manager
        .await_tasks(&[done.clone()], Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(again.completed.len(), 1);
    assert!(matches!(
        host.manager.await_tasks(&[], None).await,
        Err(ManagerError::InvalidRequest(_))
    ));
    host.manager.cancel(&waiting).unwrap();
}

#[tokio::test]
async fn follow_ups_arrive_in_order_and_show_in_the_result() {
    let host = Host::new(ManagerConfig::default());
    let id = host.launch("echo", "collect 3").await;
    for text in ["first", "second", "third"] {
        host.manager.send_message(&id, text).unwrap();
    }
    let result = host.result(&id).await;
    assert_eq!(result.summary.as_deref(), Some("first|second|third"));
    assert!(matches!(
        host.manager.send_message(&id, "late"),
        Err(ManagerError::NotRunning {
            status: TaskStatus::Completed,
            ..
        })
    ));
    let too_big = "x".repeat(64 * 1024 + 1);
    let queued = host.launch("echo", "collect 1").await;
    assert!(matches!(
        host.manager.send_message(&queued, too_big),
        Err(ManagerError::InvalidRequest(_))
    ));
    host.manager.send_message(&queued, "fits").unwrap();
    assert_eq!(host.result(&queued).await.summary.as_deref(), Some("fits"));

    let mut events = host.manager.subscribe(&id).unwrap();
    let mut delivered = 0;
    let mut read = 0;
    while let Some(StreamItem::Event(e)) = events.next().await {
        match e.kind {
            EventKind::MessageDelivered { .. } => delivered += 1,
            EventKind::MessageRead { .. } => read += 1,
            _ => {}
        }
    }
    assert_eq!((delivered, read), (3, 3));
}

#[tokio::test]
async fn events_have_gapless_sequence_numbers_and_output_offsets() {
    let host = Host::new(ManagerConfig::default());
    let id = host.launch("misbehave", "print 3000").await;
    host.result(&id).await;
    let mut stream = host.manager.subscribe(&id).unwrap();
    let mut events = Vec::new();
    while let Some(StreamItem::Event(e)) = stream.next().await {
        events.push(e);
    }
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
    assert!(events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(matches!(events[0].kind, EventKind::Queued { .. }));
    assert_eq!(events[1].kind, EventKind::Started);
    assert!(events.last().unwrap().kind.is_terminal());
    assert_eq!(events.iter().filter(|e| e.kind.is_terminal()).count(), 1);

    // Output events tile the output log; reading by offset gives the bytes.
    let mut next = 0;
    for event in &events {
        if let EventKind::Output { offset, len, .. } = event.kind {
            assert_eq!(offset, next);
            let chunk = host.manager.output(&id, offset, len as usize).unwrap();
            assert_eq!(chunk.bytes.len() as u64, len);
            next += len;
        }
    }
    assert_eq!(next, 3004);
    let all = host.manager.output(&id, 0, 1 << 20).unwrap();
    assert_eq!(all.bytes, [vec![b'x'; 3000], b"done".to_vec()].concat());
    assert_eq!(host.manager.output(&id, 2998, 4).unwrap().bytes, b"xxdo");
}

#[tokio::test]
async fn a_slow_subscriber_is_told_it_lagged_and_never_blocks_the_task() {
    let host = Host::new(ManagerConfig {
        event_buffer: 8,
        ..ManagerConfig::default()
    });
    let id = host.launch("echo", "progress 200").await;
    let mut live = host.manager.subscribe(&id).unwrap();
    // Not reading `live` while the task runs does not slow it down.
    let result = host.result(&id).await;
    assert_eq!(result.status, TaskStatus::Completed);
    let mut lagged = 0;
    let mut saw_terminal = false;
    while let Some(item) = live.next().await {
        match item {
            StreamItem::Lagged(n) => lagged += n,
            StreamItem::Event(e) => saw_terminal |= e.kind.is_terminal(),
        }
    }
    assert!(
        lagged > 0,
        "an 8-event buffer must overflow with 400+ events"
    );
    assert!(saw_terminal, "the terminal event still arrives");
}

#[tokio::test]
async fn foreground_run_get_and_list() {
    let host = Host::new(ManagerConfig::default());
    let (id, result) = host.manager.run(host.request("noop", "x")).await.unwrap();
    assert_eq!(result.status, TaskStatus::Completed);
    let snapshot = host.manager.get(&id).unwrap();
    assert_eq!(
        (
            snapshot.subagent.as_str(),
            snapshot.key.as_str(),
            snapshot.depth
        ),
        ("noop", "noop", 0)
    );
    assert!(snapshot.started_at_ms.is_some() && snapshot.ended_at_ms >= snapshot.started_at_ms);
    let failed = host.launch("misbehave", "fail").await;
    host.result(&failed).await;
    let failures = host.manager.list(&TaskFilter {
        statuses: Some(vec![TaskStatus::Failed]),
        ..TaskFilter::default()
    });
    assert_eq!(
        failures.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [failed.as_str()]
    );
    let by_name = host.manager.list(&TaskFilter {
        subagent: Some("noop".into()),
        ..TaskFilter::default()
    });
    assert_eq!(by_name.len(), 1);
    assert!(matches!(
        host.manager.get("t-nope"),
        Err(ManagerError::NotFound(_))
    ));
    let unknown = host
        .manager
        .launch(host.request("nop", "x"))
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("did you mean `noop`?"),
        "{unknown}"
    );
    let empty = host
        .manager
        .launch(host.request("noop", "  "))
        .await
        .unwrap_err();
    assert!(matches!(empty, ManagerError::InvalidRequest(_)));
}

fn data(result: &TaskResult) -> &Value {
    result
        .data
        .as_ref()
        .unwrap_or_else(|| panic!("no data: {result:#?}"))
}

#[tokio::test]
async fn nested_children_run_and_report_back() {
    let host = Host::new(ManagerConfig::default());
    let spec = json!({"spawn": [{"subagent": "noop", "prompt": "a"}, {"subagent": "echo", "prompt": "task"}], "await": true});
    let parent = host.launch("nester", &spec.to_string()).await;
    let result = host.result(&parent).await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    let results = data(&result)["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|r| r["status"] == "completed"),
        "{results:?}"
    );
    let echo: Value = serde_json::from_str(results[1]["data"].as_str().unwrap()).unwrap();
    assert_eq!(echo["parent_id"], parent.as_str());
    let children = host.manager.list(&TaskFilter {
        parent: Some(parent.clone()),
        ..TaskFilter::default()
    });
    assert_eq!(children.len(), 2);
    assert!(
        children
            .iter()
            .all(|c| c.depth == 1 && c.parent_id.as_deref() == Some(parent.as_str()))
    );
    assert_eq!(host.manager.get(&parent).unwrap().children.len(), 2);
}

#[tokio::test]
async fn nesting_stops_at_the_depth_limit() {
    let host = Host::new(ManagerConfig {
        max_depth: 2,
        ..ManagerConfig::default()
    });
    let root = host
        .launch("nester", &json!({"chain": 5}).to_string())
        .await;
    let result = host.result(&root).await;
    // root (0) → 1 → 2; the task at depth 2 may not launch a third level.
    let mut level = data(&result).clone();
    let mut depth = 0;
    while level.get("child_status").is_some() {
        assert_eq!(level["child_status"], "completed", "{level}");
        depth += 1;
        let task = host
            .manager
            .list(&TaskFilter::default())
            .into_iter()
            .find(|t| t.depth == depth)
            .unwrap();
        level = task.result.unwrap().data.unwrap();
    }
    assert_eq!(depth, 2);
    let errors = level["errors"].as_array().unwrap();
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .starts_with("depth limit: cannot nest deeper than 2 levels"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_child_cannot_write_outside_its_parents_write_set() {
    let host = Host::new(ManagerConfig::default());
    // `nester` may write only out/; `escape` (default mode) may write anything.
    let spec =
        json!({"spawn": [{"subagent": "escape", "prompt": "allowed", "write_dirs": ["src"]}]});
    let parent = host.launch("nester", &spec.to_string()).await;
    let result = host.result(&parent).await;
    let errors = data(&result)["errors"].as_array().unwrap();
    assert_eq!(
        errors[0].as_str().unwrap(),
        format!(
            "denied: subagent `escape` may not write `src/`: it may write only out/ (the write set of its parent task {parent})"
        )
    );

    // Without an explicit ask the child gets the intersection: out/ only.
    let spec = json!({"spawn": [{"subagent": "escape", "prompt": "write-readonly"}, {"subagent": "escape", "prompt": "allowed"}], "await": true});
    let parent = host.launch("nester", &spec.to_string()).await;
    host.result(&parent).await;
    let children = host.manager.list(&TaskFilter {
        parent: Some(parent),
        ..TaskFilter::default()
    });
    for child in &children {
        assert_eq!(
            child.permissions.writes,
            subagent_host::WriteSet::Dirs(vec!["out".into()])
        );
    }
    let readonly_attempts = attempts(children[0].result.as_ref().unwrap());
    assert_all_failed(&readonly_attempts);
    let allowed = attempts(children[1].result.as_ref().unwrap());
    assert!(allowed.iter().all(|a| a.ok), "{allowed:?}");
}

#[tokio::test]
async fn a_subagent_without_the_grant_is_denied() {
    let host = Host::new(ManagerConfig::default());
    let spec = json!({"spawn": [{"subagent": "noop", "prompt": "x"}]});
    let id = host.launch("lonely", &spec.to_string()).await;
    let result = host.result(&id).await;
    let errors = data(&result)["errors"].as_array().unwrap();
    assert_eq!(
        errors[0],
        "denied: subagent `lonely` may not launch subagents: add \"subagents\" to `tools` in its manifest"
    );
}

#[tokio::test]
async fn a_task_sees_only_its_own_descendants() {
    let host = Host::new(ManagerConfig::default());
    let stranger = host.launch("echo", "until-cancel").await;
    let spec = json!({"foreign": stranger});
    let id = host.launch("nester", &spec.to_string()).await;
    let errors = data(&host.result(&id).await)["errors"].clone();
    let errors: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors[0], format!("await: missing=[\"{stranger}\"]"));
    assert_eq!(
        errors[1],
        format!("cancel: not found: no task `{stranger}`")
    );
    assert_eq!(errors[2], format!("send: not found: no task `{stranger}`"));
    assert_eq!(
        host.manager.get(&stranger).unwrap().status,
        TaskStatus::Running,
        "the stranger was not touched"
    );
    host.manager.cancel(&stranger).unwrap();
}

#[tokio::test]
async fn cancelling_a_parent_cancels_its_descendants() {
    let host = Host::new(ManagerConfig {
        cancel_grace: Duration::from_millis(200),
        ..ManagerConfig::default()
    });
    let spec = json!({"spawn": [{"subagent": "echo", "prompt": "until-cancel"}, {"subagent": "misbehave", "prompt": "loop"}], "await": true});
    let parent = host.launch("nester-ws", &spec.to_string()).await;
    let children = wait_for_children(&host.manager, &parent, 2).await;
    for child in &children {
        wait_for_status(&host.manager, child, TaskStatus::Running).await;
    }
    host.manager.cancel(&parent).unwrap();
    assert_eq!(host.result(&parent).await.status, TaskStatus::Cancelled);
    for child in &children {
        assert_eq!(host.result(child).await.status, TaskStatus::Cancelled);
    }
}

#[tokio::test]
async fn a_parent_that_ends_leaves_no_orphans() {
    let host = Host::new(ManagerConfig {
        cancel_grace: Duration::from_millis(200),
        ..ManagerConfig::default()
    });
    // The parent launches a child that would wait forever, and returns at once.
    let spec = json!({"spawn": [{"subagent": "echo", "prompt": "until-cancel"}]});
    let parent = host.launch("nester", &spec.to_string()).await;
    assert_eq!(host.result(&parent).await.status, TaskStatus::Completed);
    let children = wait_for_children(&host.manager, &parent, 1).await;
    assert_eq!(
        host.result(&children[0]).await.status,
        TaskStatus::Cancelled
    );
}

async fn wait_for_children(manager: &TaskManager, parent: &str, n: usize) -> Vec<String> {
    for _ in 0..2000 {
        let children = manager.get(parent).unwrap().children;
        if children.len() >= n {
            return children;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {parent} never had {n} children");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_every_task_gets_exactly_one_terminal_event() {
    let host = Host::new(ManagerConfig {
        per_key_default: 4,
        max_running: 8,
        cancel_grace: Duration::from_millis(50),
        ..ManagerConfig::default()
    });
    let mut stream = host.manager.subscribe_all();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ids = Vec::new();
    for i in 0..300 {
        let (name, prompt) = match next() % 5 {
            0 => ("noop", "x".to_owned()),
            1 => ("misbehave", format!("spin-ms {}", next() % 20)),
            2 => ("misbehave", "loop".to_owned()),
            3 => ("echo", "until-cancel".to_owned()),
            _ => ("misbehave", "fail".to_owned()),
        };
        let mut request = host.request(name, &prompt);
        if next() % 3 == 0 || prompt == "loop" || prompt == "until-cancel" {
            request.timeout = Some(Duration::from_millis(20 + next() % 200));
        }
        ids.push(host.manager.launch(request).await.unwrap());
        // Cancel a random earlier task now and then: queued, running or done.
        if next() % 4 == 0 {
            let victim = &ids[(next() as usize) % ids.len()];
            let _ = host.manager.cancel(victim);
        }
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let events = collect_until_done(&mut stream, &ids).await;
    let mut terminals: HashMap<&str, usize> = HashMap::new();
    for event in &events {
        if event.kind.is_terminal() {
            *terminals.entry(&event.task_id).or_default() += 1;
        }
    }
    assert_eq!(terminals.len(), ids.len(), "every accepted task ended");
    assert!(
        terminals.values().all(|&n| n == 1),
        "a task got more than one terminal event"
    );
    let statuses: Vec<TaskStatus> = ids
        .iter()
        .map(|id| host.manager.get(id).unwrap().status)
        .collect();
    assert!(statuses.iter().all(|s| s.is_terminal()));
    for status in [
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
        TaskStatus::TimedOut,
    ] {
        assert!(
            statuses.contains(&status),
            "the stress mix should produce {status}"
        );
    }
    assert!(max_concurrency(&events, |_| true) <= 8);
}

#[tokio::test]
async fn shutdown_ends_every_task_with_one_terminal_event() {
    let host = Host::new(ManagerConfig {
        per_key_default: 2,
        ..ManagerConfig::default()
    });
    let mut stream = host.manager.subscribe_all();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(host.launch("misbehave", "loop").await);
    }
    ids.push(host.launch("echo", "until-cancel").await);
    wait_for_status(&host.manager, &ids[0], TaskStatus::Running).await;
    assert_eq!(
        host.manager.get(&ids[2]).unwrap().status,
        TaskStatus::Queued
    );
    host.manager.shutdown(Duration::from_millis(100)).await;
    let events = collect_until_done(&mut stream, &ids).await;
    assert_eq!(
        events.iter().filter(|e| e.kind.is_terminal()).count(),
        ids.len()
    );
    for id in &ids {
        let snapshot = host.manager.get(id).unwrap();
        assert_eq!(
            snapshot.status,
            TaskStatus::Interrupted,
            "{id}: {:?}",
            snapshot.result
        );
        assert_eq!(
            snapshot.result.unwrap().error.unwrap().kind,
            ErrorKind::Interrupted
        );
    }
    assert!(matches!(
        host.manager.launch(host.request("noop", "x")).await,
        Err(ManagerError::ShuttingDown)
    ));
}

/// A refused child launch says "invalid request" once, not twice.
#[tokio::test]
async fn a_refused_child_launch_names_its_kind_once() {
    let host = Host::new(ManagerConfig::default());
    let spec = json!({"spawn": [{"subagent": "escape", "prompt": "   "}]});
    let parent = host.launch("nester", &spec.to_string()).await;
    let result = host.result(&parent).await;
    let errors = data(&result)["errors"].as_array().unwrap();
    let error = errors[0].as_str().unwrap();
    assert!(error.contains("the prompt is empty"), "{error}");
    assert_eq!(error.matches("invalid request").count(), 1, "{error}");
}

/// Preparing is the first half of a launch: a prepared task names its
/// resolved bundle and canonical workspace, changes nothing on disk, and
/// launches as it was prepared. One prepared for another runtime (whose
/// compiled component this engine cannot run) is refused, naming why.
#[tokio::test]
async fn a_prepared_task_launches_as_prepared_and_only_on_its_runtime() {
    let host = Host::new(ManagerConfig::default());
    let mut request = host.request("escape", "env");
    request.write = Some(vec!["out/new".into()]);
    let prepared = host.manager.prepare(request).await.unwrap();
    let workspace = host.fixture.workspace.canonicalize().unwrap();
    assert_eq!(prepared.request().workspace, workspace);
    let SubagentRef::Path(manifest) = &prepared.request().subagent else {
        panic!("a prepared request names its bundle by path")
    };
    assert!(manifest.is_absolute() && manifest.ends_with("escape/subagent.toml"));
    assert_eq!(prepared.key(), "escape");
    assert!(prepared.component().is_some());
    assert!(
        !workspace.join("out/new").exists(),
        "preparing created a write directory"
    );

    let other = TaskManager::new(
        Arc::new(subagent_host::Runtime::new(Default::default()).unwrap()),
        ManagerConfig::default(),
    )
    .unwrap();
    let foreign = host
        .manager
        .prepare(host.request("noop", "x"))
        .await
        .unwrap();
    let err = other.launch_prepared(foreign).await.unwrap_err();
    assert!(
        matches!(&err, ManagerError::InvalidRequest(m) if m.contains("prepared for another runtime")),
        "{err}"
    );

    let id = host.manager.launch_prepared(prepared).await.unwrap();
    let result = host.result(&id).await;
    assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
    assert!(workspace.join("out/new").is_dir());
}

/// A task that waits in the queue holds no handle on its workspace: when it
/// starts it opens the workspace again, and refuses to run if the directory
/// there is no longer the one checked at launch. The queued task is the
/// hostile `escape` guest, which would write into whatever it was given:
/// nothing under the fixture (the old workspace, the new one, outside)
/// changes.
#[tokio::test]
async fn a_queued_task_refuses_a_workspace_replaced_while_it_waited() {
    let host = Host::new(ManagerConfig {
        max_running: 1,
        ..ManagerConfig::default()
    });
    let busy = host.launch("misbehave", "loop").await;
    let queued = host.launch("escape", "write-readonly").await;
    assert_eq!(
        host.manager.get(&queued).unwrap().status,
        TaskStatus::Queued
    );
    let workspace = &host.fixture.workspace;
    std::fs::rename(workspace, workspace.with_extension("old")).unwrap();
    std::fs::create_dir(workspace).unwrap();
    let before = host.fixture.state_except(&[]);
    host.manager.cancel(&busy).unwrap();
    let result = host.result(&queued).await;
    assert_eq!(result.status, TaskStatus::Failed, "{result:?}");
    let error = result.error.unwrap();
    assert!(
        error.message.contains("replaced by another directory"),
        "{}",
        error.message
    );
    assert_eq!(
        host.fixture.state_except(&[]),
        before,
        "the guest wrote something"
    );
}

/// A task tree has a cap on live descendants, and the host on queued tasks:
/// past either, a launch is refused with a typed limit (a guest sees
/// `depth-limit`, naming the cap) and nothing else changes. One guest once
/// made 49,000 tasks before its deadline.
#[tokio::test]
async fn trees_and_the_queue_have_caps() {
    let host = Host::new(ManagerConfig {
        max_descendants: 10,
        ..ManagerConfig::default()
    });
    let children: Vec<Value> = (0..15)
        .map(|_| json!({"subagent": "misbehave", "prompt": "loop", "timeout_ms": 3_000}))
        .collect();
    let spec = json!({"spawn": children, "await": false});
    let id = host.launch("nester", &spec.to_string()).await;
    let result = host.result(&id).await;
    assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
    let data = result.data.unwrap();
    assert_eq!(data["launched"].as_array().unwrap().len(), 10, "{data}");
    let errors = data["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5, "{data}");
    assert!(
        errors.iter().all(|e| {
            let e = e.as_str().unwrap();
            e.contains("depth limit") && e.contains("max_descendants")
        }),
        "{errors:?}"
    );
    // The children ended with their parent; the tree's count is back to 0.
    let again = host
        .launch(
            "nester",
            &json!({"spawn": [{"subagent": "noop", "prompt": "a"}], "await": true}).to_string(),
        )
        .await;
    let result = host.result(&again).await;
    assert_eq!(
        result.data.unwrap()["launched"].as_array().unwrap().len(),
        1
    );

    let host = Host::new(ManagerConfig {
        max_queued: 3,
        per_key_default: 1,
        ..ManagerConfig::default()
    });
    let running = host.launch("misbehave", "loop").await;
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(host.launch("misbehave", "loop").await);
    }
    let err = host
        .manager
        .launch(host.request("misbehave", "loop"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ManagerError::Limit(m) if m.contains("max_queued")),
        "{err}"
    );
    for id in queued.iter().chain([&running]) {
        host.manager.cancel(id).unwrap();
    }
    // Each ends (the running one after the cancel grace), the host stays usable.
    for id in queued.iter().chain([&running]) {
        assert!(host.result(id).await.status.is_terminal());
    }
}
