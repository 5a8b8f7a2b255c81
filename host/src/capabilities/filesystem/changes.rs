//! File results recorded as the guest acts: every create, write, truncate,
//! rename, unlink, mkdir and rmdir that succeeds is noted here by the
//! filesystem capability, so the result is exact and costs what the changes
//! cost: no scan of the tree before or after the run.
//!
//! Paths are workspace-relative and `/`-separated, as the guest named them
//! (through a symlink inside its grant, the link's path is the one recorded).

use std::collections::BTreeMap;

use crate::sandbox::{EntryKind, FileChange, FileChanges};

/// The most paths recorded; past it (or past [`MAX_PATH_BYTES`]), further
/// paths are counted in `omitted` and the result is marked incomplete.
pub const MAX_ENTRIES: usize = 100_000;
/// The most bytes of path text recorded.
pub const MAX_PATH_BYTES: usize = 4 << 20;

/// One path's life during the run.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// What was there before the run (`None`: nothing).
    before: Option<EntryKind>,
    /// What is there now (`None`: nothing).
    now: Option<EntryKind>,
    /// Its contents (or metadata) changed.
    modified: bool,
}

/// The changes of one task.
#[derive(Debug, Default)]
pub struct ChangeLog {
    entries: BTreeMap<String, Entry>,
    bytes: usize,
    omitted: u64,
}

impl ChangeLog {
    /// The entry for `path`, created as `fresh` when first seen; `None` when
    /// the log is full (the change is counted as omitted).
    fn entry(&mut self, path: &str, fresh: Entry) -> Option<&mut Entry> {
        if !self.entries.contains_key(path) {
            if self.entries.len() >= MAX_ENTRIES || self.bytes + path.len() > MAX_PATH_BYTES {
                self.omitted += 1;
                return None;
            }
            self.bytes += path.len();
            self.entries.insert(path.to_owned(), fresh);
        }
        self.entries.get_mut(path)
    }

    fn forget_if_unchanged(&mut self, path: &str) {
        if let Some(e) = self.entries.get(path) {
            if e.before.is_none() && e.now.is_none() {
                self.bytes -= path.len();
                self.entries.remove(path);
            }
        }
    }

    /// `path` now exists as `kind`; `before` is what was there before this
    /// call (from the caller's check), used when the path is new to the log.
    pub fn created(&mut self, path: &str, kind: EntryKind, before: Option<EntryKind>) {
        let fresh = Entry {
            before,
            now: None,
            modified: false,
        };
        if let Some(e) = self.entry(path, fresh) {
            e.now = Some(kind);
            // Something stood here before the run: it was replaced.
            e.modified |= e.before.is_some();
        }
    }

    /// The file at `path`, which existed, was written, truncated or touched.
    pub fn modified(&mut self, path: &str, kind: EntryKind) {
        let fresh = Entry {
            before: Some(kind),
            now: Some(kind),
            modified: false,
        };
        if let Some(e) = self.entry(path, fresh) {
            e.modified = true;
        }
    }

    /// The entry at `path` (a `kind`) was removed.
    pub fn removed(&mut self, path: &str, kind: EntryKind) {
        let fresh = Entry {
            before: Some(kind),
            now: Some(kind),
            modified: false,
        };
        if let Some(e) = self.entry(path, fresh) {
            e.now = None;
        }
        self.forget_if_unchanged(path);
    }

    /// `from` (a `kind`) was renamed to `to`, replacing `to_before`.
    pub fn renamed(&mut self, from: &str, kind: EntryKind, to: &str, to_before: Option<EntryKind>) {
        if from == to {
            return;
        }
        if kind == EntryKind::Dir {
            // What the run made or changed inside the directory moves with it;
            // entries it deleted stay deleted where they were.
            let prefix = format!("{from}/");
            let moved: Vec<(String, Entry)> = self
                .entries
                .range(prefix.clone()..)
                .take_while(|(path, _)| path.starts_with(&prefix))
                .filter(|(_, e)| e.now.is_some())
                .map(|(path, e)| (path.clone(), *e))
                .collect();
            for (path, e) in moved {
                let kind = e.now.expect("filtered");
                self.removed(&path, e.before.unwrap_or(kind));
                self.created(&format!("{to}/{}", &path[prefix.len()..]), kind, None);
            }
        }
        self.removed(from, kind);
        self.created(to, kind, to_before);
    }

    /// The changes, sorted by path.
    pub fn finish(&self) -> FileChanges {
        let mut changes = FileChanges {
            incomplete: self.omitted > 0,
            omitted: self.omitted,
            ..FileChanges::default()
        };
        for (path, e) in &self.entries {
            let change = |kind| FileChange {
                path: path.clone(),
                kind,
            };
            match (e.before, e.now) {
                (None, Some(now)) => changes.created.push(change(now)),
                (Some(before), None) => changes.deleted.push(change(before)),
                (Some(before), Some(now)) if e.modified || before != now => {
                    changes.modified.push(change(now))
                }
                _ => {}
            }
        }
        changes
    }
}

/// Resolve `rel` (a guest path relative to a descriptor) against `base` (the
/// descriptor's workspace-relative path), lexically.
pub fn join(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = if base.is_empty() {
        Vec::new()
    } else {
        base.split('/').collect()
    };
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntryKind::{Dir, File};

    fn paths(list: &[FileChange]) -> Vec<&str> {
        list.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn created_then_removed_is_no_change() {
        let mut log = ChangeLog::default();
        log.created("r/a", File, None);
        log.modified("r/a", File);
        log.removed("r/a", File);
        assert!(log.finish().is_empty());
        assert!(log.entries.is_empty());
    }

    #[test]
    fn existing_files_are_modified_deleted_or_replaced() {
        let mut log = ChangeLog::default();
        log.modified("r/m", File);
        log.removed("r/d", File);
        log.removed("r/x", File);
        log.created("r/x", File, None);
        let changes = log.finish();
        assert_eq!(paths(&changes.modified), ["r/m", "r/x"]);
        assert_eq!(paths(&changes.deleted), ["r/d"]);
        assert!(changes.created.is_empty());
    }

    #[test]
    fn renames_move_what_the_run_made() {
        let mut log = ChangeLog::default();
        log.created("r/tmp", Dir, None);
        log.created("r/tmp/a.md", File, None);
        log.renamed("r/tmp", Dir, "r/final", None);
        let changes = log.finish();
        assert_eq!(paths(&changes.created), ["r/final", "r/final/a.md"]);
        assert!(changes.deleted.is_empty());

        let mut log = ChangeLog::default();
        log.renamed("r/a.txt", File, "r/b.txt", None);
        let changes = log.finish();
        assert_eq!(paths(&changes.created), ["r/b.txt"]);
        assert_eq!(paths(&changes.deleted), ["r/a.txt"]);
    }

    #[test]
    fn a_full_log_counts_what_it_omits() {
        let mut log = ChangeLog::default();
        for i in 0..MAX_ENTRIES + 5 {
            log.created(&format!("f{i}"), File, None);
        }
        let changes = log.finish();
        assert_eq!(changes.created.len(), MAX_ENTRIES);
        assert!(changes.incomplete);
        assert_eq!(changes.omitted, 5);
    }

    #[test]
    fn paths_join_lexically() {
        assert_eq!(join("", "a/./b"), "a/b");
        assert_eq!(join("reports", "x/../y"), "reports/y");
        assert_eq!(join("reports", ""), "reports");
    }
}
