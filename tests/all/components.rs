//! Loading components: bad bytes, core modules and components that are not
//! subagents are refused with errors naming what is wrong; the on-disk
//! artifact cache is reused, and a corrupt or foreign entry is rebuilt.

use std::path::Path;

use subagent_host::runtime::{CacheOutcome, entry_checksum};
use subagent_host::{LoadError, Runtime, RuntimeConfig};

use crate::helpers::*;

fn fresh_runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn load(
    runtime: &Runtime,
    path: &Path,
) -> Result<std::sync::Arc<subagent_host::LoadedComponent>, LoadError> {
    runtime.load("test-guest", path, None, Path::new("subagent.toml"))
}

#[test]
fn invalid_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"this is not wasm at all").unwrap();
    let err = load(runtime(), &path).unwrap_err();
    assert!(matches!(err, LoadError::NotComponent { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("does not start with the wasm magic bytes"),
        "{err}"
    );

    // Valid header, broken body.
    std::fs::write(&path, b"\0asm\x0d\0\x01\0\xff\xff\xff").unwrap();
    let err = load(runtime(), &path).unwrap_err();
    assert!(
        err.to_string().contains("is not a WebAssembly component"),
        "{err}"
    );
}

#[test]
fn core_module_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("module.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
    let err = load(runtime(), &path).unwrap_err().to_string();
    assert!(
        err.contains("core WebAssembly module") && err.contains("wasm32-wasip2"),
        "{err}"
    );
}

#[test]
fn component_without_the_world_names_what_is_missing() {
    let err = load(runtime(), &guest("not-subagent")).unwrap_err();
    assert!(matches!(err, LoadError::NotSubagent { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("does not export `run`") && text.contains("wasi:cli/run"),
        "{text}"
    );
}

#[test]
fn missing_component_says_to_build_it() {
    let err = load(runtime(), Path::new("/nonexistent/x.wasm"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read component") && err.contains("subagent build"),
        "{err}"
    );
}

#[test]
fn digest_pin_is_enforced() {
    let pin = "0".repeat(64);
    let err = runtime()
        .load(
            "test-guest",
            &guest("noop"),
            Some(&pin),
            Path::new("subagent.toml"),
        )
        .unwrap_err();
    assert!(matches!(err, LoadError::DigestMismatch { .. }), "{err:?}");
    let good = load(runtime(), &guest("noop")).unwrap().digest.clone();
    runtime()
        .load(
            "test-guest",
            &guest("noop"),
            Some(&good),
            Path::new("subagent.toml"),
        )
        .unwrap();
}

#[test]
fn artifacts_are_cached_on_disk_and_reused() {
    let cache = tempfile::tempdir().unwrap();
    let first = load(&fresh_runtime(cache.path()), &guest("noop")).unwrap();
    assert_eq!(first.cache, CacheOutcome::Compiled);
    let second = load(&fresh_runtime(cache.path()), &guest("noop")).unwrap();
    assert_eq!(second.cache, CacheOutcome::Hit);
    assert_eq!(first.digest, second.digest);
}

#[test]
fn corrupt_cache_entry_is_detected_and_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = fresh_runtime(cache.path());
    let loaded = load(&runtime, &guest("noop")).unwrap();
    let entry = runtime.cache_entry(&loaded.digest).unwrap();
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();

    let again = load(&fresh_runtime(cache.path()), &guest("noop")).unwrap();
    assert!(
        matches!(&again.cache, CacheOutcome::Rebuilt { reason } if reason.contains("corrupt")),
        "{:?}",
        again.cache
    );
    // The entry was replaced by a good one.
    assert_eq!(
        load(&fresh_runtime(cache.path()), &guest("noop"))
            .unwrap()
            .cache,
        CacheOutcome::Hit
    );
}

#[test]
fn foreign_cache_entry_is_never_trusted() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = fresh_runtime(cache.path());
    let loaded = load(&runtime, &guest("noop")).unwrap();
    let entry = runtime.cache_entry(&loaded.digest).unwrap();
    // An entry with a valid checksum whose artifact is not this engine's
    // (here: the raw wasm itself): wasmtime's own check refuses it.
    let payload = std::fs::read(guest("noop")).unwrap();
    std::fs::write(&entry, &payload).unwrap();
    std::fs::write(
        entry.with_extension("cwasm.sum"),
        entry_checksum(&loaded.digest, &payload),
    )
    .unwrap();
    let again = load(&fresh_runtime(cache.path()), &guest("noop")).unwrap();
    assert!(
        matches!(&again.cache, CacheOutcome::Rebuilt { reason } if reason.contains("refused")),
        "{:?}",
        again.cache
    );

    std::fs::write(&entry, b"garbage").unwrap();
    let third = load(&fresh_runtime(cache.path()), &guest("noop")).unwrap();
    assert!(
        matches!(&third.cache, CacheOutcome::Rebuilt { .. }),
        "{:?}",
        third.cache
    );

    std::fs::remove_file(entry.with_extension("cwasm.sum")).unwrap();
    let fourth = load(&fresh_runtime(cache.path()), &guest("noop")).unwrap();
    assert!(
        matches!(&fourth.cache, CacheOutcome::Rebuilt { reason } if reason.contains("no checksum")),
        "{:?}",
        fourth.cache
    );
}

#[tokio::test]
async fn a_cache_entry_of_another_component_is_not_loaded_in_its_place() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = fresh_runtime(cache.path());
    let noop = load(&runtime, &guest("noop")).unwrap();
    let echo = load(&runtime, &guest("echo")).unwrap();
    // Copy noop's valid artifact and checksum over echo's entry.
    let (from, to) = (
        runtime.cache_entry(&noop.digest).unwrap(),
        runtime.cache_entry(&echo.digest).unwrap(),
    );
    std::fs::copy(&from, &to).unwrap();
    std::fs::copy(
        from.with_extension("cwasm.sum"),
        to.with_extension("cwasm.sum"),
    )
    .unwrap();
    let again = load(&fresh_runtime(cache.path()), &guest("echo")).unwrap();
    assert!(
        matches!(&again.cache, CacheOutcome::Rebuilt { reason } if reason.contains("checksum mismatch")),
        "{:?}",
        again.cache
    );
}

#[tokio::test]
async fn one_component_is_prepared_once_and_reused() {
    let a = load(runtime(), &guest("noop")).unwrap();
    let b = load(runtime(), &guest("noop")).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}

/// A component importing `wasi:http` (what componentize-js adds by default)
/// is refused before it is compiled, with the fix for its language: `validate`
/// exits 2 naming the import and `-d http -d fetch-event`, and nothing was
/// compiled into the cache. Before, the refusal came only after a full
/// compile, with advice that did not help a JavaScript author.
#[test]
fn a_component_importing_wasi_http_is_refused_before_compiling_with_the_fix() {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, CustomSection,
        InstanceType,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut component = Component::new();
    // producers: language = JavaScript
    let mut producers = vec![1, 8];
    producers.extend_from_slice(b"language");
    producers.extend_from_slice(&[1, 10]);
    producers.extend_from_slice(b"JavaScript");
    producers.extend_from_slice(&[1, b'1']);
    component.section(&CustomSection {
        name: "producers".into(),
        data: producers.into(),
    });
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    component.section(&types);
    let mut imports = ComponentImportSection::new();
    imports.import("wasi:http/types@0.2.10", ComponentTypeRef::Instance(0));
    component.section(&imports);
    std::fs::write(dir.path().join("app.wasm"), component.finish()).unwrap();
    std::fs::write(
        dir.path().join("subagent.toml"),
        "name = \"js-app\"\ndescription = \"d\"\ncomponent = \"app.wasm\"\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let out = subagent(&[
        "--cache-dir",
        path(&cache),
        "--no-builtins",
        "validate",
        path(dir.path()),
    ]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("`wasi:http/types@0.2.10`"), "{text}");
    assert!(text.contains("-d http -d fetch-event"), "{text}");
    let compiled = walk_files(&cache);
    assert!(compiled.is_empty(), "something was compiled: {compiled:?}");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk_files(&p) } else { vec![p] }
        })
        .collect()
}
