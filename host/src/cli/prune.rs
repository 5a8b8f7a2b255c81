//! `subagent prune`: delete finished tasks older than the retention period.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::Global;
use crate::units::{format_duration, parse_duration};

/// Delete finished tasks (with their events and output) older than a period
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Delete tasks that ended longer ago than this, e.g. 7d is written 168h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "168h")]
    older_than: Duration,
}

pub fn run(args: PruneArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = global.store()?;
    let pruned = store.prune(args.older_than)?;
    outln!(
        "pruned {pruned} task(s) that ended more than {} ago",
        format_duration(args.older_than)
    );
    Ok(ExitCode::SUCCESS)
}
