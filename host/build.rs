//! Build the built-in subagents (`deep-search`, `todo-report` and the
//! `prompt-agent` runner, in `plugins/`) for wasm32-wasip2, so the binary
//! embeds them (`src/builtin.rs`): a user who installs `subagent` without a
//! checkout has working subagents.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Package name, wasm file stem, and the env var the path goes in.
const BUILTINS: [(&str, &str, &str); 3] = [
    ("deep-search", "deep_search", "SUBAGENT_BUILTIN_DEEP_SEARCH"),
    ("todo-report", "todo_report", "SUBAGENT_BUILTIN_TODO_REPORT"),
    (
        "prompt-agent",
        "prompt_agent",
        "SUBAGENT_BUILTIN_PROMPT_AGENT",
    ),
];

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = host.parent().unwrap().to_owned();
    let plugins = root.join("plugins");
    // The plugins' own target dir, where their manifests point (and where
    // the tests' build script builds them too; cargo's lock orders the two).
    let target_dir = plugins.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir);
    for (package, _, _) in BUILTINS {
        cmd.args(["-p", package]);
    }
    // Settings meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the built-in subagents: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\n\nthe {TARGET} target is missing: run `rustup target add {TARGET}`\n")
        } else {
            String::new()
        };
        panic!("building the built-in subagents in plugins/ failed:\n{stderr}{hint}");
    }
    let out = target_dir.join(TARGET).join("release");
    for (package, stem, var) in BUILTINS {
        let wasm = out.join(format!("{stem}.wasm"));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        println!("cargo:rustc-env={var}={}", wasm.display());
        watch(&plugins.join(package));
    }
    for shared in ["sdk", "Cargo.toml", "Cargo.lock"] {
        watch(&plugins.join(shared));
    }
    watch(&root.join("wit"));
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
