//! Host implementations of the WIT interfaces a subagent imports, one module
//! per interface. Each keeps its state in the store's data and adds itself to
//! the linker in one `add_to_linker`.

pub mod filesystem;
pub mod host;
pub mod model;
pub mod subagents;
