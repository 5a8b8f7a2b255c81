//! `todo-report`: collect the workspace's TODO, FIXME, XXX and HACK markers
//! into a markdown report at `reports/todo.md`.
//!
//! # Input
//!
//! The prompt picks the markers: those it names as whole uppercase words
//! ("FIXME only", "TODO and HACK"), or all four when it names none.
//!
//! # Markers
//!
//! A marker is the uppercase word standing alone (`TODO`, not `TODOS` or
//! `MY_TODO`), optionally followed by an owner in parentheses and a colon:
//! `TODO: text`, `FIXME(alice): text`, `XXX text`. Only the first marker of
//! a line counts; its text is the rest of the line, without a trailing `*/`
//! or `-->`.
//!
//! A run that may not write `reports/todo.md` fails at once with
//! `invalid-input`, before scanning.
//!
//! # Files
//!
//! The workspace is walked depth first in byte order of names, without
//! following symbolic links. Binary files (a NUL byte in the first 8 KiB),
//! files over 4 MiB, directories named `.git`, `target` or `node_modules`,
//! and the top-level `reports` directory are skipped.
//!
//! # Output
//!
//! The report holds a title, a table of counts per marker, then one section
//! per file listing `- line N: **MARKER** text`. The summary reads
//! `Wrote reports/todo.md: 34 markers (TODO 30, FIXME 4) in 12 files`; the
//! data holds the counts and the report's path.

mod markers;
mod report;

use std::path::Path;

use subagent_sdk::{Outcome, RunError, Subagent, Task, WORKSPACE, progress};

use crate::markers::Scanner;

/// A progress note every this many files.
const PROGRESS_EVERY: usize = 500;

struct TodoReport;

impl Subagent for TodoReport {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let root = Path::new(WORKSPACE);
        report::check_writable(root, &task.writable_dirs)?;
        let scanner = Scanner::new(markers::selected(&task.prompt));
        let report = report::collect(root, &scanner, |scanned| {
            if subagent_sdk::cancelled() {
                return Err(RunError::Cancelled);
            }
            if scanned % PROGRESS_EVERY == 0 {
                progress::note(format!("scanned {scanned} files"));
            }
            Ok(())
        })?;
        progress::note(format!(
            "done: scanned {} files, {} markers",
            report.files_scanned,
            report.total()
        ));
        if report.files_unreadable > 0 {
            subagent_sdk::log::warn(&format!(
                "{} files or directories could not be read",
                report.files_unreadable
            ));
        }
        report::write(root, &report.to_markdown())?;
        Ok(Outcome::summary(report.summary()).with_data(report.data()))
    }
}

subagent_sdk::export!(TodoReport);
