//! `deep-search`: search the workspace for a literal or a regex.
//!
//! # Input
//!
//! The prompt is one of:
//!
//! - a JSON object of options:
//!   - `query` (string, required): the text, or regex, to look for;
//!   - `regex` (bool, default `false`): treat `query` as a regex
//!     ([`regex` crate syntax](https://docs.rs/regex/latest/regex/#syntax),
//!     without the `\p{…}` Unicode property classes, which are not built in);
//!   - `include` (glob or list of globs): search only files matching one;
//!   - `exclude` (glob or list of globs): leave out matching files and
//!     directories;
//!   - `context` (0–20, default 1): lines kept before and after each finding;
//!   - `max_findings` (1–10000, default 200): findings kept in the data;
//!   - `case_sensitive` (bool, default smart case: sensitive only when
//!     `query` has an uppercase letter);
//! - `/PATTERN/`: a regex, with the defaults above;
//! - anything else: the trimmed prompt, searched for literally.
//!
//! An empty query, an unknown option, a value of the wrong type, an invalid
//! regex or glob is `invalid-input`, naming the field.
//!
//! # Matching
//!
//! Each line is matched on its own, so `^` and `$` anchor to the line and a
//! match never spans lines. Every file is searched, so the counts are
//! complete; only the first `max_findings` matching lines are kept.
//!
//! # Files
//!
//! The workspace is walked depth first in byte order of names, without
//! following symbolic links. Binary files (a NUL byte in the first 8 KiB) and
//! files over 4 MiB are skipped; invalid UTF-8 is replaced, not rejected.
//! Globs match paths relative to the workspace root with `/` separators;
//! `*` stops at `/`, `**` does not, and a glob without a `/` matches the file
//! name at any depth (`*.rs` is `**/*.rs`). Directories named `.git`,
//! `target` and `node_modules` are skipped wherever they appear, unless an
//! `include` glob names that directory as one of its components (as
//! `target/**/*.json` does).
//!
//! # Output
//!
//! The summary is a header line such as
//! ``12 matches in 5 files for `TODO` (scanned 230 files)``, then the first 50
//! findings as `path:line: text`. The data is the JSON form of
//! `search::Report`: `query`, `regex`, `case_sensitive`, `files_scanned`,
//! `files_matched`, `files_unreadable`, `total_matches`, `truncated` and
//! `findings`, each `{path, line, text, before, after}`.

mod request;
mod search;

use std::path::Path;

use subagent_sdk::{Outcome, RunError, Subagent, Task, WORKSPACE, progress};

use crate::request::{Request, Search};

/// A progress note every this many files.
const PROGRESS_EVERY: usize = 500;

struct DeepSearch;

impl Subagent for DeepSearch {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let search = Search::new(Request::parse(&task.prompt)?)?;
        let report = search::run(Path::new(WORKSPACE), &search, |scanned| {
            if subagent_sdk::cancelled() {
                return Err(RunError::Cancelled);
            }
            if scanned % PROGRESS_EVERY == 0 {
                progress::note(format!("scanned {scanned} files"));
            }
            Ok(())
        })?;
        progress::note(format!(
            "done: scanned {} files, {} matches in {} files",
            report.files_scanned, report.total_matches, report.files_matched
        ));
        if report.files_unreadable > 0 {
            subagent_sdk::log::warn(&format!(
                "{} files or directories could not be read",
                report.files_unreadable
            ));
        }
        let data = serde_json::to_value(&report).map_err(RunError::failed)?;
        Ok(Outcome::summary(report.summary()).with_data(data))
    }
}

subagent_sdk::export!(DeepSearch);
