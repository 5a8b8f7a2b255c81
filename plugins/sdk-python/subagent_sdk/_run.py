"""The `run` export: a user's `Subagent` class, and how its end becomes a result.

componentize-py calls `run` on the class named `WitWorld` in the app module;
`export` defines that class there, so componentize-py's naming stays in this
one file. Every way a run can end in Python is mapped here, in `_finish` and
`_failure`, to `result<outcome, run-error>`: no exception ever leaves as a
trap.
"""

import json
import sys
import traceback

from ._bindings import Err, host, types, wit_world


class Outcome:
    """What a successful run produces: a summary for people and, optionally,
    `data`, any JSON-serializable value (sent as a JSON document)."""

    __slots__ = ("summary", "data")

    def __init__(self, summary: str, data=None):
        self.summary = summary
        self.data = data

    def __repr__(self):
        return f"Outcome({self.summary!r}, data={self.data!r})"


class InvalidInput(Exception):
    """The task cannot be done as asked (bad prompt, bad arguments).

    Raised out of `run`, it ends the task with run-error `invalid-input`."""


class Failed(Exception):
    """The subagent tried and failed. Raised out of `run`, it ends the task
    with run-error `failed` whose message is exactly `str(error)`."""


class Cancelled(BaseException):
    """The subagent stops because the task was cancelled. Raised out of
    `run`, it ends the task with run-error `cancelled`.

    A `BaseException`, like `KeyboardInterrupt`, so that `except Exception`
    in the subagent's own code does not swallow it."""


class Subagent:
    """Subclass this, implement `run`, and pass the class to `export`.

    One instance is made per task (the host runs each task in a fresh
    component instance)."""

    def run(self, task) -> "Outcome | str":
        """Do `task` (a `subagent_sdk.Task`); return an `Outcome` or a summary."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run(self, task)")


def export(cls):
    """Export `cls` (a `Subagent` subclass) as this component's `run`.

    Call it once, at the top level of the module componentize-py builds
    (`app.py`). Returns `cls`, so it also works as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Subagent)):
        raise TypeError(f"subagent_sdk.export expects a Subagent subclass, got {cls!r}")

    class WitWorld(wit_world.WitWorld):
        def run(self, task):
            return _run(cls, task)

    # componentize-py looks the export class up by this name in the app module.
    sys._getframe(1).f_globals["WitWorld"] = WitWorld
    return cls


def _run(cls, task):
    try:
        returned = cls().run(task)
    except SystemExit as error:
        if error.code is None or error.code == 0:
            return types.Outcome(summary="exited with status 0", data=None)
        raise Err(_failure(error)) from None
    except BaseException as error:  # noqa: BLE001 - every end becomes a result
        raise Err(_failure(error)) from None
    try:
        return _finish(returned)
    except Exception as error:  # noqa: BLE001
        raise Err(_failure(error)) from None


def _finish(returned):
    """The `outcome` for what `run` returned."""
    if isinstance(returned, str):
        return types.Outcome(summary=returned, data=None)
    if isinstance(returned, Outcome):
        data = None
        if returned.data is not None:
            try:
                data = json.dumps(returned.data)
            except (TypeError, ValueError) as error:
                raise Failed(f"the outcome's data is not JSON: {error}") from error
        return types.Outcome(summary=str(returned.summary), data=data)
    raise Failed(
        f"run() returned {type(returned).__name__}; return an Outcome or a str"
    )


def _failure(error: BaseException):
    """The `run-error` for an exception that ended `run`."""
    if isinstance(error, InvalidInput):
        return types.RunError_InvalidInput(str(error))
    if isinstance(error, Cancelled):
        return types.RunError_Cancelled()
    if isinstance(error, KeyboardInterrupt) and host.cancelled():
        return types.RunError_Cancelled()
    if isinstance(error, SystemExit):
        return _exit(error)
    if isinstance(error, Err) and isinstance(
        error.value,
        (types.RunError_InvalidInput, types.RunError_Failed, types.RunError_Cancelled),
    ):
        return error.value
    # Keep the whole story in the task's log; the result gets the headline.
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    host.log(types.LogLevel.ERROR, text.rstrip())
    if isinstance(error, Failed):
        return types.RunError_Failed(str(error))
    return types.RunError_Failed(headline(error))


def _exit(error: SystemExit):
    """`sys.exit(n)` as Python's own exit status would read: an int is a
    status, anything else is a message (and status 1)."""
    if isinstance(error.code, int):
        return types.RunError_Failed(f"exited with status {error.code}")
    return types.RunError_Failed(str(error.code))


def headline(error: BaseException) -> str:
    """`ValueError: no such directory: src`: the exception's type and message."""
    name = type(error).__qualname__
    module = type(error).__module__
    if module not in ("builtins", "__main__", None):
        name = f"{module}.{name}"
    message = str(error)
    return f"{name}: {message}" if message else name
