//! Collect the markers of a directory tree and render them as a report.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use subagent_sdk::RunError;

use crate::markers::{Mark, Scanner};
use subagent_sdk::walk::{self, Filter, Walk};

/// The directory the report goes to, relative to the workspace.
pub const REPORT_DIR: &str = "reports";
/// The report, relative to the workspace.
pub const REPORT_PATH: &str = "reports/todo.md";

/// Leaves out the default-skipped directories and the report directory.
struct SkipDirs;

impl Filter for SkipDirs {
    fn skip_dir(&self, path: &str) -> bool {
        path == REPORT_DIR || walk::SKIPPED_DIRS.contains(&walk::file_name(path))
    }

    fn skip_file(&self, _path: &str) -> bool {
        false
    }
}

/// The markers of one file, in line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMarks {
    pub path: String,
    /// (1-based line, mark).
    pub marks: Vec<(usize, Mark)>,
}

/// All markers found below a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The markers looked for.
    pub markers: Vec<&'static str>,
    /// Files with at least one marker, in walk order.
    pub files: Vec<FileMarks>,
    pub files_scanned: usize,
    /// Files and directories that could not be read.
    pub files_unreadable: usize,
}

/// Collect the markers of the text files below `root`, calling `tick` with
/// the number of files scanned so far after each one.
///
/// # Errors
///
/// `RunError::Failed` when `root` cannot be read, and whatever `tick` returns.
pub fn collect(
    root: &Path,
    scanner: &Scanner,
    mut tick: impl FnMut(usize) -> Result<(), RunError>,
) -> Result<Report, RunError> {
    let mut walk = Walk::new(root, &SkipDirs)?;
    let mut files = Vec::new();
    for (scanned, file) in walk.by_ref().enumerate() {
        let marks: Vec<(usize, Mark)> = file
            .text
            .lines()
            .enumerate()
            .filter_map(|(index, line)| scanner.find(line).map(|mark| (index + 1, mark)))
            .collect();
        if !marks.is_empty() {
            files.push(FileMarks {
                path: file.path,
                marks,
            });
        }
        tick(scanned + 1)?;
    }
    let stats = walk.stats();
    Ok(Report {
        markers: scanner.markers().to_vec(),
        files,
        files_scanned: stats.scanned,
        files_unreadable: stats.unreadable,
    })
}

/// Check that a run granted `writable_dirs` (guest paths) may write the report
/// below `root`, before any work is done.
///
/// # Errors
///
/// `RunError::InvalidInput` naming what the run may write instead.
pub fn check_writable(root: &Path, writable_dirs: &[String]) -> Result<(), RunError> {
    let report = root.join(REPORT_PATH);
    if writable_dirs.iter().any(|dir| report.starts_with(dir)) {
        return Ok(());
    }
    let granted = if writable_dirs.is_empty() {
        "nothing".to_owned()
    } else {
        writable_dirs.join(", ")
    };
    Err(RunError::invalid(format!(
        "this run may not write {REPORT_PATH} (it may write: {granted}); run todo-report with `{REPORT_DIR}` \
         writable, as its allowed_write_directories ask, not read-only"
    )))
}

/// Write `markdown` to [`REPORT_PATH`] below `root`, creating [`REPORT_DIR`].
///
/// # Errors
///
/// `RunError::Failed` naming the report.
pub fn write(root: &Path, markdown: &str) -> Result<(), RunError> {
    let write = || {
        fs::create_dir_all(root.join(REPORT_DIR))?;
        fs::write(root.join(REPORT_PATH), markdown)
    };
    write().map_err(|err| RunError::failed(format!("cannot write {REPORT_PATH}: {err}")))
}

impl Report {
    /// How many of each marker were found, in marker order.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        self.markers
            .iter()
            .map(|&marker| {
                let count = self
                    .files
                    .iter()
                    .flat_map(|file| &file.marks)
                    .filter(|(_, mark)| mark.marker == marker);
                (marker, count.count())
            })
            .collect()
    }

    /// How many markers were found in all.
    pub fn total(&self) -> usize {
        self.files.iter().map(|file| file.marks.len()).sum()
    }

    /// The report: a title, the counts, then one section per file.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# TODO report\n\n");
        let _ = writeln!(
            out,
            "{} in {} (scanned {}).\n",
            plural(self.total(), "marker"),
            plural(self.files.len(), "file"),
            plural(self.files_scanned, "file")
        );
        out.push_str("| Marker | Count |\n| --- | ---: |\n");
        for (marker, count) in self.counts() {
            let _ = writeln!(out, "| {marker} | {count} |");
        }
        for file in &self.files {
            let _ = write!(out, "\n## `{}`\n\n", file.path);
            for (line, mark) in &file.marks {
                let _ = write!(out, "- line {line}: **{}**", mark.marker);
                if !mark.text.is_empty() {
                    let _ = write!(out, " {}", mark.text);
                }
                out.push('\n');
            }
        }
        out
    }

    /// One line saying where the report went and what it holds.
    pub fn summary(&self) -> String {
        if self.total() == 0 {
            return format!(
                "Wrote {REPORT_PATH}: no markers ({}) in {}",
                self.markers.join(", "),
                plural(self.files_scanned, "file")
            );
        }
        let counts: Vec<String> = self
            .counts()
            .into_iter()
            .filter(|&(_, count)| count > 0)
            .map(|(marker, count)| format!("{marker} {count}"))
            .collect();
        format!(
            "Wrote {REPORT_PATH}: {} ({}) in {}",
            plural(self.total(), "marker"),
            counts.join(", "),
            plural(self.files.len(), "file")
        )
    }

    /// The counts and the report's path, as the outcome's data.
    pub fn data(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .counts()
            .into_iter()
            .map(|(marker, count)| (marker.to_owned(), count.into()))
            .collect();
        json!({
            "report": REPORT_PATH,
            "markers": self.markers,
            "counts": counts,
            "total": self.total(),
            "files_with_markers": self.files.len(),
            "files_scanned": self.files_scanned,
            "files_unreadable": self.files_unreadable,
        })
    }
}

/// `count` and `noun`, with an `s` unless `count` is 1.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers::{MARKERS, selected};
    use subagent_sdk::testing::tree;

    fn collect_all(markers: Vec<&'static str>, files: &[(&str, &str)]) -> Report {
        let root = tree(files);
        collect(root.path(), &Scanner::new(markers), |_| Ok(())).unwrap()
    }

    const FILES: [(&str, &str); 5] = [
        (
            "src/main.rs",
            "fn main() {} // TODO: args\n// FIXME(ann): panics\n// TODO\n",
        ),
        ("README.md", "<!-- XXX rewrite -->\n"),
        ("reports/old.md", "TODO: not me\n"),
        ("target/gen.rs", "// TODO generated\n"),
        (
            "notes/reports/a.md",
            "HACK: nested reports dirs are scanned\n",
        ),
    ];

    #[test]
    fn collects_markers_per_file() {
        let report = collect_all(MARKERS.to_vec(), &FILES);
        let paths: Vec<&str> = report.files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(paths, ["README.md", "notes/reports/a.md", "src/main.rs"]);
        assert_eq!(
            report.counts(),
            [("TODO", 2), ("FIXME", 1), ("XXX", 1), ("HACK", 1)]
        );
        assert_eq!((report.total(), report.files_scanned), (5, 3));
        assert_eq!(
            report.summary(),
            "Wrote reports/todo.md: 5 markers (TODO 2, FIXME 1, XXX 1, HACK 1) in 3 files"
        );
    }

    #[test]
    fn renders_markdown() {
        let report = collect_all(selected("TODO and FIXME"), &FILES);
        assert_eq!(
            report.to_markdown(),
            "# TODO report\n\n\
             3 markers in 1 file (scanned 3 files).\n\n\
             | Marker | Count |\n| --- | ---: |\n| TODO | 2 |\n| FIXME | 1 |\n\n\
             ## `src/main.rs`\n\n\
             - line 1: **TODO** args\n\
             - line 2: **FIXME** (ann) panics\n\
             - line 3: **TODO**\n"
        );
        assert_eq!(
            report.data(),
            json!({
                "report": "reports/todo.md",
                "markers": ["TODO", "FIXME"],
                "counts": {"TODO": 2, "FIXME": 1},
                "total": 3,
                "files_with_markers": 1,
                "files_scanned": 3,
                "files_unreadable": 0,
            })
        );
    }

    #[test]
    fn says_when_nothing_was_found() {
        let report = collect_all(vec!["HACK"], &[("a.rs", "// TODO")]);
        assert_eq!(
            report.summary(),
            "Wrote reports/todo.md: no markers (HACK) in 1 file"
        );
        assert!(
            report
                .to_markdown()
                .contains("0 markers in 0 files (scanned 1 file).")
        );
    }

    #[test]
    fn writes_the_report_creating_its_directory() {
        let root = tree(&[]);
        write(root.path(), "# hi\n").unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join(REPORT_PATH)).unwrap(),
            "# hi\n"
        );
    }

    #[test]
    fn the_report_directory_must_be_writable() {
        let root = Path::new("/workspace");
        assert!(check_writable(root, &["/workspace/reports".into()]).is_ok());
        assert!(check_writable(root, &["/workspace".into()]).is_ok());
        let refusal = |dirs: &[String]| match check_writable(root, dirs) {
            Err(RunError::InvalidInput(message)) => message,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        assert_eq!(
            refusal(&[]),
            "this run may not write reports/todo.md (it may write: nothing); run todo-report with `reports` \
             writable, as its allowed_write_directories ask, not read-only"
        );
        assert!(
            refusal(&[
                "/workspace/reports/sub".into(),
                "/workspace/reportsx".into()
            ])
            .contains("(it may write: /workspace/reports/sub, /workspace/reportsx)")
        );
    }

    #[test]
    fn tick_errors_stop_the_walk() {
        let root = tree(&[("a.txt", "TODO")]);
        let result = collect(root.path(), &Scanner::new(MARKERS.to_vec()), |_| {
            Err(RunError::Cancelled)
        });
        assert!(matches!(result, Err(RunError::Cancelled)));
    }
}
