//! Host-side bindings of the `subagent:plugin@0.1.0` world.

wasmtime::component::bindgen!({
    world: "subagent",
    path: "../wit",
    imports: {
        "subagent:plugin/host.wait-message": async,
        "subagent:plugin/subagents": async,
        "subagent:plugin/model": async,
    },
    exports: { default: async },
});

/// Host-side bindings of the WASI interfaces the host serves itself
/// (`wasi:filesystem`), over the resource types of
/// [`crate::capabilities::filesystem`]. wasi:io is wasmtime-wasi-io's, so
/// the streams a descriptor hands out are ordinary wasi:io streams.
pub mod wasi_fs {
    wasmtime::component::bindgen!({
        world: "subagent:host-wasi/filesystem",
        path: "wit",
        imports: { default: trappable },
        require_store_data_send: true,
        trappable_error_type: {
            "wasi:filesystem/types.error-code" => crate::capabilities::filesystem::FsError,
        },
        with: {
            "wasi:io/poll": wasmtime_wasi_io::bindings::wasi::io::poll,
            "wasi:io/streams": wasmtime_wasi_io::bindings::wasi::io::streams,
            "wasi:io/error": wasmtime_wasi_io::bindings::wasi::io::error,
            "wasi:clocks/wall-clock": wasmtime_wasi::p2::bindings::clocks::wall_clock,
            "wasi:filesystem/types.descriptor": crate::capabilities::filesystem::Descriptor,
            "wasi:filesystem/types.directory-entry-stream": crate::capabilities::filesystem::DirEntries,
        },
    });
}
