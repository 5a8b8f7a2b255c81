//! On-disk cache of compiled components.
//!
//! An entry is keyed by the engine's compatibility hash (a directory) and the
//! wasm's SHA-256 (the file name), so an artifact of another engine
//! configuration or wasmtime version is never looked up. The entry is the
//! raw artifact, which wasmtime maps straight from the file, plus a sidecar
//! checksum: XXH3-128 over the wasm digest and the artifact. A truncated or
//! bit-flipped artifact, or one copied in from another component's entry,
//! fails the checksum; one wasmtime refuses (built by another engine) fails
//! its own header check. Either way it is recompiled and replaced, never
//! trusted.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled; the artifact was stored.
    Compiled,
    /// Compiled because the entry was corrupt or foreign; it was replaced.
    Rebuilt { reason: String },
    /// Compiled; there is no cache directory (or it is not writable).
    Uncached,
}

/// The artifact cache of one engine.
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Feeds `Hash` output into SHA-256, for a hash that is stable across runs.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The checksum of a cache entry: binds the artifact to the wasm it came from.
pub fn entry_checksum(wasm_digest: &str, artifact: &[u8]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(wasm_digest.as_bytes());
    hasher.update(artifact);
    format!("xxh3-128:{:032x}\n", hasher.digest128())
}

fn sidecar(entry: &Path) -> PathBuf {
    entry.with_extension("cwasm.sum")
}

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> ArtifactCache {
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..16]);
        ArtifactCache { dir, engine_key }
    }

    /// The cache entry's path for a wasm digest.
    pub fn entry_path(&self, wasm_digest: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(
            dir.join(&self.engine_key)
                .join(format!("{wasm_digest}.cwasm")),
        )
    }

    /// Load the component for `wasm` from the cache, or compile and store it.
    ///
    /// # Errors
    ///
    /// When `wasm` does not compile; cache I/O problems only cost a compile.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        wasm_digest: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(wasm_digest) else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Uncached));
        };
        let rebuild_reason = match Self::verify(&path, wasm_digest) {
            Ok(()) => {
                // SAFETY: the file holds bytes that `Engine::precompile_component`
                // produced for the wasm with this digest (the checksum binds
                // them) under an engine with this compatibility hash (the entry
                // path is keyed by it), and they are intact (checksum verified).
                // wasmtime checks its own header again before using them.
                match unsafe { Component::deserialize_file(engine, &path) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(err) => Some(format!("wasmtime refused the cached artifact: {err}")),
                }
            }
            Err(Miss::Absent) => None,
            Err(Miss::Invalid(reason)) => Some(reason),
        };
        let artifact = engine.precompile_component(wasm)?;
        // SAFETY: `artifact` was just produced by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        let stored = Self::store(&path, wasm_digest, &artifact).is_ok();
        let outcome = match (rebuild_reason, stored) {
            (Some(reason), _) => CacheOutcome::Rebuilt { reason },
            (None, true) => CacheOutcome::Compiled,
            (None, false) => CacheOutcome::Uncached,
        };
        Ok((component, outcome))
    }

    fn verify(path: &Path, wasm_digest: &str) -> Result<(), Miss> {
        let artifact = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
            Err(err) => {
                return Err(Miss::Invalid(format!(
                    "cannot read {}: {err}",
                    path.display()
                )));
            }
        };
        let expected = std::fs::read_to_string(sidecar(path))
            .map_err(|_| Miss::Invalid("the cache entry has no checksum".into()))?;
        if expected != entry_checksum(wasm_digest, &artifact) {
            return Err(Miss::Invalid(
                "the cache entry is corrupt (checksum mismatch)".into(),
            ));
        }
        Ok(())
    }

    /// Write the artifact, then its checksum, each atomically (a temporary
    /// file in the same directory, then rename). A crash between the two
    /// leaves an entry without a valid checksum, which is rebuilt.
    fn store(path: &Path, wasm_digest: &str, artifact: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().expect("entry paths have a parent");
        std::fs::create_dir_all(dir)?;
        write_atomic(dir, path, artifact)?;
        write_atomic(
            dir,
            &sidecar(path),
            entry_checksum(wasm_digest, artifact).as_bytes(),
        )
    }
}

enum Miss {
    Absent,
    Invalid(String),
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(
        ".{}.{:x}.tmp",
        std::process::id(),
        crate::ids::random_u64()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
