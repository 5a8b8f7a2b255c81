//! Build the built-in subagents (`deep-search`, `todo-report` and the
//! `prompt-agent` runner, in `plugins/`) for wasm32-wasip2, so the binary
//! embeds them (`src/builtin.rs`): a user who installs `subagent` without a
//! checkout has working subagents.

#[path = "build/wasm.rs"]
mod wasm;

use std::path::PathBuf;

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
    let packages: Vec<&str> = BUILTINS.iter().map(|(package, _, _)| *package).collect();
    wasm::build(&plugins, &target_dir, &packages);
    let out = target_dir.join(wasm::TARGET).join("release");
    for (package, stem, var) in BUILTINS {
        let wasm = out.join(format!("{stem}.wasm"));
        let bytes = std::fs::read(&wasm)
            .unwrap_or_else(|e| panic!("{} was not built: {e}", wasm.display()));
        println!("cargo:rustc-env={var}={}", wasm.display());
        // Hashed here, once, so the binary never hashes megabytes at start.
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        println!("cargo:rustc-env={var}_SHA256={digest}");
        wasm::watch(&plugins.join(package));
    }
    for shared in ["sdk", "Cargo.toml", "Cargo.lock"] {
        wasm::watch(&plugins.join(shared));
    }
    wasm::watch(&root.join("wit"));
    wasm::watch(&host.join("build"));
}
