//! `subagent logs`: a task's output (stdout) and events (stderr), from the
//! store, optionally following until the task ends.

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
    /// Write the output's bytes exactly as the task wrote them; without it,
    /// control characters are made visible, never sent to the terminal
    #[arg(long)]
    raw: bool,
}

const POLL: Duration = Duration::from_millis(100);
const CHUNK: usize = 1 << 20;

pub fn run(args: LogsArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = global.store_for_reading()?;
    store.task(&args.id)?;
    let mut offset = args.since;
    let mut next_seq = 0;
    let mut out = std::io::stdout().lock();
    // Bytes of a character split across chunks, kept for the next one.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        // Events first: a terminal event means all output is already stored.
        let events = store.events(&args.id, next_seq)?;
        let ended = events.iter().any(|e| e.kind.is_terminal());
        for event in &events {
            next_seq = event.seq + 1;
            match &event.kind {
                EventKind::Progress { progress } => errln!("[{}] {progress}", args.id),
                EventKind::Log { level, message } => {
                    errln!("[{}] {}: {message}", args.id, level.as_str())
                }
                EventKind::Terminal { status, error } => match error {
                    Some(error) => errln!("[{}] {status}: {}", args.id, error.message),
                    None => errln!("[{}] {status}", args.id),
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
            if args.raw {
                super::write_raw(&mut out, &bytes, false);
            } else {
                partial.extend_from_slice(&bytes);
                let text = shown_text(&mut partial);
                super::write_raw(&mut out, super::visible(&text).as_bytes(), false);
            }
        }
        if ended || !args.follow {
            if !partial.is_empty() {
                let text = String::from_utf8_lossy(&partial).into_owned();
                super::write_raw(&mut out, super::visible(&text).as_bytes(), false);
            }
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(POLL);
    }
}

/// The text of `bytes` up to a character cut off at their end, which stays
/// in `bytes` for the next chunk; invalid UTF-8 is shown as U+FFFD.
fn shown_text(bytes: &mut Vec<u8>) -> String {
    let keep = match std::str::from_utf8(bytes) {
        Ok(_) => 0,
        // Incomplete at the end: wait for the rest of the character.
        Err(e) if e.error_len().is_none() => bytes.len() - e.valid_up_to(),
        Err(_) => {
            // Invalid somewhere: decode what can be, keeping a cut-off tail.
            let tail = bytes.len().saturating_sub(3);
            (tail..bytes.len())
                .find(|&i| {
                    std::str::from_utf8(&bytes[i..])
                        .is_err_and(|e| e.error_len().is_none() && e.valid_up_to() == 0)
                })
                .map_or(0, |i| bytes.len() - i)
        }
    };
    let rest = bytes.split_off(bytes.len() - keep);
    let text = String::from_utf8_lossy(bytes).into_owned();
    *bytes = rest;
    text
}
