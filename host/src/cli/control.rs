//! `subagent cancel` and `subagent send`: control a task that runs in
//! another `subagent` process, through the store.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use super::Global;
use crate::store::{Control, ControlOutcome};

/// Cancel a task (and its descendants), wherever it runs
#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The task id
    id: String,
}

/// Send a follow-up message to a queued or running task, wherever it runs
#[derive(Args, Debug)]
pub struct SendArgs {
    /// The task id
    id: String,
    /// The message
    text: String,
}

/// How long to wait for the owning process to answer.
const ANSWER: Duration = Duration::from_secs(5);

pub fn cancel(args: CancelArgs, global: &Global) -> anyhow::Result<ExitCode> {
    request(global, &args.id, Control::Cancel)?;
    outln!("cancelled {}", args.id);
    Ok(ExitCode::SUCCESS)
}

pub fn send(args: SendArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if args.text.len() > crate::tasks::MAX_MESSAGE {
        bail!(
            "the message is {} bytes; the limit is {} KiB",
            args.text.len(),
            crate::tasks::MAX_MESSAGE / 1024
        );
    }
    request(global, &args.id, Control::Send(args.text))?;
    outln!("sent to {}", args.id);
    Ok(ExitCode::SUCCESS)
}

/// Leave the request for the task's owner and wait for its answer.
fn request(global: &Global, id: &str, control: Control) -> anyhow::Result<()> {
    let store = global.store()?;
    let task = store.task(id)?;
    if task.status.is_terminal() {
        bail!("task `{id}` is not running (it is {})", task.status);
    }
    if !store.owner_alive(&task.owner)? {
        bail!(
            "task `{id}` belongs to a host process that is no longer running; it will be marked interrupted"
        );
    }
    let request = store.request_control(id, &control)?;
    let started = Instant::now();
    while started.elapsed() < ANSWER {
        match store.control_outcome(request)? {
            Some(ControlOutcome::Done) => return Ok(()),
            Some(ControlOutcome::Refused { message }) => bail!("{message}"),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!(
        "the process running task `{id}` did not answer within {} s",
        ANSWER.as_secs()
    )
}
