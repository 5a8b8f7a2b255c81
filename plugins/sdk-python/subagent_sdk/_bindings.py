"""The componentize-py bindings of world `subagent`, imported in one place.

componentize-py generates the `wit_world` package when it builds the
component (`componentize-py -d wit -w subagent componentize app ...`); it does
not exist in an ordinary Python, so the SDK can only be imported inside the
component being built.
"""

try:
    import wit_world
    from componentize_py_types import Err
    from wit_world.imports import host, model, subagents, types
except ImportError as err:  # pragma: no cover - only outside a component build
    raise ImportError(
        "subagent_sdk runs inside a component: build it with "
        "`componentize-py -d wit -w subagent componentize app -o app.wasm` "
        "(the bindings module `wit_world` is generated then, from the "
        "subagent:plugin@0.1.0 WIT)"
    ) from err

__all__ = ["Err", "host", "model", "subagents", "types", "wit_world"]
