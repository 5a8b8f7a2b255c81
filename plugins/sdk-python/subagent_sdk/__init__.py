"""Write subagents for `subagent-host` in Python.

A subagent is a WebAssembly component that exports `run(task)` from the
`subagent:plugin@0.1.0` world. componentize-py builds it from a module
(conventionally `app.py`) that subclasses `Subagent` and exports it::

    import subagent_sdk
    from subagent_sdk import Outcome, Subagent

    class Hello(Subagent):
        def run(self, task):
            subagent_sdk.log.info(f"task {task.id} started")
            return Outcome(f"Hello, {task.prompt}!", data={"ok": True})

    subagent_sdk.export(Hello)

The workspace is mounted at `/workspace` (`WORKSPACE`) and is read-only
except for the directories in `task.writable_dirs`; use `open`, `os` and
`pathlib` as usual. There are no sockets, environment variables or arguments.

How a run ends:

* `return Outcome(summary, data=...)` or `return "summary"`: completed;
* `raise InvalidInput(msg)`: run-error `invalid-input`;
* `raise Failed(msg)`: run-error `failed` with exactly `msg`;
* `raise Cancelled()` (or `check_cancelled()` once the task was cancelled):
  run-error `cancelled`;
* any other exception: run-error `failed` with the headline
  `"ValueError: no such directory: src"`; the full traceback is logged at
  `error` level;
* `sys.exit(0)` / `sys.exit()`: completed, summary "exited with status 0";
  `sys.exit(n)`: failed, "exited with status n"; `sys.exit("msg")`: failed, "msg".
"""

from . import children, log, messages, model, progress
from ._bindings import host as _host
from ._bindings import types as _types
from ._run import Cancelled, Failed, InvalidInput, Outcome, Subagent, export

# Tracebacks and reprs name the public path, not the private module.
for _cls in (Cancelled, Failed, InvalidInput, Outcome, Subagent):
    _cls.__module__ = __name__
del _cls

#: Where the host mounts the workspace inside the guest.
WORKSPACE = "/workspace"

#: The task a subagent is asked to do: `id`, `description`, `prompt`,
#: `system_prompt`, `workspace`, `writable_dirs`, `model`, `parent_id`.
Task = _types.Task


def cancelled() -> bool:
    """True once the task has been asked to stop: raise `Cancelled` soon after."""
    return _host.cancelled()


def check_cancelled() -> None:
    """Raise `Cancelled` if the task has been asked to stop.

    Call it between units of work.
    """
    if _host.cancelled():
        raise Cancelled()


__all__ = [
    "WORKSPACE",
    "Cancelled",
    "Failed",
    "InvalidInput",
    "Outcome",
    "Subagent",
    "Task",
    "cancelled",
    "check_cancelled",
    "children",
    "export",
    "log",
    "messages",
    "model",
    "progress",
]
