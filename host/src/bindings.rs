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
