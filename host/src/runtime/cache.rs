//! On-disk cache of compiled components.
//!
//! An entry is keyed by the engine's compatibility hash and the wasm's
//! SHA-256, so an artifact compiled by another engine configuration or
//! wasmtime version is never looked up. Each entry carries the SHA-256 of its
//! payload; an entry that fails that check, or that wasmtime refuses, is
//! recompiled and replaced, never trusted.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"subagent-cwasm1\n";

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
        let rebuild_reason = match std::fs::read(&path) {
            Ok(bytes) => match Self::verify(&bytes) {
                Ok(payload) => {
                    // SAFETY: the payload is bytes that `Engine::precompile_component`
                    // produced for an engine with this compatibility hash (the entry
                    // path is keyed by it), and they are intact (SHA-256 checked).
                    match unsafe { Component::deserialize(engine, payload) } {
                        Ok(component) => return Ok((component, CacheOutcome::Hit)),
                        Err(err) => Some(format!("wasmtime refused the cached artifact: {err}")),
                    }
                }
                Err(reason) => Some(reason),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => Some(format!("cannot read {}: {err}", path.display())),
        };
        let artifact = engine.precompile_component(wasm)?;
        // SAFETY: `artifact` was just produced by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        let stored = Self::store(&path, &artifact).is_ok();
        let outcome = match (rebuild_reason, stored) {
            (Some(reason), _) => CacheOutcome::Rebuilt { reason },
            (None, true) => CacheOutcome::Compiled,
            (None, false) => CacheOutcome::Uncached,
        };
        Ok((component, outcome))
    }

    fn verify(bytes: &[u8]) -> Result<&[u8], String> {
        let header = MAGIC.len() + 32;
        if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
            return Err("the cache entry has no valid header".into());
        }
        let (digest, payload) = bytes[MAGIC.len()..].split_at(32);
        if Sha256::digest(payload).as_slice() != digest {
            return Err("the cache entry is corrupt (checksum mismatch)".into());
        }
        Ok(payload)
    }

    /// Write atomically: a temporary file in the same directory, then rename.
    fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().expect("entry paths have a parent");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            std::process::id(),
            crate::ids::random_u64()
        ));
        let result = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(artifact))?;
            file.write_all(artifact)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}
