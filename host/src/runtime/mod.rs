//! The engine and everything it takes to run a component: one shared
//! [`wasmtime::Engine`] (pooling allocator, epoch ticker, fuel), the on-disk
//! artifact cache, one linker, and one `InstancePre` per component, reused by
//! every task that runs it.

mod cache;
mod exec;
mod imports;

pub use cache::{CacheOutcome, entry_checksum};
pub use exec::{RunParts, RunSpec, TaskInfo};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable, types::ComponentItem};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::SubagentPre;
use crate::capabilities::host::HostCtx;
use crate::capabilities::model::ModelCtx;
use crate::capabilities::subagents::SubagentsCtx;
use crate::capabilities::{
    self,
    filesystem::{self, DescriptorBudget, FsCtx, FsView},
};
use crate::manifest::MAX_MEMORY;

use cache::ArtifactCache;

/// How the engine is set up.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled artifacts are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once (pool slots). The task manager's
    /// global cap on running tasks must not exceed it.
    pub max_instances: u32,
    /// How often the epoch advances: the granularity of timeouts and interrupts.
    pub tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: crate::paths::cache_dir().map(|d| d.join("artifacts")),
            max_instances: 64,
            tick: Duration::from_millis(10),
        }
    }
}

/// Why a component cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read component `{}` of subagent `{subagent}`: {source}\n  = help: {help}", path.display())]
    Read {
        subagent: String,
        path: PathBuf,
        source: std::io::Error,
        help: String,
    },
    #[error("component `{}` of subagent `{subagent}` has SHA-256 {actual}, but the manifest pins {expected}\n  = help: rebuild the component from trusted sources, or update `sha256` in {}", path.display(), manifest.display())]
    DigestMismatch {
        subagent: String,
        path: PathBuf,
        manifest: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("`{}` is not a WebAssembly component: {reason}\n  = help: {help}", path.display())]
    NotComponent {
        path: PathBuf,
        reason: String,
        help: String,
    },
    #[error("component `{}` does not implement the subagent world: {reason}\n  = help: build it against wit/ (package subagent:plugin@0.1.0), for example with the subagent-sdk crate and `subagent_sdk::export!`", path.display())]
    NotSubagent { path: PathBuf, reason: String },
    #[error("component `{}` imports {import}, which this host does not provide\n  = help: {help}", path.display())]
    UnknownImport {
        path: PathBuf,
        import: String,
        help: String,
    },
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
}

/// A compiled component, ready to instantiate.
pub struct LoadedComponent {
    /// SHA-256 of the wasm bytes, lowercase hex.
    pub digest: String,
    pub path: PathBuf,
    pub cache: CacheOutcome,
    /// Names of the component's imports (interfaces).
    pub imports: Vec<String>,
    /// Names of the component's exports.
    pub exports: Vec<String>,
    pre: SubagentPre<StoreState>,
}

/// Everything a store holds for one task.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: exec::MemoryLimiter,
    fs: FsCtx,
    host: HostCtx,
    subagents: SubagentsCtx,
    model: ModelCtx,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The shared engine, linker and caches. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: ArtifactCache,
    components: Mutex<HashMap<PathBuf, (FileStamp, Arc<LoadedComponent>)>>,
    ticker_stop: Arc<AtomicBool>,
    pooling: bool,
    max_instances: u32,
    /// The host's descriptors, shared by every task's filesystem.
    descriptors: Arc<DescriptorBudget>,
}

/// Identifies a component file's contents without reading it.
#[derive(Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Runtime {
    /// Create the engine, linker and epoch ticker.
    ///
    /// # Errors
    ///
    /// [`LoadError::Engine`] when wasmtime cannot be configured.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, LoadError> {
        let (engine, pooling) = match Engine::new(&engine_config(&config, true)) {
            Ok(engine) => (engine, true),
            // The pool reserves virtual memory up front; where that is not
            // allowed (a tight `ulimit -v`), allocate per instance instead.
            Err(_) => (
                Engine::new(&engine_config(&config, false))
                    .map_err(|e| LoadError::Engine(e.to_string()))?,
                false,
            ),
        };
        let mut linker = Linker::new(&engine);
        add_capabilities(&mut linker).map_err(|e| LoadError::Engine(e.to_string()))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop, tick) = (engine.clone(), ticker_stop.clone(), config.tick);
        std::thread::Builder::new()
            .name("subagent-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        let cache = ArtifactCache::new(&engine, config.cache_dir.clone());
        Ok(Runtime {
            engine,
            linker,
            cache,
            components: Mutex::new(HashMap::new()),
            ticker_stop,
            pooling,
            max_instances: config.max_instances.max(1),
            descriptors: Arc::new(DescriptorBudget::for_process(config.max_instances)),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How many instances may exist at once.
    pub fn max_instances(&self) -> u32 {
        self.max_instances
    }

    /// Whether the pooling allocator is in use (else on-demand allocation).
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Where the artifact of a wasm digest is cached, if caching is on.
    pub fn cache_entry(&self, digest: &str) -> Option<PathBuf> {
        self.cache.entry_path(digest)
    }

    /// Load the component of `subagent` from `path`: read, check the pin,
    /// compile or load from cache, check it implements the world, and prepare
    /// its `InstancePre`. Repeated loads of an unchanged file are free.
    /// This is blocking work (it may compile); call it off the async threads.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] saying what is wrong with the component and how to fix it.
    pub fn load(
        &self,
        subagent: &str,
        path: &Path,
        pin: Option<&str>,
        manifest: &Path,
    ) -> Result<Arc<LoadedComponent>, LoadError> {
        let read_error = |source: std::io::Error| LoadError::Read {
            subagent: subagent.to_owned(),
            path: path.to_owned(),
            help: if source.kind() == std::io::ErrorKind::NotFound {
                "build it first (`subagent build <bundle>`, or `subagent run --build`), or fix `component` in the manifest".into()
            } else {
                "check the file's permissions".into()
            },
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        let stamp = FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        if let Some(loaded) = self.memoized(path, &stamp, pin) {
            return Ok(loaded);
        }
        let wasm = std::fs::read(path).map_err(read_error)?;
        let digest = hex::encode(Sha256::digest(&wasm));
        if let Some(expected) = pin {
            if expected != digest {
                return Err(LoadError::DigestMismatch {
                    subagent: subagent.to_owned(),
                    path: path.to_owned(),
                    manifest: manifest.to_owned(),
                    expected: expected.to_owned(),
                    actual: digest,
                });
            }
        }
        check_header(path, &wasm)?;
        // Before any compile (seconds, for a big component): an import no
        // host could provide is said at once, with the fix for its language.
        imports::check(path, &wasm)?;
        let (component, cache) = self
            .cache
            .load(&self.engine, &wasm, &digest)
            .map_err(|err| LoadError::NotComponent {
                path: path.to_owned(),
                reason: format!("{err:#}"),
                help: "the file is not a valid component; rebuild it for wasm32-wasip2".into(),
            })?;
        let loaded = Arc::new(self.prepare(path, component, digest, cache)?);
        self.components
            .lock()
            .unwrap()
            .insert(path.to_owned(), (stamp, loaded.clone()));
        Ok(loaded)
    }

    /// The component at `path` if it is already loaded and unchanged on disk:
    /// one `stat`, no reading, hashing or compiling. Cheap enough for async code.
    pub fn loaded(&self, path: &Path, pin: Option<&str>) -> Option<Arc<LoadedComponent>> {
        let meta = std::fs::metadata(path).ok()?;
        let stamp = FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        self.memoized(path, &stamp, pin)
    }

    fn memoized(
        &self,
        path: &Path,
        stamp: &FileStamp,
        pin: Option<&str>,
    ) -> Option<Arc<LoadedComponent>> {
        let components = self.components.lock().unwrap();
        let (seen, loaded) = components.get(path)?;
        (seen == stamp && pin.is_none_or(|p| p == loaded.digest)).then(|| loaded.clone())
    }

    fn prepare(
        &self,
        path: &Path,
        component: Component,
        digest: String,
        cache: CacheOutcome,
    ) -> Result<LoadedComponent, LoadError> {
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let exports: Vec<(String, ComponentItem)> = ty
            .exports(&self.engine)
            .map(|(name, item)| (name.to_owned(), item.ty))
            .collect();
        match exports.iter().find(|(name, _)| name == "run") {
            Some((_, ComponentItem::ComponentFunc(_))) => {}
            Some(_) => {
                return Err(LoadError::NotSubagent {
                    path: path.to_owned(),
                    reason: "its export `run` is not a function".into(),
                });
            }
            None => {
                let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
                let reason = if names.is_empty() {
                    "it exports nothing; a subagent exports `run: func(task) -> result<outcome, run-error>`".to_owned()
                } else {
                    format!(
                        "it does not export `run` (it exports: {})",
                        names.join(", ")
                    )
                };
                return Err(LoadError::NotSubagent {
                    path: path.to_owned(),
                    reason,
                });
            }
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|err| {
            let text = format!("{err:#}");
            match between_backticks(&text) {
                Some(import) if text.contains("import") => LoadError::UnknownImport {
                    path: path.to_owned(),
                    import: format!("`{import}`"),
                    help: imports::GENERIC_HELP.into(),
                },
                _ => LoadError::NotSubagent {
                    path: path.to_owned(),
                    reason: text,
                },
            }
        })?;
        let pre = SubagentPre::new(pre).map_err(|err| LoadError::NotSubagent {
            path: path.to_owned(),
            reason: format!("{err:#}"),
        })?;
        Ok(LoadedComponent {
            digest,
            path: path.to_owned(),
            cache,
            imports,
            exports: exports.into_iter().map(|(n, _)| n).collect(),
            pre,
        })
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("path", &self.path)
            .field("digest", &self.digest)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Link WASI and every `subagent:plugin` interface, each to its own state.
/// Interfaces a manifest does not grant are linked too and answer `denied`.
fn add_capabilities(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    // wasmtime-wasi serves clocks, random, stdio, (refused) sockets and
    // wasi:io; the host's own filesystem capability then replaces its
    // wasi:filesystem, so no guest file call reaches a generic preopen.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    linker.allow_shadowing(true);
    filesystem::add_to_linker(linker, |state: &mut StoreState| {
        FsView::new(&mut state.fs, &mut state.table)
    })?;
    linker.allow_shadowing(false);
    capabilities::host::add_to_linker(linker, |state: &mut StoreState| &mut state.host)?;
    capabilities::subagents::add_to_linker(linker, |state: &mut StoreState| &mut state.subagents)?;
    capabilities::model::add_to_linker(linker, |state: &mut StoreState| &mut state.model)?;
    Ok(())
}

fn between_backticks(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let end = start + text[start..].find('`')?;
    Some(&text[start..end])
}

/// Tell a core module or a random file from a component before compiling.
fn check_header(path: &Path, wasm: &[u8]) -> Result<(), LoadError> {
    let not_component = |reason: &str, help: &str| LoadError::NotComponent {
        path: path.to_owned(),
        reason: reason.into(),
        help: help.into(),
    };
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(not_component(
            "it does not start with the wasm magic bytes",
            "point `component` at the .wasm file your build produces",
        ));
    }
    if wasm[4..8] == [1, 0, 0, 0] {
        return Err(not_component(
            "it is a core WebAssembly module",
            "build for wasm32-wasip2, which emits components, or wrap the module with `wasm-tools component new`",
        ));
    }
    Ok(())
}

/// Bytes of each pooled linear memory kept resident between tasks.
const KEEP_RESIDENT_MEMORY: usize = 1 << 20;
/// Bytes of each pooled table kept resident between tasks.
const KEEP_RESIDENT_TABLES: usize = 64 << 10;

fn engine_config(config: &RuntimeConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.consume_fuel(true);
    c.max_wasm_stack(1 << 20);
    // 32-bit memories get a full 4 GiB reservation plus guard, so bounds
    // checks compile away; this is virtual address space, not memory.
    c.memory_reservation(1 << 32);
    c.memory_guard_size(32 << 20);
    if pooling {
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            // A Rust wasip2 component has a handful of core instances, one
            // memory and a few tables; leave room for larger toolchains.
            .total_core_instances(n * 16)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memories_per_component(4)
            .max_memory_size(MAX_MEMORY as usize);
        // Reset a slot for the next task by rewriting the pages the last one
        // touched (found with Linux's PAGEMAP_SCAN where the kernel has it,
        // 6.7+), up to 1 MiB of memory and 64 KiB of tables, instead of
        // unmapping them all and faulting them back in: an instantiate of a
        // small guest then takes no page faults. Wasmtime restores every
        // byte either way; this only trades resident memory (at most that
        // much per slot used) for time.
        pool.linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLES)
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}
