//! Limits end the task that hits them, with a typed reason, and nothing else:
//! after each, the next task in the same host runs normally.

use subagent_host::{ErrorKind, TaskResult, TaskStatus};

use crate::helpers::*;

async fn misbehave(limits: &str, prompt: &str) -> TaskResult {
    let fixture = Fixture::new();
    let b = bundle(&guest("misbehave"), &format!("[limits]\n{limits}"));
    let result = run(&b.bundle, &fixture.workspace, prompt).await;
    // The same host runs the next task normally.
    let next = run(&b.bundle, &fixture.workspace, "ok").await;
    assert_eq!(
        next.status,
        TaskStatus::Completed,
        "the task after `{prompt}` failed: {next:#?}"
    );
    assert_eq!(next.summary.as_deref(), Some("fine"));
    result
}

fn kind(result: &TaskResult) -> ErrorKind {
    result
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error in {result:#?}"))
        .kind
}

#[tokio::test]
async fn infinite_loop_times_out() {
    let result = misbehave("timeout = \"300ms\"", "loop").await;
    assert_eq!(result.status, TaskStatus::TimedOut, "{result:#?}");
    assert_eq!(kind(&result), ErrorKind::Timeout);
    assert!(
        result
            .error
            .unwrap()
            .message
            .contains("300ms limit (limits.timeout)")
    );
    // It ran at least as long as its limit (it was not stopped early).
    assert!(result.usage.duration_ms >= 300);
}

#[tokio::test]
async fn memory_bomb_fails_with_memory() {
    let result = misbehave("memory = \"64MiB\"", "membomb").await;
    assert_eq!(result.status, TaskStatus::Failed, "{result:#?}");
    assert_eq!(kind(&result), ErrorKind::Memory);
    assert!(
        result
            .error
            .unwrap()
            .message
            .contains("64 MiB memory limit")
    );
}

#[tokio::test]
async fn memory_within_the_limit_is_fine() {
    let result = misbehave("memory = \"64MiB\"", "grow 32").await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
}

#[tokio::test]
async fn output_flood_is_capped_and_marked() {
    let result = misbehave("output = \"64KiB\"\ntimeout = \"1s\"", "flood").await;
    assert_eq!(result.status, TaskStatus::TimedOut, "{result:#?}");
    assert_eq!(result.output.bytes, 64 * 1024);
    assert!(result.output.dropped > 0);
    assert!(
        result
            .output
            .text
            .ends_with("past the 64 KiB limit (limits.output)]\n"),
        "{}",
        &result.output.text[result.output.text.len() - 200..]
    );
}

#[tokio::test]
async fn output_over_the_cap_does_not_fail_the_task() {
    let result = misbehave("output = \"1KiB\"", "print 5000").await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    assert_eq!(result.output.bytes, 1024);
    assert_eq!(result.output.dropped, 5000 + "done".len() as u64 - 1024);
}

#[tokio::test]
async fn trap_fails_with_trap() {
    let result = misbehave("", "trap").await;
    assert_eq!(result.status, TaskStatus::Failed);
    assert_eq!(kind(&result), ErrorKind::Trap);
    assert!(result.error.unwrap().message.contains("unreachable"));
}

#[tokio::test]
async fn stack_overflow_fails_with_trap() {
    let result = misbehave("", "stackoverflow").await;
    assert_eq!(kind(&result), ErrorKind::Trap);
    let message = result.error.unwrap().message;
    assert!(message.contains("stack overflow"), "{message}");
}

#[tokio::test]
async fn shadow_stack_overflow_fails_with_trap() {
    // Rust keeps big frames on a stack in linear memory; running off it is
    // an out-of-bounds access, not a wasm stack overflow.
    let result = misbehave("", "deep-recursion").await;
    assert_eq!(
        (result.status, kind(&result)),
        (TaskStatus::Failed, ErrorKind::Trap),
        "{result:#?}"
    );
}

#[tokio::test]
async fn panic_fails_with_trap_and_its_message() {
    let result = misbehave("", "panic").await;
    assert_eq!(kind(&result), ErrorKind::Trap);
    let message = result.error.unwrap().message;
    assert!(message.contains("panicked on purpose"), "{message}");
}

#[tokio::test]
async fn fuel_budget_ends_a_busy_guest() {
    let result = misbehave("fuel = 5000000", "loop").await;
    assert_eq!(result.status, TaskStatus::Failed, "{result:#?}");
    assert_eq!(kind(&result), ErrorKind::Fuel);
    assert_eq!(result.usage.fuel, Some(5_000_000));
}

#[tokio::test]
async fn metered_task_reports_fuel_used() {
    let result = misbehave("fuel = 1000000000", "ok").await;
    assert_eq!(result.status, TaskStatus::Completed);
    let used = result.usage.fuel.unwrap();
    assert!(used > 0 && used < 1_000_000_000, "{used}");
}

#[tokio::test]
async fn guest_errors_are_typed() {
    let failed = misbehave("", "fail").await;
    assert_eq!(
        (failed.status, kind(&failed)),
        (TaskStatus::Failed, ErrorKind::Failed)
    );
    assert_eq!(failed.error.unwrap().message, "failed on purpose");
    let invalid = misbehave("", "invalid").await;
    assert_eq!(kind(&invalid), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn limits_of_one_task_do_not_touch_another_running_beside_it() {
    let fixture = Fixture::new();
    let looper = bundle(&guest("misbehave"), "[limits]\ntimeout = \"500ms\"");
    let worker = bundle(&guest("misbehave"), "");
    let (stuck, fine) = tokio::join!(
        run(&looper.bundle, &fixture.workspace, "loop"),
        run(&worker.bundle, &fixture.workspace, "spin-ms 100"),
    );
    assert_eq!(stuck.status, TaskStatus::TimedOut);
    assert_eq!(fine.status, TaskStatus::Completed, "{fine:#?}");
}

/// `limits.result` bounds what a task returns (summary and data): past it
/// the task fails with `limit`, naming the limit; within a raised limit the
/// same result completes. A 100 MB summary once completed and was stored.
#[tokio::test]
async fn a_result_past_limits_result_fails_with_limit() {
    let result = misbehave("", "big-summary 2048").await;
    assert_eq!(result.status, TaskStatus::Failed, "{result:#?}");
    assert_eq!(kind(&result), ErrorKind::Limit);
    let message = result.error.unwrap().message;
    assert!(
        message.contains("2 MiB, past the 1 MiB limit (limits.result)"),
        "{message}"
    );
    assert!(result.summary.is_none());

    let raised = misbehave("result = \"4MiB\"", "big-summary 2048").await;
    assert_eq!(raised.status, TaskStatus::Completed, "{:?}", raised.error);
    assert_eq!(raised.summary.unwrap().len(), 2048 * 1024);
}

/// What a task returns is what the host keeps: `data` that is not JSON, or
/// nests past 64 levels, is refused at run time with `invalid-result`. It
/// was once turned into a string, or (127 levels deep) accepted and then
/// lost by the store.
#[tokio::test]
async fn data_that_cannot_be_kept_is_refused_at_run_time() {
    for prompt in [
        "deep-data 65",
        "deep-data 127",
        "deep-data 5000",
        "bad-data",
    ] {
        let result = misbehave("", prompt).await;
        assert_eq!(result.status, TaskStatus::Failed, "{prompt}: {result:#?}");
        assert_eq!(kind(&result), ErrorKind::InvalidResult, "{prompt}");
        let message = result.error.unwrap().message;
        assert!(
            message.starts_with("the result's data cannot be kept"),
            "{prompt}: {message}"
        );
    }
    let kept = misbehave("", "deep-data 64").await;
    assert_eq!(kept.status, TaskStatus::Completed, "{:?}", kept.error);
}
