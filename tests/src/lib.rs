//! Paths of the test guests and example plugins, compiled for
//! `wasm32-wasip2` by this crate's build script.

use std::path::PathBuf;

/// The root of the repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The compiled test guest `name` (a crate under tests/guests).
pub fn guest(name: &str) -> PathBuf {
    PathBuf::from(env!("GUEST_WASM_DIR")).join(format!("{}.wasm", name.replace('-', "_")))
}

/// The bundle directory of the example plugin `name` (under plugins/).
pub fn plugin(name: &str) -> PathBuf {
    repo_root().join("plugins").join(name)
}
