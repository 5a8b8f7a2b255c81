//! Turn a subagent's permissions into a WASI context: which directories the
//! guest sees, which of them it may write, and what it may not touch at all.
//!
//! The guest sees the workspace at `/workspace`, read-only. Each effective
//! write directory is preopened read-write at `/workspace/<rel>` (wasi-libc
//! resolves a path against the longest matching preopen). Nothing else is
//! preopened: no environment, arguments, sockets or inherited stdio.
//!
//! The effective write set is the intersection of what the manifest allows,
//! what the launch asks for, and (for nested tasks) what the parent has. It is
//! computed once, before the task starts; nothing widens it at run time.

mod files;
mod output;

pub use files::{FileChange, FileChanges, Snapshot};
pub use output::{OutputLog, OutputSink, OutputStream, StreamKind};

use std::fmt;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::manifest::{PermissionMode, normalize_write_dir};

/// Where the guest sees the workspace.
pub const GUEST_WORKSPACE: &str = "/workspace";

/// How the guest may use a preopened directory. Our own type, so a wasmtime
/// upgrade touches only [`Access::perms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

impl Access {
    fn perms(self) -> FsPerms {
        match self {
            Access::ReadOnly => FsPerms::ReadOnly,
            Access::ReadWrite => FsPerms::ReadWrite,
        }
    }
}

/// Which parts of the workspace a task may write.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "dirs", rename_all = "kebab-case")]
pub enum WriteSet {
    /// Nothing.
    None,
    /// The whole workspace.
    Workspace,
    /// These workspace-relative directories (normalized, `/`-separated, none
    /// inside another).
    Dirs(Vec<String>),
}

impl WriteSet {
    /// The write set a manifest grants.
    pub fn from_manifest(mode: PermissionMode, allowed: Option<&[String]>) -> WriteSet {
        match (mode, allowed) {
            (PermissionMode::Readonly, _) => WriteSet::None,
            (PermissionMode::Default, None) => WriteSet::Workspace,
            (PermissionMode::Default, Some(dirs)) => WriteSet::dirs(dirs.iter().cloned()),
        }
    }

    fn dirs(dirs: impl IntoIterator<Item = String>) -> WriteSet {
        let mut dirs: Vec<String> = dirs.into_iter().collect();
        dirs.sort();
        dirs.dedup();
        // Drop directories that another one in the set already covers.
        let covered: Vec<String> = dirs.clone();
        dirs.retain(|d| !covered.iter().any(|o| o != d && is_within(d, o)));
        if dirs.is_empty() {
            WriteSet::None
        } else {
            WriteSet::Dirs(dirs)
        }
    }

    /// Does this set allow writing `dir` (a normalized relative path)?
    pub fn allows(&self, dir: &str) -> bool {
        match self {
            WriteSet::None => false,
            WriteSet::Workspace => true,
            WriteSet::Dirs(dirs) => dirs.iter().any(|d| is_within(dir, d)),
        }
    }

    /// Is every directory `self` may write also writable under `other`?
    pub fn is_subset_of(&self, other: &WriteSet) -> bool {
        match self {
            WriteSet::None => true,
            WriteSet::Workspace => *other == WriteSet::Workspace,
            WriteSet::Dirs(dirs) => dirs.iter().all(|d| other.allows(d)),
        }
    }

    /// Narrow to the directories `requested`, each of which must lie inside
    /// this set. `grant` names where this set came from, for the refusal.
    ///
    /// # Errors
    ///
    /// [`SandboxError::InvalidWriteDir`] for a malformed directory,
    /// [`SandboxError::Denied`] for one outside this set.
    pub fn narrow(
        &self,
        subagent: &str,
        requested: &[String],
        grant: &str,
    ) -> Result<WriteSet, SandboxError> {
        let mut dirs = Vec::new();
        for dir in requested {
            let normalized =
                normalize_write_dir(dir).map_err(|problem| SandboxError::InvalidWriteDir {
                    dir: dir.clone(),
                    problem,
                })?;
            if !self.allows(&normalized) {
                return Err(SandboxError::Denied {
                    subagent: subagent.to_owned(),
                    dir: normalized,
                    allowed: self.clone(),
                    grant: grant.to_owned(),
                });
            }
            dirs.push(normalized);
        }
        Ok(WriteSet::dirs(dirs))
    }

    /// The directories both sets allow.
    pub fn intersect(&self, other: &WriteSet) -> WriteSet {
        match (self, other) {
            (WriteSet::None, _) | (_, WriteSet::None) => WriteSet::None,
            (WriteSet::Workspace, set) | (set, WriteSet::Workspace) => set.clone(),
            (WriteSet::Dirs(a), WriteSet::Dirs(b)) => {
                let both = a.iter().flat_map(|x| {
                    b.iter().filter_map(move |y| {
                        if is_within(x, y) {
                            Some(x.clone())
                        } else if is_within(y, x) {
                            Some(y.clone())
                        } else {
                            None
                        }
                    })
                });
                WriteSet::dirs(both)
            }
        }
    }

    /// The guest paths that are writable, for `task.writable-dirs`.
    pub fn guest_paths(&self) -> Vec<String> {
        match self {
            WriteSet::None => Vec::new(),
            WriteSet::Workspace => vec![GUEST_WORKSPACE.to_owned()],
            WriteSet::Dirs(dirs) => dirs
                .iter()
                .map(|d| format!("{GUEST_WORKSPACE}/{d}"))
                .collect(),
        }
    }
}

impl fmt::Display for WriteSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteSet::None => f.write_str("nothing"),
            WriteSet::Workspace => f.write_str("the whole workspace"),
            WriteSet::Dirs(dirs) => {
                let list: Vec<String> = dirs.iter().map(|d| format!("{d}/")).collect();
                f.write_str(&list.join(", "))
            }
        }
    }
}

/// `dir` equals `base` or lies below it (both normalized).
fn is_within(dir: &str, base: &str) -> bool {
    dir == base
        || dir
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The longest prefix of `dir` (a normalized relative path) that exists
/// under `root`, as seen without following the last symlink; "" if none.
fn deepest_existing<'d>(root: &Dir, dir: &'d str) -> &'d str {
    let mut candidate = dir;
    loop {
        if root.symlink_metadata(candidate).is_ok() {
            return candidate;
        }
        match candidate.rfind('/') {
            Some(at) => candidate = &candidate[..at],
            None => return "",
        }
    }
}

/// Why a sandbox could not be set up. Raised before the guest starts.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("workspace `{}` cannot be used: {source}\n  = help: pass an existing directory with --workspace", path.display())]
    Workspace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid write directory `{dir}`: {problem}")]
    InvalidWriteDir { dir: String, problem: String },
    #[error("subagent `{subagent}` may not write `{dir}/`: it may write only {allowed} ({grant})")]
    Denied {
        subagent: String,
        dir: String,
        allowed: WriteSet,
        grant: String,
    },
    #[error("write directory `{dir}` {problem}\n  = help: write directories must resolve (symlinks followed) inside the workspace `{}`", workspace.display())]
    Escapes {
        dir: String,
        problem: String,
        workspace: PathBuf,
    },
    #[error("cannot prepare the sandbox: {0}")]
    Wasi(String),
}

/// A checked plan for one task's filesystem: the canonical workspace and the
/// writable directories, each verified to resolve inside it.
#[derive(Clone, Debug)]
pub struct Sandbox {
    workspace: PathBuf,
    writes: WriteSet,
}

impl Sandbox {
    /// Check `writes` against `workspace` and create missing write directories.
    /// Every host-side step goes through a `cap_std` handle of the workspace,
    /// so a symlink cannot lead the host outside it either.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Workspace`] for an unusable workspace,
    /// [`SandboxError::Escapes`] for a write dir that leads outside it.
    pub fn new(workspace: &Path, writes: WriteSet) -> Result<Sandbox, SandboxError> {
        Sandbox::prepare(workspace, writes, true)
    }

    /// Like [`Sandbox::new`], but change nothing: a missing write directory
    /// is checked through its deepest existing ancestor.
    ///
    /// # Errors
    ///
    /// As [`Sandbox::new`].
    pub fn check(workspace: &Path, writes: WriteSet) -> Result<Sandbox, SandboxError> {
        Sandbox::prepare(workspace, writes, false)
    }

    fn prepare(workspace: &Path, writes: WriteSet, create: bool) -> Result<Sandbox, SandboxError> {
        let ws_error = |source| SandboxError::Workspace {
            path: workspace.to_owned(),
            source,
        };
        let workspace = workspace.canonicalize().map_err(ws_error)?;
        if !workspace.is_dir() {
            return Err(ws_error(std::io::Error::other("it is not a directory")));
        }
        let root = Dir::open_ambient_dir(&workspace, ambient_authority()).map_err(ws_error)?;
        if let WriteSet::Dirs(dirs) = &writes {
            for dir in dirs {
                let escapes = |problem: String| SandboxError::Escapes {
                    dir: dir.clone(),
                    problem,
                    workspace: workspace.clone(),
                };
                // cap-std refuses any path (or symlink target) that leaves `root`.
                let existing = if create {
                    root.create_dir_all(dir).map_err(|e| {
                        escapes(format!("cannot be created inside the workspace ({e})"))
                    })?;
                    dir.as_str()
                } else {
                    deepest_existing(&root, dir)
                };
                if existing.is_empty() {
                    continue;
                }
                root.open_dir(existing)
                    .map_err(|e| escapes(format!("cannot be opened inside the workspace ({e})")))?;
                let resolved = workspace
                    .join(existing)
                    .canonicalize()
                    .map_err(|e| escapes(format!("cannot be resolved ({e})")))?;
                if !resolved.starts_with(&workspace) {
                    return Err(escapes(format!(
                        "resolves to `{}`, outside the workspace",
                        resolved.display()
                    )));
                }
            }
        }
        Ok(Sandbox { workspace, writes })
    }

    /// The canonical host path of the workspace.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    /// A `cap_std` handle of the workspace root.
    ///
    /// # Errors
    ///
    /// When the workspace can no longer be opened.
    pub fn root(&self) -> std::io::Result<Dir> {
        Dir::open_ambient_dir(&self.workspace, ambient_authority())
    }

    /// Build the guest's WASI context: the preopens, captured stdout/stderr,
    /// and nothing else.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Wasi`] when a directory cannot be preopened.
    pub fn wasi_ctx(&self, output: &OutputLog) -> Result<WasiCtx, SandboxError> {
        let mut builder = WasiCtxBuilder::new();
        let workspace_access = if self.writes == WriteSet::Workspace {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        self.preopen(
            &mut builder,
            &self.workspace,
            GUEST_WORKSPACE,
            workspace_access,
        )?;
        if let WriteSet::Dirs(dirs) = &self.writes {
            for dir in dirs {
                self.preopen(
                    &mut builder,
                    &self.workspace.join(dir),
                    &format!("{GUEST_WORKSPACE}/{dir}"),
                    Access::ReadWrite,
                )?;
            }
        }
        builder
            .stdout(output.stream(StreamKind::Stdout))
            .stderr(output.stream(StreamKind::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        Ok(builder.build())
    }

    fn preopen(
        &self,
        builder: &mut WasiCtxBuilder,
        host: &Path,
        guest: &str,
        access: Access,
    ) -> Result<(), SandboxError> {
        builder
            .preopened_dir(host, guest, access.perms())
            .map(|_| ())
            .map_err(|e| SandboxError::Wasi(format!("cannot preopen `{}`: {e}", host.display())))
    }

    /// Record the writable part of the workspace, to diff after the run.
    pub fn snapshot(&self) -> Snapshot {
        match self.root() {
            Ok(root) => Snapshot::take(&root, &self.writes),
            Err(_) => Snapshot::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(list: &[&str]) -> WriteSet {
        WriteSet::dirs(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn nested_dirs_collapse() {
        assert_eq!(
            dirs(&["a/b", "a", "c"]),
            WriteSet::Dirs(vec!["a".into(), "c".into()])
        );
        assert!(dirs(&["ab"]).allows("ab/x"));
        assert!(!dirs(&["a"]).allows("ab"));
    }

    #[test]
    fn narrowing_refuses_wider_dirs() {
        let allowed = dirs(&["reports"]);
        assert_eq!(
            allowed.narrow("x", &["reports/today".into()], "g").unwrap(),
            dirs(&["reports/today"])
        );
        let err = allowed
            .narrow("notes", &["src".into()], "allowed_write_directories")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "subagent `notes` may not write `src/`: it may write only reports/ (allowed_write_directories)"
        );
        assert!(WriteSet::None.narrow("x", &["a".into()], "g").is_err());
        assert!(dirs(&["a"]).is_subset_of(&WriteSet::Workspace));
        assert!(!WriteSet::Workspace.is_subset_of(&dirs(&["a"])));
    }

    #[test]
    fn intersection_keeps_the_narrower_dirs() {
        assert_eq!(
            dirs(&["a", "b/c"]).intersect(&dirs(&["a/x", "b"])),
            dirs(&["a/x", "b/c"])
        );
        assert_eq!(dirs(&["a"]).intersect(&dirs(&["b"])), WriteSet::None);
        assert_eq!(WriteSet::Workspace.intersect(&dirs(&["a"])), dirs(&["a"]));
        assert_eq!(
            WriteSet::None.intersect(&WriteSet::Workspace),
            WriteSet::None
        );
    }
}
