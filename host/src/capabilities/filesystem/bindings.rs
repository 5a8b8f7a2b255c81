//! Host-side bindings of `wasi:filesystem` (`host/wit`), over this
//! capability's resource types. wasi:io is wasmtime-wasi-io's, so the streams
//! a descriptor hands out are ordinary wasi:io streams.

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
