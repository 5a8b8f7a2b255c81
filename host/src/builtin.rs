//! The built-in subagents: `deep-search`, `todo-report` and the
//! `prompt-agent` runner of Markdown definitions, embedded in the binary
//! (`build.rs` builds them from `plugins/`).
//!
//! They are served as one more registry, the last one: on first use they are
//! written into the cache directory (`<cache>/builtin/<version>-<digest>/`,
//! once per build of the binary, atomically), each manifest pinning its
//! component's SHA-256, so a file changed there is refused, not run. Any
//! registry bundle of the same name shadows a built-in.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

/// One embedded subagent.
struct Builtin {
    name: &'static str,
    manifest: &'static str,
    wasm: &'static [u8],
    /// The component's SHA-256 (hex), computed by build.rs.
    sha256: &'static str,
}

/// In name order, as a registry lists its bundles.
const BUILTINS: [Builtin; 3] = [
    Builtin {
        name: "deep-search",
        manifest: include_str!("../../plugins/deep-search/subagent.toml"),
        wasm: include_bytes!(env!("SUBAGENT_BUILTIN_DEEP_SEARCH")),
        sha256: env!("SUBAGENT_BUILTIN_DEEP_SEARCH_SHA256"),
    },
    Builtin {
        name: "prompt-agent",
        manifest: include_str!("../../plugins/prompt-agent/subagent.toml"),
        wasm: include_bytes!(env!("SUBAGENT_BUILTIN_PROMPT_AGENT")),
        sha256: env!("SUBAGENT_BUILTIN_PROMPT_AGENT_SHA256"),
    },
    Builtin {
        name: "todo-report",
        manifest: include_str!("../../plugins/todo-report/subagent.toml"),
        wasm: include_bytes!(env!("SUBAGENT_BUILTIN_TODO_REPORT")),
        sha256: env!("SUBAGENT_BUILTIN_TODO_REPORT_SHA256"),
    },
];

/// Cleared by [`disable`] (the CLI's `--no-builtins`).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Serve no built-ins in this process: only the registries' own bundles
/// exist (for a team that wants to vet every subagent it runs).
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}

/// Where `--cache-dir` (or the default cache directory) puts them.
static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
static REGISTRY: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Use `dir` as the cache directory for the built-ins (the CLI's
/// `--cache-dir`); call before the first [`registry`]. Later calls change
/// nothing.
pub fn set_cache_dir(dir: &Path) {
    let _ = ROOT.set(Some(dir.to_owned()));
}

/// The built-in registry's directory, written on first use; `None` when
/// there is no cache directory or it cannot be written (then there are no
/// built-ins, and nothing else changes).
pub fn registry() -> Option<PathBuf> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    REGISTRY
        .get_or_init(|| {
            let root = ROOT.get_or_init(crate::paths::cache_dir).clone()?;
            materialize(&root.join("builtin")).ok()
        })
        .clone()
}

/// The built-in bundles with their directories, parsed once per process
/// from the manifests the binary carries (as [`registry`] wrote them): a
/// lookup by name does not read or parse them again. Empty when there are
/// no built-ins.
pub fn bundles() -> &'static [(PathBuf, crate::Bundle)] {
    static BUNDLES: OnceLock<Vec<(PathBuf, crate::Bundle)>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        let Some(registry) = registry() else {
            return Vec::new();
        };
        BUILTINS
            .iter()
            .map(|builtin| {
                let dir = registry.join(builtin.name);
                let text = manifest(builtin, &file_name(builtin));
                let manifest =
                    crate::Manifest::parse(&dir.join(crate::manifest::MANIFEST_FILE), &text)
                        .expect("a built-in manifest is valid (checked by its tests)");
                let bundle = crate::Bundle::from_manifest(manifest)
                    .expect("a built-in manifest has no prompt file");
                (dir, bundle)
            })
            .collect()
    })
}

/// Whether `dir` is the built-in registry.
pub fn is_registry(dir: &Path) -> bool {
    REGISTRY.get().and_then(Option::as_deref) == Some(dir)
}

/// Write every built-in into `parent/<version>-<digest>/` unless it is there.
fn materialize(parent: &Path) -> std::io::Result<PathBuf> {
    // Over the manifests and the components' digests: the components
    // themselves are hashed at build time, not at every start.
    let mut hasher = Sha256::new();
    for builtin in &BUILTINS {
        hasher.update(builtin.manifest.as_bytes());
        hasher.update(builtin.sha256.as_bytes());
    }
    let digest = hex::encode(hasher.finalize());
    let dir = parent.join(format!("{}-{}", env!("CARGO_PKG_VERSION"), &digest[..16]));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(parent)?;
    for builtin in &BUILTINS {
        let bundle = staging.path().join(builtin.name);
        std::fs::create_dir(&bundle)?;
        let file = file_name(builtin);
        std::fs::write(bundle.join(&file), builtin.wasm)?;
        std::fs::write(
            bundle.join(crate::manifest::MANIFEST_FILE),
            manifest(builtin, &file),
        )?;
    }
    std::fs::write(staging.path().join(".complete"), digest)?;
    let staged = staging.keep();
    match std::fs::rename(&staged, &dir) {
        Ok(()) => Ok(dir),
        // Another process got there first: theirs is the same.
        Err(_) if dir.join(".complete").is_file() => {
            let _ = std::fs::remove_dir_all(&staged);
            Ok(dir)
        }
        Err(err) => {
            let _ = std::fs::remove_dir_all(&staged);
            Err(err)
        }
    }
}

/// The file its component is written to.
fn file_name(builtin: &Builtin) -> String {
    format!("{}.wasm", builtin.name.replace('-', "_"))
}

/// The plugin's manifest for its embedded component: `component` points at
/// the file beside it, pinned by SHA-256; there is nothing to build.
fn manifest(builtin: &Builtin, file: &str) -> String {
    let mut table: toml::Table = builtin
        .manifest
        .parse()
        .expect("a plugin manifest is valid TOML (checked by its tests)");
    table.insert("component".into(), file.into());
    table.insert("sha256".into(), builtin.sha256.into());
    table.remove("build");
    format!(
        "# Built into subagent {}; written here on first use.\n{}",
        env!("CARGO_PKG_VERSION"),
        toml::to_string(&table).expect("a TOML table serializes")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_are_written_once_with_pinned_components() {
        let dir = tempfile::tempdir().unwrap();
        let first = materialize(dir.path()).unwrap();
        for name in BUILTINS.iter().map(|b| b.name) {
            let manifest =
                crate::Manifest::load(&first.join(name).join(crate::manifest::MANIFEST_FILE))
                    .unwrap();
            assert_eq!(manifest.name, name);
            assert!(manifest.component.is_file());
            assert_eq!(manifest.sha256.as_deref().map(str::len), Some(64));
            assert!(manifest.build_command.is_none());
        }
        // The digests build.rs computed are those of the embedded bytes.
        for builtin in &BUILTINS {
            assert_eq!(builtin.sha256, hex::encode(Sha256::digest(builtin.wasm)));
        }
        // What lookups use (parsed from the binary's text) is what was written.
        for builtin in &BUILTINS {
            let path = first
                .join(builtin.name)
                .join(crate::manifest::MANIFEST_FILE);
            let from_disk = crate::Manifest::load(&path).unwrap();
            let in_memory =
                crate::Manifest::parse(&path, &manifest(builtin, &file_name(builtin))).unwrap();
            assert_eq!(format!("{in_memory:?}"), format!("{from_disk:?}"));
        }
        let again = materialize(dir.path()).unwrap();
        assert_eq!(first, again);
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no staging directory is left behind");
    }
}
