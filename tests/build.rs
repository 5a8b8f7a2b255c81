//! Build the test guests (tests/guests) and the example plugins (plugins/)
//! for wasm32-wasip2, each workspace with its own target directory, so the
//! tests run against real components.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let tests = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = tests.parent().unwrap().to_owned();

    let guests = tests.join("guests");
    build(&guests, &root.join("target").join("wasm-guests"));
    // The plugins build into their own target dir, where their manifests'
    // `component` paths point.
    let plugins = root.join("plugins");
    build(&plugins, &plugins.join("target"));

    let out = root
        .join("target")
        .join("wasm-guests")
        .join(TARGET)
        .join("release");
    println!("cargo:rustc-env=GUEST_WASM_DIR={}", out.display());
    watch(&root.join("wit"));
    watch_workspace(&guests);
    watch_workspace(&plugins);
}

fn build(workspace: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--workspace", "--target", TARGET])
        .env("CARGO_TARGET_DIR", target_dir);
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

/// Rebuild when any source of a guest workspace changes (but not its target dir).
fn watch_workspace(workspace: &Path) {
    watch(&workspace.join("Cargo.toml"));
    for entry in std::fs::read_dir(workspace).unwrap().flatten() {
        let path = entry.path();
        if path.join("Cargo.toml").is_file() {
            watch(&path);
        }
    }
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
