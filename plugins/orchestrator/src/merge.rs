//! What became of each child, and the merged outcome: summary text, data
//! and progress notes. Plain functions, no host calls.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};
use subagent_sdk::children::{ChildResult, TaskStatus};

use crate::input::{Plan, Query};

/// Findings listed under each query in the summary.
pub const SECTION_FINDINGS: usize = 10;

/// Where a child ended, as the orchestrator saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Completed,
    Failed,
    Cancelled,
    TimedOut,
    Interrupted,
    /// The host refused to start it.
    LaunchFailed,
    /// Launched, but not finished when the wait ended (it is then cancelled).
    Unfinished,
    /// The host could not say what became of it.
    Unknown,
}

impl Status {
    /// The name used in the data, as the host names task statuses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::TimedOut => "timed_out",
            Status::Interrupted => "interrupted",
            Status::LaunchFailed => "launch_failed",
            Status::Unfinished => "unfinished",
            Status::Unknown => "unknown",
        }
    }

    /// The name for people: `timed out`, `launch failed`.
    pub fn words(self) -> String {
        self.as_str().replace('_', " ")
    }
}

impl From<TaskStatus> for Status {
    fn from(status: TaskStatus) -> Status {
        match status {
            TaskStatus::Completed => Status::Completed,
            TaskStatus::Failed => Status::Failed,
            TaskStatus::Cancelled => Status::Cancelled,
            TaskStatus::TimedOut => Status::TimedOut,
            TaskStatus::Interrupted => Status::Interrupted,
            TaskStatus::Queued | TaskStatus::Running => Status::Unfinished,
        }
    }
}

/// One query's child: its task id (if it was launched), how it ended, and
/// what it returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildRun {
    pub task_id: Option<String>,
    pub status: Status,
    pub summary: Option<String>,
    /// The child's data, a JSON document.
    pub data: Option<String>,
    /// `kind: message`, when it did not complete.
    pub error: Option<String>,
}

impl ChildRun {
    /// A child that is running; [`ChildRun::finish`] records its end.
    pub fn launched(task_id: String) -> ChildRun {
        ChildRun {
            task_id: Some(task_id),
            status: Status::Unfinished,
            summary: None,
            data: None,
            error: None,
        }
    }

    /// A child the host would not start, with the host's reason.
    pub fn launch_failed(error: String) -> ChildRun {
        ChildRun {
            task_id: None,
            status: Status::LaunchFailed,
            summary: None,
            data: None,
            error: Some(error),
        }
    }

    /// Launched and not yet finished.
    pub fn is_pending(&self) -> bool {
        self.task_id.is_some() && self.status == Status::Unfinished && self.error.is_none()
    }

    /// Record the child's result.
    pub fn finish(&mut self, result: &ChildResult) {
        self.status = result.status.into();
        self.summary = result.summary.clone();
        self.data = result.data.clone();
        self.error = match (&result.error_kind, &result.error_message) {
            (Some(kind), Some(message)) => Some(format!("{kind}: {message}")),
            (kind, message) => message.clone().or_else(|| kind.clone()),
        };
    }

    /// Record that the child ended in `status` for a reason of our own.
    pub fn end(&mut self, status: Status, why: impl Into<String>) {
        self.status = status;
        self.error = Some(why.into());
    }
}

/// The part of a `deep-search` result the merge reads; other fields, and
/// other subagents' data, are ignored.
#[derive(Debug, Default, Deserialize)]
struct ChildData {
    #[serde(default)]
    findings: Vec<Finding>,
    total_matches: Option<u64>,
    files_matched: Option<u64>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Deserialize)]
struct Finding {
    path: String,
    line: u64,
    text: String,
}

impl ChildData {
    /// The child's data, if it reads as a search result (has a count or findings).
    fn parse(run: &ChildRun) -> Option<ChildData> {
        let data: ChildData = serde_json::from_str(run.data.as_deref()?).ok()?;
        (data.total_matches.is_some() || !data.findings.is_empty()).then_some(data)
    }

    /// Matching lines, counting those beyond the listed findings.
    fn matches(&self) -> u64 {
        self.total_matches
            .unwrap_or(0)
            .max(self.findings.len() as u64)
    }

    /// Whether `findings` lists fewer lines than matched.
    fn is_truncated(&self) -> bool {
        self.truncated || self.matches() > self.findings.len() as u64
    }
}

/// A line found by one or more queries.
struct Merged<'a> {
    text: &'a str,
    queries: BTreeSet<usize>,
}

/// The outcome: a summary for people and the data for programs.
///
/// `runs[i]` is the child of `plan.queries[i]`.
pub fn merge(plan: &Plan, runs: &[ChildRun]) -> (String, Value) {
    let parsed: Vec<Option<ChildData>> = runs.iter().map(ChildData::parse).collect();

    let mut findings: BTreeMap<(&str, u64), Merged> = BTreeMap::new();
    for (index, data) in parsed.iter().enumerate() {
        for finding in data.iter().flat_map(|data| &data.findings) {
            findings
                .entry((finding.path.as_str(), finding.line))
                .or_insert_with(|| Merged {
                    text: &finding.text,
                    queries: BTreeSet::new(),
                })
                .queries
                .insert(index);
        }
    }
    let files: BTreeSet<&str> = findings.keys().map(|(path, _)| *path).collect();
    let total_matches: u64 = parsed.iter().flatten().map(ChildData::matches).sum();
    let truncated = parsed.iter().flatten().any(ChildData::is_truncated);

    // With findings left out, each child's own file count is a better lower bound.
    let files_at_least = if truncated {
        parsed
            .iter()
            .flatten()
            .filter_map(|data| data.files_matched)
            .fold(files.len() as u64, u64::max)
    } else {
        files.len() as u64
    };
    let mut sections = vec![header(runs, total_matches, files_at_least, truncated)];
    sections.extend(
        plan.queries
            .iter()
            .zip(runs)
            .zip(&parsed)
            .map(|((query, run), data)| section(query, run, data.as_ref())),
    );

    let queries: Vec<Value> = plan
        .queries
        .iter()
        .zip(runs)
        .zip(&parsed)
        .map(|((query, run), data)| {
            json!({
                "query": query.input,
                "task_id": run.task_id,
                "status": run.status.as_str(),
                "total_matches": data.as_ref().and_then(|d| d.total_matches),
                "files_matched": data.as_ref().and_then(|d| d.files_matched),
                "error": run.error,
            })
        })
        .collect();
    let findings: Vec<Value> = findings
        .iter()
        .map(|((path, line), merged)| {
            json!({"path": path, "line": line, "text": merged.text, "queries": merged.queries})
        })
        .collect();
    let data = json!({
        "subagent": plan.subagent,
        "queries": queries,
        "total_matches": total_matches,
        "files": files,
        "truncated": truncated,
        "findings": findings,
    });
    (sections.join("\n\n"), data)
}

/// `3 searches, 27 matches in 11 files`, and how many did not complete.
fn header(runs: &[ChildRun], total_matches: u64, files: u64, truncated: bool) -> String {
    let searches = plural(runs.len() as u64, "search", "searches");
    let mut header = if total_matches == 0 {
        format!("{searches}, no matches")
    } else {
        let at_least = if truncated { "at least " } else { "" };
        format!(
            "{searches}, {} in {at_least}{}",
            plural(total_matches, "match", "matches"),
            plural(files, "file", "files")
        )
    };
    let incomplete = runs
        .iter()
        .filter(|run| run.status != Status::Completed)
        .count();
    if incomplete > 0 {
        header.push_str(&format!("; {incomplete} did not complete"));
    }
    header
}

/// `` ## `TODO` — completed: 12 matches in 5 files ``, then its first findings.
fn section(query: &Query, run: &ChildRun, data: Option<&ChildData>) -> String {
    let mut head = format!("## {} — {}", code(&query.label), run.status.words());
    let mut lines = Vec::new();
    match (run.status, data) {
        (Status::Completed, Some(data)) => {
            if data.matches() == 0 {
                head.push_str(": no matches");
            } else {
                head.push_str(&format!(": {}", plural(data.matches(), "match", "matches")));
                if let Some(files) = data.files_matched {
                    head.push_str(&format!(" in {}", plural(files, "file", "files")));
                }
            }
            let shown = &data.findings[..data.findings.len().min(SECTION_FINDINGS)];
            lines.extend(
                shown
                    .iter()
                    .map(|f| format!("{}:{}: {}", f.path, f.line, f.text.trim())),
            );
            if data.matches() > shown.len() as u64 {
                lines.push(format!(
                    "… and {} more",
                    data.matches() - shown.len() as u64
                ));
            }
        }
        // Another subagent's result: show the start of its summary.
        (Status::Completed, None) => {
            let summary = run.summary.as_deref().unwrap_or("").trim();
            lines.extend(summary.lines().take(SECTION_FINDINGS).map(str::to_owned));
            if summary.lines().count() > SECTION_FINDINGS {
                lines.push("…".to_owned());
            }
        }
        _ => {
            if let Some(error) = &run.error {
                head.push_str(&format!(": {error}"));
            }
        }
    }
    std::iter::once(head)
        .chain(lines)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The failure message when no child could be launched; `None` when one was.
pub fn all_launches_failed(plan: &Plan, runs: &[ChildRun]) -> Option<String> {
    if runs.is_empty() || runs.iter().any(|run| run.status != Status::LaunchFailed) {
        return None;
    }
    let mut message = format!(
        "could not launch any `{}` child ({}):",
        plan.subagent,
        plural(runs.len() as u64, "query", "queries")
    );
    for (query, run) in plan.queries.iter().zip(runs) {
        message.push_str(&format!(
            "\n- {}: {}",
            code(&query.label),
            run.error.as_deref().unwrap_or("no reason given")
        ));
    }
    Some(message)
}

/// The progress note after a wave's launches.
pub fn launch_note(wave: usize, waves: usize, total: usize, runs: &[ChildRun]) -> String {
    let failed = runs
        .iter()
        .filter(|run| run.status == Status::LaunchFailed)
        .count();
    let launched = runs.len() - failed;
    let mut note = if waves == 1 {
        format!("launched {}", plural(launched as u64, "search", "searches"))
    } else {
        format!(
            "wave {}/{waves}: launched {launched} of {}",
            wave + 1,
            plural(total as u64, "search", "searches")
        )
    };
    if failed > 0 {
        note.push_str(&format!(" ({failed} failed to launch)"));
    }
    note
}

/// The progress note when a wave has finished: how its children ended.
pub fn wave_note(wave: usize, waves: usize, runs: &[ChildRun]) -> String {
    let mut counts: Vec<(Status, usize)> = Vec::new();
    for run in runs {
        match counts.iter_mut().find(|(status, _)| *status == run.status) {
            Some((_, count)) => *count += 1,
            None => counts.push((run.status, 1)),
        }
    }
    counts.sort_by_key(|(status, _)| *status as u8);
    let counts = counts
        .iter()
        .map(|(status, count)| format!("{count} {}", status.words()))
        .collect::<Vec<_>>()
        .join(", ");
    if waves == 1 {
        format!(
            "{} finished: {counts}",
            plural(runs.len() as u64, "search", "searches")
        )
    } else {
        format!("wave {}/{waves} finished: {counts}", wave + 1)
    }
}

/// `count` and the noun that agrees with it.
fn plural(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// `text` as a Markdown code span, even when it holds backticks.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(prompt: &str) -> Plan {
        Plan::parse(prompt).unwrap()
    }

    fn result(id: &str, status: TaskStatus, data: Value) -> ChildResult {
        ChildResult {
            id: id.to_owned(),
            status,
            summary: Some("child summary".to_owned()),
            data: Some(data.to_string()),
            error_kind: None,
            error_message: None,
        }
    }

    fn completed(id: &str, findings: &[(&str, u64, &str)], total: u64, files: u64) -> ChildRun {
        let findings: Vec<Value> = findings
            .iter()
            .map(|(path, line, text)| {
                json!({"path": path, "line": line, "text": text, "before": [], "after": []})
            })
            .collect();
        let mut run = ChildRun::launched(id.to_owned());
        run.finish(&result(
            id,
            TaskStatus::Completed,
            json!({
                "query": "ignored", "files_scanned": 40, "total_matches": total,
                "files_matched": files, "truncated": false, "findings": findings,
            }),
        ));
        run
    }

    fn failed(id: &str, kind: &str, message: &str) -> ChildRun {
        ended(id, TaskStatus::Failed, kind, message)
    }

    fn ended(id: &str, status: TaskStatus, kind: &str, message: &str) -> ChildRun {
        let mut run = ChildRun::launched(id.to_owned());
        run.finish(&ChildResult {
            id: id.to_owned(),
            status,
            summary: None,
            data: None,
            error_kind: Some(kind.to_owned()),
            error_message: Some(message.to_owned()),
        });
        run
    }

    #[test]
    fn findings_are_merged_sorted_and_deduplicated() {
        let plan = plan("TODO\nFIXME\ntodo|fixme");
        let runs = [
            completed(
                "t1",
                &[("src/b.rs", 10, "// TODO b"), ("src/a.rs", 3, "// TODO a")],
                2,
                2,
            ),
            completed(
                "t2",
                &[("src/a.rs", 12, "// FIXME"), ("README", 1, "FIXME")],
                2,
                2,
            ),
            completed(
                "t3",
                &[
                    ("src/a.rs", 3, "// TODO a"),
                    ("src/a.rs", 12, "// FIXME"),
                    ("src/a.rs", 2, "x"),
                ],
                3,
                1,
            ),
        ];
        let (_, data) = merge(&plan, &runs);
        assert_eq!(
            data["findings"],
            json!([
                {"path": "README", "line": 1, "text": "FIXME", "queries": [1]},
                {"path": "src/a.rs", "line": 2, "text": "x", "queries": [2]},
                {"path": "src/a.rs", "line": 3, "text": "// TODO a", "queries": [0, 2]},
                {"path": "src/a.rs", "line": 12, "text": "// FIXME", "queries": [1, 2]},
                {"path": "src/b.rs", "line": 10, "text": "// TODO b", "queries": [0]},
            ])
        );
        assert_eq!(data["files"], json!(["README", "src/a.rs", "src/b.rs"]));
        assert_eq!(data["total_matches"], json!(7));
        assert_eq!(data["truncated"], json!(false));
        assert_eq!(data["subagent"], json!("deep-search"));
        assert_eq!(
            data["queries"][0],
            json!({"query": "TODO", "task_id": "t1", "status": "completed",
                   "total_matches": 2, "files_matched": 2, "error": null})
        );
    }

    #[test]
    fn lines_sort_by_number_not_text() {
        let plan = plan("x");
        let runs = [completed(
            "t",
            &[("a", 10, "ten"), ("a", 9, "nine"), ("a", 100, "hundred")],
            3,
            1,
        )];
        let (_, data) = merge(&plan, &runs);
        let lines: Vec<u64> = data["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [9, 10, 100]);
    }

    #[test]
    fn summary_has_a_header_and_a_section_per_query() {
        let plan = plan(r#"{"queries": ["TODO", {"query": "[", "regex": true}, "none"]}"#);
        let runs = [
            completed(
                "t1",
                &[("src/a.rs", 3, "  // TODO a  "), ("src/b.rs", 1, "TODO b")],
                2,
                2,
            ),
            failed(
                "t2",
                "invalid-input",
                "invalid regex in `query`: unclosed character class",
            ),
            completed("t3", &[], 0, 0),
        ];
        let (summary, data) = merge(&plan, &runs);
        assert_eq!(
            summary,
            "3 searches, 2 matches in 2 files; 1 did not complete\n\
             \n\
             ## `TODO` — completed: 2 matches in 2 files\n\
             src/a.rs:3: // TODO a\n\
             src/b.rs:1: TODO b\n\
             \n\
             ## `/[/` — failed: invalid-input: invalid regex in `query`: unclosed character class\n\
             \n\
             ## `none` — completed: no matches"
        );
        assert_eq!(
            data["queries"][1],
            json!({"query": {"query": "[", "regex": true}, "task_id": "t2", "status": "failed",
                   "total_matches": null, "files_matched": null,
                   "error": "invalid-input: invalid regex in `query`: unclosed character class"})
        );
    }

    #[test]
    fn a_section_lists_at_most_ten_findings() {
        let plan = plan("x");
        let findings: Vec<(String, u64)> = (1..=12).map(|n| ("f".to_owned(), n)).collect();
        let findings: Vec<(&str, u64, &str)> = findings
            .iter()
            .map(|(p, n)| (p.as_str(), *n, "x"))
            .collect();
        let runs = [completed("t", &findings, 30, 4)];
        let (summary, data) = merge(&plan, &runs);
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines[0], "1 search, 30 matches in at least 4 files");
        assert_eq!(lines[2], "## `x` — completed: 30 matches in 4 files");
        assert_eq!(lines[3], "f:1: x");
        assert_eq!(lines[12], "f:10: x");
        assert_eq!(lines[13], "… and 20 more");
        assert_eq!(lines.len(), 14);
        assert_eq!(data["truncated"], json!(true));
        assert_eq!(data["findings"].as_array().unwrap().len(), 12);
    }

    #[test]
    fn children_that_did_not_complete_are_reported() {
        let plan = plan("a\nb\nc\nd");
        let mut unfinished = ChildRun::launched("t3".to_owned());
        unfinished.end(
            Status::Unfinished,
            "still running when the wait ended; cancelled",
        );
        let runs = [
            ChildRun::launch_failed("not found: no subagent `nope`".to_owned()),
            ended(
                "t2",
                TaskStatus::TimedOut,
                "timeout",
                "ran past its 30s timeout",
            ),
            unfinished,
            completed("t4", &[], 0, 0),
        ];
        let (summary, data) = merge(&plan, &runs);
        assert_eq!(
            summary,
            "4 searches, no matches; 3 did not complete\n\
             \n\
             ## `a` — launch failed: not found: no subagent `nope`\n\
             \n\
             ## `b` — timed out: timeout: ran past its 30s timeout\n\
             \n\
             ## `c` — unfinished: still running when the wait ended; cancelled\n\
             \n\
             ## `d` — completed: no matches"
        );
        assert_eq!(data["queries"][0]["task_id"], Value::Null);
        assert_eq!(data["queries"][0]["status"], json!("launch_failed"));
        assert_eq!(data["queries"][1]["status"], json!("timed_out"));
        assert_eq!(data["queries"][2]["status"], json!("unfinished"));
        assert_eq!(data["files"], json!([]));
        assert_eq!(data["findings"], json!([]));
    }

    #[test]
    fn another_subagents_result_shows_its_summary() {
        let plan = plan(r#"{"queries": ["hi"], "subagent": "hello"}"#);
        let mut run = ChildRun::launched("t".to_owned());
        run.finish(&ChildResult {
            id: "t".to_owned(),
            status: TaskStatus::Completed,
            summary: Some("Hello, hi!\n".to_owned()),
            data: None,
            error_kind: None,
            error_message: None,
        });
        let (summary, data) = merge(&plan, &[run]);
        assert_eq!(
            summary,
            "1 search, no matches\n\n## `hi` — completed\nHello, hi!"
        );
        assert_eq!(data["queries"][0]["total_matches"], Value::Null);
        assert_eq!(data["subagent"], json!("hello"));
    }

    #[test]
    fn labels_with_backticks_stay_code() {
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("ab"), "`ab`");
    }

    #[test]
    fn all_launches_failing_is_a_failure() {
        let plan = plan("TODO\nFIXME");
        let runs = [
            ChildRun::launch_failed("denied: no grant".to_owned()),
            ChildRun::launch_failed("denied: no grant".to_owned()),
        ];
        assert_eq!(
            all_launches_failed(&plan, &runs).unwrap(),
            "could not launch any `deep-search` child (2 queries):\n\
             - `TODO`: denied: no grant\n\
             - `FIXME`: denied: no grant"
        );
        let runs = [runs[0].clone(), failed("t", "failed", "boom")];
        assert_eq!(all_launches_failed(&plan, &runs), None);
    }

    #[test]
    fn notes_count_launches_and_endings() {
        let runs = [
            completed("t1", &[], 0, 0),
            failed("t2", "failed", "boom"),
            ChildRun::launch_failed("unavailable: stopping".to_owned()),
            completed("t3", &[], 0, 0),
        ];
        assert_eq!(
            launch_note(0, 1, 4, &runs),
            "launched 3 searches (1 failed to launch)"
        );
        assert_eq!(
            launch_note(1, 3, 9, &runs[..1]),
            "wave 2/3: launched 1 of 9 searches"
        );
        assert_eq!(
            wave_note(0, 1, &runs),
            "4 searches finished: 2 completed, 1 failed, 1 launch failed"
        );
        assert_eq!(
            wave_note(2, 3, &runs[..1]),
            "wave 3/3 finished: 1 completed"
        );
    }

    #[test]
    fn child_errors_read_kind_then_message() {
        let mut run = ChildRun::launched("t".to_owned());
        let mut result = result("t", TaskStatus::Failed, json!(null));
        result.error_message = Some("boom".to_owned());
        run.finish(&result);
        assert_eq!(run.error.as_deref(), Some("boom"));
        result.error_kind = Some("trap".to_owned());
        run.finish(&result);
        assert_eq!(run.error.as_deref(), Some("trap: boom"));
        assert!(!run.is_pending());
        assert!(ChildRun::launched("u".to_owned()).is_pending());
    }
}
