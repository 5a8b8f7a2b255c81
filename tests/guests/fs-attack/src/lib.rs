//! Attacks the host's filesystem capability as the prompt says, and reports
//! what happened. Paths in the prompt are relative to `/workspace`. Every
//! operation is reported as `{"op", "ok", "kind", "errno", "message",
//! "detail"}`: `kind` is the `io::ErrorKind`, `errno` the WASI errno.
//!
//! - `do OP...`: run the operations in order and return
//!   `{"ops": [...]}`, summary `N ops, M failed`. Operations:
//!   `write:P` (create or truncate, write a line), `append:P`, `read:P`,
//!   `open-write:P` (open an existing file for writing), `stat:P` (without
//!   following a symlink; `detail` is the file type), `remove:P`, `mkdir:P`,
//!   `rmdir:P`, `rename:A:B`, `symlink:TARGET:LINK`, `hardlink:SRC:DST`,
//!   `same-size:P` (overwrite with as many different bytes, then put the
//!   modification time back), `wait` (progress note `waiting`, then wait up
//!   to 60 s for a follow-up message).
//! - `fill P CHUNK MAX`: write CHUNK-byte blocks to P until a write fails or
//!   MAX bytes are written: `{"bytes", "error"}`.
//! - `create-files DIR MAX`: create empty files `DIR/f<i>` until one fails
//!   or MAX exist: `{"created", "error"}`.
//! - `hog FILE MAX READY DONE`: open FILE over and over, keeping every
//!   descriptor, until an open fails or MAX are open; then create the
//!   directory READY and hold the descriptors until DONE exists (at most
//!   20 s): `{"opened", "error", "ready"}`.
//! - `sibling DIR READY DONE`: wait until READY exists (at most 20 s), do
//!   ordinary file work in DIR, then create the directory DONE:
//!   `{"ready_seen", "ops"}`, summary `sibling: N file ops, M failed`.
//! - `deep DIR MAX`: create DIR, then `d/d/d/...` below it one level at a
//!   time through directory descriptors (paths never grow), until a level
//!   fails or MAX levels exist: `{"depth", "error"}`.
//! - `tree DIR N`: create `DIR/d0/d1/.../d<N-1>` with a file `f.txt` in each
//!   level, closing every file: `{"files", "dirs", "failures"}`.
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use subagent_sdk::{Outcome, RunError, Subagent, Task};

struct FsAttack;

fn ws(path: &str) -> String {
    format!("{}/{path}", subagent_sdk::WORKSPACE)
}

fn error_json(e: &io::Error) -> Value {
    json!({"kind": format!("{:?}", e.kind()), "errno": e.raw_os_error(), "message": e.to_string()})
}

/// One operation's report.
fn report(op: &str, result: io::Result<String>) -> Value {
    match result {
        Ok(detail) => json!({"op": op, "ok": true, "detail": detail}),
        Err(e) => {
            let mut entry = json!({"op": op, "ok": false});
            entry
                .as_object_mut()
                .unwrap()
                .extend(error_json(&e).as_object().unwrap().clone());
            entry
        }
    }
}

fn c_string(text: &str) -> io::Result<CString> {
    CString::new(text).map_err(io::Error::other)
}

fn last_error<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

fn symlink(target: &str, link: &str) -> io::Result<String> {
    let (target, link) = (c_string(target)?, c_string(&ws(link))?);
    // SAFETY: both arguments are valid NUL-terminated strings.
    if unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(String::new())
    } else {
        last_error()
    }
}

fn file_type(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "dir"
    } else if t.is_file() {
        "file"
    } else {
        "other"
    }
}

/// Overwrite `path` with as many different bytes, then restore its
/// modification time: only a host that records writes can tell.
fn same_size(path: &str) -> io::Result<String> {
    let before = fs::metadata(path)?;
    let old = fs::read(path)?;
    let new: Vec<u8> = old
        .iter()
        .map(|b| if *b == b'X' { b'Y' } else { b'X' })
        .collect();
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(&new)?;
    file.set_modified(before.modified()?)?;
    Ok(format!("{} bytes", new.len()))
}

fn wait_for_message() -> io::Result<String> {
    subagent_sdk::progress::note("waiting");
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until && !subagent_sdk::cancelled() {
        if let Some(message) = subagent_sdk::messages::wait(Duration::from_secs(1)) {
            return Ok(message);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no follow-up message came",
    ))
}

fn op(spec: &str) -> io::Result<String> {
    let mut parts = spec.splitn(3, ':');
    let verb = parts.next().unwrap_or("");
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    match verb {
        "write" => fs::write(ws(a), "written by fs-attack\n").map(|()| String::new()),
        "append" => {
            let mut file = fs::OpenOptions::new().append(true).open(ws(a))?;
            file.write_all(b"appended by fs-attack\n")?;
            Ok(String::new())
        }
        "read" => fs::read(ws(a)).map(|bytes| format!("{} bytes", bytes.len())),
        "open-write" => fs::OpenOptions::new()
            .write(true)
            .open(ws(a))
            .map(|_| String::new()),
        "stat" => fs::symlink_metadata(ws(a)).map(|m| file_type(&m).to_owned()),
        "remove" => fs::remove_file(ws(a)).map(|()| String::new()),
        "mkdir" => fs::create_dir(ws(a)).map(|()| String::new()),
        "rmdir" => fs::remove_dir(ws(a)).map(|()| String::new()),
        "rename" => fs::rename(ws(a), ws(b)).map(|()| String::new()),
        "symlink" => symlink(a, b),
        "hardlink" => fs::hard_link(ws(a), ws(b)).map(|()| String::new()),
        "same-size" => same_size(&ws(a)),
        "wait" => wait_for_message(),
        other => Err(io::Error::other(format!("unknown operation `{other}`"))),
    }
}

fn run_ops<'a>(specs: impl Iterator<Item = &'a str>) -> Vec<Value> {
    specs.map(|spec| report(spec, op(spec))).collect()
}

fn failed(ops: &[Value]) -> usize {
    ops.iter().filter(|o| o["ok"] == false).count()
}

fn arg<T: std::str::FromStr>(words: &[&str], i: usize, what: &str) -> Result<T, RunError> {
    words
        .get(i)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| RunError::invalid(format!("missing or bad {what}")))
}

fn fill(path: &str, chunk: usize, max: u64) -> Value {
    let block = vec![b'z'; chunk];
    let mut bytes = 0u64;
    let result = (|| {
        let mut file = fs::File::create(ws(path))?;
        while bytes < max {
            file.write_all(&block)?;
            bytes += chunk as u64;
        }
        file.flush()
    })();
    json!({"bytes": bytes, "error": result.err().map(|e| error_json(&e))})
}

fn create_files(dir: &str, max: u64) -> Value {
    let mut created = 0u64;
    let mut error = None;
    while created < max {
        match fs::File::create(ws(&format!("{dir}/f{created}"))) {
            Ok(_) => created += 1,
            Err(e) => {
                error = Some(error_json(&e));
                break;
            }
        }
    }
    json!({"created": created, "error": error})
}

/// Poll for `path` every 20 ms, at most `limit`.
fn wait_for_path(path: &str, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if fs::symlink_metadata(ws(path)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn hog(file: &str, max: u64, ready: &str, done: &str) -> Value {
    let mut open = Vec::new();
    let mut error = None;
    while (open.len() as u64) < max {
        match fs::File::open(ws(file)) {
            Ok(f) => open.push(f),
            Err(e) => {
                error = Some(error_json(&e));
                break;
            }
        }
    }
    let opened = open.len();
    let ready = report(&format!("mkdir:{ready}"), op(&format!("mkdir:{ready}")));
    let done_seen = wait_for_path(done, Duration::from_secs(20));
    drop(open);
    json!({"opened": opened, "error": error, "ready": ready, "done_seen": done_seen})
}

fn sibling(dir: &str, ready: &str, done: &str) -> (usize, Value) {
    let ready_seen = wait_for_path(ready, Duration::from_secs(20));
    let work = [
        format!("write:{dir}/s1.txt"),
        format!("read:{dir}/s1.txt"),
        format!("append:{dir}/s1.txt"),
        format!("mkdir:{dir}/sub"),
        format!("write:{dir}/sub/s2.txt"),
        "read:readme.txt".to_owned(),
        format!("rename:{dir}/sub/s2.txt:{dir}/s2.txt"),
        format!("remove:{dir}/s2.txt"),
        format!("rmdir:{dir}/sub"),
    ];
    let mut ops = run_ops(work.iter().map(String::as_str));
    ops.push(report(
        "read_dir /workspace",
        fs::read_dir(subagent_sdk::WORKSPACE).map(|d| format!("{} entries", d.count())),
    ));
    let n = ops.len();
    let _ = op(&format!("mkdir:{done}"));
    (n, json!({"ready_seen": ready_seen, "ops": ops}))
}

/// Go `max` levels deep below `dir`, one `mkdirat` + `openat` per level.
fn deep(dir: &str, max: u64) -> Value {
    let mut depth = 0u64;
    let result = (|| -> io::Result<()> {
        fs::create_dir(ws(dir))?;
        let path = c_string(&ws(dir))?;
        let name = c_string("d")?;
        // SAFETY: valid NUL-terminated strings; every descriptor opened here
        // is closed once the next level is open.
        unsafe {
            let mut fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            if fd < 0 {
                return last_error();
            }
            while depth < max {
                if libc::mkdirat(fd, name.as_ptr(), 0o755) != 0 {
                    let e = io::Error::last_os_error();
                    libc::close(fd);
                    return Err(e);
                }
                let next = libc::openat(fd, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                let e = io::Error::last_os_error();
                libc::close(fd);
                if next < 0 {
                    return Err(e);
                }
                fd = next;
                depth += 1;
            }
            libc::close(fd);
        }
        Ok(())
    })();
    json!({"depth": depth, "error": result.err().map(|e| error_json(&e))})
}

fn tree(dir: &str, n: u64) -> Value {
    let (mut files, mut dirs) = (0u64, 0u64);
    let mut failures = Vec::new();
    let mut path = ws(dir);
    if let Err(e) = fs::create_dir(&path) {
        failures.push(error_json(&e));
    }
    for i in 0..n {
        path = format!("{path}/d{i}");
        match fs::create_dir(&path) {
            Ok(()) => dirs += 1,
            Err(e) => failures.push(error_json(&e)),
        }
        let written = fs::File::create(format!("{path}/f.txt")).and_then(|mut f| {
            f.write_all(b"level\n")?;
            f.flush()
        });
        match written {
            Ok(()) => files += 1,
            Err(e) => failures.push(error_json(&e)),
        }
    }
    json!({"files": files, "dirs": dirs, "failures": failures})
}

impl Subagent for FsAttack {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let words: Vec<&str> = task.prompt.split_whitespace().collect();
        let verb = words.first().copied().unwrap_or("");
        let text = |name: &str, i: usize| -> Result<String, RunError> {
            words
                .get(i)
                .map(|w| (*w).to_owned())
                .ok_or_else(|| RunError::invalid(format!("missing {name}")))
        };
        match verb {
            "do" => {
                let ops = run_ops(words[1..].iter().copied());
                Ok(
                    Outcome::summary(format!("{} ops, {} failed", ops.len(), failed(&ops)))
                        .with_data(json!({"ops": ops})),
                )
            }
            "fill" => {
                let data = fill(
                    &text("path", 1)?,
                    arg(&words, 2, "chunk")?,
                    arg(&words, 3, "max")?,
                );
                Ok(Outcome::summary(format!("filled {} bytes", data["bytes"])).with_data(data))
            }
            "create-files" => {
                let data = create_files(&text("dir", 1)?, arg(&words, 2, "max")?);
                Ok(Outcome::summary(format!("created {} files", data["created"])).with_data(data))
            }
            "hog" => {
                let data = hog(
                    &text("file", 1)?,
                    arg(&words, 2, "max")?,
                    &text("ready", 3)?,
                    &text("done", 4)?,
                );
                Ok(
                    Outcome::summary(format!("held {} descriptors", data["opened"]))
                        .with_data(data),
                )
            }
            "sibling" => {
                let (n, data) = sibling(&text("dir", 1)?, &text("ready", 2)?, &text("done", 3)?);
                let failed = failed(data["ops"].as_array().unwrap());
                Ok(
                    Outcome::summary(format!("sibling: {n} file ops, {failed} failed"))
                        .with_data(data),
                )
            }
            "deep" => {
                let data = deep(&text("dir", 1)?, arg(&words, 2, "max")?);
                Ok(Outcome::summary(format!("{} levels deep", data["depth"])).with_data(data))
            }
            "tree" => {
                let data = tree(&text("dir", 1)?, arg(&words, 2, "levels")?);
                Ok(Outcome::summary(format!("{} files", data["files"])).with_data(data))
            }
            other => Err(RunError::invalid(format!("unknown verb `{other}`"))),
        }
    }
}

subagent_sdk::export!(FsAttack);
