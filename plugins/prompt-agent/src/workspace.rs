//! The workspace as the tools see it: paths the model gives, resolved
//! lexically to workspace-relative paths, and the directories this run may
//! write.
//!
//! The model always sees guest paths (`/workspace/src/main.rs`); the files
//! live below [`Workspace::root`], which is `/workspace` in the guest and a
//! temporary directory in unit tests.

use std::path::{Path, PathBuf};

use subagent_sdk::WORKSPACE;

/// The workspace root, and what this run may write in it.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    /// Workspace-relative directories, `/`-separated; `""` is the whole workspace.
    writable: Vec<String>,
}

impl Workspace {
    /// The workspace at `root`, writable in `writable_dirs`: guest paths as in
    /// `Task::writable_dirs` (`/workspace/reports`). Paths outside the
    /// workspace are ignored.
    pub fn new(root: impl Into<PathBuf>, writable_dirs: &[String]) -> Workspace {
        let writable = writable_dirs
            .iter()
            .filter_map(|dir| resolve(dir).ok())
            .collect();
        Workspace {
            root: root.into(),
            writable,
        }
    }

    /// Where the workspace-relative path `rel` really is.
    pub fn real(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// The root of the walk for `search`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this run may write the workspace-relative path `rel`.
    pub fn may_write(&self, rel: &str) -> bool {
        self.writable.iter().any(|dir| is_within(rel, dir))
    }

    /// Whether this run may write anything at all.
    pub fn is_read_only(&self) -> bool {
        self.writable.is_empty()
    }

    /// What this run may write, for people and models: `nothing`,
    /// `anything in /workspace`, or `/workspace/reports/, /workspace/notes/`.
    pub fn writable_description(&self) -> String {
        if self.writable.is_empty() {
            "nothing".to_owned()
        } else if self.writable.iter().any(String::is_empty) {
            format!("anything in {WORKSPACE}")
        } else {
            let dirs: Vec<String> = self
                .writable
                .iter()
                .map(|dir| format!("{}/", guest_path(dir)))
                .collect();
            dirs.join(", ")
        }
    }
}

/// Resolve `path`, relative to `/workspace` or absolute under it, to a
/// normalized workspace-relative path (`""` for the root). Lexical only:
/// `.` and `..` are folded, symbolic links are not looked at (the sandbox
/// keeps those inside anyway).
///
/// # Errors
///
/// A message for the model when the path leaves the workspace.
pub fn resolve(path: &str) -> Result<String, String> {
    let trimmed = path.trim();
    let relative = if trimmed.starts_with('/') {
        match trimmed.strip_prefix(WORKSPACE) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => {
                return Err(format!(
                    "`{trimmed}` is outside the workspace: give a path relative to {WORKSPACE}, or one under it"
                ));
            }
        }
    } else {
        trimmed
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "`{trimmed}` leads outside the workspace: paths must stay inside {WORKSPACE}"
                    ));
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// The guest path of the workspace-relative path `rel`.
pub fn guest_path(rel: &str) -> String {
    if rel.is_empty() {
        WORKSPACE.to_owned()
    } else {
        format!("{WORKSPACE}/{rel}")
    }
}

/// `rel` equals `dir` or lies below it (both workspace-relative).
fn is_within(rel: &str, dir: &str) -> bool {
    dir.is_empty()
        || rel == dir
        || rel
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_relative_to_the_workspace() {
        assert_eq!(resolve("src/main.rs").unwrap(), "src/main.rs");
        assert_eq!(resolve("./src//a/../main.rs").unwrap(), "src/main.rs");
        assert_eq!(resolve("/workspace/src/").unwrap(), "src");
        assert_eq!(resolve("/workspace").unwrap(), "");
        assert_eq!(resolve(".").unwrap(), "");
        assert_eq!(resolve("").unwrap(), "");
        assert_eq!(resolve("a/..").unwrap(), "");
    }

    #[test]
    fn paths_may_not_leave_the_workspace() {
        assert_eq!(
            resolve("../etc/passwd").unwrap_err(),
            "`../etc/passwd` leads outside the workspace: paths must stay inside /workspace"
        );
        assert!(resolve("src/../../x").is_err());
        assert!(resolve("/workspace/..").is_err());
        assert_eq!(
            resolve("/etc/passwd").unwrap_err(),
            "`/etc/passwd` is outside the workspace: give a path relative to /workspace, or one under it"
        );
        assert!(resolve("/workspacex/a").is_err());
    }

    #[test]
    fn writes_are_allowed_only_in_the_writable_dirs() {
        let ws = Workspace::new("/tmp/ws", &["/workspace/reports".into()]);
        assert!(ws.may_write("reports/todo.md"));
        assert!(ws.may_write("reports/a/b.md"));
        assert!(!ws.may_write("reports2/x"));
        assert!(!ws.may_write("src/main.rs"));
        assert_eq!(ws.writable_description(), "/workspace/reports/");
        assert_eq!(ws.real("reports/x"), Path::new("/tmp/ws/reports/x"));

        let all = Workspace::new("/tmp/ws", &["/workspace".into()]);
        assert!(all.may_write("src/main.rs"));
        assert_eq!(all.writable_description(), "anything in /workspace");

        let none = Workspace::new("/tmp/ws", &[]);
        assert!(none.is_read_only() && !none.may_write("a"));
        assert_eq!(none.writable_description(), "nothing");
    }
}
