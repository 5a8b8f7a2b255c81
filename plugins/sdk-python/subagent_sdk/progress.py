"""Progress events, shown live by the CLI and recorded as events."""

import json

from ._bindings import host, types


def note(text: str) -> None:
    """A free-form note, such as "scanned 120 files"."""
    host.progress(types.ProgressEvent_Note(str(text)))


def round(n: int) -> None:  # noqa: A001 - mirrors the Rust SDK's `progress::round`
    """An agent loop starts round `n` (1-based)."""
    host.progress(types.ProgressEvent_Round(int(n)))


def tool(name: str, args=None) -> None:
    """The subagent calls tool `name`; `args` is any JSON-serializable value."""
    host.progress(
        types.ProgressEvent_Tool(types.ToolCall(name=str(name), args=json.dumps(args if args is not None else {})))
    )
