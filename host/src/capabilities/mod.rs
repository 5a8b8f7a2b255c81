//! Host implementations of the WIT interfaces a subagent imports, one module
//! per interface, each with the same shape: its per-task state (`HostCtx`,
//! `FsCtx`, `ModelCtx`, `SubagentsCtx`), built when the task starts and
//! holding that task's authority; and one `add_to_linker(linker, get)` that
//! serves the interface from the state `get` finds in the store's data.
//! `filesystem` serves `wasi:filesystem` in place of wasmtime-wasi's.

pub mod filesystem;
pub mod host;
pub mod model;
pub mod subagents;
