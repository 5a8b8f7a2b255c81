//! `orchestrator`: run several `deep-search` queries in parallel, as child
//! subagents, and merge their findings.
//!
//! # Input
//!
//! The prompt is one of:
//!
//! - a JSON object of options:
//!   - `queries` (list, required, 1–100 entries): each a string, sent to the
//!     child as its prompt verbatim (so `/REGEX/` works as in `deep-search`),
//!     or a JSON object of `deep-search` options (`{"query": "TODO",
//!     "include": "*.rs"}`), sent as its JSON;
//!   - `subagent` (string, default `"deep-search"`): the child subagent, by name;
//!   - `timeout_ms` (whole number ≥ 1): each child's timeout, replacing its
//!     manifest's (and still ending with this task's);
//!   - `max_parallel` (1–100, default all): children running at once; the
//!     queries are launched in waves of this size, each awaited before the next;
//! - a JSON list: the `queries`, with the defaults above;
//! - anything else: one query per non-empty line, trimmed.
//!
//! No query, an unknown option, a value of the wrong type, or a prompt that
//! starts with `{` but is not valid JSON is `invalid-input`, naming the field.
//! The queries themselves are checked by the children: a child that fails
//! (an invalid regex, say) is reported in its section and in the data, and
//! does not fail the orchestrator. Only when no child could be launched at
//! all does the orchestrator fail, listing each launch error.
//!
//! Children are launched read-only, described as `orchestrator query 2/3: …`.
//! When this task is cancelled, it stops waiting, cancels its running
//! children and returns `cancelled`.
//!
//! # Output
//!
//! The summary is a header line such as
//! `3 searches, 27 matches in 11 files`, counting the distinct files listed
//! (`in at least N files` when a child listed fewer findings than it matched:
//! N is then the larger of that count and the most files one child matched;
//! `; 1 did not complete` when a child did not), then a section per query:
//! ``## `TODO` — completed: 12 matches in 5 files`` followed by up to 10
//! findings as `path:line: text`, or the child's status and error
//! (``## `/[/` — failed: invalid-input: …``). A child that is not a search
//! shows the start of its summary instead.
//!
//! The data is a JSON object:
//! - `subagent`: the child subagent;
//! - `queries`: one entry per query, in input order: `{query, task_id,
//!   status, total_matches, files_matched, error}`, where `query` is the query
//!   as given (string or object), `task_id` is `null` when the launch failed,
//!   `status` is `completed`, `failed`, `cancelled`, `timed_out`,
//!   `interrupted`, `launch_failed`, `unfinished` (still running when the
//!   wait ended, then cancelled) or `unknown` (the host could not report it),
//!   the counts are the child's (`null` when it returned no search result),
//!   and `error` is `kind: message` (`null` when it completed);
//! - `total_matches`: the children's `total_matches` added up (a line two
//!   queries match counts twice);
//! - `files`: every path with a finding, sorted, without repeats;
//! - `truncated`: whether some child listed fewer findings than it matched
//!   (raise its `max_findings` to list them all);
//! - `findings`: `{path, line, text, queries}` for every listed finding,
//!   one per `(path, line)`, sorted by path then line, where `queries` are
//!   the indices (into `queries`) of the queries that found that line.

mod input;
mod merge;

use subagent_sdk::children::{self, LaunchRequest};
use subagent_sdk::{Outcome, RunError, Subagent, Task, progress};

use crate::input::Plan;
use crate::merge::{ChildRun, Status};

struct Orchestrator;

impl Subagent for Orchestrator {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let plan = Plan::parse(&task.prompt)?;
        let total = plan.queries.len();
        let size = plan.wave_size();
        let waves = total.div_ceil(size);
        let mut runs: Vec<ChildRun> = Vec::with_capacity(total);
        for wave in 0..waves {
            if subagent_sdk::cancelled() {
                return Err(RunError::Cancelled);
            }
            let first = wave * size;
            let indices = first..(first + size).min(total);
            let mut wave_runs: Vec<ChildRun> = indices.map(|index| launch(&plan, index)).collect();
            progress::note(merge::launch_note(wave, waves, total, &wave_runs));
            await_wave(&mut wave_runs)?;
            progress::note(merge::wave_note(wave, waves, &wave_runs));
            runs.extend(wave_runs);
        }
        if let Some(message) = merge::all_launches_failed(&plan, &runs) {
            return Err(RunError::Failed(message));
        }
        let (summary, data) = merge::merge(&plan, &runs);
        Ok(Outcome::summary(summary).with_data(data))
    }
}

/// Launch the child of query `index`.
fn launch(plan: &Plan, index: usize) -> ChildRun {
    let mut request = LaunchRequest::new(&plan.subagent, &plan.queries[index].prompt);
    request.description = Some(plan.description(index));
    request.readonly = true;
    request.timeout_ms = plan.timeout_ms;
    match children::launch_with(&request) {
        Ok(id) => ChildRun::launched(id),
        Err(err) => ChildRun::launch_failed(err.describe()),
    }
}

/// Wait for the launched children in `runs` and record how they ended.
///
/// # Errors
///
/// `RunError::Cancelled` when this task is cancelled meanwhile; its
/// children still running are cancelled first.
fn await_wave(runs: &mut [ChildRun]) -> Result<(), RunError> {
    let ids: Vec<String> = runs.iter().filter_map(|run| run.task_id.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let find = |runs: &[ChildRun], id: &str| -> Option<usize> {
        runs.iter()
            .position(|run| run.task_id.as_deref() == Some(id))
    };
    match children::wait(&ids, None) {
        Ok(answer) => {
            for result in &answer.completed {
                if let Some(i) = find(runs, &result.id) {
                    runs[i].finish(result);
                }
            }
            for id in &answer.missing {
                if let Some(i) = find(runs, id) {
                    runs[i].end(Status::Unknown, format!("the host does not know task {id}"));
                }
            }
        }
        Err(err) => {
            for run in runs.iter_mut().filter(|run| run.is_pending()) {
                run.end(
                    Status::Unknown,
                    format!("could not await: {}", err.describe()),
                );
                cancel(run);
            }
        }
    }
    // The host ends the wait early only when this task is cancelled.
    let cancelled = subagent_sdk::cancelled();
    for run in runs.iter_mut().filter(|run| run.is_pending()) {
        cancel(run);
        run.end(
            Status::Unfinished,
            "still running when the wait ended; cancelled",
        );
    }
    if cancelled {
        return Err(RunError::Cancelled);
    }
    Ok(())
}

/// Cancel a child; one that has just finished is left alone.
fn cancel(run: &ChildRun) {
    if let Some(id) = &run.task_id
        && let Err(err) = children::cancel(id)
    {
        subagent_sdk::log::debug(&format!("cancel {id}: {}", err.describe()));
    }
}

subagent_sdk::export!(Orchestrator);
