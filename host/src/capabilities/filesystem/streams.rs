//! The wasi:io streams a file descriptor hands out. They read and write the
//! file in place, on the calling thread: a regular file is always ready, so
//! there is nothing to wait for and no thread to hop to.

use std::sync::Arc;

use bytes::Bytes;
use cap_std::fs::{File, FileExt};
use wasmtime_wasi_io::async_trait;
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{InputStream, OutputStream, StreamError, StreamResult};

use super::{LimitCode, OpenFile, TaskFs};

/// The most bytes one read returns.
pub(super) const MAX_READ: usize = 4 << 20;
/// How many bytes a writer says it accepts at once.
const WRITE_BUDGET: usize = 1 << 20;

fn failed(err: impl Into<wasmtime::Error>) -> StreamError {
    StreamError::LastOperationFailed(err.into())
}

/// Read from `file` at `offset` into a new buffer of at most `len` bytes
/// (never zeroed first: the kernel fills it).
pub(super) fn read_at(file: &File, len: usize, offset: u64) -> std::io::Result<Bytes> {
    let want = len.min(MAX_READ);
    let mut buf: Vec<u8> = Vec::with_capacity(want);
    while buf.len() < want {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
    buf.truncate(want);
    Ok(Bytes::from(buf))
}

pub(super) struct FileReader {
    pub(super) file: Arc<OpenFile>,
    pub(super) offset: u64,
}

#[async_trait]
impl Pollable for FileReader {
    async fn ready(&mut self) {}
}

#[async_trait]
impl InputStream for FileReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        let bytes = read_at(&self.file.file, size, self.offset).map_err(failed)?;
        if bytes.is_empty() {
            return Err(StreamError::Closed);
        }
        self.offset += bytes.len() as u64;
        Ok(bytes)
    }
}

/// Where a writer writes.
pub(super) enum Position {
    At(u64),
    Append,
}

pub(super) struct FileWriter {
    pub(super) file: Arc<OpenFile>,
    pub(super) position: Position,
    pub(super) task: Arc<TaskFs>,
    /// Workspace-relative path, for the file results.
    pub(super) path: Arc<str>,
    pub(super) recorded: bool,
}

#[async_trait]
impl Pollable for FileWriter {
    async fn ready(&mut self) {}
}

#[async_trait]
impl OutputStream for FileWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.task
            .charge_write(bytes.len() as u64)
            .map_err(|code| failed(LimitCode(code)))?;
        let offset = match self.position {
            Position::At(offset) => offset,
            Position::Append => self.file.file.metadata().map_err(failed)?.len(),
        };
        self.file
            .file
            .write_all_at(&bytes, offset)
            .map_err(failed)?;
        if let Position::At(offset) = &mut self.position {
            *offset += bytes.len() as u64;
        }
        if !self.recorded {
            self.recorded = true;
            self.task.record_write(&self.path);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Never 0: a full budget fails the write itself, with the limit's error.
        Ok(WRITE_BUDGET)
    }
}
