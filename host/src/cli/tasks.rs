//! `subagent tasks`: the tasks in the store, from any process.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{Global, print_json};
use crate::store::{TaskQuery, TaskRecord, now_ms};
use crate::task::TaskStatus;
use crate::units::format_duration;

/// List the tasks in the store (newest first)
#[derive(Args, Debug)]
pub struct TasksArgs {
    /// Only tasks with this status (repeatable): queued, running, completed, failed, cancelled, timed_out, interrupted
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    statuses: Vec<TaskStatus>,
    /// Only tasks of this subagent
    #[arg(long, value_name = "NAME")]
    subagent: Option<String>,
    /// Only the children of this task
    #[arg(long, value_name = "ID")]
    parent: Option<String>,
    /// At most N tasks
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
    /// One JSON object per task, one per line
    #[arg(long)]
    json: bool,
}

pub(super) fn parse_status(text: &str) -> Result<TaskStatus, String> {
    serde_json::from_value(serde_json::Value::String(text.replace('-', "_"))).map_err(|_| {
        format!("`{text}` is not a status: queued, running, completed, failed, cancelled, timed_out, interrupted")
    })
}

pub fn run(args: TasksArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = global.store_for_reading()?;
    let query = TaskQuery {
        statuses: args.statuses,
        subagent: args.subagent,
        parent: args.parent,
        limit: Some(args.limit),
    };
    let tasks = store.tasks(&query)?;
    if args.json {
        for task in &tasks {
            print_json(task);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if tasks.is_empty() {
        outln!("no tasks in {}", store.path().display());
        return Ok(ExitCode::SUCCESS);
    }
    let width = tasks
        .iter()
        .map(|t| t.subagent.len())
        .max()
        .unwrap_or(8)
        .max(8);
    outln!(
        "{:<22} {:<width$} {:<11} {:>7} {:>8}  PARENT",
        "TASK",
        "SUBAGENT",
        "STATUS",
        "AGE",
        "TIME"
    );
    for task in &tasks {
        outln!(
            "{:<22} {:<width$} {:<11} {:>7} {:>8}  {}",
            task.id,
            task.subagent,
            task.status.as_str(),
            age(task),
            duration(task).map_or_else(|| "-".to_owned(), format_duration),
            task.parent_id.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn age(task: &TaskRecord) -> String {
    let secs = now_ms().saturating_sub(task.created_at_ms) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// How long a task ran (so far, if it still runs).
pub(super) fn duration(task: &TaskRecord) -> Option<Duration> {
    let start = task.started_at_ms?;
    let end = task.ended_at_ms.unwrap_or_else(now_ms);
    Some(Duration::from_millis(end.saturating_sub(start)))
}
