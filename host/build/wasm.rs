//! Building a guest workspace for wasm32-wasip2 from a build script: shared
//! by host/build.rs (the built-in subagents) and tests/build.rs (the test
//! guests and every plugin), which includes it by path.

use std::path::Path;
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// `cargo build --release --target wasm32-wasip2` in `workspace` into
/// `target_dir`, of `packages` (all of them when empty). Panics with cargo's
/// output, and the fix when the target is missing.
pub fn build(workspace: &Path, target_dir: &Path, packages: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", target_dir);
    if packages.is_empty() {
        cmd.arg("--workspace");
    }
    for package in packages {
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
        .unwrap_or_else(|e| panic!("cannot run cargo to build {}: {e}", workspace.display()));
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
        panic!(
            "building the wasm guests in {} failed:\n{stderr}{hint}",
            workspace.display()
        );
    }
}

pub fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
