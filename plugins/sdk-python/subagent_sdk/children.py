"""Child subagents, for subagents whose manifest grants `tools = ["subagents"]`.

    a = children.launch("deep-search", "TODO")
    b = children.launch("deep-search", "FIXME")
    done = children.wait([a, b])
    for child in done.completed:
        print(child.id, children.status(child), child.summary)

Every call raises `SubagentError` (a `Failed`: uncaught, it fails the task
with "denied: ..." and the like) when the host refuses it.
"""

from typing import List, Optional

from ._bindings import Err, subagents as _wit
from ._run import Failed
from .messages import _millis

#: The generated records, for type hints and `isinstance`.
LaunchRequest = _wit.LaunchRequest
ChildResult = _wit.ChildResult
AwaitResult = _wit.AwaitResult
TaskStatus = _wit.TaskStatus

_KINDS = {
    _wit.SubagentError_Denied: "denied",
    _wit.SubagentError_NotFound: "not found",
    _wit.SubagentError_NotRunning: "not running",
    _wit.SubagentError_DepthLimit: "depth limit",
    _wit.SubagentError_InvalidRequest: "invalid request",
    _wit.SubagentError_Unavailable: "unavailable",
}


class SubagentError(Failed):
    """The host refused a `children` call. `kind` is one of "denied",
    "not found", "not running", "depth limit", "invalid request",
    "unavailable"; `str(error)` is "kind: message"."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def _call(function, *args):
    try:
        return function(*args)
    except Err as err:
        raise SubagentError(_KINDS.get(type(err.value), "error"), str(err.value.value)) from None


def launch(subagent: str, prompt: str) -> str:
    """Launch `subagent` on `prompt` in the background; returns its task id."""
    return launch_with(subagent, prompt)


def launch_with(
    subagent: str,
    prompt: str,
    *,
    description: Optional[str] = None,
    write_dirs: Optional[List[str]] = None,
    readonly: bool = False,
    timeout: Optional[float] = None,
    model: Optional[str] = None,
) -> str:
    """Launch with every option: `write_dirs` narrows the child's writable
    directories (workspace-relative), `readonly` lets it write nothing,
    `timeout` (seconds) replaces its timeout, `model` overrides its model
    ("inherit" takes this task's)."""
    request = LaunchRequest(
        subagent=subagent,
        prompt=prompt,
        description=description,
        write_dirs=list(write_dirs) if write_dirs is not None else None,
        readonly=readonly,
        timeout_ms=_millis(timeout) if timeout is not None else None,
        model=model,
    )
    return _call(_wit.launch, request)


def wait(ids: List[str], timeout: Optional[float] = None) -> AwaitResult:
    """Wait until all `ids` have finished, or `timeout` seconds pass.
    Returns `completed` (`ChildResult`s), `pending` and `missing` ids."""
    return _call(_wit.await_tasks, list(ids), _millis(timeout) if timeout is not None else None)


def cancel(id: str) -> None:  # noqa: A002
    """Cancel a child (and its descendants)."""
    _call(_wit.cancel, id)


def send(id: str, text: str) -> None:  # noqa: A002
    """Send a follow-up message to a queued or running child."""
    _call(_wit.send, id, text)


def status(child: ChildResult) -> str:
    """The host's name for a child's status: "completed", "timed_out", ..."""
    return child.status.name.lower()
