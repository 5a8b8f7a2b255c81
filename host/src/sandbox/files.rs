//! File results observed by the host: a snapshot of the writable part of the
//! workspace before and after a run, and the difference between them.
//!
//! The guest's word is never taken for what it changed. Snapshots go through
//! a `cap_std` handle of the workspace and do not follow symlinks. A file
//! counts as modified when its size, modification time or inode changed.

use std::collections::BTreeMap;

use cap_std::fs::{Dir, Metadata};
use cap_std::time::SystemTime;

use super::WriteSet;

/// The most entries a snapshot records; past it, file results are marked incomplete.
const MAX_ENTRIES: usize = 200_000;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    kind: EntryKind,
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// The writable entries of a workspace at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    entries: BTreeMap<String, Stamp>,
    incomplete: bool,
}

/// One change the host saw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileChange {
    /// Workspace-relative, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
}

/// What a run created, modified and deleted in the workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileChanges {
    pub created: Vec<FileChange>,
    pub modified: Vec<FileChange>,
    pub deleted: Vec<FileChange>,
    /// True when a snapshot hit its entry limit and changes may be missing.
    #[serde(default)]
    pub incomplete: bool,
}

impl FileChanges {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }
}

#[cfg(unix)]
fn inode(meta: &Metadata) -> u64 {
    use cap_std::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_meta: &Metadata) -> u64 {
    0
}

impl Snapshot {
    /// Record every entry under the writable directories of `root`.
    pub fn take(root: &Dir, writes: &WriteSet) -> Snapshot {
        let mut snapshot = Snapshot::default();
        match writes {
            WriteSet::None => {}
            WriteSet::Workspace => snapshot.walk(root, ""),
            WriteSet::Dirs(dirs) => {
                for dir in dirs {
                    if let Ok(sub) = root.open_dir(dir) {
                        snapshot.walk(&sub, dir);
                    }
                }
            }
        }
        snapshot
    }

    fn walk(&mut self, dir: &Dir, prefix: &str) {
        let Ok(read) = dir.entries() else { return };
        let mut names: Vec<String> = read
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            if self.entries.len() >= MAX_ENTRIES {
                self.incomplete = true;
                return;
            }
            let Ok(meta) = dir.symlink_metadata(&name) else {
                continue;
            };
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let kind = if meta.is_symlink() {
                EntryKind::Symlink
            } else if meta.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::File
            };
            let stamp = Stamp {
                kind,
                len: meta.len(),
                modified: meta.modified().ok(),
                inode: inode(&meta),
            };
            self.entries.insert(path.clone(), stamp);
            if kind == EntryKind::Dir {
                if let Ok(sub) = dir.open_dir(&name) {
                    self.walk(&sub, &path);
                }
            }
        }
    }

    /// What changed from `self` (before) to `after`.
    pub fn diff(&self, after: &Snapshot) -> FileChanges {
        let mut changes = FileChanges {
            incomplete: self.incomplete || after.incomplete,
            ..FileChanges::default()
        };
        for (path, new) in &after.entries {
            match self.entries.get(path) {
                None => changes.created.push(FileChange {
                    path: path.clone(),
                    kind: new.kind,
                }),
                // A directory's own stamp changes whenever its entries do; report the entries.
                Some(old) if old.kind == EntryKind::Dir && new.kind == EntryKind::Dir => {}
                Some(old) if old != new => changes.modified.push(FileChange {
                    path: path.clone(),
                    kind: new.kind,
                }),
                Some(_) => {}
            }
        }
        for (path, old) in &self.entries {
            if !after.entries.contains_key(path) {
                changes.deleted.push(FileChange {
                    path: path.clone(),
                    kind: old.kind,
                });
            }
        }
        changes
    }
}
