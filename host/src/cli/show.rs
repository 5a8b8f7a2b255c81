//! `subagent show`: everything the store knows about one task.

use std::process::ExitCode;

use clap::Args;

use super::{Global, print_json};
use crate::tasks::EventKind;
use crate::units::format_duration;

/// Show one task: request, permissions, result, file results, usage, events
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The task id
    id: String,
    /// Print the task (with its events) as one JSON object
    #[arg(long)]
    json: bool,
}

pub fn run(args: ShowArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = global.store_for_reading()?;
    let task = store.task(&args.id)?;
    let events = store.events(&args.id, 0)?;
    if args.json {
        print_json(&serde_json::json!({ "task": task, "events": events }));
        return Ok(ExitCode::SUCCESS);
    }
    outln!("task         {}", task.id);
    outln!("subagent     {}", task.subagent);
    outln!("description  {}", task.description);
    outln!("status       {}", task.status);
    if let Some(parent) = &task.parent_id {
        outln!("parent       {parent} (depth {})", task.depth);
    }
    outln!("workspace    {}", task.workspace);
    let requested = task
        .result
        .as_ref()
        .and_then(|r| r.requested_model.as_deref());
    match task.model.as_deref() {
        Some(model) => outln!("model        {}", super::model_line(model, requested)),
        None => outln!("model        none"),
    }
    if let Some(warning) = task
        .result
        .as_ref()
        .and_then(|r| r.model_warning.as_deref())
    {
        outln!("warning      {warning}");
    }
    outln!("request      {}", task.request);
    outln!("permissions  {}", task.permissions);
    if let Some(took) = super::tasks::duration(&task) {
        outln!("ran for      {}", format_duration(took));
    }
    if let Some(result) = &task.result {
        if let Some(error) = &result.error {
            outln!("error        [{}] {}", error.kind, error.message);
        }
        let u = &result.usage;
        outln!(
            "usage        {} ms, {} rounds, {} model calls, {} input + {} output tokens{}",
            u.duration_ms,
            u.rounds,
            u.model_calls,
            u.input_tokens,
            u.output_tokens,
            u.fuel.map(|f| format!(", fuel {f}")).unwrap_or_default()
        );
        for (label, changes) in [
            ("created", &result.files.created),
            ("modified", &result.files.modified),
            ("deleted", &result.files.deleted),
        ] {
            for change in changes {
                outln!("file         {label:<8} {}", change.path);
            }
        }
        for hit in &result.limits_hit {
            outln!("limit hit    {}: {}", hit.limit.as_str(), hit.message);
        }
        if let Some(summary) = &result.summary {
            outln!("\n{}", summary.trim_end());
        }
    }
    outln!("\nevents:");
    for event in &events {
        let line = match &event.kind {
            EventKind::Queued { key, .. } => format!("queued (key {key})"),
            EventKind::Started => "started".to_owned(),
            EventKind::Progress { progress } => format!("progress: {progress}"),
            EventKind::Log { level, message } => format!("log {}: {message}", level.as_str()),
            EventKind::Output {
                stream,
                offset,
                len,
            } => format!("output {stream:?} {len} bytes at {offset}").to_lowercase(),
            EventKind::MessageDelivered { len } => format!("message delivered ({len} bytes)"),
            EventKind::MessageRead { len } => format!("message read ({len} bytes)"),
            EventKind::Dropped { events } => {
                format!("dropped: {events} events past the event budget")
            }
            EventKind::Terminal { status, .. } => format!("ended: {status}"),
        };
        outln!("  {:>4}  {}  {line}", event.seq, event.at_ms);
    }
    Ok(ExitCode::SUCCESS)
}
