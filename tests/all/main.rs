//! Integration tests of subagent-host against real components: the test
//! guests in tests/guests and the example plugins in plugins/, compiled for
//! wasm32-wasip2 by this crate's build script.

mod helpers;
mod http_server;

mod agents;
mod builtin;
mod cli;
mod components;
mod definitions;
mod filesystem;
mod javascript;
mod limits;
mod manifest;
mod mcp;
mod model;
mod plugins;
mod python;

mod sandbox;
mod scaffold;
mod store;
mod tasks;
