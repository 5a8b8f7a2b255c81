//! Run the custom subagents of AI coding agents as sandboxed WebAssembly
//! components.
//!
//! A subagent ships as a bundle (`subagent.toml` plus a component built for
//! `wasm32-wasip2` against the `subagent:plugin@0.1.0` WIT world). The
//! [`runtime::Runtime`] runs it with exactly the filesystem access its
//! manifest grants ([`sandbox`]), under memory, time and output limits.
//!
//! Data flows one way: CLI → tasks → runtime → sandbox / capabilities.

pub mod builtin;
pub mod bundle;
pub mod capabilities;
pub mod cli;
pub mod definitions;
pub mod diagnostic;
pub mod events;
pub mod ids;
pub mod manifest;
pub mod mcp;
pub mod model;
pub mod paths;
pub mod plan;
pub mod runtime;
pub mod sandbox;
pub mod scaffold;
pub mod store;
pub mod task;
pub mod tasks;
pub mod units;

mod bindings;

pub use bundle::{Bundle, BundleError, Registries};
pub use capabilities::host::TaskControl;
pub use manifest::{Limits, Manifest, ManifestError, PermissionMode, Tool};
pub use runtime::{LoadError, LoadedComponent, RunSpec, Runtime, RuntimeConfig, TaskInfo};
pub use sandbox::{Sandbox, SandboxError, WriteSet};
pub use task::{ErrorKind, TaskError, TaskResult, TaskStatus};
