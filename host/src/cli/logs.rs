//! `subagent logs`: a task's output (stdout) and events (stderr), from the
//! store, optionally following until the task ends.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::Global;
use crate::tasks::EventKind;

/// Print a task's output, and its events to stderr; --follow streams until it ends
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The task id
    id: String,
    /// Keep streaming new output and events until the task ends
    #[arg(long, short)]
    follow: bool,
    /// Start at this byte offset of the output
    #[arg(long, value_name = "OFFSET", default_value_t = 0)]
    since: u64,
}

const POLL: Duration = Duration::from_millis(100);
const CHUNK: usize = 1 << 20;

pub fn run(args: LogsArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = global.store()?;
    store.task(&args.id)?;
    let mut offset = args.since;
    let mut next_seq = 0;
    let mut out = std::io::stdout().lock();
    loop {
        // Events first: a terminal event means all output is already stored.
        let events = store.events(&args.id, next_seq)?;
        let ended = events.iter().any(|e| e.kind.is_terminal());
        for event in &events {
            next_seq = event.seq + 1;
            match &event.kind {
                EventKind::Progress { progress } => eprintln!("[{}] {progress}", args.id),
                EventKind::Log { level, message } => {
                    eprintln!("[{}] {}: {message}", args.id, level.as_str())
                }
                EventKind::Terminal { status, error } => match error {
                    Some(error) => eprintln!("[{}] {status}: {}", args.id, error.message),
                    None => eprintln!("[{}] {status}", args.id),
                },
                _ => {}
            }
        }
        loop {
            let (bytes, _) = store.output(&args.id, offset, CHUNK)?;
            if bytes.is_empty() {
                break;
            }
            offset += bytes.len() as u64;
            if let Err(err) = out.write_all(&bytes).and_then(|()| out.flush()) {
                if err.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(ExitCode::SUCCESS);
                }
                return Err(err.into());
            }
        }
        if ended || !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(POLL);
    }
}
