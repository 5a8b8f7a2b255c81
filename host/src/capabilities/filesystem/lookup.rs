//! Path lookups at native cost.
//!
//! cap-std resolves every path beneath its directory handle (`openat2` with
//! `RESOLVE_BENEATH` where the kernel has it): safe, but a `stat` of
//! `a/b/c.rs` costs an `O_PATH` open, a `statx` and a `close`, and wasi-libc
//! asks twice per `stat()` (`stat-at`, then `metadata-hash-at` for the inode
//! number). A tree walk does this for every file. Two small caches bring it
//! back to about what a native walk pays:
//!
//! - the **parent directory** of the last lookup, opened beneath the
//!   descriptor by cap-std: the next lookup in the same directory is one
//!   `statx`/`openat` of a single name relative to it, which cannot leave
//!   it (no `/`, no `..`, and the final symlink is never followed here);
//! - the **last metadata** read (of a path, or of a descriptor just opened),
//!   so the `stat` + `metadata-hash` pair that follows costs nothing.
//!
//! Both are dropped whenever the task changes anything (every mutation
//! bumps the task's generation), so a cached answer is never one the task
//! itself has made stale. Only lookups and read-only opens use them.

use cap_std::fs::{Dir, Metadata};
use rustix::fs::{FileType, Stat};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

use super::types::{DescriptorStat, DescriptorType, MetadataHashValue};

/// What the guest can learn of one filesystem entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    pub ty: DescriptorType,
    nlink: u64,
    pub size: u64,
    atime: Option<Datetime>,
    mtime: Option<Datetime>,
    ctime: Option<Datetime>,
    dev: u64,
    ino: u64,
}

fn datetime(seconds: i64, nanos: i64) -> Option<Datetime> {
    Some(Datetime {
        seconds: u64::try_from(seconds).ok()?,
        nanoseconds: u32::try_from(nanos).ok()?,
    })
}

pub(super) fn descriptor_type(ft: FileType) -> DescriptorType {
    match ft {
        FileType::RegularFile => DescriptorType::RegularFile,
        FileType::Directory => DescriptorType::Directory,
        FileType::Symlink => DescriptorType::SymbolicLink,
        FileType::Fifo => DescriptorType::Fifo,
        FileType::Socket => DescriptorType::Socket,
        FileType::CharacterDevice => DescriptorType::CharacterDevice,
        FileType::BlockDevice => DescriptorType::BlockDevice,
        FileType::Unknown => DescriptorType::Unknown,
    }
}

impl Meta {
    pub fn of_stat(st: &Stat) -> Meta {
        Meta {
            ty: descriptor_type(FileType::from_raw_mode(st.st_mode)),
            nlink: st.st_nlink as u64,
            size: u64::try_from(st.st_size).unwrap_or(0),
            atime: datetime(st.st_atime as i64, st.st_atime_nsec as i64),
            mtime: datetime(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: datetime(st.st_ctime as i64, st.st_ctime_nsec as i64),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        }
    }

    pub fn of_metadata(meta: &Metadata) -> Meta {
        use cap_std::fs::MetadataExt;
        Meta {
            ty: descriptor_type(FileType::from_raw_mode(meta.mode() as _)),
            nlink: meta.nlink(),
            size: meta.len(),
            atime: datetime(meta.atime(), meta.atime_nsec()),
            mtime: datetime(meta.mtime(), meta.mtime_nsec()),
            ctime: datetime(meta.ctime(), meta.ctime_nsec()),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    pub fn stat(&self) -> DescriptorStat {
        DescriptorStat {
            type_: self.ty,
            link_count: self.nlink,
            size: self.size,
            data_access_timestamp: self.atime,
            data_modification_timestamp: self.mtime,
            status_change_timestamp: self.ctime,
        }
    }

    pub fn hash(&self) -> MetadataHashValue {
        hash(self.dev, self.ino)
    }

    pub fn dev(&self) -> u64 {
        self.dev
    }

    pub fn same_object(&self, other: &Meta) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// The `metadata-hash` of the entry with this device and inode.
pub(super) fn hash(dev: u64, ino: u64) -> MetadataHashValue {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&dev.to_le_bytes());
    key[8..].copy_from_slice(&ino.to_le_bytes());
    let hash = xxhash_rust::xxh3::xxh3_128(&key);
    MetadataHashValue {
        lower: hash as u64,
        upper: (hash >> 64) as u64,
    }
}

/// Split `path` into a parent (possibly empty) and a final name, when it is
/// a plain relative path the fast path may take: no empty, `.` or `..`
/// components, not absolute.
pub(super) fn split(path: &str) -> Option<(&str, &str)> {
    if path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return None;
    }
    Some(match path.rfind('/') {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => ("", path),
    })
}

/// What a cached answer is about.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Subject {
    /// The descriptor with this table index.
    Fd(u32),
    /// A path under the descriptor with this index.
    Path { fd: u32, follow: bool, path: String },
}

/// The two caches of one task.
#[derive(Default)]
pub(super) struct Lookups {
    /// (descriptor index, parent path, the parent opened beneath it, generation)
    parent: Option<(u32, String, Dir, u64)>,
    /// (subject, its metadata, generation)
    last: Option<(Subject, Meta, u64)>,
    /// The entry a directory listing just returned: (descriptor index, name,
    /// device, inode, generation). wasi-libc's `readdir` asks for each
    /// entry's `metadata-hash-at` (its `d_ino`), which the listing knows.
    entry: Option<(u32, String, u64, u64, u64)>,
}

impl Lookups {
    /// The cached parent directory `parent` under descriptor `fd`, if still valid.
    pub fn parent(&self, fd: u32, parent: &str, generation: u64) -> Option<&Dir> {
        match &self.parent {
            Some((f, p, dir, g)) if *f == fd && p == parent && *g == generation => Some(dir),
            _ => None,
        }
    }

    pub fn set_parent(&mut self, fd: u32, parent: &str, dir: Dir, generation: u64) -> &Dir {
        &self
            .parent
            .insert((fd, parent.to_owned(), dir, generation))
            .2
    }

    pub fn last(&self, subject: &Subject, generation: u64) -> Option<Meta> {
        match &self.last {
            Some((s, meta, g)) if s == subject && *g == generation => Some(*meta),
            _ => None,
        }
    }

    pub fn set_last(&mut self, subject: Subject, meta: Meta, generation: u64) {
        self.last = Some((subject, meta, generation));
    }

    pub fn set_entry(&mut self, fd: u32, name: &str, dev: u64, ino: u64, generation: u64) {
        match &mut self.entry {
            Some(entry) => {
                entry.1.clear();
                entry.1.push_str(name);
                (entry.0, entry.2, entry.3, entry.4) = (fd, dev, ino, generation);
            }
            None => self.entry = Some((fd, name.to_owned(), dev, ino, generation)),
        }
    }

    /// The hash of `name` under descriptor `fd`, if a listing just returned it.
    pub fn entry_hash(&self, fd: u32, name: &str, generation: u64) -> Option<MetadataHashValue> {
        match &self.entry {
            Some((f, n, dev, ino, g)) if *f == fd && n == name && *g == generation => {
                Some(hash(*dev, *ino))
            }
            _ => None,
        }
    }

    /// Forget everything about descriptor `fd` (its index may be reused).
    pub fn forget(&mut self, fd: u32) {
        if self.entry.as_ref().is_some_and(|(f, ..)| *f == fd) {
            self.entry = None;
        }
        if self.parent.as_ref().is_some_and(|(f, ..)| *f == fd) {
            self.parent = None;
        }
        if let Some((Subject::Fd(f) | Subject::Path { fd: f, .. }, ..)) = &self.last {
            if *f == fd {
                self.last = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn only_plain_paths_take_the_fast_path() {
        assert_eq!(split("a/b/c.rs"), Some(("a/b", "c.rs")));
        assert_eq!(split("c.rs"), Some(("", "c.rs")));
        for path in ["", "/etc", "a/../b", "..", "a/./b", "a//b", "a/", "."] {
            assert_eq!(split(path), None, "{path}");
        }
    }
}
