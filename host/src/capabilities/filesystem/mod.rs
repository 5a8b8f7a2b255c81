//! `wasi:filesystem`, served by the host over the directories it opened for
//! the task ([`Grant`]), instead of wasmtime-wasi's generic preopens.
//!
//! Every guest file call lands here, on the task's own thread, and:
//! - resolves through cap-std handles of the granted directories, so nothing
//!   outside them can be named, whatever symlinks or renames happen;
//! - refuses what a sandboxed tool never needs: creating symlinks or hard
//!   links, opening FIFOs, sockets and devices (`not-permitted`; opened
//!   non-blocking, so a host thread never waits on one);
//! - counts the task's limits — bytes written (`disk`), entries created
//!   (`files`), descriptors open (`open_files`) — and fails the call with
//!   `insufficient-space` or `quota` when one is reached, noting which;
//! - records file results as the guest acts ([`ChangeLog`]).
//!
//! Calls run synchronously: a file read is a `pread` on the caller's thread,
//! not a hop to a thread pool. The runtime gives each task a thread of its
//! own for that reason (see `runtime::exec`).

mod bindings;
mod budget;
mod changes;
mod lookup;
mod streams;

pub use budget::DescriptorBudget;
pub use changes::{ChangeLog, join};

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{Dir, File, FileExt, Metadata, OpenOptions};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use crate::manifest::Limits;
use crate::sandbox::{Access, EntryKind, FileChanges, GUEST_WORKSPACE, Grant};
use crate::task::{Limit, LimitHit};
use crate::units::format_size;
use bindings::wasi::filesystem::{preopens, types};
use lookup::{Lookups, Meta, Subject};
use streams::{FileReader, FileWriter, Position};
use types::{
    Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};

/// Free space the host keeps on the workspace's filesystem for itself (its
/// store, its logs): a guest write that would leave less fails.
const DISK_HEADROOM: u64 = 64 << 20;
/// How often (in bytes a task writes) the free space is checked.
const SPACE_CHECK_EVERY: u64 = 4 << 20;

/// A failed filesystem call: an error code for the guest, or a trap.
#[derive(Debug)]
pub enum FsError {
    Code(ErrorCode),
    Trap(wasmtime::Error),
}

impl From<ErrorCode> for FsError {
    fn from(code: ErrorCode) -> FsError {
        FsError::Code(code)
    }
}

impl From<io::Error> for FsError {
    fn from(err: io::Error) -> FsError {
        FsError::Code(error_code(&err))
    }
}

impl From<ResourceTableError> for FsError {
    fn from(err: ResourceTableError) -> FsError {
        FsError::Trap(err.into())
    }
}

type FsResult<T> = Result<T, FsError>;

/// A limit's error code, carried through a wasi:io stream error so that
/// `filesystem-error-code` can give it back.
#[derive(Debug)]
pub(crate) struct LimitCode(ErrorCode);

impl std::fmt::Display for LimitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for LimitCode {}

/// The filesystem limits of one task.
#[derive(Clone, Copy, Debug)]
pub struct FsLimits {
    pub disk: u64,
    pub files: u64,
    pub open_files: u64,
}

impl FsLimits {
    pub fn of(limits: &Limits) -> FsLimits {
        FsLimits {
            disk: limits.disk,
            files: limits.files,
            open_files: limits.open_files,
        }
    }
}

/// What one task's filesystem did: its counters, its limits and its file
/// results. Shared with the streams its descriptors hand out.
pub struct TaskFs {
    limits: FsLimits,
    budget: Arc<DescriptorBudget>,
    /// Where free space is measured.
    root: Arc<Dir>,
    written: AtomicU64,
    created: AtomicU64,
    open: AtomicU64,
    next_space_check: AtomicU64,
    /// Bumped by every change the task makes; cached lookups are valid
    /// only within one generation.
    generation: AtomicU64,
    changes: Mutex<ChangeLog>,
    hits: Mutex<Vec<LimitHit>>,
}

impl TaskFs {
    fn new(limits: FsLimits, budget: Arc<DescriptorBudget>, root: Arc<Dir>) -> TaskFs {
        let open_files = limits.open_files.min(budget.per_task());
        TaskFs {
            limits: FsLimits {
                open_files,
                ..limits
            },
            budget,
            root,
            written: AtomicU64::new(0),
            created: AtomicU64::new(0),
            open: AtomicU64::new(0),
            next_space_check: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            changes: Mutex::new(ChangeLog::default()),
            hits: Mutex::new(Vec::new()),
        }
    }

    fn hit(&self, limit: Limit, message: String) {
        let mut hits = self.hits.lock().unwrap();
        if !hits.iter().any(|h| h.limit == limit) {
            hits.push(LimitHit { limit, message });
        }
    }

    /// Account for `len` more bytes written.
    fn charge_write(&self, len: u64) -> Result<(), ErrorCode> {
        let written = self.written.load(Ordering::Relaxed);
        let total = written.saturating_add(len);
        if total > self.limits.disk {
            self.hit(
                Limit::Disk,
                format!(
                    "the task may write {} in all (limits.disk); a write of {len} bytes after {} was refused",
                    format_size(self.limits.disk),
                    format_size(written)
                ),
            );
            return Err(ErrorCode::InsufficientSpace);
        }
        if total >= self.next_space_check.load(Ordering::Relaxed) {
            if let Ok(stat) = rustix::fs::fstatvfs(&*self.root) {
                let free = stat.f_bavail.saturating_mul(stat.f_frsize);
                if free < DISK_HEADROOM.saturating_add(len) {
                    self.hit(
                        Limit::Disk,
                        format!(
                            "the workspace's filesystem has {} free; the host keeps {} of it for itself",
                            format_size(free),
                            format_size(DISK_HEADROOM)
                        ),
                    );
                    return Err(ErrorCode::InsufficientSpace);
                }
            }
            self.next_space_check
                .store(total + SPACE_CHECK_EVERY, Ordering::Relaxed);
        }
        self.written.store(total, Ordering::Relaxed);
        self.touch();
        Ok(())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The task changed something: cached lookups are stale.
    fn touch(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Note a change in the file results.
    fn log(&self, change: impl FnOnce(&mut ChangeLog)) {
        self.touch();
        change(&mut self.changes.lock().unwrap());
    }

    /// May the task create one more entry?
    fn check_create(&self) -> Result<(), ErrorCode> {
        if self.created.load(Ordering::Relaxed) >= self.limits.files {
            self.hit(
                Limit::Files,
                format!(
                    "the task may create {} files and directories (limits.files)",
                    self.limits.files
                ),
            );
            return Err(ErrorCode::Quota);
        }
        Ok(())
    }

    fn created(&self, path: &str, kind: EntryKind, before: Option<EntryKind>) {
        if before.is_none() {
            self.created.fetch_add(1, Ordering::Relaxed);
        }
        self.log(|log| log.created(path, kind, before));
    }

    fn record_write(&self, path: &str) {
        self.log(|log| log.modified(path, EntryKind::File));
    }

    /// One more open descriptor, counted until the slot drops.
    fn slot(self: &Arc<Self>) -> Result<Arc<Slot>, ErrorCode> {
        if self.open.load(Ordering::Relaxed) >= self.limits.open_files {
            self.hit(
                Limit::OpenFiles,
                format!(
                    "the task may hold {} descriptors open at once (limits.open_files)",
                    self.limits.open_files
                ),
            );
            return Err(ErrorCode::Quota);
        }
        if !self.budget.acquire() {
            self.hit(
                Limit::OpenFiles,
                "the host's descriptors for guests are all in use".into(),
            );
            return Err(ErrorCode::Quota);
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Slot { task: self.clone() }))
    }

    /// What the task changed, and the limits it hit.
    pub fn report(&self) -> FsReport {
        FsReport {
            files: self.changes.lock().unwrap().finish(),
            limits_hit: self.hits.lock().unwrap().clone(),
            bytes_written: self.written.load(Ordering::Relaxed),
            files_created: self.created.load(Ordering::Relaxed),
        }
    }
}

/// The filesystem part of a task's result.
#[derive(Clone, Debug, Default)]
pub struct FsReport {
    pub files: FileChanges,
    pub limits_hit: Vec<LimitHit>,
    pub bytes_written: u64,
    pub files_created: u64,
}

/// One open descriptor of a task; released when dropped.
pub(crate) struct Slot {
    task: Arc<TaskFs>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.task.open.fetch_sub(1, Ordering::Relaxed);
        self.task.budget.release();
    }
}

/// An open regular file, with the slot it holds (shared with its streams,
/// so a stream that outlives its descriptor still counts).
pub(crate) struct OpenFile {
    file: File,
    _slot: Arc<Slot>,
}

enum Node {
    Dir(Arc<Dir>),
    File(Arc<OpenFile>),
}

/// A `wasi:filesystem` descriptor: an open directory or regular file.
pub struct Descriptor {
    node: Node,
    /// Workspace-relative, `/`-separated; "" for the workspace itself.
    path: Arc<str>,
    /// Whether the grant lets the guest change things through it.
    access: Access,
    read: bool,
    write: bool,
    /// A write through it is already in the file results.
    recorded: bool,
    /// The descriptor it holds open (`None` for a preopen: the grant's
    /// handles are the host's, opened once per task).
    _slot: Option<Arc<Slot>>,
}

impl Descriptor {
    fn dir(&self) -> FsResult<&Arc<Dir>> {
        match &self.node {
            Node::Dir(dir) => Ok(dir),
            Node::File(_) => Err(ErrorCode::NotDirectory.into()),
        }
    }

    fn file(&self) -> FsResult<&Arc<OpenFile>> {
        match &self.node {
            Node::File(file) => Ok(file),
            Node::Dir(_) => Err(ErrorCode::IsDirectory.into()),
        }
    }

    /// A directory the guest may change.
    fn writable_dir(&self) -> FsResult<&Arc<Dir>> {
        let dir = self.dir()?;
        if self.access != Access::ReadWrite {
            return Err(ErrorCode::NotPermitted.into());
        }
        Ok(dir)
    }

    /// The metadata of what it refers to (one `fstat`).
    fn meta(&self) -> io::Result<Meta> {
        let stat = match &self.node {
            Node::Dir(dir) => rustix::fs::fstat(&**dir),
            Node::File(file) => rustix::fs::fstat(&file.file),
        };
        Ok(Meta::of_stat(&stat?))
    }
}

/// An open directory listing.
pub struct DirEntries {
    /// Read with `getdents64`; entry types come from `d_type`, so listing a
    /// directory costs no `stat` per entry.
    entries: rustix::fs::Dir,
    /// The directory listed, for the rare entry whose type is unknown.
    dir: Arc<Dir>,
    /// The listed descriptor's table index and the directory's device.
    fd: u32,
    dev: u64,
    _slot: Arc<Slot>,
}

/// How often a guest may ask for its preopens.
const MAX_PREOPEN_CALLS: u32 = 16;

/// The filesystem state of one task's store.
pub struct FsCtx {
    task: Arc<TaskFs>,
    grant: Arc<Grant>,
    preopens_served: u32,
    lookups: Lookups,
}

impl FsCtx {
    /// The filesystem of a task that was granted `grant`.
    pub fn new(grant: Arc<Grant>, limits: FsLimits, budget: Arc<DescriptorBudget>) -> FsCtx {
        FsCtx {
            task: Arc::new(TaskFs::new(limits, budget, grant.root().clone())),
            grant,
            preopens_served: 0,
            lookups: Lookups::default(),
        }
    }

    /// Shared access to the counters and file results, for after the run.
    pub fn task(&self) -> Arc<TaskFs> {
        self.task.clone()
    }
}

/// The borrowed view the bindings call into.
pub struct FsView<'a> {
    ctx: &'a mut FsCtx,
    table: &'a mut ResourceTable,
}

struct HasFs;

impl HasData for HasFs {
    type Data<'a> = FsView<'a>;
}

impl<'a> FsView<'a> {
    pub fn new(ctx: &'a mut FsCtx, table: &'a mut ResourceTable) -> FsView<'a> {
        FsView { ctx, table }
    }
}

/// Serve `wasi:filesystem` from the [`FsView`] `get` makes of the store's
/// data. Call after wasmtime-wasi's `add_to_linker` with shadowing allowed:
/// these definitions replace its filesystem.
///
/// # Errors
///
/// When the linker refuses a definition.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> FsView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasFs>(linker, get)?;
    preopens::add_to_linker::<T, HasFs>(linker, get)?;
    Ok(())
}

/// Open `path` beneath `dir` through cap-std, as the guest asked.
fn open_file(
    dir: &Dir,
    path: &str,
    oflags: &OpenFlags,
    read: bool,
    write: bool,
    follow: FollowSymlinks,
) -> FsResult<File> {
    let mut options = OpenOptions::new();
    options
        .read(read || !write)
        .write(write)
        .create(oflags.contains(OpenFlags::CREATE))
        .create_new(oflags.contains(OpenFlags::EXCLUSIVE))
        .truncate(oflags.contains(OpenFlags::TRUNCATE))
        .follow(follow)
        .maybe_dir(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        // A FIFO or device opens without waiting for its other end, and is
        // refused once its type is known.
        options.custom_flags(
            (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32,
        );
    }
    dir.open_with(path, &options).map_err(|err| {
        // A FIFO without a reader, a socket or a device fails to open (ENXIO,
        // …) before its type can be checked: refuse it as such.
        match dir.metadata(path) {
            Ok(meta) if !meta.is_file() && !meta.is_dir() => ErrorCode::NotPermitted.into(),
            _ => FsError::from(err),
        }
    })
}

fn error_code(err: &io::Error) -> ErrorCode {
    #[cfg(unix)]
    if let Some(raw) = err.raw_os_error() {
        use rustix::io::Errno;
        let code = match Errno::from_raw_os_error(raw) {
            Errno::PIPE => Some(ErrorCode::Pipe),
            Errno::PERM => Some(ErrorCode::NotPermitted),
            Errno::NOENT => Some(ErrorCode::NoEntry),
            Errno::NOMEM => Some(ErrorCode::InsufficientMemory),
            Errno::IO => Some(ErrorCode::Io),
            Errno::BADF => Some(ErrorCode::BadDescriptor),
            Errno::BUSY => Some(ErrorCode::Busy),
            Errno::ACCESS => Some(ErrorCode::Access),
            Errno::NOTDIR => Some(ErrorCode::NotDirectory),
            Errno::ISDIR => Some(ErrorCode::IsDirectory),
            Errno::INVAL => Some(ErrorCode::Invalid),
            Errno::EXIST => Some(ErrorCode::Exist),
            Errno::FBIG => Some(ErrorCode::FileTooLarge),
            Errno::NOSPC => Some(ErrorCode::InsufficientSpace),
            Errno::DQUOT => Some(ErrorCode::Quota),
            Errno::SPIPE => Some(ErrorCode::InvalidSeek),
            Errno::MLINK => Some(ErrorCode::TooManyLinks),
            Errno::NAMETOOLONG => Some(ErrorCode::NameTooLong),
            Errno::NOTEMPTY => Some(ErrorCode::NotEmpty),
            Errno::LOOP => Some(ErrorCode::Loop),
            Errno::OVERFLOW => Some(ErrorCode::Overflow),
            Errno::ILSEQ => Some(ErrorCode::IllegalByteSequence),
            Errno::NOTSUP => Some(ErrorCode::Unsupported),
            Errno::ALREADY => Some(ErrorCode::Already),
            Errno::INPROGRESS => Some(ErrorCode::InProgress),
            Errno::INTR => Some(ErrorCode::Interrupted),
            Errno::XDEV => Some(ErrorCode::CrossDevice),
            Errno::NXIO | Errno::NODEV => Some(ErrorCode::NoSuchDevice),
            Errno::ROFS => Some(ErrorCode::ReadOnly),
            Errno::TXTBSY => Some(ErrorCode::TextFileBusy),
            Errno::MFILE | Errno::NFILE => Some(ErrorCode::Quota),
            _ => None,
        };
        if let Some(code) = code {
            return code;
        }
    }
    match err.kind() {
        io::ErrorKind::NotFound => ErrorCode::NoEntry,
        // cap-std's "a path led outside of the filesystem" lands here.
        io::ErrorKind::PermissionDenied => ErrorCode::NotPermitted,
        io::ErrorKind::AlreadyExists => ErrorCode::Exist,
        io::ErrorKind::InvalidInput => ErrorCode::Invalid,
        _ => ErrorCode::Io,
    }
}

fn entry_kind(meta: &Metadata) -> EntryKind {
    if meta.is_dir() {
        EntryKind::Dir
    } else if meta.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::File
    }
}

/// What stands at `path` under `dir`, without following a final symlink.
fn kind_at(dir: &Dir, path: &str) -> Option<EntryKind> {
    dir.symlink_metadata(path).ok().map(|m| entry_kind(&m))
}

/// A new timestamp, before it is handed to one of the two time-setting APIs.
#[derive(Clone, Copy)]
enum TimeSpec {
    Now,
    At(std::time::SystemTime),
}

impl TimeSpec {
    fn file(self) -> fs_set_times::SystemTimeSpec {
        match self {
            TimeSpec::Now => fs_set_times::SystemTimeSpec::SymbolicNow,
            TimeSpec::At(t) => fs_set_times::SystemTimeSpec::Absolute(t),
        }
    }

    fn path(self) -> cap_fs_ext::SystemTimeSpec {
        match self {
            TimeSpec::Now => cap_fs_ext::SystemTimeSpec::SymbolicNow,
            TimeSpec::At(t) => {
                cap_fs_ext::SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(t))
            }
        }
    }
}

fn time_spec(t: NewTimestamp) -> FsResult<Option<TimeSpec>> {
    Ok(match t {
        NewTimestamp::NoChange => None,
        NewTimestamp::Now => Some(TimeSpec::Now),
        NewTimestamp::Timestamp(t) => {
            let time = std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::new(t.seconds, 0))
                .and_then(|s| {
                    s.checked_add(std::time::Duration::from_nanos(u64::from(t.nanoseconds)))
                })
                .ok_or(ErrorCode::Overflow)?;
            Some(TimeSpec::At(time))
        }
    })
}

impl FsView<'_> {
    fn push(&mut self, descriptor: Descriptor) -> FsResult<Resource<Descriptor>> {
        Ok(self.table.push(descriptor)?)
    }

    /// The metadata of descriptor `fd`, from the cache when the guest just
    /// opened or stat'ed it.
    fn fd_meta(&mut self, fd: &Resource<Descriptor>) -> FsResult<Meta> {
        let generation = self.ctx.task.generation();
        let subject = Subject::Fd(fd.rep());
        if let Some(meta) = self.ctx.lookups.last(&subject, generation) {
            return Ok(meta);
        }
        let meta = self.table.get(fd)?.meta()?;
        self.ctx.lookups.set_last(subject, meta, generation);
        Ok(meta)
    }

    /// The metadata of `path` under directory descriptor `fd`.
    fn meta_at(&mut self, fd: &Resource<Descriptor>, follow: bool, path: String) -> FsResult<Meta> {
        let generation = self.ctx.task.generation();
        let subject = Subject::Path {
            fd: fd.rep(),
            follow,
            path,
        };
        if let Some(meta) = self.ctx.lookups.last(&subject, generation) {
            return Ok(meta);
        }
        let Subject::Path { path, .. } = &subject else {
            unreachable!()
        };
        if follow {
            // What is not a symlink reads the same followed or not.
            let unfollowed = Subject::Path {
                fd: fd.rep(),
                follow: false,
                path: path.clone(),
            };
            if let Some(meta) = self.ctx.lookups.last(&unfollowed, generation) {
                if meta.ty != DescriptorType::SymbolicLink {
                    return Ok(meta);
                }
            }
        }
        let dir = self.table.get(fd)?.dir()?.clone();
        let meta = match self.fast_stat(fd.rep(), &dir, path, generation) {
            Some(Ok(meta)) if !(follow && meta.ty == DescriptorType::SymbolicLink) => meta,
            Some(Err(code)) => return Err(code.into()),
            _ if follow => Meta::of_metadata(&dir.metadata(path)?),
            _ => Meta::of_metadata(&dir.symlink_metadata(path)?),
        };
        self.ctx.lookups.set_last(subject, meta, generation);
        Ok(meta)
    }

    /// Stat `path` (not following a final symlink) with one `statat`
    /// beneath the cached parent, when the path allows it; `None` sends the
    /// caller down cap-std's path.
    fn fast_stat(
        &mut self,
        fd: u32,
        dir: &Dir,
        path: &str,
        generation: u64,
    ) -> Option<Result<Meta, ErrorCode>> {
        let (parent, name) = lookup::split(path)?;
        let parent = self.parent_dir(fd, dir, parent, generation)?;
        match rustix::fs::statat(parent, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(Ok(Meta::of_stat(&stat))),
            Err(rustix::io::Errno::NOENT) => Some(Err(ErrorCode::NoEntry)),
            Err(_) => None,
        }
    }

    /// Directory `parent` beneath `dir` (descriptor `fd`), opened by cap-std
    /// and kept for the next lookup in it.
    fn parent_dir<'s>(
        &'s mut self,
        fd: u32,
        dir: &'s Dir,
        parent: &str,
        generation: u64,
    ) -> Option<&'s Dir> {
        if parent.is_empty() {
            return Some(dir);
        }
        if self.ctx.lookups.parent(fd, parent, generation).is_none() {
            let opened = dir.open_dir(parent).ok()?;
            return Some(self.ctx.lookups.set_parent(fd, parent, opened, generation));
        }
        self.ctx.lookups.parent(fd, parent, generation)
    }

    /// Open `path` read-only with one `openat` beneath the cached parent,
    /// when the path allows it; `None` sends the caller down cap-std's path
    /// (a final symlink, a FIFO, anything unusual).
    fn fast_open(
        &mut self,
        fd: u32,
        dir: &Dir,
        path: &str,
        generation: u64,
    ) -> Option<Result<File, FsError>> {
        use rustix::fs::{Mode, OFlags};
        let (parent, name) = lookup::split(path)?;
        let parent = self.parent_dir(fd, dir, parent, generation)?;
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(opened) => Some(Ok(File::from_std(std::fs::File::from(opened)))),
            Err(rustix::io::Errno::NOENT) => Some(Err(ErrorCode::NoEntry.into())),
            Err(_) => None,
        }
    }

    /// Record a write through `fd` once.
    fn note_write(&mut self, fd: &Resource<Descriptor>) -> FsResult<()> {
        let d = self.table.get_mut(fd)?;
        if !d.recorded {
            d.recorded = true;
            let path = d.path.clone();
            self.ctx.task.record_write(&path);
        }
        Ok(())
    }
}

impl types::Host for FsView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        match err {
            FsError::Code(code) => Ok(code),
            FsError::Trap(err) => Err(err),
        }
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        if let Some(limit) = err.downcast_ref::<LimitCode>() {
            return Ok(Some(limit.0));
        }
        Ok(err.downcast_ref::<io::Error>().map(error_code))
    }
}

impl types::HostDescriptor for FsView<'_> {
    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynInputStream>> {
        let d = self.table.get(&fd)?;
        if !d.read {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let file = d.file()?.clone();
        let stream: DynInputStream = Box::new(FileReader { file, offset });
        Ok(self.table.push_child(stream, &fd)?)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.writer(fd, Position::At(offset))
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.writer(fd, Position::Append)
    }

    fn advise(&mut self, fd: Resource<Descriptor>, _: u64, _: u64, _: Advice) -> FsResult<()> {
        self.table.get(&fd)?.file()?;
        Ok(())
    }

    fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        match &self.table.get(&fd)?.node {
            Node::File(file) => file.file.sync_data()?,
            Node::Dir(dir) => rustix::fs::fdatasync(&**dir).map_err(io::Error::from)?,
        }
        Ok(())
    }

    fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        let d = self.table.get(&fd)?;
        let mut flags = DescriptorFlags::empty();
        if d.read {
            flags |= DescriptorFlags::READ;
        }
        if d.write {
            flags |= DescriptorFlags::WRITE;
        }
        if matches!(d.node, Node::Dir(_)) && d.access == Access::ReadWrite {
            flags |= DescriptorFlags::MUTATE_DIRECTORY;
        }
        Ok(flags)
    }

    fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType> {
        Ok(match self.table.get(&fd)?.node {
            Node::Dir(_) => DescriptorType::Directory,
            Node::File(_) => DescriptorType::RegularFile,
        })
    }

    fn set_size(&mut self, fd: Resource<Descriptor>, size: u64) -> FsResult<()> {
        let d = self.table.get(&fd)?;
        if !d.write {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let file = d.file()?.clone();
        let len = file.file.metadata()?.len();
        if size > len {
            self.ctx.task.charge_write(size - len)?;
        }
        file.file.set_len(size)?;
        self.note_write(&fd)
    }

    fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atime: NewTimestamp,
        mtime: NewTimestamp,
    ) -> FsResult<()> {
        use fs_set_times::SetTimes;
        let d = self.table.get(&fd)?;
        if d.access != Access::ReadWrite {
            return Err(ErrorCode::NotPermitted.into());
        }
        let atime = time_spec(atime)?.map(TimeSpec::file);
        let mtime = time_spec(mtime)?.map(TimeSpec::file);
        match &d.node {
            Node::File(file) => SetTimes::set_times(&file.file, atime, mtime)?,
            Node::Dir(dir) => {
                // A directory's own times are not a file result.
                SetTimes::set_times(&**dir, atime, mtime)?;
                self.ctx.task.touch();
                return Ok(());
            }
        }
        self.note_write(&fd)
    }

    fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: u64,
        offset: u64,
    ) -> FsResult<(Vec<u8>, bool)> {
        let d = self.table.get(&fd)?;
        if !d.read {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let bytes = streams::read_at(&d.file()?.file, len, offset)?;
        let eof = bytes.len() < len.min(streams::MAX_READ) || len == 0 && bytes.is_empty();
        Ok((bytes.to_vec(), eof && len > 0))
    }

    fn write(&mut self, fd: Resource<Descriptor>, buffer: Vec<u8>, offset: u64) -> FsResult<u64> {
        let d = self.table.get(&fd)?;
        if !d.write {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let file = d.file()?.clone();
        self.ctx.task.charge_write(buffer.len() as u64)?;
        file.file.write_all_at(&buffer, offset)?;
        self.note_write(&fd)?;
        Ok(buffer.len() as u64)
    }

    fn read_directory(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DirEntries>> {
        use rustix::fs::{Mode, OFlags};
        let slot = self.ctx.task.slot()?;
        let dir = self.table.get(&fd)?.dir()?.clone();
        // A fresh descriptor of the same directory, with its own position.
        let listing = rustix::fs::openat(
            &*dir,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        let dev = self.fd_meta(&fd)?.dev();
        let stream = DirEntries {
            entries: rustix::fs::Dir::new(listing).map_err(io::Error::from)?,
            dir,
            fd: fd.rep(),
            dev,
            _slot: slot,
        };
        Ok(self.table.push_child(stream, &fd)?)
    }

    fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        match &self.table.get(&fd)?.node {
            Node::File(file) => file.file.sync_all()?,
            Node::Dir(dir) => rustix::fs::fsync(&**dir).map_err(io::Error::from)?,
        }
        Ok(())
    }

    fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let d = self.table.get(&fd)?;
        let dir = d.writable_dir()?;
        self.ctx.task.check_create()?;
        dir.create_dir(&path)?;
        self.ctx
            .task
            .created(&join(&d.path, &path), EntryKind::Dir, None);
        Ok(())
    }

    fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        Ok(self.fd_meta(&fd)?.stat())
    }

    fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        let follow = flags.contains(PathFlags::SYMLINK_FOLLOW);
        Ok(self.meta_at(&fd, follow, path)?.stat())
    }

    fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        flags: PathFlags,
        path: String,
        atime: NewTimestamp,
        mtime: NewTimestamp,
    ) -> FsResult<()> {
        let d = self.table.get(&fd)?;
        let dir = d.writable_dir()?;
        let atime = time_spec(atime)?.map(TimeSpec::path);
        let mtime = time_spec(mtime)?.map(TimeSpec::path);
        let kind = kind_at(dir, &path).ok_or(ErrorCode::NoEntry)?;
        if flags.contains(PathFlags::SYMLINK_FOLLOW) {
            dir.set_times(&path, atime, mtime)?;
        } else {
            dir.set_symlink_times(&path, atime, mtime)?;
        }
        if kind == EntryKind::Dir {
            // A directory's own times are not a file result.
            self.ctx.task.touch();
        } else {
            self.ctx
                .task
                .log(|log| log.modified(&join(&d.path, &path), kind));
        }
        Ok(())
    }

    fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        _: PathFlags,
        _: String,
        new: Resource<Descriptor>,
        _: String,
    ) -> FsResult<()> {
        self.table.get(&fd)?.dir()?;
        self.table.get(&new)?.dir()?;
        // A hard link would let a file outlive the grant it was made under.
        Err(ErrorCode::NotPermitted.into())
    }

    fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let task = self.ctx.task.clone();
        let base = self.table.get(&fd)?;
        let dir = base.dir()?.clone();
        let access = base.access;
        let full: Arc<str> = join(&base.path, &path).into();
        let changes_things = flags
            .intersects(DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY)
            || oflags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE);
        if changes_things && access != Access::ReadWrite {
            return Err(ErrorCode::NotPermitted.into());
        }
        let follow = if path_flags.contains(PathFlags::SYMLINK_FOLLOW) {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        };
        let slot = task.slot()?;

        if oflags.contains(OpenFlags::DIRECTORY) {
            if oflags.intersects(OpenFlags::CREATE | OpenFlags::EXCLUSIVE | OpenFlags::TRUNCATE) {
                return Err(ErrorCode::Invalid.into());
            }
            let opened = match follow {
                FollowSymlinks::Yes => dir.open_dir(&path)?,
                FollowSymlinks::No => dir.open_dir_nofollow(&path)?,
            };
            return self.push(Descriptor {
                node: Node::Dir(Arc::new(opened)),
                path: full,
                access,
                read: true,
                write: false,
                recorded: false,
                _slot: Some(slot),
            });
        }

        let create = oflags.contains(OpenFlags::CREATE);
        let before = if create { kind_at(&dir, &path) } else { None };
        if create && before.is_none() {
            task.check_create()?;
        }
        let read = flags.contains(DescriptorFlags::READ);
        let write = flags.contains(DescriptorFlags::WRITE);
        let generation = task.generation();
        // A plain read-only open in the directory of the last lookup is one
        // `openat` of a single name (a final symlink is left to cap-std).
        let fast = if changes_things || oflags.contains(OpenFlags::EXCLUSIVE) {
            None
        } else {
            self.fast_open(fd.rep(), &dir, &path, generation)
                .transpose()?
        };
        let file = match fast {
            Some(file) => file,
            None => open_file(&dir, &path, &oflags, read, write, follow)?,
        };
        let meta = Meta::of_stat(&rustix::fs::fstat(&file).map_err(io::Error::from)?);
        let node = match meta.ty {
            DescriptorType::Directory if write => return Err(ErrorCode::IsDirectory.into()),
            DescriptorType::Directory => Node::Dir(Arc::new(Dir::from_std_file(file.into_std()))),
            DescriptorType::RegularFile => Node::File(Arc::new(OpenFile {
                file,
                _slot: slot.clone(),
            })),
            // Opened non-blocking, and closed again at once.
            _ => return Err(ErrorCode::NotPermitted.into()),
        };
        if create && before.is_none() {
            task.created(&full, EntryKind::File, None);
        } else if oflags.contains(OpenFlags::TRUNCATE) {
            task.record_write(&full);
        }
        let opened = self.push(Descriptor {
            node,
            path: full,
            access,
            read: read || !write,
            write,
            recorded: false,
            _slot: Some(slot),
        })?;
        // The guest's `fstat` (and inode hash) right after the open cost nothing.
        self.ctx
            .lookups
            .set_last(Subject::Fd(opened.rep()), meta, task.generation());
        Ok(opened)
    }

    fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        let target = self.table.get(&fd)?.dir()?.read_link(&path)?;
        target
            .into_os_string()
            .into_string()
            .map_err(|_| ErrorCode::IllegalByteSequence.into())
    }

    fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let d = self.table.get(&fd)?;
        d.writable_dir()?.remove_dir(&path)?;
        self.ctx
            .task
            .log(|log| log.removed(&join(&d.path, &path), EntryKind::Dir));
        Ok(())
    }

    fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let from = self.table.get(&fd)?;
        let to = self.table.get(&new)?;
        let (from_dir, to_dir) = (from.writable_dir()?, to.writable_dir()?);
        let kind = kind_at(from_dir, &old_path).ok_or(ErrorCode::NoEntry)?;
        let to_before = kind_at(to_dir, &new_path);
        from_dir.rename(&old_path, to_dir, &new_path)?;
        let (old_full, new_full) = (join(&from.path, &old_path), join(&to.path, &new_path));
        self.ctx
            .task
            .log(|log| log.renamed(&old_full, kind, &new_full, to_before));
        Ok(())
    }

    fn symlink_at(&mut self, fd: Resource<Descriptor>, _: String, _: String) -> FsResult<()> {
        self.table.get(&fd)?.dir()?;
        // A symlink left behind would be followed by the user's tools, which
        // know nothing of the grant.
        Err(ErrorCode::NotPermitted.into())
    }

    fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let d = self.table.get(&fd)?;
        let dir = d.writable_dir()?;
        let kind = kind_at(dir, &path).ok_or(ErrorCode::NoEntry)?;
        if kind == EntryKind::Dir {
            return Err(ErrorCode::IsDirectory.into());
        }
        dir.remove_file(&path)?;
        self.ctx
            .task
            .log(|log| log.removed(&join(&d.path, &path), kind));
        Ok(())
    }

    fn is_same_object(
        &mut self,
        fd: Resource<Descriptor>,
        other: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        let a = self.table.get(&fd)?.meta();
        let b = self.table.get(&other)?.meta();
        Ok(match (a, b) {
            (Ok(a), Ok(b)) => a.same_object(&b),
            _ => false,
        })
    }

    fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        Ok(self.fd_meta(&fd)?.hash())
    }

    fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        let follow = flags.contains(PathFlags::SYMLINK_FOLLOW);
        let generation = self.ctx.task.generation();
        // The entry a listing just returned (never a symlink): its inode is known.
        if let Some(hash) = self.ctx.lookups.entry_hash(fd.rep(), &path, generation) {
            return Ok(hash);
        }
        Ok(self.meta_at(&fd, follow, path)?.hash())
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.ctx.lookups.forget(fd.rep());
        self.table.delete(fd)?;
        Ok(())
    }
}

impl FsView<'_> {
    fn writer(
        &mut self,
        fd: Resource<Descriptor>,
        position: Position,
    ) -> FsResult<Resource<DynOutputStream>> {
        let d = self.table.get(&fd)?;
        if !d.write {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let stream: DynOutputStream = Box::new(FileWriter {
            file: d.file()?.clone(),
            position,
            task: self.ctx.task.clone(),
            path: d.path.clone(),
            recorded: d.recorded,
        });
        Ok(self.table.push_child(stream, &fd)?)
    }
}

impl types::HostDirectoryEntryStream for FsView<'_> {
    fn read_directory_entry(
        &mut self,
        stream: Resource<DirEntries>,
    ) -> FsResult<Option<DirectoryEntry>> {
        let listing = self.table.get_mut(&stream)?;
        loop {
            let Some(entry) = listing.entries.read() else {
                return Ok(None);
            };
            let entry = entry.map_err(io::Error::from)?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let file_type = match entry.file_type() {
                // The filesystem does not fill `d_type`: ask, for this one
                // name (which cannot leave the directory).
                rustix::fs::FileType::Unknown => {
                    rustix::fs::statat(&*listing.dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode))
                        .unwrap_or(rustix::fs::FileType::Unknown)
                }
                known => known,
            };
            let name = std::str::from_utf8(name.to_bytes())
                .map_err(|_| ErrorCode::IllegalByteSequence)?
                .to_owned();
            if file_type != rustix::fs::FileType::Symlink {
                let (fd, dev) = (listing.fd, listing.dev);
                let generation = self.ctx.task.generation();
                self.ctx
                    .lookups
                    .set_entry(fd, &name, dev, entry.ino(), generation);
            }
            return Ok(Some(DirectoryEntry {
                type_: lookup::descriptor_type(file_type),
                name,
            }));
        }
    }

    fn drop(&mut self, stream: Resource<DirEntries>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

impl preopens::Host for FsView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        // wasi-libc asks once; a guest asking in a loop would only fill the
        // resource table.
        self.ctx.preopens_served += 1;
        if self.ctx.preopens_served > MAX_PREOPEN_CALLS {
            wasmtime::bail!(
                "the guest asked for its preopened directories more than {MAX_PREOPEN_CALLS} times"
            );
        }
        let grant = self.ctx.grant.clone();
        let mut preopens = Vec::new();
        for (path, dir, access) in grant.directories() {
            let guest = if path.is_empty() {
                GUEST_WORKSPACE.to_owned()
            } else {
                format!("{GUEST_WORKSPACE}/{path}")
            };
            let fd = self.table.push(Descriptor {
                node: Node::Dir(dir.clone()),
                path: path.into(),
                access,
                read: true,
                write: false,
                recorded: false,
                _slot: None,
            })?;
            preopens.push((fd, guest));
        }
        Ok(preopens)
    }
}
