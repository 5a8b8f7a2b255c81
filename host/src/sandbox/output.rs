//! Capture a guest's stdout and stderr into one capped, byte-addressable log.
//!
//! Writes past the cap are accepted and dropped (the guest never fails for
//! printing too much); the number of dropped bytes is kept so the result can
//! say the output was truncated.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream as WasiOutputStream, Pollable, StreamResult};

/// Which of the guest's streams a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Stdout,
    Stderr,
}

/// Told of every chunk the log keeps: its stream, its byte offset in the log,
/// and the bytes.
pub trait OutputSink: Send + Sync {
    fn output(&self, stream: StreamKind, offset: u64, bytes: &[u8]);
}

/// The captured output of one task.
#[derive(Clone)]
pub struct OutputLog {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    buf: Vec<u8>,
    cap: usize,
    dropped: u64,
    sink: Option<Arc<dyn OutputSink>>,
}

impl OutputLog {
    /// A log that keeps at most `cap` bytes.
    pub fn new(cap: u64, sink: Option<Arc<dyn OutputSink>>) -> OutputLog {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        OutputLog {
            inner: Arc::new(Mutex::new(Inner {
                buf: Vec::new(),
                cap,
                dropped: 0,
                sink,
            })),
        }
    }

    /// A WASI stdout/stderr that appends to this log.
    pub fn stream(&self, kind: StreamKind) -> OutputStream {
        OutputStream {
            log: self.clone(),
            kind,
        }
    }

    fn append(&self, kind: StreamKind, bytes: &[u8]) {
        let mut inner = self.inner.lock().unwrap();
        let room = inner.cap - inner.buf.len();
        let kept = bytes.len().min(room);
        inner.dropped += (bytes.len() - kept) as u64;
        if kept == 0 {
            return;
        }
        let offset = inner.buf.len() as u64;
        inner.buf.extend_from_slice(&bytes[..kept]);
        if let Some(sink) = inner.sink.clone() {
            drop(inner);
            sink.output(kind, offset, &bytes[..kept]);
        }
    }

    /// Bytes kept so far.
    pub fn len(&self) -> u64 {
        self.inner.lock().unwrap().buf.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().unwrap().dropped
    }

    /// Up to `max` bytes from `offset`.
    pub fn read(&self, offset: u64, max: usize) -> Vec<u8> {
        let inner = self.inner.lock().unwrap();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(inner.buf.len());
        let end = start.saturating_add(max).min(inner.buf.len());
        inner.buf[start..end].to_vec()
    }

    /// Everything kept, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner.lock().unwrap().buf).into_owned()
    }
}

/// One of a guest's output streams, writing into an [`OutputLog`].
#[derive(Clone)]
pub struct OutputStream {
    log: OutputLog,
    kind: StreamKind,
}

/// How much a guest may write per `check-write`; writes never block.
const WRITE_BUDGET: usize = 64 * 1024;

impl IsTerminal for OutputStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputStream {
    fn p2_stream(&self) -> Box<dyn WasiOutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl WasiOutputStream for OutputStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.append(self.kind, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutputStream {
    async fn ready(&mut self) {}
}

impl AsyncWrite for OutputStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.append(self.kind, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_counts_dropped_bytes() {
        let log = OutputLog::new(8, None);
        log.append(StreamKind::Stdout, b"hello ");
        log.append(StreamKind::Stderr, b"world");
        assert_eq!(log.text(), "hello wo");
        assert_eq!(log.dropped(), 3);
        assert_eq!(log.read(6, 100), b"wo");
    }
}
