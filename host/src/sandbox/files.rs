//! File results: what a run created, modified and deleted in the workspace,
//! as the host's filesystem capability saw the guest do it
//! (`capabilities::filesystem::ChangeLog`). The guest's word is never taken.

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
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
    /// True when more paths changed than the host records (`omitted` says
    /// how many were left out).
    #[serde(default)]
    pub incomplete: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FileChanges {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }
}
