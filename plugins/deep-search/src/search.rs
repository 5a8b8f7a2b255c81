//! Run a [`Search`] over a directory tree and collect its findings.

use std::path::Path;

use serde::Serialize;
use subagent_sdk::RunError;

use crate::request::Search;
use subagent_sdk::walk::Walk;

/// Lines in findings are cut to this many characters.
pub const MAX_LINE_CHARS: usize = 200;
/// Findings listed in the summary; the data holds up to `max_findings`.
pub const SUMMARY_FINDINGS: usize = 50;

/// One matching line, with its context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Relative to the workspace, with `/` separators.
    pub path: String,
    /// 1-based.
    pub line: usize,
    pub text: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// The result of a search; serialized as the outcome's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub query: String,
    pub regex: bool,
    pub case_sensitive: bool,
    pub files_scanned: usize,
    pub files_matched: usize,
    /// Files and directories that could not be read.
    pub files_unreadable: usize,
    /// Matching lines, including those beyond `max_findings`.
    pub total_matches: usize,
    /// Whether `findings` stops short of `total_matches`.
    pub truncated: bool,
    pub findings: Vec<Finding>,
}

impl Report {
    /// A header line with the counts, then up to [`SUMMARY_FINDINGS`]
    /// findings as `path:line: text`.
    pub fn summary(&self) -> String {
        let target = if self.regex {
            format!("regex `{}`", self.query)
        } else {
            format!("`{}`", self.query)
        };
        let mut scanned = format!("scanned {}", plural(self.files_scanned, "file", "files"));
        if self.files_unreadable > 0 {
            scanned.push_str(&format!(", {} unreadable", self.files_unreadable));
        }
        if self.total_matches == 0 {
            return format!("no matches for {target} ({scanned})");
        }
        let mut lines = vec![format!(
            "{} in {} for {target} ({scanned})",
            plural(self.total_matches, "match", "matches"),
            plural(self.files_matched, "file", "files")
        )];
        let shown = &self.findings[..self.findings.len().min(SUMMARY_FINDINGS)];
        lines.extend(
            shown.iter().map(|finding| {
                format!("{}:{}: {}", finding.path, finding.line, finding.text.trim())
            }),
        );
        if self.total_matches > shown.len() {
            lines.push(format!("… and {} more", self.total_matches - shown.len()));
        }
        if self.truncated {
            lines.push(format!(
                "The data lists only the first {} matches (max_findings); raise it to list all {}.",
                self.findings.len(),
                self.total_matches
            ));
        }
        lines.join("\n")
    }
}

/// `count` and the noun that agrees with it.
fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// Search the text files below `root`, calling `tick` with the number of
/// files scanned so far after each one.
///
/// Every file is searched, so the counts are complete; only the first
/// `max_findings` matching lines are kept.
///
/// # Errors
///
/// `RunError::Failed` when `root` cannot be read, and whatever `tick` returns.
pub fn run(
    root: &Path,
    search: &Search,
    mut tick: impl FnMut(usize) -> Result<(), RunError>,
) -> Result<Report, RunError> {
    let request = &search.request;
    let mut report = Report {
        query: request.query.clone(),
        regex: request.regex,
        case_sensitive: search.case_sensitive,
        files_scanned: 0,
        files_matched: 0,
        files_unreadable: 0,
        total_matches: 0,
        truncated: false,
        findings: Vec::new(),
    };
    let mut walk = Walk::new(root, search)?;
    for (scanned, file) in walk.by_ref().enumerate() {
        search_file(search, &file.path, &file.text, &mut report);
        tick(scanned + 1)?;
    }
    let stats = walk.stats();
    report.files_scanned = stats.scanned;
    report.files_unreadable = stats.unreadable;
    report.truncated = report.total_matches > report.findings.len();
    Ok(report)
}

/// Add the matching lines of one file to `report`.
fn search_file(search: &Search, path: &str, text: &str, report: &mut Report) {
    if !search.may_match(text) {
        return;
    }
    if report.findings.len() >= search.request.max_findings {
        // Only the counts are still needed.
        let matches = search.count_matching_lines(text);
        if matches > 0 {
            report.files_matched += 1;
            report.total_matches += matches;
        }
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let context = search.request.context;
    let mut matches = 0;
    for (index, line) in lines.iter().enumerate() {
        if !search.is_match(line) {
            continue;
        }
        matches += 1;
        if report.findings.len() < search.request.max_findings {
            let clip = |lines: &[&str]| lines.iter().map(|line| clip_line(line)).collect();
            report.findings.push(Finding {
                path: path.to_owned(),
                line: index + 1,
                text: clip_line(line),
                before: clip(&lines[index.saturating_sub(context)..index]),
                after: clip(&lines[index + 1..(index + 1 + context).min(lines.len())]),
            });
        }
    }
    if matches > 0 {
        report.files_matched += 1;
        report.total_matches += matches;
    }
}

/// `line` without trailing whitespace, cut to [`MAX_LINE_CHARS`] characters.
pub fn clip_line(line: &str) -> String {
    let line = line.trim_end();
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use subagent_sdk::testing::tree;

    fn run_search(prompt: &str, files: &[(&str, &str)]) -> Report {
        let root = tree(files);
        let search = Search::new(Request::parse(prompt).unwrap()).unwrap();
        run(root.path(), &search, |_| Ok(())).unwrap()
    }

    #[test]
    fn counting_over_the_whole_text_agrees_with_line_by_line() {
        let texts = [
            "",
            "a\nb",
            "one\n// TODO: first\nthree\r\nfour todo\n",
            "a\n\nb\n\n",
            "x\r\ny\r\nx",
            "a \n b\nab\na\tb\n",
            "fn main\n  fn nested\nfn two words\nfn last",
        ];
        let patterns = [
            "todo",
            r#"{"query": "^$", "regex": true}"#,
            r#"{"query": "x$", "regex": true}"#,
            r#"{"query": "a\\s*b", "regex": true}"#,
            r#"{"query": "^fn \\w+$", "regex": true}"#,
            r#"{"query": "\\Ab", "regex": true}"#,
            r#"{"query": "b\\z", "regex": true}"#,
        ];
        let mut total = 0;
        for prompt in patterns {
            let search = Search::new(Request::parse(prompt).unwrap()).unwrap();
            for text in texts {
                let by_line = text.lines().filter(|line| search.is_match(line)).count();
                assert_eq!(
                    search.count_matching_lines(text),
                    by_line,
                    "{prompt} over {text:?}"
                );
                assert!(
                    search.may_match(text) || by_line == 0,
                    "{prompt} over {text:?}"
                );
                total += by_line;
            }
        }
        assert!(total > 10, "the cases must match somewhere: {total}");
    }

    #[test]
    fn finds_lines_with_context() {
        let report = run_search(
            "todo",
            &[
                ("src/a.rs", "one\n// TODO: first\nthree\r\nfour todo\n"),
                ("b.txt", "nothing\n"),
                ("c.bin", "todo\0"),
            ],
        );
        assert_eq!(
            (
                report.files_scanned,
                report.files_matched,
                report.total_matches
            ),
            (2, 1, 2)
        );
        assert!(!report.truncated);
        assert_eq!(
            report.findings[0],
            Finding {
                path: "src/a.rs".into(),
                line: 2,
                text: "// TODO: first".into(),
                before: vec!["one".into()],
                after: vec!["three".into()],
            }
        );
        assert_eq!(report.findings[1].line, 4);
        assert_eq!(report.findings[1].after, Vec::<String>::new());
    }

    #[test]
    fn regex_lines_match_one_at_a_time() {
        let report = run_search(
            "/^fn \\w+$/",
            &[("a.rs", "fn main\n  fn nested\nfn two words\nfn last")],
        );
        let lines: Vec<usize> = report.findings.iter().map(|finding| finding.line).collect();
        assert_eq!(lines, [1, 4]);
    }

    #[test]
    fn counts_every_match_but_keeps_max_findings() {
        let report = run_search(
            r#"{"query": "x", "max_findings": 2, "context": 0}"#,
            &[("a.txt", "x\nx\n"), ("b.txt", "x\n")],
        );
        assert_eq!(
            (
                report.total_matches,
                report.files_matched,
                report.findings.len()
            ),
            (3, 2, 2)
        );
        assert!(report.truncated);
    }

    #[test]
    fn globs_restrict_the_files() {
        let files = [
            ("src/a.rs", "hit"),
            ("src/b.md", "hit"),
            ("target/c.rs", "hit"),
            ("vendor/d.rs", "hit"),
        ];
        let report = run_search(
            r#"{"query": "hit", "include": ["*.rs"], "exclude": ["vendor"]}"#,
            &files,
        );
        let paths: Vec<&str> = report
            .findings
            .iter()
            .map(|finding| finding.path.as_str())
            .collect();
        assert_eq!(paths, ["src/a.rs"]);
    }

    #[test]
    fn tick_errors_stop_the_search() {
        let root = tree(&[("a.txt", "a"), ("b.txt", "b")]);
        let search = Search::new(Request::parse("a").unwrap()).unwrap();
        let result = run(root.path(), &search, |_| Err(RunError::Cancelled));
        assert!(matches!(result, Err(RunError::Cancelled)));
    }

    #[test]
    fn summary_lists_findings_under_a_header() {
        let report = run_search(
            "todo",
            &[("a.rs", "  // TODO: one  \nTODO two"), ("b.rs", "todo")],
        );
        assert_eq!(
            report.summary(),
            "3 matches in 2 files for `todo` (scanned 2 files)\na.rs:1: // TODO: one\na.rs:2: TODO two\nb.rs:1: todo"
        );
        let none = run_search("/zz+/", &[("a.rs", "z")]);
        assert_eq!(
            none.summary(),
            "no matches for regex `zz+` (scanned 1 file)"
        );
    }

    #[test]
    fn summary_says_when_findings_are_cut() {
        let text = "x\n".repeat(SUMMARY_FINDINGS + 10);
        let report = run_search(r#"{"query": "x", "max_findings": 55}"#, &[("a.txt", &text)]);
        let summary = report.summary();
        let tail: Vec<&str> = summary.lines().skip(SUMMARY_FINDINGS + 1).collect();
        assert_eq!(
            tail,
            [
                "… and 10 more",
                "The data lists only the first 55 matches (max_findings); raise it to list all 60."
            ]
        );
        assert!(summary.starts_with("60 matches in 1 file for `x`"));
    }

    #[test]
    fn clips_long_lines() {
        assert_eq!(clip_line("short  \t"), "short");
        let clipped = clip_line(&"é".repeat(MAX_LINE_CHARS + 5));
        assert_eq!(clipped.chars().count(), MAX_LINE_CHARS + 1);
        assert!(clipped.ends_with('…'));
    }
}
