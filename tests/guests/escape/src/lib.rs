//! Tries to get out of the sandbox, as the prompt says, and reports every
//! attempt: `{"results": [{"op", "ok", "kind", "message"}], ...}`. The tests
//! check each attempt failed and that nothing outside the allowed set changed.
//!
//! Expects the fixture the tests build: `/workspace/readme.txt`,
//! `/workspace/src/lib.rs`, the write dir `/workspace/out/` with
//! `existing.txt`, symlinks `link_abs` / `link_rel` (to the outside dir) and
//! `out/esc` (to the outside dir) / `out/up` (to `src/`), and `secret.txt`
//! outside the workspace.
use std::fs;
use std::io::{self, Write};
use subagent_sdk::{Outcome, RunError, Subagent, Task};

struct Escape;

struct Attempts(Vec<serde_json::Value>);

impl Attempts {
    fn try_op(&mut self, op: &str, f: impl FnOnce() -> io::Result<()>) {
        let entry = match f() {
            Ok(()) => serde_json::json!({"op": op, "ok": true}),
            Err(e) => {
                serde_json::json!({"op": op, "ok": false, "kind": format!("{:?}", e.kind()), "message": e.to_string()})
            }
        };
        self.0.push(entry);
    }

    fn read(&mut self, path: &str) {
        self.try_op(&format!("read {path}"), || fs::read(path).map(drop));
    }

    fn write(&mut self, path: &str) {
        self.try_op(&format!("write {path}"), || fs::write(path, b"pwned"));
    }
}

fn overwrite(path: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(b"pwned")
}

fn symlink(target: &str, link: &str) -> io::Result<()> {
    let target = std::ffi::CString::new(target).map_err(io::Error::other)?;
    let link = std::ffi::CString::new(link).map_err(io::Error::other)?;
    // SAFETY: both arguments are valid NUL-terminated strings.
    if unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Subagent for Escape {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let mut words = task.prompt.split_whitespace();
        let attack = words.next().unwrap_or("").to_owned();
        let arg = words.next().unwrap_or("").to_owned();
        let mut a = Attempts(Vec::new());
        let mut extra = serde_json::Map::new();
        match attack.as_str() {
            "write-readonly" => {
                a.write("/workspace/new.txt");
                a.try_op("create_dir /workspace/newdir", || {
                    fs::create_dir("/workspace/newdir")
                });
                a.try_op("remove /workspace/readme.txt", || {
                    fs::remove_file("/workspace/readme.txt")
                });
                a.try_op("overwrite /workspace/readme.txt", || {
                    overwrite("/workspace/readme.txt")
                });
                a.try_op("truncate /workspace/readme.txt", || {
                    fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open("/workspace/readme.txt")
                        .map(drop)
                });
                a.try_op("append /workspace/readme.txt", || {
                    fs::OpenOptions::new()
                        .append(true)
                        .open("/workspace/readme.txt")?
                        .write_all(b"x")
                });
                a.try_op("rename /workspace/readme.txt", || {
                    fs::rename("/workspace/readme.txt", "/workspace/r2.txt")
                });
                a.try_op("remove_dir_all /workspace/src", || {
                    fs::remove_dir_all("/workspace/src")
                });
                a.write("/workspace/src/new.rs");
            }
            "dotdot" => {
                a.read("/workspace/../outside/secret.txt");
                a.read("/workspace/../../../../etc/passwd");
                a.read("../outside/secret.txt");
                a.write("/workspace/out/../../outside/pwned.txt");
                a.write("/workspace/out/../readme.txt");
                a.write("/workspace/out/../pwned.txt");
                a.try_op("create_dir /workspace/out/../../x", || {
                    fs::create_dir("/workspace/out/../../x")
                });
            }
            "absolute" => {
                a.read("/etc/passwd");
                a.write("/tmp/pwned.txt");
                a.read("/proc/self/environ");
                a.try_op("read_dir /", || fs::read_dir("/").map(drop));
                a.try_op("read_dir /tmp", || fs::read_dir("/tmp").map(drop));
            }
            "symlinks" => {
                a.read("/workspace/link_abs/secret.txt");
                a.read("/workspace/link_rel/secret.txt");
                a.read("/workspace/out/esc/secret.txt");
                a.write("/workspace/out/esc/pwned.txt");
                a.write("/workspace/out/up/lib.rs");
                a.try_op("overwrite /workspace/out/up/lib.rs", || {
                    overwrite("/workspace/out/up/lib.rs")
                });
                a.write("/workspace/out/up/new.rs");
            }
            "create-symlinks" => {
                a.try_op("symlink /etc/passwd -> out/l1 then read", || {
                    symlink("/etc/passwd", "/workspace/out/l1")?;
                    fs::read("/workspace/out/l1").map(drop)
                });
                a.try_op(
                    "symlink ../../outside/secret.txt -> out/l2 then read",
                    || {
                        symlink("../../outside/secret.txt", "/workspace/out/l2")?;
                        fs::read("/workspace/out/l2").map(drop)
                    },
                );
                a.try_op("symlink ../readme.txt -> out/l3 then overwrite", || {
                    symlink("../readme.txt", "/workspace/out/l3")?;
                    overwrite("/workspace/out/l3")
                });
                a.try_op("symlink readme.txt -> /workspace/l4", || {
                    symlink("readme.txt", "/workspace/l4")
                });
            }
            "hardlinks" => {
                a.try_op("hard_link readme.txt -> out/hl then overwrite", || {
                    fs::hard_link("/workspace/readme.txt", "/workspace/out/hl")?;
                    overwrite("/workspace/out/hl")
                });
                a.try_op("hard_link out/existing.txt -> /workspace/hl2", || {
                    fs::hard_link("/workspace/out/existing.txt", "/workspace/hl2")
                });
                a.try_op("hard_link ../outside/secret.txt -> out/hl3", || {
                    fs::hard_link("/workspace/../outside/secret.txt", "/workspace/out/hl3")
                });
            }
            "rename" => {
                a.try_op("rename out/existing.txt -> /workspace/moved.txt", || {
                    fs::rename("/workspace/out/existing.txt", "/workspace/moved.txt")
                });
                a.try_op("rename readme.txt -> out/stolen.txt", || {
                    fs::rename("/workspace/readme.txt", "/workspace/out/stolen.txt")
                });
                a.try_op("rename out/existing.txt -> src/x.txt", || {
                    fs::rename("/workspace/out/existing.txt", "/workspace/src/x.txt")
                });
                a.try_op("rename out/existing.txt -> ../outside/x.txt", || {
                    fs::rename("/workspace/out/existing.txt", "/workspace/../outside/x.txt")
                });
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                let args: Vec<String> = std::env::args().collect();
                extra.insert("vars".into(), serde_json::json!(vars));
                extra.insert("args".into(), serde_json::json!(args));
                extra.insert(
                    "cwd".into(),
                    serde_json::json!(
                        std::env::current_dir()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default()
                    ),
                );
                a.try_op("env_var HOME", || {
                    std::env::var("HOME").map(drop).map_err(io::Error::other)
                });
                a.try_op("env_var PATH", || {
                    std::env::var("PATH").map(drop).map_err(io::Error::other)
                });
                a.read("/proc/self/environ");
            }
            "network" => {
                a.try_op(&format!("tcp connect {arg}"), || {
                    std::net::TcpStream::connect(arg.as_str()).map(drop)
                });
                a.try_op("tcp bind 127.0.0.1:0", || {
                    std::net::TcpListener::bind("127.0.0.1:0").map(drop)
                });
                a.try_op("udp bind 127.0.0.1:0", || {
                    std::net::UdpSocket::bind("127.0.0.1:0").map(drop)
                });
            }
            "allowed" => {
                a.write("/workspace/out/created.txt");
                a.try_op("overwrite /workspace/out/existing.txt", || {
                    overwrite("/workspace/out/existing.txt")
                });
                a.try_op("remove /workspace/out/gone.txt", || {
                    fs::remove_file("/workspace/out/gone.txt")
                });
                a.try_op("create_dir /workspace/out/sub", || {
                    fs::create_dir("/workspace/out/sub")
                });
                a.write("/workspace/out/sub/deep.txt");
                a.read("/workspace/readme.txt");
            }
            other => return Err(RunError::invalid(format!("unknown attack `{other}`"))),
        }
        extra.insert("results".into(), serde_json::Value::Array(a.0));
        Ok(Outcome::summary(attack).with_data(serde_json::Value::Object(extra)))
    }
}

subagent_sdk::export!(Escape);
