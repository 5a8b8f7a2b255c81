//! Build the test guests (tests/guests) and the example plugins (plugins/)
//! for wasm32-wasip2, each workspace with its own target directory, so the
//! tests run against real components.

#[path = "../host/build/wasm.rs"]
mod wasm;

use std::path::{Path, PathBuf};

use wasm::{TARGET, watch};

fn main() {
    let tests = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = tests.parent().unwrap().to_owned();

    let guests = tests.join("guests");
    wasm::build(&guests, &root.join("target").join("wasm-guests"), &[]);
    // The plugins build into their own target dir, where their manifests'
    // `component` paths point.
    let plugins = root.join("plugins");
    wasm::build(&plugins, &plugins.join("target"), &[]);

    let out = root
        .join("target")
        .join("wasm-guests")
        .join(TARGET)
        .join("release");
    println!("cargo:rustc-env=GUEST_WASM_DIR={}", out.display());
    watch(&root.join("wit"));
    watch(&root.join("host/build"));
    watch_workspace(&guests);
    watch_workspace(&plugins);
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
