//! A deterministic walk of the workspace that yields its text files.
//!
//! Entries are visited depth first in byte order of their names. Symbolic
//! links are never followed (nor reported); files over [`MAX_FILE_SIZE`] and
//! binary files (a NUL byte in the first [`BINARY_SNIFF`] bytes) are skipped.
//! Paths are relative to the walk's root, with `/` separators.
//!
//! Used by `deep-search` and `todo-report`; handy for any subagent that scans
//! the workspace.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::RunError;

/// Directory names left out wherever they appear, unless a caller opts back in.
pub const SKIPPED_DIRS: [&str; 3] = [".git", "target", "node_modules"];
/// Files larger than this are not read.
pub const MAX_FILE_SIZE: u64 = 4 << 20;
/// How much of a file is checked for NUL bytes to tell binary from text.
pub const BINARY_SNIFF: usize = 8 << 10;

/// Decides which parts of the tree a walk leaves out, by relative path.
pub trait Filter {
    /// Leave out the directory at `path` and everything below it.
    fn skip_dir(&self, path: &str) -> bool;
    /// Leave out the file at `path` without reading it.
    fn skip_file(&self, path: &str) -> bool;
}

/// A text file found by the walk.
pub struct TextFile {
    /// Relative to the root, with `/` separators.
    pub path: String,
    /// The contents, with invalid UTF-8 replaced by U+FFFD.
    pub text: String,
}

/// What a walk has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Text files yielded.
    pub scanned: usize,
    /// Files left out for being binary or too large.
    pub skipped: usize,
    /// Files and directories that could not be read.
    pub unreadable: usize,
}

/// An iterator over the text files below a root.
pub struct Walk<'a, F> {
    filter: &'a F,
    /// Entries still to visit as (full path, relative path, type as the
    /// listing gave it); the next is last.
    pending: Vec<(PathBuf, String, fs::FileType)>,
    stats: Stats,
}

impl<'a, F: Filter> Walk<'a, F> {
    /// Start a walk of `root`.
    ///
    /// # Errors
    ///
    /// `RunError::Failed` when `root` cannot be listed.
    pub fn new(root: &Path, filter: &'a F) -> Result<Self, RunError> {
        let mut walk = Walk {
            filter,
            pending: Vec::new(),
            stats: Stats::default(),
        };
        walk.push_children(root, "")
            .map_err(|err| RunError::failed(format!("cannot read {}: {err}", root.display())))?;
        Ok(walk)
    }

    /// What the walk has seen so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Queue the entries of directory `dir` (relative path `rel`), sorted,
    /// with their types from the listing (no `stat` per entry). Entries that
    /// cannot be listed (under WASI, names that are not UTF-8) are counted as
    /// unreadable.
    fn push_children(&mut self, dir: &Path, rel: &str) -> std::io::Result<()> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir)? {
            match entry.and_then(|entry| Ok((entry.file_name(), entry.file_type()?))) {
                Ok(entry) => entries.push(entry),
                Err(_) => self.stats.unreadable += 1,
            }
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.pending
            .extend(entries.into_iter().rev().map(|(name, file_type)| {
                let name_text = name.to_string_lossy();
                let child_rel = if rel.is_empty() {
                    name_text.into_owned()
                } else {
                    format!("{rel}/{name_text}")
                };
                (dir.join(&name), child_rel, file_type)
            }));
        Ok(())
    }

    /// Read the file at `full`, or `None` (counted) when it is not text. Its
    /// size is checked on the open file, before reading.
    fn read_text(&mut self, full: &Path) -> Option<String> {
        let read = || -> std::io::Result<Option<Vec<u8>>> {
            let file = fs::File::open(full)?;
            let size = file.metadata()?.len();
            if size > MAX_FILE_SIZE {
                return Ok(None);
            }
            let mut bytes = Vec::with_capacity(size as usize);
            // The size the open file had: no extra read to find the end.
            file.take(size).read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        };
        let bytes = match read() {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.stats.skipped += 1;
                return None;
            }
            Err(_) => {
                self.stats.unreadable += 1;
                return None;
            }
        };
        if memchr::memchr(0, &bytes[..bytes.len().min(BINARY_SNIFF)]).is_some() {
            self.stats.skipped += 1;
            return None;
        }
        Some(if simdutf8::basic::from_utf8(&bytes).is_ok() {
            // SAFETY: just validated as UTF-8.
            unsafe { String::from_utf8_unchecked(bytes) }
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }
}

impl<F: Filter> Iterator for Walk<'_, F> {
    type Item = TextFile;

    fn next(&mut self) -> Option<TextFile> {
        while let Some((full, rel, file_type)) = self.pending.pop() {
            if file_type.is_dir() {
                if !self.filter.skip_dir(&rel) && self.push_children(&full, &rel).is_err() {
                    self.stats.unreadable += 1;
                }
            } else if file_type.is_file()
                && !self.filter.skip_file(&rel)
                && let Some(text) = self.read_text(&full)
            {
                self.stats.scanned += 1;
                return Some(TextFile { path: rel, text });
            }
        }
        None
    }
}

/// The last component of a relative path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tree;

    struct SkipDefaults;

    impl Filter for SkipDefaults {
        fn skip_dir(&self, path: &str) -> bool {
            SKIPPED_DIRS.contains(&file_name(path))
        }
        fn skip_file(&self, _path: &str) -> bool {
            false
        }
    }

    fn walk_paths(root: &Path) -> (Vec<String>, Stats) {
        let mut walk = Walk::new(root, &SkipDefaults).unwrap();
        let paths = walk.by_ref().map(|file| file.path).collect();
        (paths, walk.stats())
    }

    #[test]
    fn walks_sorted_text_files_and_skips_the_rest() {
        let root = tree(&[
            ("b.txt", "b"),
            ("a/z.txt", "z"),
            ("a/y.txt", "y"),
            ("bin.dat", "x\0y"),
            ("target/out.txt", "built"),
            ("sub/.git/HEAD", "ref"),
        ]);
        let (paths, stats) = walk_paths(root.path());
        assert_eq!(paths, ["a/y.txt", "a/z.txt", "b.txt"]);
        assert_eq!(
            stats,
            Stats {
                scanned: 3,
                skipped: 1,
                unreadable: 0
            }
        );
    }

    #[test]
    fn skips_large_files() {
        let root = tree(&[
            ("big.txt", &"x".repeat(MAX_FILE_SIZE as usize + 1)),
            ("small.txt", "x"),
        ]);
        let (paths, stats) = walk_paths(root.path());
        assert_eq!(paths, ["small.txt"]);
        assert_eq!(stats.skipped, 1);
    }

    #[cfg(unix)]
    #[test]
    fn does_not_follow_symlinks() {
        let root = tree(&[("real/a.txt", "a")]);
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("link")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real/a.txt"), root.path().join("b.txt"))
            .unwrap();
        assert_eq!(walk_paths(root.path()).0, ["real/a.txt"]);
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let err = Walk::new(Path::new("/no/such/dir"), &SkipDefaults)
            .err()
            .unwrap();
        assert!(
            matches!(err, RunError::Failed(message) if message.starts_with("cannot read /no/such/dir"))
        );
    }
}
