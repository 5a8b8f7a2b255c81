//! Turn a subagent's permissions into what its guest can reach: which
//! directories it sees, which of them it may write, and what it may not touch
//! at all.
//!
//! The guest sees the workspace at `/workspace`, read-only. Each effective
//! write directory is a read-write preopen at `/workspace/<rel>` (wasi-libc
//! resolves a path against the longest matching preopen). Nothing else: no
//! environment, arguments, sockets or inherited stdio.
//!
//! The effective write set is the intersection of what the manifest allows,
//! what the launch asks for, and (for nested tasks) what the parent has. It is
//! computed once, before the task starts; nothing widens it at run time.
//!
//! A [`Sandbox`] is checked when a task is launched, and *opened* when it
//! starts ([`Sandbox::open`]): the host opens the workspace and each write
//! directory itself, component by component, never following a symlink, and
//! the guest's directories are those open handles ([`Grant`]). What happens
//! to the paths afterwards cannot redirect them. A nested task's directories
//! are opened beneath its parent's handles, so a child can never reach past
//! what its parent was given.

mod files;
mod output;

pub use files::{EntryKind, FileChange, FileChanges};
pub use output::{OutputLog, OutputSink, OutputStream, StreamKind};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::manifest::{PermissionMode, normalize_write_dir};

/// Where the guest sees the workspace.
pub const GUEST_WORKSPACE: &str = "/workspace";

/// How the guest may use a granted directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
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
            // Said with the grant, so the caller sees what it may ask for.
            let normalized =
                normalize_write_dir(dir).map_err(|problem| SandboxError::InvalidWriteDir {
                    dir: dir.clone(),
                    problem: format!(
                        "{problem}; subagent `{subagent}` may write only {self} ({grant})"
                    ),
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
    #[error(
        "write directory `{dir}` cannot be used: `{component}` is a symlink (to `{target}`)\n  = help: grant a real directory inside the workspace; the host never follows a symlink to a write directory"
    )]
    Symlink {
        dir: String,
        component: String,
        target: String,
    },
    #[error(
        "write directory `{dir}` cannot be used: `{component}` is not a directory\n  = help: grant a directory inside the workspace"
    )]
    NotADirectory { dir: String, component: String },
    #[error("write directory `{dir}` {problem}\n  = help: write directories must be real directories inside the workspace `{}`", workspace.display())]
    Escapes {
        dir: String,
        problem: String,
        workspace: PathBuf,
    },
}

impl SandboxError {
    /// Whether the grant itself is refused (as opposed to an unusable workspace).
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            SandboxError::Denied { .. }
                | SandboxError::Symlink { .. }
                | SandboxError::NotADirectory { .. }
                | SandboxError::Escapes { .. }
        )
    }
}

/// The directories one task was granted, opened by the host when it started.
/// Only [`Sandbox::open`] makes one, so holding a `Grant` is holding exactly
/// what a plan allowed.
pub struct Grant {
    root: Arc<Dir>,
    root_access: Access,
    /// Each write directory (workspace-relative) and its handle.
    writes: Vec<(String, Arc<Dir>)>,
}

impl Grant {
    /// The workspace, as opened.
    pub fn root(&self) -> &Arc<Dir> {
        &self.root
    }

    /// Every granted directory: the workspace ("") first, then each write
    /// directory, with how the guest may use it.
    pub fn directories(&self) -> impl Iterator<Item = (&str, &Arc<Dir>, Access)> {
        std::iter::once(("", &self.root, self.root_access)).chain(
            self.writes
                .iter()
                .map(|(path, dir)| (path.as_str(), dir, Access::ReadWrite)),
        )
    }

    /// The handle beneath which `dir` lies writably, and `dir` relative to it.
    fn base_for<'d>(&self, dir: &'d str) -> Option<(&Arc<Dir>, &'d str)> {
        if self.root_access == Access::ReadWrite {
            return Some((&self.root, dir));
        }
        self.writes
            .iter()
            .find(|(base, _)| is_within(dir, base))
            .map(|(base, handle)| (handle, dir[base.len()..].trim_start_matches('/')))
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("root_access", &self.root_access)
            .field(
                "writes",
                &self.writes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A checked plan for one task's filesystem: the canonical workspace and the
/// writable directories, each verified to be a real directory inside it (or
/// inside the parent's grant, for a nested task).
#[derive(Clone, Debug)]
pub struct Sandbox {
    workspace: PathBuf,
    writes: WriteSet,
    /// The parent's grant, for a nested task: everything opens beneath it.
    within: Option<Arc<Grant>>,
    /// The grant, once opened; shared by clones, so the task manager can
    /// hand a running task's grant to its children.
    opened: Arc<Mutex<Option<Arc<Grant>>>>,
    /// The workspace as checked: the handle the check opened, for
    /// [`Sandbox::open`] to start from, until the task waits in a queue
    /// ([`Sandbox::park`]). Shared by clones.
    checked: Arc<Mutex<Checked>>,
}

/// The workspace of a [`Sandbox`] between its check and its start.
#[derive(Debug)]
enum Checked {
    /// The handle the check opened.
    Open(Arc<Dir>),
    /// No handle held: the workspace is opened again by path, and must be
    /// the directory that was checked (its device and inode), if known.
    Parked(Option<(u64, u64)>),
}

impl Sandbox {
    /// Check `writes` against `workspace` and create missing write
    /// directories. Every host-side step goes through a `cap_std` handle,
    /// one path component at a time, and no symlink is followed.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Workspace`] for an unusable workspace,
    /// [`SandboxError::Symlink`] or [`SandboxError::NotADirectory`] for a
    /// write dir that is, or passes through, something other than a directory.
    pub fn new(workspace: &Path, writes: WriteSet) -> Result<Sandbox, SandboxError> {
        Sandbox::prepare(workspace, writes, None, true)
    }

    /// Like [`Sandbox::new`], but change nothing: a missing write directory
    /// is checked as far as it exists.
    ///
    /// # Errors
    ///
    /// As [`Sandbox::new`].
    pub fn check(workspace: &Path, writes: WriteSet) -> Result<Sandbox, SandboxError> {
        Sandbox::prepare(workspace, writes, None, false)
    }

    /// A sandbox for a task nested in one that was granted `parent`: its
    /// write directories are checked (and later opened) beneath the parent's
    /// open handles, not by path.
    ///
    /// # Errors
    ///
    /// As [`Sandbox::new`], and [`SandboxError::Denied`] for a directory the
    /// parent cannot write.
    pub fn within(
        parent: Arc<Grant>,
        workspace: &Path,
        writes: WriteSet,
        create: bool,
    ) -> Result<Sandbox, SandboxError> {
        Sandbox::prepare(workspace, writes, Some(parent), create)
    }

    fn prepare(
        workspace: &Path,
        writes: WriteSet,
        within: Option<Arc<Grant>>,
        create: bool,
    ) -> Result<Sandbox, SandboxError> {
        let ws_error = |source| SandboxError::Workspace {
            path: workspace.to_owned(),
            source,
        };
        let (workspace, root) = match &within {
            Some(parent) => (workspace.to_owned(), parent.root.clone()),
            None => {
                let (root, workspace) = open_canonical(workspace).map_err(ws_error)?;
                (workspace, Arc::new(root))
            }
        };
        let checked = match &within {
            Some(_) => Checked::Parked(None),
            None => Checked::Open(root.clone()),
        };
        let sandbox = Sandbox {
            workspace,
            writes,
            within,
            opened: Arc::default(),
            checked: Arc::new(Mutex::new(checked)),
        };
        if let WriteSet::Dirs(dirs) = &sandbox.writes {
            for dir in dirs {
                let (base, rel) = sandbox.base_for(&root, dir)?;
                walk(&sandbox.workspace, base, dir, rel, create)?;
            }
        }
        Ok(sandbox)
    }

    fn base_for<'a, 'd>(
        &'a self,
        root: &'a Arc<Dir>,
        dir: &'d str,
    ) -> Result<(&'a Arc<Dir>, &'d str), SandboxError> {
        match &self.within {
            None => Ok((root, dir)),
            Some(parent) => parent.base_for(dir).ok_or_else(|| SandboxError::Escapes {
                dir: dir.to_owned(),
                problem: "is not inside a directory the parent task was granted".into(),
                workspace: self.workspace.clone(),
            }),
        }
    }

    /// Open the grant: the workspace and each write directory (created if
    /// missing), component by component, never following a symlink. Done
    /// once, when the task starts; later calls return the same grant.
    ///
    /// # Errors
    ///
    /// As [`Sandbox::new`], checked again now: a write directory that was
    /// swapped for a symlink since launch is refused.
    pub fn open(&self) -> Result<Arc<Grant>, SandboxError> {
        let mut opened = self.opened.lock().unwrap();
        if let Some(grant) = &*opened {
            return Ok(grant.clone());
        }
        let ws_error = |source| SandboxError::Workspace {
            path: self.workspace.clone(),
            source,
        };
        let checked = std::mem::replace(&mut *self.checked.lock().unwrap(), Checked::Parked(None));
        let root = match (&self.within, checked) {
            (Some(parent), _) => parent.root.clone(),
            (None, Checked::Open(root)) => root,
            (None, Checked::Parked(expected)) => {
                let root = Dir::open_ambient_dir(&self.workspace, ambient_authority())
                    .map_err(ws_error)?;
                if expected.is_some() && identity(&root).ok() != expected {
                    return Err(ws_error(std::io::Error::other(
                        "it was replaced by another directory after the task was launched",
                    )));
                }
                Arc::new(root)
            }
        };
        let mut writes = Vec::new();
        if let WriteSet::Dirs(dirs) = &self.writes {
            for dir in dirs {
                let (base, rel) = self.base_for(&root, dir)?;
                let handle = walk(&self.workspace, base, dir, rel, true)?
                    .expect("walking with create opens every component");
                writes.push((dir.clone(), handle));
            }
        }
        let root_access = if self.writes == WriteSet::Workspace {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        let grant = Arc::new(Grant {
            root,
            root_access,
            writes,
        });
        *opened = Some(grant.clone());
        Ok(grant)
    }

    /// The grant, if the task has started (and not yet ended).
    pub fn opened(&self) -> Option<Arc<Grant>> {
        self.opened.lock().unwrap().clone()
    }

    /// Let go of the workspace handle the check opened: the task waits (in a
    /// queue, or prepared but not launched), and a waiting task holds no
    /// descriptor. [`Sandbox::open`] then opens the workspace again by path
    /// and makes sure it is still the directory that was checked.
    pub fn park(&self) {
        let mut checked = self.checked.lock().unwrap();
        if let Checked::Open(root) = &*checked {
            // What it must still be when opened again; a handle that cannot
            // say is kept instead.
            if let Ok(identity) = identity(root) {
                *checked = Checked::Parked(Some(identity));
            }
        }
    }

    /// Close the grant once its task has ended, for every copy of this
    /// sandbox at once: its handles (and this copy's hold on a parent's) go
    /// when the running task lets go of them, however long another copy
    /// lives. A long-lived task manager keeps the sandbox of every task it
    /// remembers; without this each would pin descriptors.
    pub fn release(&mut self) {
        self.opened.lock().unwrap().take();
        self.within = None;
        *self.checked.lock().unwrap() = Checked::Parked(None);
    }

    /// The canonical host path of the workspace.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }
}

/// Open the workspace at `path` and name it canonically. An absolute path
/// with no `.` or `..` that opens without following a symlink (one
/// `openat2` with `RESOLVE_NO_SYMLINKS`) is already canonical; any other is
/// resolved first, then opened.
fn open_canonical(path: &Path) -> std::io::Result<(Dir, PathBuf)> {
    use std::path::Component;
    #[cfg(target_os = "linux")]
    if path.is_absolute() && !path.components().any(|c| c == Component::ParentDir) {
        use rustix::fs::{CWD, Mode, OFlags, ResolveFlags, openat2};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match openat2(CWD, path, flags, Mode::empty(), ResolveFlags::NO_SYMLINKS) {
            Ok(fd) => {
                let dir = Dir::from_std_file(std::fs::File::from(fd));
                return Ok((dir, path.components().collect()));
            }
            // A symlink on the way (ELOOP), or no openat2 (an old kernel, a
            // seccomp filter): resolve it the long way.
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let canonical = path.canonicalize()?;
    let dir = Dir::open_ambient_dir(&canonical, ambient_authority())?;
    Ok((dir, canonical))
}

fn identity(dir: &Dir) -> std::io::Result<(u64, u64)> {
    use cap_std::fs::MetadataExt;
    let meta = dir.dir_metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// Open `rel` (a suffix of the workspace-relative `dir`) beneath `base`, one
/// component at a time, refusing symlinks and non-directories. Missing
/// components are created with `create`; without, the walk stops at the first
/// missing one and returns `None`.
fn walk(
    workspace: &Path,
    base: &Arc<Dir>,
    dir: &str,
    rel: &str,
    create: bool,
) -> Result<Option<Arc<Dir>>, SandboxError> {
    let mut current = base.clone();
    // The components walked so far, workspace-relative, to name in errors.
    let mut named = dir[..dir.len() - rel.len()]
        .trim_end_matches('/')
        .to_owned();
    for component in rel.split('/').filter(|c| !c.is_empty()) {
        if !named.is_empty() {
            named.push('/');
        }
        named.push_str(component);
        let refuse =
            |at: &Dir, err: std::io::Error| refusal(workspace, at, component, &named, dir, err);
        let next = match current.open_dir_nofollow(component) {
            Ok(next) => next,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && create => {
                match current.create_dir(component) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(refuse(&current, e)),
                }
                // Whatever stands there now must still be a real directory.
                current
                    .open_dir_nofollow(component)
                    .map_err(|e| refuse(&current, e))?
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(refuse(&current, err)),
        };
        current = Arc::new(next);
    }
    Ok(Some(current))
}

/// Why `component` of write directory `dir` (walked as far as `named`)
/// cannot be opened beneath `at`.
fn refusal(
    workspace: &Path,
    at: &Dir,
    component: &str,
    named: &str,
    dir: &str,
    err: std::io::Error,
) -> SandboxError {
    match at.symlink_metadata(component) {
        Ok(meta) if meta.is_symlink() => SandboxError::Symlink {
            dir: dir.to_owned(),
            component: named.to_owned(),
            target: at
                .read_link_contents(component)
                .map_or_else(|_| "?".into(), |t| t.display().to_string()),
        },
        Ok(meta) if !meta.is_dir() => SandboxError::NotADirectory {
            dir: dir.to_owned(),
            component: named.to_owned(),
        },
        _ => SandboxError::Escapes {
            dir: dir.to_owned(),
            problem: format!("cannot be opened: {err}"),
            workspace: workspace.to_owned(),
        },
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
