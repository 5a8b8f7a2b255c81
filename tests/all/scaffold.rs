//! `subagent new NAME --lang rust|python|js`: the bundle it writes builds
//! with `subagent build` and runs with `subagent run`, as written.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// A workspace with a little of everything to count.
fn workspace() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("src")).unwrap();
    std::fs::write(
        ws.path().join("src/main.rs"),
        "fn main() {\n    run();\n}\n",
    )
    .unwrap();
    std::fs::write(ws.path().join("src/lib.rs"), "pub fn run() {}\n").unwrap();
    std::fs::write(ws.path().join("README.md"), "# demo\n\ntext\n").unwrap();
    ws
}

/// The CLI with `extra_path` ahead on PATH (where a language's build tool is).
fn cli(args: &[&str], extra_path: Option<&Path>, limit: Duration) -> Output {
    let mut cmd: Command = subagent_command(args);
    // What cargo test sets for this crate's build must not steer the bundle's.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    if let Some(dir) = extra_path {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_owned()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    output_within(cmd, limit).unwrap()
}

/// `subagent new NAME --lang LANG` in a temp dir: the bundle directory.
fn new_bundle(parent: &Path, name: &str, lang: &str) -> std::path::PathBuf {
    let dir = parent.join(name);
    let out = cli(
        &["new", name, "--lang", lang, "--dir", path(&dir)],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("subagent build {}", dir.display())),
        "{}",
        stdout(&out)
    );
    dir
}

#[test]
fn a_new_rust_bundle_builds_and_runs_as_written() {
    let parent = tempfile::tempdir().unwrap();
    let bundle = new_bundle(parent.path(), "line-counter", "rust");
    // The dependencies' build is kept across test runs; the bundle is as written.
    let shared = repo_root().join("target").join("scaffold-rust-target");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, bundle.join("target")).unwrap();

    let out = cli(&["build", path(&bundle)], None, Duration::from_secs(600));
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));

    let ws = workspace();
    let out = cli(
        &[
            "run",
            path(&bundle),
            "count",
            "--workspace",
            path(ws.path()),
            "--json",
        ],
        None,
        Duration::from_secs(120),
    );
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["summary"], "3 files in 2 kinds", "{report:#}");
    assert_eq!(report["data"]["rs"]["files"], 2);
    assert_eq!(report["data"]["rs"]["lines"], 4);
    assert_eq!(report["data"]["md"]["lines"], 3);
    assert_eq!(report["permissions"]["mode"], "readonly");
}

#[test]
fn new_refuses_a_bad_name_and_a_used_directory_and_writes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let out = cli(
        &[
            "new",
            "Line_Counter",
            "--dir",
            path(&parent.path().join("x")),
        ],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("`Line_Counter` is not a valid subagent name"),
        "{}",
        stderr(&out)
    );
    let used = parent.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("notes.txt"), "mine").unwrap();
    let out = cli(
        &["new", "used", "--dir", path(&used)],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("already exists and is not empty"),
        "{}",
        stderr(&out)
    );
    let out = cli(
        &[
            "new",
            "x",
            "--lang",
            "cobol",
            "--dir",
            path(&parent.path().join("y")),
        ],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("rust, python, js"),
        "{}",
        stderr(&out)
    );
    let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the user's directory: {left:?}");
    assert_eq!(
        std::fs::read_to_string(used.join("notes.txt")).unwrap(),
        "mine"
    );
}
