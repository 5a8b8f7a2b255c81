"""Log lines, recorded in the task's event stream (`subagent logs`)."""

from ._bindings import host, types


def debug(message: str) -> None:
    host.log(types.LogLevel.DEBUG, str(message))


def info(message: str) -> None:
    host.log(types.LogLevel.INFO, str(message))


def warn(message: str) -> None:
    host.log(types.LogLevel.WARN, str(message))


def error(message: str) -> None:
    host.log(types.LogLevel.ERROR, str(message))
